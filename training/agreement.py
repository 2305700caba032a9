r"""Several models on the same labelled faces: how far their mistakes are the same mistakes.

    python training/agreement.py A-faces.csv B-faces.csv C-faces.csv --names a b c [--fold 0 --folds 2] \
        --out reports/agreement/NAME.md

The inputs are per-face CSVs of training/eval_end_to_end.py on the same photos (the same detector, so the same
faces found). On the faces every model found it reports each model's accuracy, how often all agree, the faces
at least one gets right (what choosing per face could reach at best), the majority vote, and the faces where all
models agree on one and the same expression that is not the label. Models trained differently that share most of
their mistakes point at the faces or their labels rather than at any one training recipe. With `--sheet OUT.png
--expw ROOT`, a seeded sample of those faces is drawn as a grid of their labelled boxes, "label > call" under each,
to look at (keep it outside the repository: the photos are the dataset's).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.labels import LABELS  # noqa: E402
from training.datasets import expw_faces_by_photo  # noqa: E402
from training.expw_crops import photo_fold  # noqa: E402


def joined_predictions(tables: Sequence[pd.DataFrame], names: Sequence[str]) -> pd.DataFrame:
    """One row per face every table found: its label and each model's prediction (a column per name)."""
    if len(tables) != len(names) or len(set(names)) != len(names):
        raise ValueError("give one distinct name per table")
    keys = ["photo", "face", "label"]
    faces = [set(map(tuple, t[keys].astype(str).itertuples(index=False))) for t in tables]
    if any(f != faces[0] for f in faces[1:]):
        raise ValueError("the tables do not list the same labelled faces")
    joined = None
    for table, name in zip(tables, names):
        part = table.loc[table["found"].astype(bool), keys + ["predicted"]].rename(columns={"predicted": name})
        joined = part if joined is None else joined.merge(part, on=keys, how="inner", validate="one_to_one")
    return joined.reset_index(drop=True)


def majority_vote(predictions: pd.DataFrame) -> pd.Series:
    """The expression most models call, a tie going to the first-listed model among the tied."""
    def vote(row: pd.Series) -> str:
        counts = Counter(row)
        top = max(counts.values())
        return next(call for call in row if counts[call] == top)
    return predictions.apply(vote, axis=1)


