"""Opening files with OpenCV whatever their names. OpenCV's Python binding takes a path as UTF-8 text, and a file
name that is not UTF-8 (a surrogate escape of os.fsdecode, e.g. a Latin-1 `café.jpg`) crashes the process with a
segmentation fault inside cv2.imread and cv2.VideoCapture. Such files are read through their bytes (images) or a
temporary link with a plain name (videos)."""
from __future__ import annotations

import os
import shutil
import tempfile

import cv2
import numpy as np


def opencv_can_take(path: str | os.PathLike) -> bool:
    """Whether OpenCV can be given this path as it is (its text encodes as UTF-8)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def imread(path: str | os.PathLike, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """cv2.imread, also for a file whose name is not UTF-8 (read as bytes, then decoded); None when unreadable."""
    if opencv_can_take(path):
        return cv2.imread(os.fspath(path), flags)
    try:
        data = np.fromfile(os.fspath(path), np.uint8)
    except (OSError, ValueError):
        return None
    return cv2.imdecode(data, flags) if data.size else None


def video_capture(path: str | os.PathLike) -> cv2.VideoCapture:
    """cv2.VideoCapture, also for a file whose name is not UTF-8: opened through a temporary symbolic link with a
    plain name (the capture keeps the file open, so the link goes at once)."""
    path = os.fspath(path)
    if opencv_can_take(path):
        return cv2.VideoCapture(path)
    folder = tempfile.mkdtemp(prefix="fer-batch-video-")
    try:
        link = os.path.join(folder, "video" + "".join(c for c in os.path.splitext(path)[1] if c.isascii()))
        os.symlink(os.path.abspath(path), link)
        return cv2.VideoCapture(link)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
