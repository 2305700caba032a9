"""Cutting face crops out of frames."""
from __future__ import annotations

import cv2
import numpy as np

# The square on the detector's box itself. Chosen on half of the ExpW sample (fold 1): with MTCNN boxes the shipped
# model scored 0.390 at margin 0.0, 0.352 at 0.1, 0.294 at 0.2 (reports/crop-margin.md); FER2013 faces are framed tight.
DEFAULT_CROP_MARGIN = 0.0


def square_box(box: np.ndarray, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The square around a box's centre, grown by `margin` of the box size on each side, clipped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    right, bottom = int(round(cx + side / 2)), int(round(cy + side / 2))
    return max(0, left), max(0, top), min(width, right), min(height, bottom)


def crop_faces(image: np.ndarray, boxes: np.ndarray, margin: float = DEFAULT_CROP_MARGIN,
               landmarks: np.ndarray | None = None) -> list[np.ndarray]:
    """Square face crops (views into `image`; copy before keeping them).

    With `landmarks` ((n, 5, 2), the eyes first) each crop is turned so the eyes are level: see `aligned_crop`.
    """
    if landmarks is not None:
        return [aligned_crop(image, box, points, margin)
                for box, points in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(landmarks).reshape(-1, 5, 2))]
    height, width = image.shape[:2]
    crops = []
    for box in np.asarray(boxes).reshape(-1, 4):
        x1, y1, x2, y2 = square_box(box, margin, width, height)
        if x2 <= x1 or y2 <= y1:
            x1, y1, x2, y2 = 0, 0, min(width, 1), min(height, 1)
        crops.append(image[y1:y2, x1:x2])
    return crops


def eye_angle(landmarks: np.ndarray) -> float:
    """Degrees by which the line from the eye on the image's left to the other one tilts (0 for level eyes)."""
    (left_x, left_y), (right_x, right_y) = sorted(np.asarray(landmarks, np.float64)[:2].tolist())
    return float(np.degrees(np.arctan2(right_y - left_y, right_x - left_x)))


def aligned_crop(image: np.ndarray, box: np.ndarray, landmarks: np.ndarray,
                 margin: float = DEFAULT_CROP_MARGIN) -> np.ndarray:
    """The same square as `crop_faces` cuts, turned about the box centre so the eyes are level.

    Pixels beyond the frame repeat its edge (the unturned crop is clipped to the frame instead).
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    side = max(1, int(round(max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin))))
    # whole pixels and half degrees, like the unturned crop's rounding: the detector's last-digit noise (which
    # varies with how frames are batched) must not change the crop
    centre = (float(round((x1 + x2) / 2.0)), float(round((y1 + y2) / 2.0)))
    matrix = cv2.getRotationMatrix2D(centre, round(eye_angle(landmarks) * 2.0) / 2.0, 1.0)
    matrix[:, 2] += (side / 2.0 - centre[0], side / 2.0 - centre[1])
    return cv2.warpAffine(image, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def thumbnail(crop: np.ndarray, size: int = 64) -> np.ndarray:
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR)
