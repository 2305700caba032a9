"""A demo input for a first run: a short clip and a photo built from a face photo that scikit-image ships."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_batch.opencv_files import video_writer


def demo_face() -> np.ndarray:
    """scikit-image's astronaut photo (Eileen Collins, public domain) as BGR."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def write_demo_clip(path: str | Path, seconds: float = 4.0, fps: float = 15.0, size: tuple[int, int] = (640, 360)) -> Path:
    """A clip in which the face drifts across the frame and zooms, leaves the frame for a second, then returns."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    face = demo_face()[0:300, 100:400]  # head and shoulders
    writer = video_writer(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write an MP4 video to {path}")
    n = int(round(seconds * fps))
    for i in range(n):
        t = i / fps
        frame = np.full((height, width, 3), 235, np.uint8)
        if not (seconds * 0.5 <= t < seconds * 0.5 + 1.0):  # the face is gone for one second mid-clip
            scale = 0.9 + 0.2 * np.sin(t)
            side = int(250 * scale)
            img = cv2.resize(face, (side, side))
            x = int(40 + (width - side - 80) * (i / max(1, n - 1)))
            y = (height - side) // 2
            frame[y:y + side, x:x + side] = img
        writer.write(frame)
    writer.release()
    return path


def write_demo_inputs(folder: str | Path) -> Path:
    """Writes `clip.mp4` and `photos/astronaut.jpg` into `folder` and returns it."""
    folder = Path(folder)
    write_demo_clip(folder / "clip.mp4")
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "photos" / "astronaut.jpg"), demo_face())
    return folder
