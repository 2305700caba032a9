"""Which test-time views help a model: each view alone and the averages of some sets of views, on labelled faces.

python training/tta_views.py --model fer_batch/assets/model.keras --data ../shared/data/fer2013/val --out reports/tta.md

Views are the preprocessed crop, the centre of it at --scales scaled back up, and that window shifted by --shift of
the side up, down, left and right; each with its mirror image. This is how ZOOM_TTA_SCALE in fer_batch/classify.py
was chosen (on FER2013 PublicTest, the selection split; never on the ExpW fold the figures are reported on).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from training.datasets import FORMATS, load_dataset  # noqa: E402

SHIFTS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def view_sets(scales: list[float]) -> dict[str, list[str]]:
    """Named sets of views (each view name also stands for its mirror image, `<name>~`)."""
    sets = {"crop only": ["crop"], "crop + mirror (flip TTA)": ["crop", "crop~"]}
    for s in scales:
        shifted = [f"{s} {d}" for d in SHIFTS]
        sets[f"flip + centre {s}"] = ["crop", "crop~", f"{s}", f"{s}~"]
        sets[f"flip + 4 shifted {s}"] = ["crop", "crop~"] + shifted + [v + "~" for v in shifted]
        sets[f"flip + centre + 4 shifted {s}"] = sets[f"flip + 4 shifted {s}"] + [f"{s}", f"{s}~"]
    return sets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--format", default="folders", choices=FORMATS)
    p.add_argument("--scales", type=float, nargs="+", default=[0.9, 0.95])
    p.add_argument("--shift", type=float, default=0.03, help="fraction of the side the shifted windows move")
    p.add_argument("--out", type=Path, required=True, help="markdown report")
    args = p.parse_args(argv)

    from fer_batch.classify import load_model, zoom_centre
    from training.evaluate import confusion_matrix, metrics_from_confusion

    classifier = load_model(args.model, batch_size=256, flip_tta=False)
    data = load_dataset(args.data, args.format, classifier.input_size, classifier.channels)
    views = {"crop": data.x}
    for s in args.scales:
        views[f"{s}"] = zoom_centre(data.x, s)
        for name, (dy, dx) in SHIFTS.items():
            views[f"{s} {name}"] = zoom_centre(data.x, s, (dy * args.shift, dx * args.shift))
    probs = {}
    for name, x in views.items():
        probs[name] = classifier.predict_preprocessed(x)
        probs[name + "~"] = classifier.predict_preprocessed(np.ascontiguousarray(x[:, :, ::-1]))

    def score(names: list[str]) -> dict:
        predicted = np.mean([probs[n] for n in names], axis=0).argmax(axis=1)
        return metrics_from_confusion(confusion_matrix(data.y, predicted))

    command = shlex.join(["python", "training/tta_views.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [f"# Test-time views: `{args.model}` on `{args.data}` ({len(data.y)} faces)", "", "```", command, "```", "",
             "`~` is the mirror image; `0.95 up` the centre 95% of the crop, moved up by "
             f"{args.shift:g} of its side, scaled back up.", "",
             "| views | classifier passes | accuracy | macro-F1 |", "|---|---:|---:|---:|"]
    for label, names in view_sets(args.scales).items():
        m = score(names)
        lines.append(f"| {label} | {len(names)} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} |")
    lines += ["", "Each view alone:", "", "| view | accuracy |", "|---|---:|"]
    lines += [f"| {name} | {score([name])['accuracy']:.4f} |" for name in probs]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
