r"""How far to trust a face's probabilities: calibration of a model on faces it never trained on.

    python training/calibration.py reports/e2e-shipped-mtcnn-aligned-fold0-faces.csv --fold 0 --folds 2 \
        --also reports/calibration/publictest-faces.csv --name shipped-fold0 --out-dir reports/calibration

Reads a faces CSV with the seven probabilities per face (`training/eval_end_to_end.py` writes one per run,
`training/evaluate.py --faces-csv` too) and reports:

- reliability: faces by confidence (the top probability), with how often the top expression is right, and the
  expected calibration error (ECE: the faces-weighted gap between confidence and accuracy over 10 equal bins);
- accuracy by face size (the detection box's shorter side), when the CSV has `box_side`;
- one temperature T fitted by maximum likelihood (probabilities p -> p^(1/T), renormalised; the top expression
  does not change), with its effect measured out of sample: the photos are split into --cv groups, each
  group's T is fitted on the others, and the per-face log-loss (NLL) difference gets a paired bootstrap 95%
  interval;
- with --also, the same figures before and after T on other faces (e.g. FER2013 PublicTest).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.labels import LABELS  # noqa: E402
from training.evaluate import PROB_COLUMNS  # noqa: E402
from training.expw_crops import photo_fold  # noqa: E402

if TYPE_CHECKING:
    import keras

CONFIDENCE_EDGES = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
SIZE_EDGES = (0, 40, 60, 90, 140, float("inf"))
ECE_BINS = 10
LOG_T_GRID = np.linspace(np.log(0.2), np.log(10.0), 2001)
EPS = 1e-7


def read_faces(path: Path) -> pd.DataFrame:
    """The found faces of a faces CSV (rows with probabilities), with their labels as class ids in `label_id`."""
    table = pd.read_csv(path, keep_default_na=False)
    missing = [c for c in ["label", *PROB_COLUMNS] if c not in table.columns]
    if missing:
        raise SystemExit(f"{path} has no {', '.join(missing)} column(s): write it with a newer "
                         "training/eval_end_to_end.py or training/evaluate.py --faces-csv")
    if "found" in table.columns:
        table = table[table["found"].astype(int) == 1]
    table = table.reset_index(drop=True)
    table[PROB_COLUMNS] = table[PROB_COLUMNS].astype(float)
    table["label_id"] = table["label"].map({label: i for i, label in enumerate(LABELS)})
    if table["label_id"].isna().any():
        raise SystemExit(f"{path}: labels outside {', '.join(LABELS)}")
    return table


def probabilities(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    probs = table[PROB_COLUMNS].to_numpy(np.float64)
    return probs / probs.sum(axis=1, keepdims=True), table["label_id"].to_numpy(np.int64)


def with_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """p^(1/T), renormalised: softmax(log p / T). T > 1 softens, T < 1 sharpens; the argmax never changes."""
    logits = np.log(np.clip(probs, EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def face_nll(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each face's log-loss: minus the log of the probability given to its label."""
    return -np.log(np.clip(probs[np.arange(len(labels)), labels], EPS, 1.0))


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature of least mean log-loss, on a fine log-spaced grid from 0.2 to 10 (deterministic)."""
    if len(labels) == 0:
        raise ValueError("no faces to fit a temperature on")
    losses = [face_nll(with_temperature(probs, float(np.exp(t))), labels).mean() for t in LOG_T_GRID]
    return float(np.exp(LOG_T_GRID[int(np.argmin(losses))]))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over equal-width confidence bins of (faces in bin / all faces) * |accuracy - mean confidence|."""
    confidence = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            gap += inside.mean() * abs(right[inside].mean() - confidence[inside].mean())
    return float(gap)


def reliability(probs: np.ndarray, labels: np.ndarray, edges=CONFIDENCE_EDGES) -> list[dict]:
    """Per confidence range: faces, share of faces, how often the top expression is right, mean confidence."""
    confidence = probs.max(axis=1)
    right = probs.argmax(axis=1) == labels
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence >= low) & ((confidence < high) | (high >= 1.0))
        n = int(inside.sum())
        rows.append({"low": low, "high": high, "faces": n, "share": n / max(1, len(labels)),
                     "accuracy": float(right[inside].mean()) if n else None,
                     "mean_confidence": float(confidence[inside].mean()) if n else None})
    return rows


