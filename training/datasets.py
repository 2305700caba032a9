"""Loaders for the three labelled-face formats the project trains and evaluates on.

Each loader returns raw face images (uint8, gray or BGR) and integer labels in
`fer_batch.labels.LABELS` order; `load_dataset` applies the shared preprocess.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_batch.labels import LABEL_INDEX, LABELS
from fer_batch.preprocess import preprocess

FORMATS = ("folders", "fer2013-csv", "expw")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass
class Faces:
    images: list[np.ndarray]
    labels: np.ndarray
    names: list[str]


@dataclass
class Dataset:
    x: np.ndarray  # (n, h, w, c) float32 in [0, 1]
    y: np.ndarray  # (n,) int64
    names: list[str]


def _class_of_folder(name: str) -> int | None:
    key = name.strip().lower()
    if key in LABEL_INDEX:
        return LABEL_INDEX[key]
    if key.isdigit() and int(key) < len(LABELS):
        return int(key)
    return None


def load_folders(root: str | Path) -> Faces:
    """Class-named subfolders (`angry/`, ... or `0/` .. `6/`) of face images."""
    root = Path(root)
    images, labels, names = [], [], []
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    known = [(d, _class_of_folder(d.name)) for d in subdirs]
    known = [(d, c) for d, c in known if c is not None]
    if not known:
        raise ValueError(f"{root} has no subfolders named after the classes ({', '.join(LABELS)} or 0..6)")
    for folder, label in known:
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if img is None:
                continue
            images.append(img)
            labels.append(label)
            names.append(f"{folder.name}/{path.name}")
    return Faces(images, np.asarray(labels, dtype=np.int64), names)


def load_fer2013_csv(path: str | Path, usage: str | None = None) -> Faces:
    """The original `fer2013.csv` (`emotion,pixels,Usage`); `usage` keeps one split (Training, PublicTest, PrivateTest)."""
    images, labels, names = [], [], []
    with open(path, newline="") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if usage and row.get("Usage", "").strip() != usage:
                continue
            pixels = np.asarray(row["pixels"].split(), dtype=np.uint8)
            side = int(round(np.sqrt(pixels.size)))
            if side * side != pixels.size:
                raise ValueError(f"{path} row {i + 1}: {pixels.size} pixels do not make a square image")
            images.append(pixels.reshape(side, side))
            labels.append(int(row["emotion"]))
            names.append(f"row{i}")
    return Faces(images, np.asarray(labels, dtype=np.int64), names)


def read_expw_labels(label_file: str | Path, min_confidence: float = 0.0) -> list[tuple[str, int, tuple[int, int, int, int], float, int]]:
    """Parse ExpW `label.lst`: `image_name face_id top left right bottom confidence label`.

    Returns (image_name, face_id, (x1, y1, x2, y2), confidence, label) with x = column, y = row.
    """
    rows = []
    with open(label_file) as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 8:
                continue
            name, face_id, top, left, right, bottom, conf, label = parts
            if float(conf) < min_confidence:
                continue
            box = (int(left), int(top), int(right), int(bottom))
            rows.append((name, int(face_id), box, float(conf), int(label)))
    return rows


def expw_faces_by_photo(label_path: str | Path) -> dict[str, list[tuple[tuple[int, int, int, int], int]]]:
    """label.lst grouped by photo: each photo's labelled (box, label) pairs, in file order."""
    by_photo: dict[str, list[tuple[tuple[int, int, int, int], int]]] = {}
    for name, _, box, _, label in read_expw_labels(label_path):
        by_photo.setdefault(name, []).append((box, label))
    return by_photo


def load_expw(root: str | Path, min_confidence: float = 0.0, margin: float = 0.0) -> Faces:
    """ExpW: `root/label.lst` and `root/image/`; crops rows top..bottom, columns left..right."""
    root = Path(root)
    label_file = root / "label.lst" if (root / "label.lst").exists() else root
    image_dir = label_file.parent / "image"
    images, labels, names = [], [], []
    cache: dict[str, np.ndarray | None] = {}
    for name, face_id, (x1, y1, x2, y2), _, label in read_expw_labels(label_file, min_confidence):
        if name not in cache:
            cache.clear()
            cache[name] = cv2.imread(str(image_dir / name), cv2.IMREAD_COLOR)
        img = cache[name]
        if img is None:
            continue
        mx, my = int(margin * (x2 - x1)), int(margin * (y2 - y1))
        h, w = img.shape[:2]
        crop = img[max(0, y1 - my):min(h, y2 + my), max(0, x1 - mx):min(w, x2 + mx)]
        if crop.size == 0:
            continue
        images.append(crop.copy())
        labels.append(label)
        names.append(f"{name}#{face_id}")
    return Faces(images, np.asarray(labels, dtype=np.int64), names)


def load_faces(path: str | Path, fmt: str, usage: str | None = None, min_confidence: float = 0.0) -> Faces:
    if fmt == "folders":
        return load_folders(path)
    if fmt == "fer2013-csv":
        return load_fer2013_csv(path, usage)
    if fmt == "expw":
        return load_expw(path, min_confidence)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def load_dataset(path: str | Path, fmt: str, size: tuple[int, int], channels: int,
                 usage: str | None = None, min_confidence: float = 0.0) -> Dataset:
    faces = load_faces(path, fmt, usage, min_confidence)
    if not faces.images:
        raise ValueError(f"no labelled faces found in {path} (format {fmt})")
    return Dataset(preprocess(faces.images, size, channels), faces.labels, faces.names)
