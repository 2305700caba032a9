"""Opening files with OpenCV whatever their names. OpenCV's Python binding takes a path as UTF-8 text, and a file
name that is not UTF-8 (a surrogate escape of os.fsdecode, e.g. a Latin-1 `café.jpg`) crashes the process with a
segmentation fault inside cv2.imread, cv2.VideoCapture and cv2.VideoWriter. Such files are read through their bytes
(images) or a temporary link with a plain name (videos)."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

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


@contextlib.contextmanager
def _plain_name(path: str) -> Iterator[str]:
    """`path`, or when OpenCV cannot take it, a temporary symbolic link to it with a plain name (also to a file not
    made yet: opening the link for writing creates it); the link goes when the block ends."""
    if opencv_can_take(path):
        yield path
        return
    folder = tempfile.mkdtemp(prefix="fer-batch-video-")
    if not opencv_can_take(folder):   # a temporary folder ($TMPDIR) of such a name too
        os.rmdir(folder)
        raise OSError(f"the temporary folder {os.fsencode(folder)!r} is not UTF-8 either; set TMPDIR to one that is")
    try:
        link = os.path.join(folder, "video" + "".join(c for c in os.path.splitext(path)[1] if c.isascii()))
        os.symlink(os.path.abspath(path), link)
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def video_capture(path: str | os.PathLike) -> cv2.VideoCapture:
    """cv2.VideoCapture, also for a file whose name is not UTF-8 (the capture keeps the file open once made, so the
    link it is opened through goes at once). OSError when that link cannot be made."""
    with _plain_name(os.fspath(path)) as name:
        return cv2.VideoCapture(name)


def video_writer(path: str | os.PathLike, fourcc: int, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """cv2.VideoWriter, also for a path that is not UTF-8 (a folder of such a name). OSError as video_capture."""
    with _plain_name(os.fspath(path)) as name:
        return cv2.VideoWriter(name, fourcc, fps, size)