def accuracy_by_size(sides: np.ndarray, right: np.ndarray, edges=SIZE_EDGES) -> list[dict]:
    """Per range of the detection box's shorter side (pixels of the original photo): faces and accuracy."""
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (sides >= low) & (sides < high)
        n = int(inside.sum())
        rows.append({"low": low, "high": None if np.isinf(high) else high, "faces": n,
                     "accuracy": float(right[inside].mean()) if n else None})
    return rows


def summary(probs: np.ndarray, labels: np.ndarray) -> dict:
    return {"faces": int(len(labels)), "accuracy": float((probs.argmax(axis=1) == labels).mean()),
            "nll": float(face_nll(probs, labels).mean()), "ece": expected_calibration_error(probs, labels),
            "mean_confidence": float(probs.max(axis=1).mean()),
            "brier": float(((probs - np.eye(len(LABELS))[labels]) ** 2).sum(axis=1).mean())}


def cross_fitted(probs: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, dict]:
    """Each group's probabilities scaled by the temperature fitted on the other groups, and those temperatures."""
    scaled = np.empty_like(probs)
    temperatures = {}
    for group in np.unique(groups):
        inside = groups == group
        if inside.all():
            raise ValueError("cross-fitting needs at least two groups")
        temperature = fit_temperature(probs[~inside], labels[~inside])
        temperatures[int(group)] = temperature
        scaled[inside] = with_temperature(probs[inside], temperature)
    return scaled, temperatures


