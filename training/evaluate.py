r"""Evaluate an expression classifier on labelled faces, the way the tool runs it.

python training/evaluate.py --model fer_batch/assets/model.keras --data ../shared/data/fer2013/val \
    --format folders --out-dir reports/

The model is loaded with `fer_batch.classify.load_model` (Keras safe mode) and the raw face crops go
through `classifier.predict`, so the shared preprocess is part of what is measured. Writes
`eval-<name>.json`, `eval-<name>.md` and `eval-<name>-confusion.html` into --out-dir.
"""
from __future__ import annotations

import argparse
import html
import json
import math
import re
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from fer_batch.classify import RUNTIMES  # noqa: E402
from fer_batch.labels import LABELS, NUM_CLASSES  # noqa: E402
from training.cli_checks import data_problem, folder_problem, load_problem, unused_option_problem  # noqa: E402
from training.datasets import FORMATS, load_faces  # noqa: E402

PROB_COLUMNS = [f"p_{label}" for label in LABELS]   # the per-face CSVs' probabilities, read by calibration.py


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a .keras model file")
    p.add_argument("--data", required=True, help="labelled faces: class folders, a fer2013 CSV or an ExpW root")
    p.add_argument("--format", default="folders", choices=FORMATS)
    p.add_argument("--usage", default=None, help="fer2013-csv: keep one Usage (e.g. PrivateTest)")
    p.add_argument("--min-confidence", type=float, default=0.0, help="expw: minimum box confidence")
    p.add_argument("--name", default=None, help="report name (default: <model stem>-<data folder name>)")
    p.add_argument("--limit", type=int, default=None, help="evaluate a fixed random subset of N faces")
    p.add_argument("--subset-seed", type=int, default=0, help="seed of the --limit subset")
    p.add_argument("--batch-size", type=int, default=256, help="classification batch size")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    p.add_argument("--runtime", default="auto", choices=RUNTIMES,
                   help="auto: TensorFlow Lite's kernels on the CPU, TensorFlow on a GPU")
    p.add_argument("--no-flip-tta", action="store_true", help="classify the crop only, not also its mirror image")
    p.add_argument("--zoom-tta", action="store_true", help="also classify the centre of each crop scaled back up "
                   "(as `fer-batch analyze --zoom-tta`)")
    p.add_argument("--out-dir", default="reports", help="where the three report files are written")
    p.add_argument("--faces-csv", default=None, help="also write each face's label and probabilities to this CSV "
                   "(for training/calibration.py)")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be at least 1")
    if args.batch_size < 1:
        p.error("--batch-size must be at least 1")
    problem = (data_problem("--data", args.data, args.format) or folder_problem("--out-dir", args.out_dir)
               or unused_option_problem("--usage", args.usage is not None, "fer2013-csv", [args.format])
               or unused_option_problem("--min-confidence", args.min_confidence != 0, "expw", [args.format])
               or (args.faces_csv and (Path(args.faces_csv).is_dir() and f"--faces-csv {args.faces_csv} is a folder"
                                       or folder_problem("--faces-csv", Path(args.faces_csv).parent, args.faces_csv))))
    if problem:
        p.error(problem)
    return args


