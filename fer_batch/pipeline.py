"""Wires the stages: a decode thread feeds frames through a bounded queue; detection, classification and
tracking run in batches that span frames and files; each input is handed on as soon as it is finished."""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fer_batch.annotate import Annotator
from fer_batch.classify import ExpressionClassifier
from fer_batch.crops import crop_faces, thumbnail
from fer_batch.detect.base import Detector
from fer_batch.keyframes import KeyframeScheduler
from fer_batch.options import AnalyzeOptions
from fer_batch.sources import (InputFailure, InputFile, TimeWindow, VideoInfo, WindowEdges, frames_of,
                               header_sample_count, open_video)
from fer_batch.track import IouTracker, max_track_gap_s
from fer_batch.types import Faces, Frame, FrameResult, InputError


@dataclass
class InputOutcome:
    """Everything the pipeline learnt about one input."""

    item: InputFile
    results: list[FrameResult] = field(default_factory=list)
    duration_s: float | None = None
    error: InputError | None = None      # the input failed (its results may be partial)
    problems: list[str] = field(default_factory=list)  # recoverable decode problems
    thumbnails: dict[int, tuple[float, np.ndarray]] = field(default_factory=dict)  # track/face -> (score, image)


_END = object()


class ResultAssembler:
    """The last step of a frame's analysis: track ids for a video's faces, each track's (or photo face's) best
    thumbnail, and the frame appended to its input's results. Both backends finish frames here."""

    def __init__(self, fps: float | None = None) -> None:
        self._trackers: dict[str, IouTracker] = {}
        self._max_gap_s = max_track_gap_s(fps)

    def add(self, outcome: InputOutcome, index: int, time_s: float | None, faces: Faces,
            thumbnail_of: Callable[[int], np.ndarray]) -> None:
        """Finish one frame; `thumbnail_of(i)` gives face i's thumbnail (asked only when it is the best so far)."""
        item = outcome.item
        if item.kind == "video":
            tracker = self._trackers.setdefault(item.source, IouTracker(max_gap_s=self._max_gap_s))
            faces.track_ids = tracker.update(faces.boxes, time_s or 0.0)
        else:
            faces.track_ids = None
        keys = faces.track_ids if faces.track_ids is not None else range(len(faces))
        for i, (key, score) in enumerate(zip(keys, faces.scores)):
            score = float(score) if np.isfinite(score) else -1.0  # interpolated boxes (--detect-every) rank last
            best = outcome.thumbnails.get(int(key))
            if best is None or score > best[0]:
                outcome.thumbnails[int(key)] = (score, thumbnail_of(i))
        outcome.results.append(FrameResult(item.source, index, time_s, faces))

    def forget(self, source: str) -> None:
        self._trackers.pop(source, None)


