r"""How the end-to-end ExpW accuracy grows with the number of ExpW faces a model trained on.

    python training/learning_curve.py --runs reports/training-A.json:reports/curve/e2e-A.json ... \
        --baseline reports/curve/e2e-BASE.json --expw ../shared/data/expw-sample --out reports/curve/learning-curve.md

Each run pairs a refit_tail.py state (its folds and --expw-photo-fraction say which photos it trained on) with
eval_end_to_end.py's figures for it on another fold. The faces counted are the labelled faces in the photos it
kept (the detector finds about nine in ten of them). A least-squares line of accuracy against log2(faces) gives
the points gained per doubling of the faces, and how many times the faces that line asks for one more point.
The baseline (optional) is the model before any ExpW face, shown at 0 faces and left out of the line.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.datasets import expw_faces_by_photo  # noqa: E402
from training.expw_crops import photo_fold, photo_kept  # noqa: E402


def faces_trained_on(run_args: dict, by_photo: dict[str, list]) -> int:
    """The labelled ExpW faces in the photos a refit_tail.py run kept: its folds, its share of their photos."""
    folds = set(run_args["expw_fold"]) if isinstance(run_args["expw_fold"], list) else {run_args["expw_fold"]}
    fraction, seed = run_args.get("expw_photo_fraction", 1.0), run_args.get("expw_photo_seed", 0)
    return sum(len(faces) for name, faces in by_photo.items()
               if photo_fold(name, run_args["folds"]) in folds and photo_kept(name, fraction, seed))


def log_line(faces: list[int], accuracy: list[float]) -> tuple[float, float]:
    """(slope per doubling of the faces, intercept) of the least-squares line of accuracy on log2(faces)."""
    if len(set(faces)) < 2:
        raise ValueError("a line needs runs with at least two different numbers of faces")
    slope, intercept = np.polyfit(np.log2(np.asarray(faces, float)), np.asarray(accuracy, float), 1)
    return float(slope), float(intercept)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, help="STATE.json:E2E.json pairs")
    p.add_argument("--baseline", type=Path, default=None, help="eval_end_to_end.py JSON of the model before ExpW")
    p.add_argument("--expw", type=Path, required=True, help="the ExpW root (label.lst) the runs trained on")
    p.add_argument("--out", type=Path, required=True, help="Markdown report; a .json beside it")
    args = p.parse_args(argv)

    by_photo = expw_faces_by_photo(args.expw / "label.lst")
    rows = []
    for pair in args.runs:
        state_path, sep, e2e_path = pair.partition(":")
        if not sep:
            p.error(f"--runs takes STATE.json:E2E.json pairs, not {pair!r}")
        run_args = json.loads(Path(state_path).read_text())["args"]
        e2e = json.loads(Path(e2e_path).read_text())
        rows.append({"model": run_args["out"], "faces": faces_trained_on(run_args, by_photo),
                     "photo_fraction": run_args.get("expw_photo_fraction", 1.0),
                     "photo_seed": run_args.get("expw_photo_seed", 0), "evaluated_on": e2e["fold"],
                     "found": e2e["found_faces"], "accuracy": e2e["accuracy"], "macro_f1": e2e["macro_f1"]})
    try:
        slope, intercept = log_line([r["faces"] for r in rows], [r["accuracy"] for r in rows])
    except ValueError as error:
        p.error(str(error))
    rows.sort(key=lambda r: (r["faces"], r["photo_seed"]))
    baseline = json.loads(args.baseline.read_text()) if args.baseline else None

    command = "python training/learning_curve.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = ["# Accuracy on held-out ExpW faces against the number of ExpW faces trained on", "", "```", command, "```", "",
             "| model | ExpW faces trained on (labelled, in the photos kept) | share of the photos | seed | "
             "evaluated on | faces found | accuracy | macro-F1 |", "|---|---|---|---|---|---|---|---|"]
    if baseline:
        lines.append(f"| {baseline['model']} (before any ExpW face) | 0 | — | — | fold {baseline['fold']} | "
                     f"{baseline['found_faces']} | {baseline['accuracy']:.3f} | {baseline['macro_f1']:.3f} |")
    lines += [f"| {r['model']} | {r['faces']} | {r['photo_fraction']:g} | {r['photo_seed']} | fold {r['evaluated_on']} | "
              f"{r['found']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} |" for r in rows]
    per_point = math.inf if slope <= 0 else 2 ** (0.01 / slope)
    lines += ["", f"Least-squares line through the {len(rows)} runs: accuracy = {intercept:.3f} + {slope:.4f} x log2(faces), "
              f"so {100 * slope:.1f} points per doubling of the faces"
              + ("." if slope <= 0 else f"; one more point asks for {per_point:.2f} times the faces.")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(
        {"command": command, "runs": rows, "baseline": None if baseline is None else
         {"model": baseline["model"], "accuracy": baseline["accuracy"], "macro_f1": baseline["macro_f1"]},
         "slope_per_doubling": slope, "intercept": intercept}, indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
