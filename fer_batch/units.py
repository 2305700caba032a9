"""A batch cut into units of work for distributed workers, and a worker's analysis of one unit.

A unit is a few photos, a whole video, or one time segment of a long video. A worker detects and classifies
the frames of a unit but does not track: it returns each face's thumbnail, and the driver (joiner.py) tracks
over the whole video, so track ids run across segment boundaries exactly as in a local run.
"""
from __future__ import annotations

import dataclasses
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fer_batch.crops import thumbnail
from fer_batch.options import AnalyzeOptions
from fer_batch.pipeline import InputOutcome, Pipeline
from fer_batch.sources import InputFailure, InputFile, TimeWindow, WindowEdges, open_video
from fer_batch.types import Faces, Frame, FrameResult, InputError

IMAGES_PER_UNIT = 16


@dataclass(frozen=True)
class WorkUnit:
    key: int                            # position in the plan
    items: tuple[InputFile, ...]        # photos, or one video
    window: TimeWindow | None = None    # the segment of the video, when it is split
    segment: int = 0
    segments: int = 1

    def read_from_start(self) -> "WorkUnit":
        """The same segment, decoded from the video's first frame instead of seeking (exact on any video)."""
        return dataclasses.replace(self, window=dataclasses.replace(self.window, seek=False))


@dataclass
class UnitResult:
    unit: WorkUnit
    outcomes: list[InputOutcome]       # one per item; faces without track ids, FrameResult.thumbnails one per face
    edges: WindowEdges | None = None   # for a segment: what its decoder saw at its edges


def segment_windows(duration_s: float, fps: float | None, segment_s: float,
                    start_s: float = 0.0, end_s: float | None = None) -> list[TimeWindow]:
    """Windows of about `segment_s` covering [start_s, end_s) of a video of `duration_s` (the whole video by
    default); each after the first starts on a multiple of 1/fps, so a segment samples the frames a decode of the
    whole stretch samples there. The first reads from the video's start (exact), the last ends at `end_s`."""
    stop = min(duration_s, end_s) if end_s is not None else duration_s
    if fps:
        step = 1.0 / fps
        slots = max(1, round(segment_s / step))
        grid = [k * slots * step for k in range(math.ceil(stop / (slots * step) - 1e-9))]
    else:
        grid = [k * segment_s for k in range(math.ceil(stop / segment_s - 1e-9))]
    starts = [start_s] + [start for start in grid if start > start_s + 1e-9]
    return [TimeWindow(start, starts[k + 1] if k + 1 < len(starts) else end_s, seek=k > 0)
            for k, start in enumerate(starts)]


def _video_duration(item: InputFile) -> float | None:
    try:
        cap, info = open_video(item.path)
    except (InputFailure, OSError):
        return None  # the worker meets the same failure and reports it
    cap.release()
    return info.frame_count / info.fps if info.fps and info.frame_count else None


def plan_units(items: Sequence[InputFile], options: AnalyzeOptions) -> list[WorkUnit]:
    """Units in input order: runs of up to IMAGES_PER_UNIT photos, whole videos, and videos longer than
    `options.segment_s` in segments (not with max_frames, which counts from a video's start, nor with
    detect_every > 1, whose frames between keyframes are interpolated across what would be a segment boundary)."""
    units: list[WorkUnit] = []
    photos: list[InputFile] = []

    def add(items: tuple[InputFile, ...], window: TimeWindow | None = None, segment: int = 0, segments: int = 1) -> None:
        units.append(WorkUnit(len(units), items, window, segment, segments))

    def flush_photos() -> None:
        if photos:
            add(tuple(photos))
            photos.clear()

    for item in items:
        if item.kind != "video":
            photos.append(item)
            if len(photos) == IMAGES_PER_UNIT:
                flush_photos()
            continue
        flush_photos()
        splittable = options.max_frames is None and options.detect_every == 1
        duration = _video_duration(item) if splittable else None
        windows = (segment_windows(duration, options.fps, options.segment_s, options.start_s, options.end_s)
                   if duration else [])
        if len(windows) < 2:
            add((item,), options.video_window())
            continue
        for k, window in enumerate(windows):
            add((item,), window, k, len(windows))
    flush_photos()
    return units


class _UntrackedPipeline(Pipeline):
    """The local pipeline without its last step: frames keep every face's thumbnail and get no track ids."""

    def _collect(self, outcome: InputOutcome, frame: Frame, faces: Faces, crops: list[np.ndarray]) -> None:
        outcome.results.append(FrameResult(frame.source, frame.index, frame.time_s, faces,
                                           thumbnails=[thumbnail(crop) for crop in crops]))


class UnitAnalyzer:
    """A worker's detector and classifier, loaded once, analysing one unit at a time."""

    def __init__(self, options: AnalyzeOptions, stages=None):
        from fer_batch.api import build_stages

        detector, classifier = stages or build_stages(options)
        self.pipeline = _UntrackedPipeline(detector, classifier, options)

    def analyze(self, unit: WorkUnit) -> UnitResult:
        """Never raises for an input's sake: whatever fails is an InputError in that input's outcome."""
        outcomes: list[InputOutcome] = []
        edges = WindowEdges() if unit.window is not None else None
        present = [item for item in unit.items if item.path.exists() or item.path.is_symlink()]
        try:
            self.pipeline.run(present, outcomes.append, unit.window, edges)
        except Exception as exc:  # a bug must cost this unit's inputs, not the worker
            reason = str(exc).splitlines()[0] if str(exc) else ""
            done = {outcome.item.source for outcome in outcomes}
            outcomes += [InputOutcome(item, error=InputError(item.source, "worker", f"analysis failed on worker "
                                                             f"{platform.node()} ({type(exc).__name__}: {reason})"))
                         for item in present if item.source not in done]
        outcomes += [InputOutcome(item, error=InputError(item.source, "read", f"no such file on worker "
                                                         f"{platform.node()} (deleted since the batch started, or not "
                                                         "there on that node: every node must see the inputs at the "
                                                         "same path)"))
                     for item in unit.items if item not in present]
        return UnitResult(unit, outcomes, edges)