def _decode_all(items: Sequence[InputFile], options: AnalyzeOptions, out: queue.Queue, stop: threading.Event,
                window: TimeWindow | None = None, edges: WindowEdges | None = None) -> None:
    for item in items:
        if stop.is_set():
            return
        problems: list[str] = []
        failure: InputFailure | None = None
        duration, info = None, None
        try:
            if item.kind == "video":
                cap, info = open_video(item.path)
                cap.release()
                duration = info.frame_count / info.fps if info.fps and info.frame_count else None
            emitted = 0
            for frame in frames_of(item, options.fps, options.max_frames, problems, window, edges):
                emitted += 1
                while not stop.is_set():
                    try:
                        out.put(("frame", item, frame), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            if item.kind == "video" and not emitted and window is not None and window == options.video_window():
                raise _nothing_in_window(options, info)
        except InputFailure as exc:
            failure = exc
        except Exception as exc:  # a decoder crash on one file must not end the batch
            failure = InputFailure("decode", f"decoding failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
        out.put(("end", item, (duration, problems, failure)))
    out.put((_END, None, None))


def _nothing_in_window(options: AnalyzeOptions, info: VideoInfo | None) -> InputFailure:
    duration = info.frame_count / info.fps if info is not None and info.fps and info.frame_count else None
    past_end = options.start_past_end(duration)
    if past_end:
        return InputFailure("decode", past_end)
    if info is not None and header_sample_count(info, options.fps, options.start_s, options.end_s) == 0:
        rate = f"--fps {options.fps:g}" if options.fps else f"the video's {info.fps:g} frames/s"
        return InputFailure("decode", f"no frame is sampled between --start and --end at {rate}: the stretch is "
                                      "shorter than one sampling step")
    return InputFailure("decode", "no frame could be decoded between --start and --end")


MAX_BATCH_FRAMES = 32
MAX_BATCH_PIXELS = 32 * 640 * 480  # beyond frame_batch frames, large frames make smaller batches


class Pipeline:
    def __init__(self, detector: Detector, classifier: ExpressionClassifier, options: AnalyzeOptions,
                 on_frames: Callable[[int], None] | None = None):
        self.detector = detector
        self.classifier = classifier
        self.options = options
        self.on_frames = on_frames or (lambda n: None)
        self.annotator = Annotator(options.annotate_dir, options.fps) if options.annotate_dir else None
        self.keyframes = KeyframeScheduler(options.detect_every)
        self.stage_seconds: dict[str, float] = {"detect": 0.0, "classify": 0.0, "track_and_collect": 0.0}
        self.assembler = ResultAssembler(options.fps)
        # with --detect-every K a batch holds K times the frames, so the detector still sees about frame_batch
        # keyframes a call and the classifier gets batches of a useful size
        self.frames_per_batch = min(options.frame_batch * options.detect_every, max(options.frame_batch, MAX_BATCH_FRAMES))

    def run(self, items: Sequence[InputFile], on_done: Callable[[InputOutcome], None],
            window: TimeWindow | None = None, edges: WindowEdges | None = None) -> None:
        """Analyse `items`; `on_done` is called once per input, in input order, as soon as it is finished.

        With `window`, only that stretch of each video is decoded, and `edges` is told what its edges looked like
        (meant for one video at a time: a segment of a long one); without it, the stretch --start/--end select.
        """
        window = window if window is not None else self.options.video_window()
        frames_queue: queue.Queue = queue.Queue(maxsize=max(4, self.options.frame_batch * 3))
        stop = threading.Event()
        decoder = threading.Thread(target=_decode_all, args=(items, self.options, frames_queue, stop, window, edges),
                                   daemon=True)
        decoder.start()
        outcomes: dict[str, InputOutcome] = {}
        ended: list[InputOutcome] = []
        batch: list[tuple[InputOutcome, Frame]] = []
        batch_pixels = 0
        try:
            while True:
                kind, item, payload = frames_queue.get()
                if kind is _END:
                    break
                outcome = outcomes.setdefault(item.source, InputOutcome(item))
                if kind == "frame":
                    batch.append((outcome, payload))
                    batch_pixels += payload.image.shape[0] * payload.image.shape[1]
                    if len(batch) >= self.frames_per_batch or (len(batch) >= self.options.frame_batch
                                                                and batch_pixels >= MAX_BATCH_PIXELS):
                        self._process(batch)
                        batch, batch_pixels = [], 0
                        self._finish(ended, outcomes, on_done)   # inputs whose last frames were in that batch
                else:
                    duration, problems, failure = payload
                    outcome.duration_s = duration
                    outcome.problems.extend(problems)
                    if failure is not None and outcome.error is None:
                        outcome.error = InputError(item.source, failure.stage, failure.reason)
                    ended.append(outcome)
                    # an input is journalled and written as soon as none of its frames waits in the batch being
                    # filled (within one batch of frames); when the decoder is behind, the batch goes now
                    if frames_queue.empty():
                        self._process(batch)
                        batch, batch_pixels = [], 0
                    waiting = {id(o) for o, _ in batch}
                    if not any(id(o) in waiting for o in ended):
                        self._finish(ended, outcomes, on_done)
            self._process(batch)
            self._finish(ended, outcomes, on_done)
        finally:
            stop.set()
            if self.annotator:
                self.annotator.close_all()
            decoder.join(timeout=5)

    def _finish(self, ended: list[InputOutcome], outcomes: dict, on_done) -> None:
        self._close_held_frames(ended)
        for outcome in ended:
            if outcome.duration_s is None and outcome.item.kind == "video" and outcome.results:
                outcome.duration_s = outcome.results[-1].time_s
            if self.annotator:
                self.annotator.close(outcome.item.source)
            outcomes.pop(outcome.item.source, None)
            self.assembler.forget(outcome.item.source)
            on_done(outcome)
        ended.clear()

    def _process(self, batch: list[tuple[InputOutcome, Frame]]) -> None:
        if not batch:
            return
        live = [(o, f) for o, f in batch if o.error is None or o.error.stage == "decode"]
        keyed = [(o, f, o.item.kind != "video" or self.keyframes.is_keyframe(o.item.source)) for o, f in live]
        started = time.perf_counter()
        detections = iter(self._detect([f for _, f, key in keyed if key], [o for o, _, key in keyed if key]))
        self.stage_seconds["detect"] += time.perf_counter() - started
        ready: list[tuple[InputOutcome, Frame, Faces | None]] = []
        for outcome, frame, key in keyed:
            if not key:
                self.keyframes.hold(frame)
                continue
            faces = next(detections)
            if outcome.item.kind == "video" and faces is not None:
                ready += [(outcome, f, fs) for f, fs in self.keyframes.release(frame, faces)]
            else:
                ready.append((outcome, frame, faces))
        self._classify_and_collect(ready)
        self.on_frames(len(batch))

    def _close_held_frames(self, ended: list[InputOutcome]) -> None:
        """Frames still held at the end of a video: the last becomes a keyframe for the ones before it."""
        closing = [(o, f) for o in ended if (f := self.keyframes.take_last_held(o.item.source)) is not None
                   and (o.error is None or o.error.stage == "decode")]
        started = time.perf_counter()
        detections = self._detect([f for _, f in closing], [o for o, _ in closing])
        self.stage_seconds["detect"] += time.perf_counter() - started
        ready = []
        for (outcome, frame), faces in zip(closing, detections):
            if faces is not None:
                ready += [(outcome, f, fs) for f, fs in self.keyframes.release(frame, faces)]
        self._classify_and_collect(ready)
        for outcome in ended:
            self.keyframes.forget(outcome.item.source)

    def _classify_and_collect(self, ready: list[tuple[InputOutcome, Frame, Faces | None]]) -> None:
        if not ready:
            return
        started = time.perf_counter()
        crops, owners = [], []
        for i, (outcome, frame, faces) in enumerate(ready):
            if faces is None:
                continue
            landmarks = faces.landmarks if self.options.align else None
            for crop in crop_faces(frame.image, faces.boxes, self.options.crop_margin, landmarks):
                crops.append(crop)
                owners.append(i)
        try:
            probs = self.classifier.predict(crops)
        except Exception as exc:
            for outcome in {id(o): o for o, _, _ in ready}.values():
                outcome.error = outcome.error or InputError(outcome.item.source, "classify", f"classification failed ({type(exc).__name__})")
            return
        classified = time.perf_counter()
        self.stage_seconds["classify"] += classified - started
        owners_arr = np.asarray(owners, dtype=np.int64)
        for i, (outcome, frame, faces) in enumerate(ready):
            if faces is None:
                continue
            mine = np.flatnonzero(owners_arr == i)
            faces.probs = probs[mine] if len(mine) else np.zeros((0, probs.shape[1] if probs.ndim == 2 else 7), np.float32)
            self._collect(outcome, frame, faces, [crops[j] for j in mine])
        self.stage_seconds["track_and_collect"] += time.perf_counter() - classified

    def _detect(self, frames: list[Frame], outcomes: list[InputOutcome]) -> list[Faces | None]:
        if not frames:
            return []
        try:
            found = self.detector.detect([f.image for f in frames])
        except Exception:
            found = []
            for frame, outcome in zip(frames, outcomes):  # isolate the frame that breaks the detector
                try:
                    found.append(self.detector.detect([frame.image])[0])
                except Exception as exc:
                    outcome.error = outcome.error or InputError(
                        outcome.item.source, "detect", f"face detection failed on frame {frame.index} ({type(exc).__name__})")
                    found.append(None)
        return [_sorted_left_to_right(f) if f is not None else None for f in found]

    def _collect(self, outcome: InputOutcome, frame: Frame, faces: Faces, crops: list[np.ndarray]) -> None:
        """A detected and classified frame: tracked, its thumbnails kept, added to its input's results."""
        self.assembler.add(outcome, frame.index, frame.time_s, faces, lambda i: thumbnail(crops[i]))
        if self.annotator:
            self.annotator.add(outcome.item, frame, faces)


def _sorted_left_to_right(faces: Faces) -> Faces:
    if len(faces) < 2:
        return faces
    order = np.lexsort((faces.boxes[:, 1], faces.boxes[:, 0]))
    return faces.select(order)
