"""Optional annotated copies of the inputs: boxes, track ids and expression labels drawn on the analysed frames."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_batch.export import atomic_write_bytes, output_path_inside, safe_relative_path
from fer_batch.labels import LABELS
from fer_batch.opencv_files import video_capture, video_writer
from fer_batch.sources import ANNOTATED_MARKER, InputFile
from fer_batch.types import Faces, Frame

FALLBACK_FPS = 25.0   # for a video whose header gives no rate, analysed frame by frame
COLOURS = [(60, 60, 220), (40, 140, 40), (160, 60, 160), (0, 200, 255), (200, 120, 40), (0, 220, 220), (170, 170, 170)]


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, ends exclusive


def draw_faces(image: np.ndarray, faces: Faces) -> np.ndarray:
    out = image.copy()
    thickness = _thickness(image.shape[:2])
    for i in range(len(faces)):
        box = tuple(int(round(v)) for v in faces.boxes[i])
        cv2.rectangle(out, box[:2], box[2:], _colour(faces, i), thickness)
    for text, colour, (x1, y1, x2, y2) in label_layout(faces, image.shape[:2]):
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
        cv2.putText(out, text, (x1 + 2, y2 - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, (0, 0, 0), thickness,
                    cv2.LINE_AA)
    return out


def label_layout(faces: Faces, image_hw: tuple[int, int]) -> list[tuple[str, tuple[int, int, int], Rect]]:
    """Each face's label tag: its text ("#track expression probability"), colour and place (see place_labels)."""
    thickness = _thickness(image_hw)
    texts, sizes = [], []
    for i in range(len(faces)):
        parts = []
        if faces.track_ids is not None:
            parts.append(f"#{int(faces.track_ids[i])}")
        if faces.probs is not None:
            label_id = int(np.argmax(faces.probs[i]))
            parts.append(f"{LABELS[label_id]} {faces.probs[i][label_id]:.2f}")
        texts.append(" ".join(parts))
        (tw, th), _ = cv2.getTextSize(texts[-1], cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, thickness)
        sizes.append((tw + 4, th + 6))
    boxes = [tuple(int(round(v)) for v in faces.boxes[i]) for i in range(len(faces))]
    rects = place_labels(boxes, sizes, image_hw)
    return [(text, _colour(faces, i), rect) for i, (text, rect) in enumerate(zip(texts, rects))]


def _thickness(image_hw: tuple[int, int]) -> int:
    return max(1, round(max(image_hw) / 400))


def _colour(faces: Faces, i: int) -> tuple[int, int, int]:
    return COLOURS[int(np.argmax(faces.probs[i]))] if faces.probs is not None else (255, 255, 255)


def place_labels(boxes: list[tuple[int, int, int, int]], sizes: list[tuple[int, int]],
                 image_hw: tuple[int, int]) -> list[Rect]:
    """Where each face's label tag goes: above its box if there is room, else just inside its top, else below it,
    else further down its box; inside the image and clear of the tags placed before it (when the image has room)."""
    height, width = image_hw
    placed: list[Rect] = []
    for (bx1, by1, bx2, by2), (w, h) in zip(boxes, sizes):
        x = min(max(0, bx1), max(0, width - w))
        tops = [by1 - h, by1, by2, *range(by1 + h, max(by1 + h, by2 - h) + 1, h)]
        candidates = [(x, top, x + w, top + h) for top in tops if 0 <= top and top + h <= height]
        free = [c for c in candidates if not any(_overlap(c, other) for other in placed)]
        top = min(max(0, by1 - h), max(0, height - h))
        placed.append(free[0] if free else candidates[0] if candidates else (x, top, x + w, top + h))
    return placed


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class Annotator:
    """Writes annotated photos (JPEG) and videos (MP4 of the analysed frames) under one folder, mirroring the inputs.

    A video's copy plays in real time: at the sampling rate (`fps`), or at the video's own rate when every frame is
    analysed or the video has fewer frames a second than `fps`."""

    def __init__(self, folder: str | Path, fps: float | None = None):
        self.folder = Path(folder)
        self.fps = fps
        self._writers: dict[str, tuple[cv2.VideoWriter, Path, Path]] = {}
        self.folder.mkdir(parents=True, exist_ok=True)
        marker = self.folder / ANNOTATED_MARKER
        if not marker.exists():
            atomic_write_bytes(marker, b"Annotated copies written by fer-batch analyze --annotate. fer-batch does not "
                                       b"analyse this folder when it walks a folder above it.\n")

    def add(self, item: InputFile, frame: Frame, faces: Faces) -> None:
        image = draw_faces(frame.image, faces)
        if item.kind == "image":
            target = output_path_inside(self.folder, safe_relative_path(item.source, ".jpg"))
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if ok:
                atomic_write_bytes(target, data.tobytes())
            return
        if item.source not in self._writers:
            target = output_path_inside(self.folder, safe_relative_path(item.source, ".annotated.mp4"))
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name("." + target.name + ".part.mp4")
            height, width = image.shape[:2]
            writer = video_writer(tmp, cv2.VideoWriter_fourcc(*"mp4v"), self._playback_fps(item), (width, height))
            self._writers[item.source] = (writer, tmp, target)
        writer, _, _ = self._writers[item.source]
        writer.write(image)

    def _playback_fps(self, item: InputFile) -> float:
        try:
            capture = video_capture(item.path)
        except OSError:
            return self.fps or FALLBACK_FPS
        native = capture.get(cv2.CAP_PROP_FPS)
        capture.release()
        if not (native and 0 < native < 1000):
            return self.fps or FALLBACK_FPS
        return min(self.fps, native) if self.fps else native

    def close(self, source: str) -> None:
        entry = self._writers.pop(source, None)
        if entry:
            writer, tmp, target = entry
            writer.release()
            if tmp.exists():
                tmp.replace(target)

    def close_all(self) -> None:
        for source in list(self._writers):
            self.close(source)
