"""The one configuration object the CLI fills and the pipeline reads."""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, fields

import numpy as np

from fer_batch.crops import DEFAULT_CROP_MARGIN
from fer_batch.detect.base import MIN_MAX_SIDE
from fer_batch.sources import TimeWindow

BACKENDS = ("local", "ray")
MAX_BATCH_SIZE = 1024   # classifier batches; memory at start-up grows with it (options.validate says how)
# `--fast`: BlazeFace on every 5th sampled video frame, no mirror-image pass, no turning of crops (reports/bench.md,
# detect-every.md, align.md)
FAST_SETTINGS = {"detector": "blazeface", "detect_every": 5, "flip_tta": False, "align": False}
FAST_FLAGS = (f"--detector {FAST_SETTINGS['detector']} --detect-every {FAST_SETTINGS['detect_every']}"
              + ("" if FAST_SETTINGS["flip_tta"] else " --no-flip-tta") + ("" if FAST_SETTINGS["align"] else " --no-align"))


def as_given(seconds: float) -> str:
    """A video time the way --start/--end take it: "10", or "1:30 (90 s)" from a minute on."""
    if seconds < 60:
        return f"{seconds:g}"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    clock = f"{hours}:{minutes:02d}:" if hours else f"{minutes}:"
    whole = f"{secs:06.3f}".rstrip("0").rstrip(".")
    return f"{clock}{whole} ({seconds:g} s)"


class BackendUnavailable(RuntimeError):
    """A backend that cannot run here; str(exc) is one sentence saying what is missing and how to provide it."""