def paired_bootstrap_interval(differences: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the mean of per-face differences, by resampling faces (seeded)."""
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), size=(resamples, len(differences)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def divide_output_by_temperature(model: keras.Model, temperature: float) -> keras.Model:
    """The model with its softmax layer's weights and bias divided by `temperature`: softmax(z / T) for each
    view of a face, the same architecture and size (a fitted temperature baked into a model file)."""
    import keras

    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.activation is not keras.activations.softmax:
        raise SystemExit(f"the model's last layer must be a softmax Dense layer to take a temperature; it is {last.name}")
    last.set_weights([w / temperature for w in last.get_weights()])
    return model


def photo_groups(photos: pd.Series, fold: int | None, folds: int, cv: int) -> np.ndarray:
    """The cross-validation group of each face by its photo (or, for a set of face crops, its own id): photo folds
    nest (fold f of F is folds f, f + F, ... of F * cv), so a group is a sub-fold of the fold being scored."""
    return np.array([photo_fold(str(name), folds * cv) // folds if fold is not None else photo_fold(str(name), cv)
                     for name in photos])


def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _summary_row(name: str, s: dict) -> str:
    return (f"| {name} | {s['faces']} | {_f(s['accuracy'])} | {_f(s['mean_confidence'])} | {_f(s['nll'])} | "
            f"{_f(s['ece'])} | {_f(s['brier'])} |")


def markdown(result: dict) -> str:
    lines = [f"# Calibration: {result['name']}", "", "```", result["command"], "```", "",
             f"Faces: `{result['faces_csv']}` ({result['faces']} found faces"
             + (f", fold {result['fold']} of {result['folds']}" if result["fold"] is not None else "") + ").", "",
             "| probabilities | faces | accuracy | mean confidence | NLL | ECE | Brier |", "|---|---|---|---|---|---|---|",
             _summary_row("as the model gives them", result["before"]),
             _summary_row(f"temperature cross-fitted by {result.get('group_by', 'photo')} ({result['cv']} groups, T = "
                          + ", ".join(f"{t:.2f}" for t in result["cv_temperatures"].values()) + ")",
                          result["cross_fitted"]),
             _summary_row(f"temperature fitted on all of them (T = {result['temperature']:.2f}; in-sample)",
                          result["fitted"]), "",
             f"Cross-fitted NLL minus the model's, per face: {result['nll_change']:+.4f} "
             f"(paired bootstrap 95% interval {result['nll_change_ci95'][0]:+.4f} to {result['nll_change_ci95'][1]:+.4f}).",
             "", "## Reliability: how often the top expression is right, by its confidence", "",
             "| confidence | faces (as given) | right | mean confidence | faces (cross-fitted T) | right | mean confidence |",
             "|---|---|---|---|---|---|---|"]
    for raw, cal in zip(result["reliability"], result["reliability_cross_fitted"]):
        lines.append(f"| {raw['low']:.1f}-{raw['high']:.1f} | {raw['faces']} | {_f(raw['accuracy'])} | "
                     f"{_f(raw['mean_confidence'])} | {cal['faces']} | {_f(cal['accuracy'])} | {_f(cal['mean_confidence'])} |")
    if result.get("by_size"):
        lines += ["", "## Accuracy by face size (the detection box's shorter side, pixels of the photo)", "",
                  "| shorter side | faces | accuracy |", "|---|---|---|"]
        for row in result["by_size"]:
            span = f"{row['low']:.0f}+" if row["high"] is None else f"{row['low']:.0f}-{row['high']:.0f}"
            lines.append(f"| {span} | {row['faces']} | {_f(row['accuracy'])} |")
    for other in result["also"]:
        lines += ["", f"## `{other['faces_csv']}` with T = {result['temperature']:.2f}", "",
                  "| probabilities | faces | accuracy | mean confidence | NLL | ECE | Brier |",
                  "|---|---|---|---|---|---|---|",
                  _summary_row("as the model gives them", other["before"]),
                  _summary_row(f"T = {result['temperature']:.2f}", other["after"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("faces_csv", type=Path, help="faces with photo, label, found and p_<label> columns")
    p.add_argument("--fold", type=int, default=None, help="the photo fold the CSV scored (its sub-folds are the groups)")
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--cv", type=int, default=2, help="cross-fitting groups of photos")
    p.add_argument("--also", type=Path, nargs="*", default=[], help="other faces CSVs scored with the fitted T")
    p.add_argument("--name", required=True)
    p.add_argument("--out-dir", type=Path, default=Path("reports/calibration"))
    p.add_argument("--model", type=Path, default=None, help="the model whose probabilities the faces CSV holds")
    p.add_argument("--model-out", type=Path, default=None,
                   help="write --model with the temperature fitted on all the faces baked into its output layer")
    args = p.parse_args(argv)
    if (args.model is None) != (args.model_out is None):
        p.error("--model and --model-out go together")

    table = read_faces(args.faces_csv)
    probs, labels = probabilities(table)
    # faces of one photo stay in one group; a set of face crops (evaluate.py --faces-csv) has no photos
    group_by = "photo" if "photo" in table.columns else "face"
    groups = photo_groups(table[group_by].astype(str), args.fold, args.folds, args.cv)
    temperature = fit_temperature(probs, labels)
    scaled, cv_temperatures = cross_fitted(probs, labels, groups)
    change = face_nll(scaled, labels) - face_nll(probs, labels)
    result = {
        "name": args.name, "faces_csv": str(args.faces_csv), "faces": int(len(labels)), "fold": args.fold,
        "folds": args.folds, "cv": args.cv, "group_by": group_by,
        "command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
        "temperature": temperature, "cv_temperatures": cv_temperatures,
        "before": summary(probs, labels), "cross_fitted": summary(scaled, labels),
        "fitted": summary(with_temperature(probs, temperature), labels),
        "nll_change": float(change.mean()), "nll_change_ci95": paired_bootstrap_interval(change),
        "reliability": reliability(probs, labels), "reliability_cross_fitted": reliability(scaled, labels),
        "by_size": (accuracy_by_size(table["box_side"].astype(float).to_numpy(), probs.argmax(axis=1) == labels)
                    if "box_side" in table.columns else None),
        "also": [],
    }
    for path in args.also:
        other_probs, other_labels = probabilities(read_faces(path))
        result["also"].append({"faces_csv": str(path), "before": summary(other_probs, other_labels),
                               "after": summary(with_temperature(other_probs, temperature), other_labels)})
    if args.model is not None:
        import keras

        model = keras.models.load_model(args.model, compile=False, safe_mode=True)
        args.model_out.parent.mkdir(parents=True, exist_ok=True)
        divide_output_by_temperature(model, temperature).save(args.model_out)
        result["model"], result["model_out"] = str(args.model), str(args.model_out)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{args.name}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out_dir / f"{args.name}.md").write_text(markdown(result))
    b, c = result["before"], result["cross_fitted"]
    print(f"T = {temperature:.2f} (cross-fitted {', '.join(f'{t:.2f}' for t in cv_temperatures.values())}); "
          f"NLL {b['nll']:.4f} -> {c['nll']:.4f} ({result['nll_change_ci95'][0]:+.4f} to "
          f"{result['nll_change_ci95'][1]:+.4f}), ECE {b['ece']:.4f} -> {c['ece']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