def agreed_wrong_faces(joined: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The faces where every model gives the same expression and it is not the label; their call in `call`."""
    predictions = joined[list(names)]
    mask = (predictions.nunique(axis=1) == 1) & (predictions.iloc[:, 0] != joined["label"])
    return joined.loc[mask, ["photo", "face", "label"]].assign(call=predictions.iloc[:, 0][mask])


def agreement(joined: pd.DataFrame, names: Sequence[str]) -> dict:
    """The figures of the report, from joined_predictions' table."""
    predictions = joined[list(names)]
    right = predictions.eq(joined["label"], axis=0)
    unanimous = predictions.nunique(axis=1) == 1
    wrong = agreed_wrong_faces(joined, names)
    n = len(joined)
    share = lambda mask: None if n == 0 else float(mask.sum() / n)  # noqa: E731
    within = lambda hits, mask: None if mask.sum() == 0 else float((hits & mask).sum() / mask.sum())  # noqa: E731
    confusion = {label: {call: int(((wrong["label"] == label) & (wrong["call"] == call)).sum()) for call in LABELS}
                 for label in LABELS}
    return {
        "faces": n,
        "accuracy": {name: share(right[name]) for name in names},
        "all_agree": share(unanimous),
        "accuracy_when_all_agree": within(right.iloc[:, 0], unanimous),
        "accuracy_when_they_differ": {name: within(right[name], ~unanimous) for name in names},
        "right_by_at_least_one": share(right.any(axis=1)),
        "right_by_all": share(right.all(axis=1)),
        "majority_vote_accuracy": share(majority_vote(predictions) == joined["label"]),
        "all_agree_wrong": len(wrong),
        "all_agree_wrong_share": None if n == 0 else len(wrong) / n,
        "all_agree_wrong_by_label": confusion,
    }


def contact_sheet(faces: pd.DataFrame, expw_root: Path, count: int, seed: int, tile: int = 160,
                  per_row: int = 6) -> np.ndarray:
    """A grid of up to `count` of `faces` (photo, face index in label.lst order, label, call), picked at random with
    `seed`: each its labelled box cut from the photo, "label > call" under it."""
    boxes = expw_faces_by_photo(expw_root / "label.lst")
    picked = faces.sample(min(count, len(faces)), random_state=seed) if len(faces) else faces
    tiles = []
    for row in picked.itertuples(index=False):
        (x1, y1, x2, y2), _ = boxes[row.photo][int(row.face)]
        image = cv2.imread(str(expw_root / "image" / row.photo), cv2.IMREAD_COLOR)
        crop = None if image is None else image[max(0, y1):max(0, y2), max(0, x1):max(0, x2)]
        face = np.full((tile, tile, 3), 128, np.uint8) if crop is None or crop.size == 0 else cv2.resize(crop, (tile, tile))
        face = cv2.copyMakeBorder(face, 0, 28, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
        cv2.putText(face, f"{row.label} > {row.call}", (3, tile + 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        tiles.append(face)
    blank = np.full((tile + 28, tile, 3), 255, np.uint8)
    tiles = tiles or [blank]
    tiles += [blank] * (-len(tiles) % per_row)
    return np.vstack([np.hstack(tiles[i:i + per_row]) for i in range(0, len(tiles), per_row)])


def report(result: dict, names: Sequence[str], paths: Sequence[Path], command: str, fold_text: str) -> str:
    """The Markdown report."""
    fmt = lambda v: "—" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"# {len(names)} models on the same labelled faces", "", "```", command, "```", "",
             f"{result['faces']} faces found by every model{fold_text}. Files: "
             + ", ".join(f"`{p}` ({name})" for p, name in zip(paths, names)) + ".", "",
             "| model | accuracy | accuracy where the models differ |", "|---|---|---|"]
    lines += [f"| {name} | {fmt(result['accuracy'][name])} | {fmt(result['accuracy_when_they_differ'][name])} |"
              for name in names]
    lines += ["", "| figure | value |", "|---|---|",
              f"| all models give the same expression | {fmt(result['all_agree'])} |",
              f"| accuracy where they all agree | {fmt(result['accuracy_when_all_agree'])} |",
              f"| right by at least one model | {fmt(result['right_by_at_least_one'])} |",
              f"| right by every model | {fmt(result['right_by_all'])} |",
              f"| majority vote | {fmt(result['majority_vote_accuracy'])} |",
              f"| all agree on the same wrong expression | {result['all_agree_wrong']} faces "
              f"({fmt(result['all_agree_wrong_share'])}) |", "",
              "Faces where all models agree on the same wrong expression, by label (rows) and the models' call:", "",
              "| label | " + " | ".join(LABELS) + " |", "|---" * (len(LABELS) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(str(row[call]) for call in LABELS) + " |"
              for label, row in result["all_agree_wrong_by_label"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("faces", type=Path, nargs="+", help="per-face CSVs of eval_end_to_end.py, two or more")
    p.add_argument("--names", nargs="+", default=None, help="one per file [default: A, B, ...]")
    p.add_argument("--fold", type=int, default=None, help="only the photos of this fold (training/expw_crops.py)")
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--out", type=Path, default=None, help="Markdown report; a .json beside it [default: print only]")
    p.add_argument("--sheet", type=Path, default=None, help="a PNG grid of faces all models call the same wrong way")
    p.add_argument("--expw", type=Path, default=None, help="the ExpW root (label.lst, image/) the CSVs came from")
    p.add_argument("--sheet-faces", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.sheet and not args.expw:
        p.error("--sheet needs --expw, the ExpW root the faces come from")
    names = args.names or [chr(ord("A") + i) for i in range(len(args.faces))]
    if len(args.faces) < 2 or len(names) != len(args.faces):
        p.error("give two or more files and, with --names, one name per file")

    tables = [pd.read_csv(path, keep_default_na=False) for path in args.faces]
    if args.fold is not None:
        tables = [t[[photo_fold(n, args.folds) == args.fold for n in t["photo"]]] for t in tables]
    try:
        joined = joined_predictions(tables, names)
    except ValueError as error:
        p.error(str(error))
    result = agreement(joined, names)
    command = "python training/agreement.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    fold_text = f", photos of fold {args.fold} of {args.folds}" if args.fold is not None else ""
    text = report(result, names, args.faces, command, fold_text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps({"command": command, "names": names, **result}, indent=1))
    if args.sheet:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(args.sheet), contact_sheet(agreed_wrong_faces(joined, names), args.expw, args.sheet_faces, args.seed))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
