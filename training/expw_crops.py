"""Cut training crops out of ExpW scene photos the way `fer-batch analyze` cuts them, split by photo into folds.

    python training/expw_crops.py --data ../shared/data/expw-sample --out ../expw-crops --folds 2

Each labelled face becomes one crop: the shipped detector's box when a detection overlaps the labelled box with
IoU >= --iou (the box users' faces will come in), else the labelled box; both cut with the run-time
`crop_faces` geometry. Crops are written as PNG to `OUT/fold<k>/<class>/<photo>#<face>.png` (the `folders`
format train.py reads). A photo's fold is fixed by a hash of its name, so every face of a photo lands in the
same fold and `eval_end_to_end.py --fold k --folds N` evaluates exactly the photos a model never trained on.
"""
from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections import Counter, defaultdict
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.crops import DEFAULT_CROP_MARGIN, crop_faces  # noqa: E402
from fer_batch.detect import DEFAULT_DETECTOR, DETECTORS  # noqa: E402
from fer_batch.labels import LABELS  # noqa: E402
from training.cli_checks import crops_out_problem, expw_root_problem  # noqa: E402
from training.datasets import read_expw_labels  # noqa: E402


def photo_fold(name: str, folds: int) -> int:
    """The fold of an ExpW photo: stable across runs, machines and Python versions."""
    return zlib.crc32(name.encode("utf-8")) % folds


def crop_path(folder: Path, photo: str, face_id: int | str, written: set[Path]) -> Path:
    """`<photo stem>#<face id>.png` in `folder`, with `~2`, `~3` ... added when an earlier face of this run took
    that name (a face id repeated in label.lst, or photos of one stem: a.jpg and a.png); adds it to `written`."""
    path = folder / f"{Path(photo).stem}#{face_id}.png"
    repeat = 1
    while path in written:
        repeat += 1
        path = folder / f"{Path(photo).stem}#{face_id}~{repeat}.png"
    written.add(path)
    return path


def photo_kept(name: str, fraction: float, seed: int) -> bool:
    """Whether a photo is in the seeded share `fraction` of photos; the shares of one seed nest."""
    return zlib.crc32(f"{seed}:{name}".encode("utf-8")) % 100_000 < round(fraction * 100_000)


def main(argv: list[str] | None = None) -> int:
    from training.expw_detections import DetectedPhotos, DetectionCache, aligned_landmarks, match_faces

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="ExpW root: label.lst and image/")
    p.add_argument("--out", type=Path, required=True,
                   help="a new or empty output folder (keep it outside the repository); crops go to OUT/fold<k>/<class>/")
    p.add_argument("--folds", type=int, default=2, help="how many folds the photos are split into (default 2)")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS))
    p.add_argument("--iou", type=float, default=0.4,
                   help="overlap at which a detection stands for a labelled face (default 0.4)")
    p.add_argument("--crop-margin", type=float, default=DEFAULT_CROP_MARGIN,
                   help=f"the square crop grows by this share of the box on each side (default {DEFAULT_CROP_MARGIN}, "
                        "as at run time; the shipped stage 4 trained on 0.1)")
    p.add_argument("--align", action="store_true",
                   help="turn each detected face so the eyes are level (as `fer-batch analyze --align`)")
    p.add_argument("--detections-cache", type=Path, default=None,
                   help="reuse (or fill) the .npz of detector boxes that eval_end_to_end.py keeps")
    p.add_argument("--photo-fraction", type=float, default=1.0,
                   help="cut only this seeded share of the photos (as refit_tail.py --expw-photo-fraction picks them)")
    p.add_argument("--photo-seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 0.0 < args.photo_fraction <= 1.0:
        p.error("--photo-fraction must be above 0 and at most 1")
    if args.folds < 1:
        p.error("--folds must be at least 1")
    if not 0 < args.iou <= 1:
        p.error("--iou must be above 0 and at most 1")
    problem = expw_root_problem("--data", args.data) or crops_out_problem("--out", args.out)
    if problem:
        p.error(problem)
    try:
        cache = DetectionCache(args.detections_cache, args.detector)
        rows = read_expw_labels(args.data / "label.lst")
    except ValueError as exc:   # a cache of another detector; a bad label.lst line
        p.error(str(exc))

    by_image: dict[str, list] = defaultdict(list)
    for name, face_id, box, _, label in rows:
        if photo_kept(name, args.photo_fraction, args.photo_seed):
            by_image[name].append((face_id, box, label))
    counts: Counter = Counter()
    written: set[Path] = set()
    photos = DetectedPhotos(args.data, sorted(by_image), cache, args.detector, need_landmarks=args.align)
    for name, image, faces in photos:
        fold = photo_fold(name, args.folds)
        labelled = np.array([box for _, box, _ in by_image[name]], np.float32)
        matches = match_faces(labelled, faces.boxes, args.iou)
        crops = [crop_faces(image, faces.boxes[[m]], args.crop_margin, aligned_landmarks(faces, [m], args.align))[0]
                 if m is not None else crop_faces(image, labelled[i:i + 1], args.crop_margin)[0]
                 for i, m in enumerate(matches)]
        for (face_id, _, label), crop, match in zip(by_image[name], crops, matches):
            folder = args.out / f"fold{fold}" / LABELS[label]
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(crop_path(folder, name, face_id, written)), crop)
            counts[(fold, "detected" if match is not None else "labelled box")] += 1
    if not counts:
        why = (f"none of the photos in {args.data / 'label.lst'} could be read from {args.data / 'image'}"
               if photos.missing
               else f"{args.data / 'label.lst'} lists no photos"
               + (" in the share --photo-fraction keeps" if args.photo_fraction < 1 else ""))
        print(f"expw_crops.py: error: no crops written: {why}", file=sys.stderr)
        return 2
    summary = {f"fold{k}": {src: n for (f, src), n in sorted(counts.items()) if f == k} for k in range(args.folds)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
