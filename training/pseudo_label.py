"""Label the faces nobody labelled in ExpW scene photos with a model's own answers, for self-training.

    python training/pseudo_label.py --data ../shared/data/expw-sample --model vgg_small-refit.keras --fold 1 \\
        --detections-cache expw-mtcnn.npz --out ../pseudo-f1

The photos of label.lst hold more faces than it labels. Every detection in the photos of --fold that overlaps
no labelled box (IoU below --max-overlap with each) is cut as `fer-batch analyze` cuts it and classified by
--model; those whose top probability reaches --min-confidence are written as PNG to `OUT/<class>/<photo>#u<k>.png`
(the `folders` format train.py reads as --extra-data). Every such face, kept or not, is listed in OUT/faces.csv.
Give the fold the model trained on, never the fold it is evaluated on: the photos of the other folds stay unseen.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.crops import DEFAULT_CROP_MARGIN, crop_faces  # noqa: E402
from fer_batch.detect import DEFAULT_DETECTOR, DETECTORS  # noqa: E402
from fer_batch.detect.base import box_iou  # noqa: E402
from fer_batch.labels import LABELS  # noqa: E402
from training.cli_checks import crops_out_problem, expw_root_problem  # noqa: E402
from training.datasets import expw_faces_by_photo  # noqa: E402
from training.expw_crops import crop_path, photo_fold  # noqa: E402

FACE_COLUMNS = ["photo", "detection", "left", "top", "right", "bottom", "label", "confidence", "kept"]


def unlabelled_detections(labelled: np.ndarray, detected: np.ndarray, max_overlap: float) -> list[int]:
    """Indices of the detections whose IoU with every labelled box is below `max_overlap`."""
    if len(detected) == 0:
        return []
    if len(labelled) == 0:
        return list(range(len(detected)))
    return [int(i) for i in np.flatnonzero(box_iou(labelled, detected).max(axis=0) < max_overlap)]


def main(argv: list[str] | None = None) -> int:
    from training.expw_detections import DetectedPhotos, DetectionCache

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="ExpW root: label.lst and image/")
    p.add_argument("--model", required=True, help="the model whose answers become the labels (.keras)")
    p.add_argument("--fold", type=int, nargs="+", required=True,
                   help="the photos of these folds (training/expw_crops.py's split): the ones --model trained on")
    p.add_argument("--folds", type=int, default=2, help="how many folds the photos are split into (default 2)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS))
    p.add_argument("--detections-cache", type=Path, default=None,
                   help="reuse (or fill) the .npz of detector boxes that eval_end_to_end.py keeps")
    p.add_argument("--max-overlap", type=float, default=0.1,
                   help="a detection with IoU at or above this with a labelled box is that face, not a new one "
                        "(default 0.1)")
    p.add_argument("--min-confidence", type=float, default=0.6,
                   help="keep a face only when the model's top probability reaches this (default 0.6)")
    p.add_argument("--crop-margin", type=float, default=DEFAULT_CROP_MARGIN,
                   help=f"the square crop grows by this share of the box on each side (default {DEFAULT_CROP_MARGIN})")
    p.add_argument("--out", type=Path, required=True,
                   help="a new or empty output folder (keep it outside the repository)")
    args = p.parse_args(argv)
    if args.folds < 1 or not all(0 <= k < args.folds for k in args.fold):
        p.error(f"--fold must be among 0..{args.folds - 1} and --folds at least 1")
    if not 0 < args.max_overlap <= 1:
        p.error("--max-overlap must be above 0 and at most 1")
    if not 0 <= args.min_confidence <= 1:
        p.error("--min-confidence must be between 0 and 1")
    problem = expw_root_problem("--data", args.data) or crops_out_problem("--out", args.out)
    if problem:
        p.error(problem)

    from fer_batch.classify import ModelLoadError, load_model

    try:
        classifier = load_model(args.model)
        cache = DetectionCache(args.detections_cache, args.detector)
        by_image = expw_faces_by_photo(args.data / "label.lst")
    except (ModelLoadError, ValueError) as exc:
        print(f"pseudo_label.py: error: {exc}", file=sys.stderr)
        return 2

    names = [n for n in sorted(by_image) if photo_fold(n, args.folds) in args.fold]
    if not names:
        print(f"pseudo_label.py: error: {args.data / 'label.lst'} lists no photos in fold "
              f"{' '.join(map(str, args.fold))} of {args.folds}", file=sys.stderr)
        return 2
    rows: list[dict] = []
    kept: Counter = Counter()
    written: set[Path] = set()
    photos = DetectedPhotos(args.data, names, cache, args.detector)
    for name, image, faces in photos:
        labelled = np.array([box for box, _ in by_image[name]], np.float32).reshape(-1, 4)
        picked = unlabelled_detections(labelled, faces.boxes, args.max_overlap)
        if not picked:
            continue
        crops = crop_faces(image, faces.boxes[picked], args.crop_margin)
        for det, crop, probs in zip(picked, crops, classifier.predict(crops)):
            label, confidence = int(np.argmax(probs)), float(np.max(probs))
            keep = confidence >= args.min_confidence
            if keep:
                folder = args.out / LABELS[label]
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(crop_path(folder, name, f"u{det}", written)), crop)
                kept[LABELS[label]] += 1
            left, top, right, bottom = (round(float(v), 1) for v in faces.boxes[det])
            rows.append({"photo": name, "detection": det, "left": left, "top": top, "right": right,
                         "bottom": bottom, "label": LABELS[label], "confidence": round(confidence, 4),
                         "kept": int(keep)})
    if len(photos.missing) == len(names):
        print(f"pseudo_label.py: error: none of the {len(names)} photos of the fold could be read from "
              f"{args.data / 'image'}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "faces.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FACE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(json.dumps({"photos": len(names) - len(photos.missing), "unlabelled_faces": len(rows),
                      "kept": sum(kept.values()), "kept_per_class": {c: kept[c] for c in LABELS}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
