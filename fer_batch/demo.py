"""A demo input for a first run: a short clip and a photo built from a face photo that scikit-image ships."""
from __future__ import annotations

import itertools
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
        raise OSError(f"OpenCV cannot write an MP4 video to {path}")
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


DEMO_FILES = ("clip.mp4", "photos", "photos/astronaut.jpg")
DEMO_MARKER = ".fer-batch-demo"   # hidden, so the walk of the demo folder skips it


def demo_folder_problem(folder: Path) -> str | None:
    """Why the demo inputs cannot be written into `folder`, or None: it must be new, empty, or an earlier demo's
    (marked so, or holding exactly what an earlier version wrote); the demo would replace a user's own clip.mp4,
    and analyse whatever else the folder holds."""
    if folder.exists() and not folder.is_dir():
        return f"--inputs {folder} is a file; give a folder for the demo's clip and photo"
    if folder.is_dir():
        # a few entries tell; a large folder (--inputs ~) is not listed whole
        entries = itertools.islice(folder.rglob("*"), len(DEMO_FILES) + 2)
        held = {path.relative_to(folder).as_posix() for path in entries}
        ours = held <= {DEMO_MARKER, *DEMO_FILES} and (DEMO_MARKER in held or held == set(DEMO_FILES))  # or older demo's
        if held and not ours:
            return (f"--inputs {folder} holds files of its own, which the demo would analyse (and its clip.mp4 "
                    "replace); give a new or empty folder")
    return None


def write_demo_inputs(folder: str | Path) -> Path:
    """Writes `clip.mp4` and `photos/astronaut.jpg` into `folder` and returns it. ValueError when
    demo_folder_problem refuses the folder, OSError when it cannot be written."""
    folder = Path(folder)
    problem = demo_folder_problem(folder)
    if problem:
        raise ValueError(problem)
    (folder / "photos").mkdir(parents=True, exist_ok=True)
    (folder / DEMO_MARKER).write_text("Demo inputs written by fer-batch demo.\n")
    write_demo_clip(folder / "clip.mp4")
    ok, encoded = cv2.imencode(".jpg", demo_face())
    (folder / "photos" / "astronaut.jpg").write_bytes(encoded.tobytes())
    return folder
