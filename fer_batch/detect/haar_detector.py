"""OpenCV's Haar cascade (Viola-Jones): fast, frontal faces only, no confidence (every score is 1)."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from fer_batch.detect.base import Detector, DetectorUnavailable, faces_from_arrays
from fer_batch.types import Faces

CASCADE_ENV = "FER_BATCH_HAAR_CASCADE"
CASCADE_FILE = "haarcascade_frontalface_default.xml"
# opencv-python 4.x wheels ship cascades in cv2.data; 5.x wheels do not, Debian's opencv-data does
CASCADE_FOLDERS = (
    "/usr/share/opencv4/haarcascades",
    "/usr/share/opencv/haarcascades",
    "/usr/local/share/opencv4/haarcascades",
)


def find_cascade(cascade_path: str | os.PathLike | None = None) -> Path:
    """The cascade file: the argument, else $FER_BATCH_HAAR_CASCADE, else a copy shipped with OpenCV or the OS."""
    chosen = cascade_path or os.environ.get(CASCADE_ENV)
    if chosen:
        if not Path(chosen).is_file():
            raise DetectorUnavailable(f"the haar detector's cascade file {chosen} does not exist; point {CASCADE_ENV} at {CASCADE_FILE}.")
        return Path(chosen)
    folders = [getattr(getattr(cv2, "data", None), "haarcascades", ""), *CASCADE_FOLDERS]
    for folder in folders:
        if folder and (Path(folder) / CASCADE_FILE).is_file():
            return Path(folder) / CASCADE_FILE
    raise DetectorUnavailable(
        f"the haar detector needs {CASCADE_FILE}, which OpenCV {cv2.__version__} does not ship; "
        f"install it (e.g. apt-get install opencv-data) or set {CASCADE_ENV} to its path."
    )


class HaarDetector(Detector):
    name = "haar"

    def __init__(self, *args, cascade_path: str | os.PathLike | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        path = find_cascade(cascade_path)
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise DetectorUnavailable(f"OpenCV could not load the haar cascade {path}; is it a valid {CASCADE_FILE}?")

    def _detect_scaled(self, images: list[np.ndarray], scales: list[float]) -> list[Faces]:
        return [self._detect_one(image, scale) for image, scale in zip(images, scales)]

    def _detect_one(self, image: np.ndarray, scale: float) -> Faces:
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
        smallest = max(20, int(self.min_face * scale))
        rects = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(smallest, smallest))
        rects = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1)
        return faces_from_arrays(boxes, np.ones(len(boxes), np.float32))
