"""Optional annotated copies of the inputs: boxes, track ids and expression labels drawn on the analysed frames."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_batch.export import atomic_write_bytes, output_path_inside, safe_relative_path
from fer_batch.labels import LABELS
from fer_batch.sources import ANNOTATED_MARKER, InputFile
from fer_batch.types import Faces, Frame

FALLBACK_FPS = 25.0   # for a video whose header gives no rate, analysed frame by frame
COLOURS = [(60, 60, 220), (40, 140, 40), (160, 60, 160), (0, 200, 255), (200, 120, 40), (0, 220, 220), (170, 170, 170)]


def draw_faces(image: np.ndarray, faces: Faces) -> np.ndarray:
    out = image.copy()
    thickness = max(1, round(max(image.shape[:2]) / 400))
    for i in range(len(faces)):
        x1, y1, x2, y2 = (int(round(v)) for v in faces.boxes[i])
        label_id = int(np.argmax(faces.probs[i])) if faces.probs is not None else None
        colour = COLOURS[label_id] if label_id is not None else (255, 255, 255)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, thickness)
        parts = []
        if faces.track_ids is not None:
            parts.append(f"#{int(faces.track_ids[i])}")
        if label_id is not None:
            parts.append(f"{LABELS[label_id]} {faces.probs[i][label_id]:.2f}")
        text = " ".join(parts)
        scale = 0.4 * thickness
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(0, y1 - th - 6)
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + 6), colour, -1)
        cv2.putText(out, text, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return out


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
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), self._playback_fps(item),
                                     (width, height))
            self._writers[item.source] = (writer, tmp, target)
        writer, _, _ = self._writers[item.source]
        writer.write(image)

    def _playback_fps(self, item: InputFile) -> float:
        capture = cv2.VideoCapture(str(item.path))
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
