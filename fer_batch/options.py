"""The one configuration object the CLI fills and the pipeline reads."""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class AnalyzeOptions:
    fps: float | None = 5.0           # frames per second of video time to analyse; None = every frame
    max_frames: int | None = None     # per video, for previews
    detector: str | None = None       # None = the default detector
    min_face: int = 20                # pixels, shorter side of the box
    min_score: float | None = None    # detection-score threshold; None = the detector's own default
    max_side: int | None = None       # longest side the detector sees; None = the detector's default
    model: str | None = None          # None = the shipped model
    batch_size: int = 64              # classifier batch
    frame_batch: int = 8              # frames detected together
    detect_every: int = 1             # run the detector on every k-th sampled video frame, interpolate between
    device: str = "auto"
    flip_tta: bool = True             # average the model's output over the crop and its mirror image
    crop_margin: float = 0.1          # face crop grows by this fraction of the box on each side (square crop)
    include_hidden: bool = False
    annotate_dir: str | None = None
    quiet: bool = False

    @classmethod
    def from_kwargs(cls, **kwargs) -> "AnalyzeOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**kwargs)

    def validate(self) -> None:
        if self.fps is not None and self.fps <= 0:
            raise ValueError("--fps must be positive (use --every-frame to analyse every frame)")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError("--max-frames must be at least 1")
        if self.batch_size < 1 or self.frame_batch < 1:
            raise ValueError("batch sizes must be at least 1")
        if self.detect_every < 1:
            raise ValueError("--detect-every must be at least 1")
        if self.min_face < 0:
            raise ValueError("--min-face must be 0 or more")
        if not 0 <= self.crop_margin <= 1:
            raise ValueError("crop margin must be between 0 and 1")
