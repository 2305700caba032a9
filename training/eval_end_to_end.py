"""End-to-end evaluation on ExpW scene photos: the shipped detector finds the faces, the model classifies them.

    python training/eval_end_to_end.py --data ../shared/data/expw-sample --name shipped-expw-sample

A labelled face is found when a detection overlaps its box with IoU >= --iou (the best-overlapping detection
is used, each detection at most once). Accuracy and macro-F1 are over the faces found; recall over all labelled
faces. Writes reports/e2e-<name>.{json,md} and the per-face reports/e2e-<name>-faces.csv (for compare_faces.py).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.crops import DEFAULT_CROP_MARGIN, crop_faces  # noqa: E402
from fer_batch.detect import DEFAULT_DETECTOR, DETECTORS  # noqa: E402
from fer_batch.labels import LABELS  # noqa: E402
from training.cli_checks import expw_root_problem, folder_problem  # noqa: E402
from training.datasets import expw_faces_by_photo  # noqa: E402
from training.expw_detections import DetectedPhotos, DetectionCache, aligned_landmarks, match_faces  # noqa: E402
from training.expw_crops import photo_fold  # noqa: E402
from training.evaluate import PROB_COLUMNS, confusion_matrix, format_interval, metrics_from_confusion  # noqa: E402

SKIP_FOLD = "-"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="ExpW root: label.lst and image/")
    p.add_argument("--model", default=None, help="default: the shipped model")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS))
    p.add_argument("--iou", type=float, default=0.4, help="overlap that counts a labelled face as found (default 0.4)")
    p.add_argument("--crop-margin", type=float, default=DEFAULT_CROP_MARGIN,
                   help=f"the square crop grows by this share of the box on each side (default {DEFAULT_CROP_MARGIN}, as at run time)")
    p.add_argument("--align", action="store_true", help="turn each crop so the eyes are level (detector landmarks); "
                   "off unless given here, while `fer-batch analyze` aligns by default: give it to score what users get")
    p.add_argument("--zoom-tta", action="store_true", help="also classify the centre of each crop scaled back up "
                   "(as `fer-batch analyze --zoom-tta`)")
    p.add_argument("--fold", type=int, default=None,
                   help="only the photos of this fold (training/expw_crops.py's split), e.g. those a model did not train on")
    p.add_argument("--folds", type=int, default=None,
                   help="how many folds the photos are split into (default 2, or one per --fold-models model)")
    p.add_argument("--fold-models", nargs="+", default=None, metavar="MODEL",
                   help="cross-fitting: one model per fold; the photos of fold k are classified by the k-th model, "
                        "which must not have trained on fold k (see training/expw_crops.py); '-' leaves a fold out")
    p.add_argument("--detections-cache", type=Path, default=None,
                   help="an .npz of the detector's faces per photo: read when it exists, else written; one file per "
                        "detector (a cache of another detector's faces is refused)")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--name", default=None, help="report name (default: from the model and the data)")
    p.add_argument("--out-dir", type=Path, default=Path("reports"), help="where the reports go (default reports/)")
    args = p.parse_args(argv)
    if args.fold_models and args.folds is not None and args.folds != len(args.fold_models):
        p.error(f"--fold-models gives one model (or '-') per fold: {len(args.fold_models)} given for --folds {args.folds}")
    if args.folds is None:
        args.folds = len(args.fold_models) if args.fold_models else 2
    problem = expw_root_problem("--data", args.data) or folder_problem("--out-dir", args.out_dir)
    if problem:
        p.error(problem)
    if args.folds < 1 or (args.fold is not None and not 0 <= args.fold < args.folds):
        p.error(f"--fold must be one of 0..{args.folds - 1} and --folds at least 1")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if not 0 < args.iou <= 1:
        p.error("--iou must be above 0 and at most 1")

    from fer_batch.classify import ModelLoadError, load_model

    try:
        return _evaluate(p, args, load_model, argv)
    except (ModelLoadError, ValueError) as exc:   # a model that cannot be used; a bad label.lst line
        print(f"eval_end_to_end: {exc}", file=sys.stderr)
        return 2


def _evaluate(p: argparse.ArgumentParser, args: argparse.Namespace, load_model, argv: list[str] | None) -> int:
    if args.fold_models:
        if args.model or args.fold is not None:
            p.error("--fold-models replaces --model and --fold")
        args.folds = len(args.fold_models)
        if all(m == SKIP_FOLD for m in args.fold_models):
            p.error("--fold-models needs at least one model")
        classifiers = [None if m == SKIP_FOLD else load_model(m, zoom_tta=args.zoom_tta) for m in args.fold_models]
    else:
        classifiers = [load_model(args.model, zoom_tta=args.zoom_tta)]
    cache = DetectionCache(args.detections_cache, args.detector)
    by_image = expw_faces_by_photo(args.data / "label.lst")
    names = sorted(by_image)
    if args.fold is not None:
        names = [n for n in names if photo_fold(n, args.folds) == args.fold]
    if args.fold_models:
        names = [n for n in names if classifiers[photo_fold(n, args.folds)] is not None]
    names = names[: args.limit] if args.limit else names
    if not names:
        raise ValueError(f"{args.data / 'label.lst'} lists no photos to score"
                         + (f" in fold {scored_folds(args)}" if scored_folds(args) else ""))

    truths, preds = [], []
    face_rows: list[dict] = []
    labelled = found = 0
    t0 = time.time()
    photos = DetectedPhotos(args.data, names, cache, args.detector, need_landmarks=args.align)
    for name, image, faces in photos:
        boxes = np.array([b for b, _ in by_image[name]], np.float32)
        labels = [lab for _, lab in by_image[name]]
        detected = faces.boxes
        matches = match_faces(boxes, detected, args.iou)
        labelled += len(labels)
        hits = [(i, di) for i, di in enumerate(matches) if di is not None]
        found += len(hits)
        probs_of: dict[int, np.ndarray] = {}
        side_of: dict[int, float] = {}
        if hits:
            picked = [di for _, di in hits]
            crops = crop_faces(image, detected[picked], args.crop_margin, aligned_landmarks(faces, picked, args.align))
            classifier = classifiers[photo_fold(name, args.folds)] if args.fold_models else classifiers[0]
            probs_of = dict(zip((i for i, _ in hits), classifier.predict(crops)))
            side_of = {i: box_side(detected[di]) for i, di in hits}
            truths.extend(labels[i] for i in probs_of)
            preds.extend(int(np.argmax(p)) for p in probs_of.values())
        face_rows.extend(face_row(name, i, lab, probs_of.get(i), side_of.get(i)) for i, lab in enumerate(labels))
    seconds = time.time() - t0
    missing = photos.missing
    if missing and len(missing) == len(names):
        raise ValueError(f"none of the {len(names)} photos to score could be read from {args.data / 'image'}")
    names = [n for n in names if n not in set(missing)]
    detections_cached = not photos.detector_ran
    metrics = metrics_from_confusion(confusion_matrix(np.array(truths, np.int64), np.array(preds, np.int64)))
    result = {
        "data": str(args.data), "photos": len(names), "photos_missing": len(missing), "labelled_faces": labelled,
        "found_faces": found,
        "recall": found / max(1, labelled), "iou": args.iou, "detector": args.detector,
        "fold": scored_folds(args),
        "model": " / ".join(args.fold_models) if args.fold_models else (args.model or "shipped"),
        "cross_fitted": bool(args.fold_models), "align": args.align, "zoom_tta": args.zoom_tta, "seconds_per_photo": None if detections_cached else seconds / max(1, len(names)), **metrics,
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
    }
    name = args.name or f"{Path(args.model).stem if args.model else 'shipped'}-{args.data.name}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"e2e-{name}.json").write_text(json.dumps(result, indent=1))
    lines = [f"# End-to-end on {args.data.name}: detector `{args.detector}`, model `{result['model']}`", "",
             "```", result["command"], "```", "",
             "| photos | labelled faces | found (IoU >= %.1f) | recall | accuracy on found | macro-F1 | s/photo |" % args.iou,
             "|---|---|---|---|---|---|---|",
             f"| {len(names)} | {labelled} | {found} | {result['recall']:.3f} | {_score(metrics['accuracy'])}"
             f"{format_interval(metrics['accuracy_ci95'])} | "
             f"{_score(metrics['macro_f1'])} | {_seconds(result['seconds_per_photo'])} |", "",
             *([f"{len(missing)} photo(s) listed in label.lst are missing from image/ or cannot be read; their "
                "faces are left out of every figure here.", ""] if missing else []),
             "Confusion matrix (rows true, columns predicted): " + json.dumps(metrics["confusion_matrix"]), "",
             "| class | support | recall | precision |", "|---|---|---|---|"]
    for label in LABELS:
        c = metrics["per_class"][label]
        fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {label} | {c['support']} | {fmt(c['recall'])} | {fmt(c['precision'])} |")
    (args.out_dir / f"e2e-{name}.md").write_text("\n".join(lines) + "\n")
    write_face_rows(args.out_dir / f"e2e-{name}-faces.csv", face_rows)
    print(f"recall {result['recall']:.3f} ({found}/{labelled}), accuracy {_score(metrics['accuracy'])}, "
          f"macro-F1 {_score(metrics['macro_f1'])} on found faces; {_seconds(result['seconds_per_photo'])} s/photo")
    return 0


def scored_folds(args: argparse.Namespace) -> str | None:
    """Which folds' photos were scored ("1 of 2", "0, 2 of 4"), or None when all were."""
    if args.fold is not None:
        return f"{args.fold} of {args.folds}"
    if args.fold_models and SKIP_FOLD in args.fold_models:
        return f"{', '.join(str(k) for k, m in enumerate(args.fold_models) if m != SKIP_FOLD)} of {args.folds}"
    return None


