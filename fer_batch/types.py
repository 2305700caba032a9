"""The types that flow between pipeline stages."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Frame:
    """One decoded frame of a video, or one photo (index 0, time_s None)."""

    source: str            # the input's path as shown in outputs
    index: int             # 0-based frame index in the video
    time_s: float | None   # seconds from the start; None for a photo
    image: np.ndarray      # BGR uint8, orientation-corrected


@dataclass
class Faces:
    """The faces found in one frame, as arrays (in the manner of supervision's Detections)."""

    boxes: np.ndarray                      # (n, 4) x1, y1, x2, y2 in original-frame pixels, float32
    scores: np.ndarray                     # (n,) detector confidence
    landmarks: np.ndarray | None = None    # (n, 5, 2) eyes, nose, mouth corners, when the detector gives them
    probs: np.ndarray | None = None        # (n, 7) after classification, LABELS order
    track_ids: np.ndarray | None = None    # (n,) after tracking

    @staticmethod
    def empty() -> "Faces":
        return Faces(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def select(self, keep: np.ndarray) -> "Faces":
        """The faces where the boolean or index array `keep` selects."""
        return Faces(
            self.boxes[keep], self.scores[keep],
            None if self.landmarks is None else self.landmarks[keep],
            None if self.probs is None else self.probs[keep],
            None if self.track_ids is None else self.track_ids[keep],
        )


@dataclass
class InputError:
    """An input that could not be analysed (fully): one row of errors.csv."""

    input: str
    stage: str    # read, decode, detect, classify, worker
    reason: str   # one sentence


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class FrameResult:
    """A frame after detection, classification and tracking (image kept only as small face thumbnails)."""

    source: str
    index: int
    time_s: float | None
    faces: Faces
    thumbnails: list[np.ndarray] = field(default_factory=list)