def select_subset(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of `limit` out of `n` items (all of them when limit is None or >= n)."""
    if limit is None or limit >= n:
        return np.arange(n)
    if limit < 1:
        raise ValueError("--limit must be at least 1")
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Counts with rows = true class, columns = predicted class."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.shape[0]} labels but {y_pred.shape[0]} predictions")
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= num_classes):
        raise ValueError(f"class ids must lie in 0..{num_classes - 1}")
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% with the default z): how far an accuracy measured on n
    faces may be from the one more faces would give."""
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def metrics_from_confusion(cm: np.ndarray, labels: Sequence[str] = LABELS) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1 from a confusion matrix (rows true, columns predicted).

    A precision or recall with nothing to divide by is None. Macro-F1 averages F1 over the classes that occur
    among the labels or the predictions, counting an undefined F1 as 0 (scikit-learn's convention).
    """
    cm = np.asarray(cm, np.int64)
    n = int(cm.sum())
    tp = np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    per_class, f1_scores = {}, []
    for i, label in enumerate(labels):
        precision, recall = _ratio(tp[i], predicted[i]), _ratio(tp[i], support[i])
        f1 = _ratio(2 * tp[i], support[i] + predicted[i])
        per_class[label] = {"support": int(support[i]), "predicted": int(predicted[i]),
                            "precision": precision, "recall": recall, "f1": f1}
        if support[i] or predicted[i]:
            f1_scores.append(f1 or 0.0)
    return {
        "n": n,
        "accuracy": _ratio(tp.sum(), n),
        "accuracy_ci95": wilson_interval(int(tp.sum()), n),
        "macro_f1": float(np.mean(f1_scores)) if f1_scores else None,
        "per_class": per_class,
        "labels": list(labels),
        "confusion_matrix": cm.tolist(),
    }


def format_interval(interval: Sequence[float] | None) -> str:
    """' (95% interval 0.645-0.676)', or nothing when there is no interval."""
    return "" if interval is None else f" (95% interval {interval[0]:.3f}-{interval[1]:.3f})"


def evaluate(classifier, images: Sequence[np.ndarray], labels: np.ndarray) -> dict:
    """Classify raw face crops with `classifier.predict` and score the predictions against `labels`.

    Also measures crops/second of the predict call on all crops (preprocess included), after a warm-up call.
    """
    result, _ = evaluate_with_probabilities(classifier, images, labels)
    return result


def evaluate_with_probabilities(classifier, images: Sequence[np.ndarray], labels: np.ndarray) -> tuple[dict, np.ndarray]:
    """`evaluate`, also returning the (n, 7) probabilities it scored."""
    labels = np.asarray(labels, np.int64)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise ValueError("no faces to evaluate")
    classifier.predict(images[: getattr(classifier, "batch_size", 64)])
    start = time.perf_counter()
    probs = classifier.predict(images)
    seconds = time.perf_counter() - start
    result = metrics_from_confusion(confusion_matrix(labels, probs.argmax(axis=1)))
    result["seconds"] = seconds
    result["crops_per_second"] = len(images) / seconds if seconds > 0 else None
    return result, probs


def write_face_probabilities(path: str | Path, labels: np.ndarray, probs: np.ndarray) -> Path:
    """One row per face in evaluation order: its label, the prediction, its confidence and the seven
    probabilities (the columns `training/calibration.py` reads)."""
    import pandas as pd

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame({"face": np.arange(len(labels)), "label": [LABELS[int(i)] for i in labels],
                          "predicted": [LABELS[int(i)] for i in probs.argmax(axis=1)],
                          "confidence": probs.max(axis=1).round(6),
                          **{column: probs[:, k].round(6) for k, column in enumerate(PROB_COLUMNS)}})
    table.to_csv(path, index=False)
    return path


def default_name(model: str | Path, data: str | Path, usage: str | None = None) -> str:
    data_path = Path(data).resolve()
    data_name = data_path.stem if data_path.is_file() else data_path.name
    return safe_name(f"{Path(model).stem}-{data_name}" + (f"-{usage}" if usage else ""))


def safe_name(name: str) -> str:
    """`name` usable as part of a file name (no path separators or shell-awkward characters)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip(".") or "eval"


def command_line(argv: list[str] | None) -> str:
    """The command as it was typed (from sys.argv), or as it would be typed for a `main(argv)` call."""
    if argv is None:
        return shlex.join(["python", *sys.argv])
    return shlex.join(["python", "training/evaluate.py", *argv])


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown_report(result: dict) -> str:
    labels = result["labels"]
    lines = [
        f"# Evaluation: {result['name']}",
        "",
        "```",
        result["command"],
        "```",
        "",
        "| | |",
        "|---|---|",
        f"| model | `{result['model']}` |",
        f"| data | `{result['data']}` ({result['format']}{', ' + result['usage'] if result['usage'] else ''}) |",
        f"| faces | {result['n']}" + (f" (seeded subset, seed {result['subset_seed']}, of {result['n_available']})"
                                      if result["n"] < result["n_available"] else "") + " |",
        f"| accuracy | {_fmt(result['accuracy'])}{format_interval(result.get('accuracy_ci95'))} |",
        f"| macro-F1 | {_fmt(result['macro_f1'])} |",
        f"| crops/second | {_fmt(result['crops_per_second'], 1)} (batch size {result['batch_size']}, "
        f"device {result['device']}, runtime {result.get('runtime', 'tensorflow')}, preprocess included) |",
        "",
        "## Per class",
        "",
        "| class | support | predicted | precision | recall | F1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label in labels:
        c = result["per_class"][label]
        lines.append(f"| {label} | {c['support']} | {c['predicted']} | {_fmt(c['precision'])} | "
                     f"{_fmt(c['recall'])} | {_fmt(c['f1'])} |")
    lines += ["", "## Confusion matrix (rows true, columns predicted)", "",
              "| true \\ predicted | " + " | ".join(labels) + " |",
              "|---|" + "---:|" * len(labels)]
    for label, row in zip(labels, result["confusion_matrix"]):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def confusion_figure(result: dict):
    """A Plotly heatmap coloured by row-normalised percentage (recall per true class), annotated with counts."""
    import plotly.graph_objects as go

    labels = result["labels"]
    counts = np.asarray(result["confusion_matrix"], np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    percent = np.divide(counts * 100.0, rows, out=np.zeros_like(counts), where=rows > 0)
    text = [[f"{int(c)}<br>{p:.1f}%" for c, p in zip(count_row, pct_row)]
            for count_row, pct_row in zip(counts, percent)]
    fig = go.Figure(go.Heatmap(
        z=percent, x=labels, y=labels, text=text, texttemplate="%{text}", customdata=counts,
        colorscale="Blues", zmin=0, zmax=100, colorbar={"title": "% of true class"},
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata:d} faces (%{z:.1f}% of row)<extra></extra>"))
    title = (f"{html.escape(result['name'])}: accuracy {_fmt(result['accuracy'])}, "
             f"macro-F1 {_fmt(result['macro_f1'])}, n = {result['n']}")
    fig.update_layout(title=title, xaxis={"title": "predicted", "side": "bottom"},
                      yaxis={"title": "true", "autorange": "reversed"}, width=720, height=640)
    return fig


def write_reports(result: dict, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"eval-{result['name']}"
    json_path, md_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
    html_path = stem.with_name(stem.name + "-confusion.html")
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    md_path.write_text(markdown_report(result))
    confusion_figure(result).write_html(html_path, include_plotlyjs=True, full_html=True)
    return [json_path, md_path, html_path]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from fer_batch.classify import ModelLoadError, load_model

    try:
        classifier = load_model(args.model, batch_size=args.batch_size, device=args.device, flip_tta=not args.no_flip_tta,
                                zoom_tta=args.zoom_tta, runtime=args.runtime)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        faces = load_faces(args.data, args.format, args.usage, args.min_confidence)
    except (ValueError, KeyError, OSError) as exc:   # a bad label or line; a CSV without the emotion or pixels column
        print(f"error: {load_problem('--data', args.data, exc)}", file=sys.stderr)
        return 2
    if not faces.images:
        print(f"error: no labelled faces found in {args.data} (format {args.format})", file=sys.stderr)
        return 2
    keep = select_subset(len(faces.images), args.limit, args.subset_seed)
    images = [faces.images[i] for i in keep]

    result = {
        "name": safe_name(args.name) if args.name else default_name(args.model, args.data, args.usage),
        "command": command_line(argv),
        "model": str(args.model),
        "data": str(args.data),
        "format": args.format,
        "usage": args.usage,
        "n_available": len(faces.images),
        "limit": args.limit,
        "subset_seed": args.subset_seed,
        "batch_size": args.batch_size,
        "flip_tta": not args.no_flip_tta,
        "zoom_tta": args.zoom_tta,
        "device": classifier.device,
        "runtime": classifier.runtime,
    }
    scores, probs = evaluate_with_probabilities(classifier, images, faces.labels[keep])
    result.update(scores)
    paths = write_reports(result, args.out_dir)
    if args.faces_csv:
        paths.append(write_face_probabilities(args.faces_csv, faces.labels[keep], probs))
    print(f"{result['name']}: {result['n']} faces, accuracy {_fmt(result['accuracy'])}, "
          f"macro-F1 {_fmt(result['macro_f1'])}, {_fmt(result['crops_per_second'], 1)} crops/s")
    print("recall: " + ", ".join(f"{label} {_fmt(c['recall'], 2)}" for label, c in result["per_class"].items()))
    for path in paths:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