FACE_COLUMNS = ["photo", "face", "label", "found", "predicted"]
DETAIL_COLUMNS = ["box_side", "confidence", *PROB_COLUMNS]


def box_side(box: np.ndarray) -> float:
    """The shorter side of an (x1, y1, x2, y2) box in pixels: what `--min-face` compares."""
    return float(min(box[2] - box[0], box[3] - box[1]))


def face_row(photo: str, face: int, label: int, probs: np.ndarray | None, side: float | None) -> dict:
    """One labelled face's row: found or not, the prediction, and for a found face the detection's shorter side
    and the seven probabilities (empty when not found)."""
    row = {"photo": photo, "face": face, "label": LABELS[label], "found": probs is not None, "predicted": ""}
    if probs is not None:
        row.update({"predicted": LABELS[int(np.argmax(probs))], "box_side": round(float(side), 1),
                    "confidence": round(float(np.max(probs)), 6),
                    **{column: round(float(p), 6) for column, p in zip(PROB_COLUMNS, probs)}})
    return row


def write_face_rows(path: Path, rows: list[dict]) -> None:
    """One row per labelled face (photo, face index in label.lst order, label, found, predicted, and when the rows
    carry them the detection's shorter side and the probabilities), for comparing two tools on the same faces
    (training/compare_faces.py) and for calibration (training/calibration.py)."""
    import csv

    columns = FACE_COLUMNS + (DETAIL_COLUMNS if any("confidence" in row for row in rows) else [])
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, restval="")
        writer.writeheader()
        writer.writerows({**row, "found": int(row["found"])} for row in rows)


def _score(value: float | None) -> str:
    """An accuracy or macro-F1, or a dash when no face was found to score."""
    return "—" if value is None else f"{value:.3f}"


def _seconds(value: float | None) -> str:
    return "— (detections from the cache)" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
