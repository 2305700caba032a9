"""ExpW photos through a face detector: labelled boxes matched to detections, the detector's faces kept in a
cache between runs, and the loop over a fold's photos that the training scripts share."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from fer_batch.detect import create_detector
from fer_batch.detect.base import box_iou
from fer_batch.types import Faces
from training.datasets import read_photo, warn_missing_photos

LANDMARKS = "landmarks:"  # cache entry prefix


def match_faces(labelled: np.ndarray, detected: np.ndarray, min_iou: float) -> list[int | None]:
    """For each labelled box, the index of its detection (greedy by IoU, each detection used once), or None."""
    if len(labelled) == 0 or len(detected) == 0:
        return [None] * len(labelled)
    iou = box_iou(labelled, detected)
    matches: list[int | None] = [None] * len(labelled)
    used: set[int] = set()
    for flat in np.argsort(-iou, axis=None, kind="stable"):
        li, di = divmod(int(flat), iou.shape[1])
        if iou[li, di] < min_iou:
            break
        if matches[li] is None and di not in used:
            matches[li] = di
            used.add(di)
    return matches


class DetectionCache:
    """The detector's faces (boxes, and landmarks when it gives them) per photo, kept in an .npz so several
    models can be evaluated on one detection run."""

    def __init__(self, path: Path | None, key: str):
        """ValueError when `path` is not such a cache, or holds another detector's faces (it would be overwritten)."""
        self.path, self.key, self.arrays = path, key, {}
        if path is not None and path.exists():
            try:
                with np.load(path) as data:
                    stored = str(data["__key__"])
                    arrays = {k: data[k] for k in data.files if k != "__key__"}
            except Exception as exc:   # not an .npz, a damaged one, or an .npz of something else
                raise ValueError(f"--detections-cache {path} is not a detections cache that these scripts wrote "
                                 f"({type(exc).__name__}): give a new file name") from None
            if stored != key:
                raise ValueError(f"--detections-cache {path} holds detector {stored}'s faces, not {key}'s: "
                                 f"give a file for {key} (e.g. expw-{key}.npz)")
            self.arrays = arrays
        self.changed = False

    def get(self, name: str, need_landmarks: bool = False) -> Faces | None:
        if name not in self.arrays or (need_landmarks and LANDMARKS + name not in self.arrays):
            return None
        boxes = self.arrays[name]
        return Faces(boxes, np.ones(len(boxes), np.float32), self.arrays.get(LANDMARKS + name))

    def put(self, name: str, faces: Faces) -> Faces:
        self.arrays[name] = np.asarray(faces.boxes, np.float32).reshape(-1, 4)
        if faces.landmarks is not None or len(faces) == 0:
            landmarks = np.zeros((0, 5, 2)) if faces.landmarks is None else faces.landmarks
            self.arrays[LANDMARKS + name] = np.asarray(landmarks, np.float32).reshape(-1, 5, 2)
        self.changed = True
        return self.get(name)

    def save(self) -> None:
        if self.path is not None and self.changed:
            np.savez_compressed(self.path, __key__=np.array(self.key), **self.arrays)


def aligned_landmarks(faces: Faces, picked: list[int], align: bool) -> np.ndarray | None:
    """The landmarks of the picked faces when crops are to be aligned (an error when the detector gives none)."""
    if not align:
        return None
    if faces.landmarks is None:
        raise SystemExit("--align needs a detector that gives eye landmarks (mtcnn or blazeface)")
    return faces.landmarks[picked]


class DetectedPhotos:
    """Iterates (name, image, faces) over the readable photos of ROOT/image in the order given: the faces from the
    cache, or from the detector (created on the first photo the cache lacks) and then cached. When the iteration
    ends the cache is saved and the photos that could not be read are named in one warning (and kept in
    `missing`); `detector_ran` says whether any photo needed the detector."""

    def __init__(self, root: Path, names: Iterable[str], cache: DetectionCache, detector_name: str,
                 need_landmarks: bool = False):
        self.root, self.names, self.cache = root, list(names), cache
        self.detector_name, self.need_landmarks = detector_name, need_landmarks
        self.missing: list[str] = []
        self.detector_ran = False

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, Faces]]:
        detector = None
        for name in self.names:
            image = read_photo(self.root / "image" / name)
            if image is None:
                self.missing.append(name)
                continue
            faces = self.cache.get(name, need_landmarks=self.need_landmarks)
            if faces is None:
                detector = detector or create_detector(self.detector_name)
                faces = self.cache.put(name, detector.detect([image])[0])
                self.detector_ran = True
            yield name, image, faces
        self.cache.save()
        warn_missing_photos(self.root / "image", self.missing)
