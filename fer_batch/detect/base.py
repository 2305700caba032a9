"""The detector interface, and the resizing and post-filtering every backend shares."""
from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np

from fer_batch.devices import DEVICES
from fer_batch.types import Faces

DEFAULT_MIN_FACE = 20      # pixels of the original frame, min(box width, box height)
DEFAULT_MIN_SCORE = 0.5


MIN_MAX_SIDE = 32  # the smallest image side a detector is given

class DetectorUnavailable(RuntimeError):
    """A detector that cannot run on this machine; str(exc) is one sentence saying what is missing and how to provide it."""


class Detector(ABC):
    """Finds faces in BGR uint8 frames of any size.

    Each backend sees the frame shrunk so that its longest side is at most `max_side`
    (speed and memory), reports boxes in those pixels, and `detect` maps them back to
    original-frame pixels and applies `min_face`, `min_score` and clipping in one place.
    Landmarks, when a backend gives them, are (n, 5, 2): two eyes, nose tip, two mouth
    corners, the image-left one of each pair first (mtcnn's order).
    """

    name: str = ""
    # measured with mtcnn on ExpW (reports/detectors.md): 640 keeps the recall of 1024 and 1600 in less time
    default_max_side: int = 640

    def __init__(self, min_face: int = DEFAULT_MIN_FACE, min_score: float = DEFAULT_MIN_SCORE,
                 max_side: int | None = None, device: str = "auto") -> None:
        if min_face < 0:
            raise ValueError(f"min_face must be >= 0 pixels, not {min_face}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be between 0 and 1, not {min_score}")
        max_side = self.default_max_side if max_side is None else int(max_side)
        if max_side < MIN_MAX_SIDE:
            raise ValueError(f"max_side must be at least {MIN_MAX_SIDE} pixels, not {max_side}")
        self.min_face = min_face
        self.min_score = min_score
        self.max_side = max_side
        if device not in DEVICES:
            raise ValueError(f"--device must be one of {', '.join(DEVICES)}, not {device!r}")
        self.device = device  # where a backend built on TensorFlow runs its networks (fer_batch/devices.py)

    def detect(self, images: list[np.ndarray]) -> list[Faces]:
        """One Faces per image, boxes (x1, y1, x2, y2) in that image's own pixels."""
        for image in images:
            _check_image(image)
        scaled = [shrink_to_max_side(image, self.max_side) for image in images]
        found = self._detect_scaled([small for small, _ in scaled], [scale for _, scale in scaled])
        return [
            postfilter(scale_faces(faces, 1.0 / scale), image.shape[1], image.shape[0], self.min_face, self.min_score)
            for faces, image, (_, scale) in zip(found, images, scaled)
        ]

    @abstractmethod
    def _detect_scaled(self, images: list[np.ndarray], scales: list[float]) -> list[Faces]:
        """Faces in each (already shrunk) BGR image, in its pixels; `scales` says how much each was shrunk."""


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError("detectors take BGR uint8 images of shape (height, width, 3)")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("detectors cannot take an empty image")


def shrink_to_max_side(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image with its longest side at most `max_side`, and the factor applied (<= 1)."""
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return image, 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def scale_faces(faces: Faces, factor: float) -> Faces:
    if factor == 1.0 or len(faces) == 0:
        return faces
    landmarks = None if faces.landmarks is None else (faces.landmarks * factor).astype(np.float32)
    return Faces((faces.boxes * factor).astype(np.float32), faces.scores, landmarks)


def postfilter(faces: Faces, width: int, height: int, min_face: float, min_score: float) -> Faces:
    """Clip boxes to the frame, then keep faces at least `min_face` pixels on their short side and scoring `min_score`."""
    if len(faces) == 0:
        return Faces.empty()
    boxes = faces.boxes.astype(np.float32).copy()
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    short_side = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    keep = (short_side > 0) & (short_side >= min_face) & (faces.scores >= min_score)
    clipped = Faces(boxes, faces.scores.astype(np.float32), faces.landmarks)
    return clipped.select(keep)


def faces_from_arrays(boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray | None = None) -> Faces:
    """A Faces with the common dtypes and shapes, from any array-likes."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    scores = np.asarray(scores, np.float32).reshape(-1)
    if landmarks is not None:
        landmarks = np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
    if len(boxes) == 0:
        return Faces.empty()
    return Faces(boxes, scores, landmarks)


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """(n, m) intersection over union of x1, y1, x2, y2 boxes."""
    a = np.asarray(boxes_a, np.float32).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, np.float32).reshape(1, -1, 4)
    width = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    height = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = width * height
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)
