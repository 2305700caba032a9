"""Loaders for the three labelled-face formats the project trains and evaluates on.

Each loader returns raw face images (uint8, gray or BGR) and integer labels in
`fer_batch.labels.LABELS` order; `load_dataset` applies the shared preprocess.
"""
from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import PIL.Image

from fer_batch.labels import LABEL_INDEX, LABELS
from fer_batch.opencv_files import imread
from fer_batch.preprocess import preprocess
from fer_batch.sources import read_image

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


# other datasets' names for the seven classes (AffectNet, RAF-DB and common spellings)
CLASS_SYNONYMS = {"anger": "angry", "disgusted": "disgust", "fearful": "fear", "scared": "fear",
                  "happiness": "happy", "joy": "happy", "sadness": "sad", "surprised": "surprise",
                  "neutrality": "neutral"}


def _class_of_folder(name: str) -> int | None:
    key = name.strip().lower()
    key = CLASS_SYNONYMS.get(key, key)
    if key in LABEL_INDEX:
        return LABEL_INDEX[key]
    if key.isdigit() and int(key) < len(LABELS):
        return int(key)
    return None


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _upright(image: np.ndarray, path: Path) -> np.ndarray:
    """The image as `fer-batch analyze` reads it when its EXIF orientation turns it (phone photos), else as read."""
    try:
        with PIL.Image.open(path) as img:
            orientation = img.getexif().get(0x0112, 1)
    except (OSError, ValueError, SyntaxError):
        return image
    return image if orientation in (None, 1) else read_image(path)


def load_folders(root: str | Path) -> Faces:
    """Class-named subfolders (`angry/`, ... or `0/` .. `6/`, any case; also `happiness/`, `sadness/`, ...) of face
    images, read from any depth below each class folder. Folders named otherwise and files that cannot be read
    are left out with a warning that counts them."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder of class folders")
    images, labels, names = [], [], []
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    known = [(d, _class_of_folder(d.name)) for d in subdirs]
    unknown = [d.name for d, c in known if c is None]
    known = [(d, c) for d, c in known if c is not None]
    if not known:
        raise ValueError(f"{root} has no subfolders named after the classes ({', '.join(LABELS)} or 0..6)")
    if unknown:
        _warn(f"{root}: left out {len(unknown)} folder(s) not named after a class ({', '.join(LABELS)} or 0..6): "
              + ", ".join(unknown))
    unreadable = []
    for folder, label in known:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or any(part.startswith(".") for part in path.relative_to(root).parts):
                continue
            img = imread(path, cv2.IMREAD_UNCHANGED)
            if img is None or img.size == 0:
                unreadable.append(str(path.relative_to(root)))
                continue
            images.append(_upright(img, path))
            labels.append(label)
            names.append(path.relative_to(root).as_posix())
    if unreadable:
        _warn(f"{root}: left out {len(unreadable)} image file(s) that cannot be read: " + ", ".join(unreadable[:5])
              + (", ..." if len(unreadable) > 5 else ""))
    return Faces(images, np.asarray(labels, dtype=np.int64), names)


def _label(value: str, where: str) -> int:
    try:
        label = int(value)
    except ValueError:
        raise ValueError(f"{where}: label {value!r} is not a number 0..6 ({', '.join(LABELS)})") from None
    if not 0 <= label < len(LABELS):
        raise ValueError(f"{where}: label {label} is outside 0..6 ({', '.join(LABELS)})")
    return label


def load_fer2013_csv(path: str | Path, usage: str | None = None) -> Faces:
    """The original `fer2013.csv` (`emotion,pixels,Usage`); `usage` keeps one split (Training, PublicTest, PrivateTest)."""
    images, labels, names = [], [], []
    usages: dict[str, int] = {}
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [column for column in ("emotion", "pixels") if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} has no {' or '.join(missing)} column (a fer2013 CSV has emotion,pixels,Usage)")
        for i, row in enumerate(reader):
            row_usage = (row.get("Usage") or "").strip()
            usages[row_usage] = usages.get(row_usage, 0) + 1
            if usage and row_usage != usage:
                continue
            pixels = np.asarray(row["pixels"].split(), dtype=np.uint8)
            side = int(round(np.sqrt(pixels.size)))
            if side * side != pixels.size:
                raise ValueError(f"{path} row {i + 1}: {pixels.size} pixels do not make a square image")
            images.append(pixels.reshape(side, side))
            labels.append(_label(row["emotion"], f"{path} row {i + 1}"))
            names.append(f"row{i}")
    named = ", ".join(f"{u} ({n})" for u, n in usages.items() if u)
    if usage and not images and named:
        raise ValueError(f"{path} has no rows of Usage {usage!r}; its Usage values are {named}")
    if not usage and len([u for u in usages if u]) > 1:
        _warn(f"{path}: no Usage chosen, so all its rows are taken ({named}); pick one split with --usage")
    return Faces(images, np.asarray(labels, dtype=np.int64), names)


def read_photo(path: Path) -> np.ndarray | None:
    """A colour photo, or None when it is missing or cannot be read (without OpenCV's own warning for each one:
    the callers count them and say so once)."""
    return imread(path, cv2.IMREAD_COLOR) if path.is_file() else None


def warn_missing_photos(image_dir: Path, missing: list[str] | set[str], label_file: str = "label.lst") -> None:
    """One warning that counts the photos listed in label.lst that are missing or cannot be read."""
    if missing:
        missing = sorted(missing)
        _warn(f"{image_dir}: left out the faces of {len(missing)} photo(s) listed in {label_file} that are "
              "missing or cannot be read: " + ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else ""))


def read_expw_labels(label_file: str | Path, min_confidence: float = 0.0) -> list[tuple[str, int, tuple[int, int, int, int], float, int]]:
    """Parse ExpW `label.lst`: `image_name face_id top left right bottom confidence label`.

    Returns (image_name, face_id, (x1, y1, x2, y2), confidence, label) with x = column, y = row.
    """
    rows = []
    with open(label_file) as fh:
        for number, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            where = f"{label_file} line {number}"
            if len(parts) != 8:
                raise ValueError(f"{where} has {len(parts)} fields, not the 8 of "
                                 "`image_name face_id top left right bottom confidence label`")
            name, face_id, top, left, right, bottom, conf, label = parts
            try:
                box = (int(left), int(top), int(right), int(bottom))
                face, confidence = int(face_id), float(conf)
            except ValueError:
                raise ValueError(f"{where}: face_id, top, left, right and bottom must be whole numbers and "
                                 "confidence a number") from None
            label_id = _label(label, where)
            if confidence < min_confidence:
                continue
            rows.append((name, face, box, confidence, label_id))
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
    missing: set[str] = set()
    for name, face_id, (x1, y1, x2, y2), _, label in read_expw_labels(label_file, min_confidence):
        if name not in cache:
            cache.clear()
            cache[name] = read_photo(image_dir / name)
        img = cache[name]
        if img is None:
            missing.add(name)
            continue
        mx, my = int(margin * (x2 - x1)), int(margin * (y2 - y1))
        h, w = img.shape[:2]
        crop = img[max(0, y1 - my):min(h, y2 + my), max(0, x1 - mx):min(w, x2 + mx)]
        if crop.size == 0:
            continue
        images.append(crop.copy())
        labels.append(label)
        names.append(f"{name}#{face_id}")
    warn_missing_photos(image_dir, missing, label_file.name)
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