@dataclass
class AnalyzeOptions:
    fps: float | None = 5.0           # frames per second of video time to analyse; None = every frame
    max_frames: int | None = None     # per video, for previews
    start_s: float = 0.0              # video time (container seconds) where analysis starts
    end_s: float | None = None        # ... and where it stops; None = the video's end
    detector: str | None = None       # None = the default detector
    min_face: int = 20                # pixels, shorter side of the box
    min_score: float | None = None    # detection-score threshold; None = the detector's own default
    max_side: int | None = None       # longest side the detector sees; None = the detector's default
    model: str | None = None          # None = the shipped model
    batch_size: int = 64              # classifier batch
    frame_batch: int = 8              # frames read, detected and classified together (results do not depend on it)
    detect_every: int = 1             # run the detector on every k-th sampled video frame, interpolate between
    device: str = "auto"
    flip_tta: bool = True             # average the model's output over the crop and its mirror image
    zoom_tta: bool = False            # ... and over the centre of the crop scaled back up (classify.ZOOM_TTA_SCALE)
    crop_margin: float = DEFAULT_CROP_MARGIN  # face crop grows by this fraction of the box on each side (square)
    align: bool = True                # turn each crop so the eyes are level (detector landmarks; haar gives none)
    include_hidden: bool = False
    annotate_dir: str | None = None
    quiet: bool = False
    # where the work runs; none of these change results (see state.OPTIONS_WITHOUT_EFFECT)
    backend: str = "local"            # "local": this process; "ray": actors on a Ray cluster (ray_backend.py)
    address: str | None = None        # ray: the cluster to join; None = a local Ray instance for the run
    segment_s: float = 300.0          # ray: videos longer than this are analysed in segments of this length
    workers: int | None = None        # ray: analysing actors; None = one per GPU of the cluster, else per CPU(s)
    cpus_per_worker: float = 1.0      # ray: CPUs each actor asks for (and TensorFlow threads it uses without GPU)

    @classmethod
    def from_kwargs(cls, **kwargs) -> "AnalyzeOptions":
        """The options of the Python API's keyword arguments (a path such as `model` may be a Path, a whole number
        stands for a float, as on the command line); ValueError for an unknown one."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ValueError(f"unknown option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{name: _as_declared(value, known[name].type) for name, value in kwargs.items()})

    def check_types(self) -> None:
        """ValueError naming the first option whose value is not of its type (the Python API takes any value)."""
        for f in fields(self):
            value = getattr(self, f.name)
            kinds = f.type.replace(" ", "").split("|")
            if value is None and "None" in kinds:
                continue
            if "bool" in kinds:
                ok, wanted = _is_bool(value), "True or False"
            elif "int" in kinds:
                ok, wanted = isinstance(value, numbers.Integral) and not _is_bool(value), "a whole number"
            elif "float" in kinds:
                ok, wanted = isinstance(value, numbers.Real) and not _is_bool(value), "a number"
            else:
                ok, wanted = isinstance(value, str), "a string"
            if not ok:
                raise ValueError(f"option {f.name} must be {wanted}{' or None' if 'None' in kinds else ''}, "
                                 f"not {value!r} ({type(value).__name__})")

    def validate(self) -> None:
        self.check_types()
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise ValueError("--fps must be a positive number (use --every-frame to analyse every frame)")
        if self.min_score is not None and not 0 <= self.min_score <= 1:
            raise ValueError("--min-score must be between 0 and 1")
        if self.max_side is not None and self.max_side < MIN_MAX_SIDE:
            raise ValueError(f"--max-side must be at least {MIN_MAX_SIDE} pixels")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError("--max-frames must be at least 1")
        if not (math.isfinite(self.start_s) and self.start_s >= 0):
            raise ValueError("--start must be 0 or more seconds")
        if self.end_s is not None and not (math.isfinite(self.end_s) and self.end_s > self.start_s):
            raise ValueError(f"--end must be after --start ({as_given(self.start_s)})")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"--batch-size must be between 1 and {MAX_BATCH_SIZE} (the classifier is made ready for "
                             "every batch shape up to it at start-up, about 1.3 MB of memory a face: 8192 took 10.7 GB)")
        if self.frame_batch < 1:
            raise ValueError("frame_batch must be at least 1")
        if self.detect_every < 1:
            raise ValueError("--detect-every must be at least 1")
        if self.min_face < 0:
            raise ValueError("--min-face must be 0 or more")
        if not 0 <= self.crop_margin <= 1:
            raise ValueError("crop margin must be between 0 and 1")
        if self.backend not in BACKENDS:
            raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.workers is not None and self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.backend == "ray" and self.annotate_dir:
            raise ValueError("--annotate needs --backend local: annotated copies are drawn where the frames are "
                             "decoded, which with Ray is on the cluster's workers")
        if not (math.isfinite(self.segment_s) and self.segment_s > 0):
            raise ValueError("--segment-seconds must be positive")
        if not self.cpus_per_worker > 0:
            raise ValueError("--cpus-per-worker must be positive")
        ray_only = {"address": "--address", "workers": "--workers", "segment_s": "--segment-seconds",
                    "cpus_per_worker": "--cpus-per-worker"}
        given = [option for name, option in ray_only.items() if getattr(self, name) != _DEFAULTS[name]]
        if self.backend != "ray" and given:
            raise ValueError(f"{' and '.join(given)} need{'s' if len(given) == 1 else ''} --backend ray")

    def video_window(self) -> TimeWindow | None:
        """The stretch of every video that --start/--end select; None = all of it. The frames before it are read,
        not seeked past, so the frames in it are exactly those a whole-video decode samples there (any frame rate)."""
        if self.start_s == 0 and self.end_s is None:
            return None
        return TimeWindow(self.start_s, self.end_s, seek=False)

    def start_past_end(self, duration_s: float | None) -> str | None:
        """Why a video of `duration_s` has nothing to analyse under --start (None when it has, or is of unknown length)."""
        if duration_s is not None and self.start_s >= duration_s:
            return f"the video is {duration_s:.2f} s long, so --start {as_given(self.start_s)} leaves nothing to analyse"
        return None


_DEFAULTS = {f.name: f.default for f in fields(AnalyzeOptions)}


def _as_declared(value, declared: str):
    """A Path as its string for a str option, a whole number as a float for a float option; anything else as given
    (check_types then refuses what does not fit)."""
    if isinstance(value, os.PathLike) and "str" in declared:
        return os.fspath(value)
    if "float" in declared and isinstance(value, numbers.Integral) and not _is_bool(value):
        return float(value)
    return value


def _is_bool(value) -> bool:
    return isinstance(value, (bool, np.bool_))
