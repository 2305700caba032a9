r"""Write the model card that ships beside a model.

    python training/model_card.py --model fer_batch/assets/model.keras --state RUN.ckpt/state.json \
        --eval reports/eval-shipped-fer2013-val.json --out fer_batch/assets/MODEL_CARD.md

The shipped card (a chain of train.py runs, then a refit of the tail; each run's history in reports/):

    python training/model_card.py --model fer_batch/assets/model.keras --state reports/training-vgg_small.json \
        reports/training-vgg_small-stage2.json reports/training-vgg_small-stage3.json \
        reports/training-vgg_small-stage4-expw-f1.json reports/training-vgg_small-refit.json \
        --eval reports/eval-shipped-fer2013-val.json reports/eval-shipped-fer2013-val-no-tta.json \
        --e2e reports/e2e-shipped-mtcnn-aligned-fold0.json reports/e2e-shipped-blazeface-expw-sample-fold0.json \
        --prepare "python training/expw_crops.py --data ../shared/data/expw-sample --out ../expw-crops --folds 2 --crop-margin 0.1" \
        --out fer_batch/assets/MODEL_CARD.md
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.crops import DEFAULT_CROP_MARGIN  # noqa: E402
from fer_batch.labels import LABELS  # noqa: E402


REFIT_SCRIPT = "training/refit_tail.py"
REFIT_KEYS = ("model", "data", "format", "expw", "expw_fold", "folds", "expw_photo_fraction", "expw_photo_seed",
              "detector", "detections_cache", "iou",
              "crop_margin", "expw_weight", "dropout_scale", "epochs", "batch_size", "lr", "label_smoothing",
              "class_weight", "domain_weighting", "expw_label_trust", "fit_class_bias", "seed", "out")
REFIT_DEFAULTS_LEFT_OUT = {"expw_label_trust": 1.0, "expw_photo_fraction": 1.0, "domain_weighting": 0.0}   # options older runs did not have


def _refit_option_given(key: str, args: dict) -> bool:
    """Whether a refit's recorded option belongs in its command line (a photo seed only goes with a photo share)."""
    value = args.get(key)
    if value is None or value is False or REFIT_DEFAULTS_LEFT_OUT.get(key) == value:
        return False
    return key != "expw_photo_seed" or _refit_option_given("expw_photo_fraction", args)


def train_command(args: dict) -> str:
    """The command line of a run (train.py's, or refit_tail.py's when the run was a refit) from its recorded arguments."""
    if args.get("script") == REFIT_SCRIPT:
        parts = ["python", REFIT_SCRIPT]
        for key in REFIT_KEYS:
            if not _refit_option_given(key, args):
                continue
            value = args[key]
            parts.append(f"--{key.replace('_', '-')}")
            if value is not True:
                parts += [str(v) for v in value] if isinstance(value, list) else [str(value)]
        return shlex.join(parts)
    parts = ["python", "training/train.py"]
    for key in ("data", "format", "extra_data", "extra_repeat", "val_data", "arch", "dropout_scale", "epochs",
                "batch_size", "lr", "label_smoothing", "class_weight", "blur_augment", "erase_augment", "domain_adversarial",
                "seed",
                "init_from", "out", "average_from", "average_every", "average_out"):
        value = args.get(key)
        if ((key == "extra_repeat" and not args.get("extra_data")) or (key == "dropout_scale" and value in (None, 1.0))
                or (key in ("domain_adversarial", "erase_augment") and not value) or (key == "average_every" and not args.get("average_from"))):
            continue
        if isinstance(value, bool):
            parts += [f"--{key.replace('_', '-')}"] if value else []
            continue
        for item in value if isinstance(value, list) else [] if value is None else [value]:
            parts += [f"--{key.replace('_', '-')}", str(item)]
    return shlex.join(parts)


def folds_text(fold: int | list[int], folds: int) -> str:
    """"fold 1 of 2", "folds 1, 2, 3 of 4"."""
    chosen = [fold] if isinstance(fold, int) else list(fold)
    return f"fold{'s' if len(chosen) > 1 else ''} {', '.join(map(str, chosen))} of {folds}"


def training_data(targs: dict) -> str:
    """The training data of a run: its --data, and each --extra-data with how often it repeats."""
    if targs.get("script") == REFIT_SCRIPT:
        share = targs.get("expw_photo_fraction", 1.0)
        return (f"`{targs['data']}` + `{targs['expw']}` {folds_text(targs['expw_fold'], targs['folds'])} "
                + (f"({share:g} of the photos, seed {targs.get('expw_photo_seed', 0)}) " if share < 1.0 else "")
                + f"({targs['detector']} crops, aligned and not) x{targs['expw_weight']:g} loss weight; tail only"
                + (f"; main faces weighted by their likeness to the ExpW faces (exponent {targs['domain_weighting']:g})"
                   if targs.get("domain_weighting", 0.0) > 0 else "")
                + (f"; ExpW targets {targs['expw_label_trust']:g} label, the rest the model's own prediction"
                   if targs.get("expw_label_trust", 1.0) < 1.0 else "")
                + ("; class biases fitted to the ExpW faces" if targs.get("fit_class_bias") else ""))
    extra = [f"`{path}`" + (f" x{targs.get('extra_repeat', 1)}" if targs.get("extra_repeat", 1) != 1 else "")
             for path in targs.get("extra_data") or []]
    return (" + ".join([f"`{targs['data']}`", *extra]) + ("; blur augmentation" if targs.get("blur_augment") else "")
            + (f"; random erasing of {targs['erase_augment']:g} of the faces" if targs.get("erase_augment") else "")
            + (f"; domain-adversarial head, loss weight {targs['domain_adversarial']:g}" if targs.get("domain_adversarial") else ""))


def calibration_text(calibration: dict) -> str:
    """The card's line on a temperature baked into the output layer by training/calibration.py."""
    before, after = calibration["before"], calibration["cross_fitted"]
    where = f", fold {calibration['fold']} of {calibration['folds']}" if calibration.get("fold") is not None else ""
    return (f"- Then the output layer divided by a temperature T = {calibration['temperature']:.2f} "
            f"(`training/calibration.py`), fitted by maximum likelihood on {calibration['faces']} faces the model never "
            f"trained on (`{calibration['faces_csv']}`{where}): the top expression does not change, the probabilities "
            f"are softer. Cross-fitted by photo, the calibration error (ECE) there goes {before['ece']:.3f} -> "
            f"{after['ece']:.3f} and the log-loss {before['nll']:.3f} -> {after['nll']:.3f}.")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--state", type=Path, nargs="+", required=True,
                   help="the training history (state.json) of each run, in order when one continued another (--init-from)")
    p.add_argument("--eval", type=Path, nargs="+", required=True, help="evaluate.py JSON files")
    p.add_argument("--e2e", type=Path, nargs="*", default=[], help="eval_end_to_end.py JSON files")
    p.add_argument("--prepare", nargs="*", default=[], help="commands that make the training data, listed first")
    p.add_argument("--calibration", type=Path, default=None,
                   help="the training/calibration.py JSON of the temperature baked into the model, when one was")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    import keras

    model = keras.models.load_model(args.model, compile=False, safe_mode=True)
    stages = [json.loads(path.read_text()) for path in args.state]
    refit = stages[-1] if stages[-1]["args"].get("script") == REFIT_SCRIPT else None
    if refit and len(stages) == 1:
        p.error("a refitted model's card needs the history of the run it started from too: --state RUN.json REFIT.json")
    state = stages[-2] if refit else stages[-1]
    calibration = json.loads(args.calibration.read_text()) if args.calibration else None
    last_args = dict(stages[-1]["args"], out=calibration["model"] if calibration else str(args.model))
    train_args = last_args if state is stages[-1] else state["args"]
    commands = [train_command(s["args"]) for s in stages[:-1]] + [train_command(last_args)]
    commands += [calibration["command"]] if calibration else []
    total_epochs = sum(s["epoch"] for s in stages if s is not refit)
    chain_note = f" of the last run ({total_epochs} epochs in all)" if len(stages) > (2 if refit else 1) else ""
    _, h, w, c = model.input_shape
    lines = [
        f"# Model card: `{args.model.name}`", "",
        f"- Architecture: `{train_args['arch']}` ({model.count_params():,} weights, {args.model.stat().st_size / 1e6:.1f} MB)",
        f"- Output: 7 probabilities in this order: {', '.join(LABELS)}",
        f"- Input: {h}x{w}, {'gray' if c == 1 else 'BGR colour'}; `fer_batch.preprocess.preprocess`: face crop -> "
        f"{'gray' if c == 1 else 'colour'} -> resize to {w}x{h} (area when shrinking, bilinear when growing) -> float32 / 255",
        "- At run time the pipeline crops the square around each detected face's box"
        + (f", {DEFAULT_CROP_MARGIN:.0%} larger on each side," if DEFAULT_CROP_MARGIN else "")
        + ", turned so the eyes are level (`--no-align` to turn off; "
        + ("the convolutional layers trained on unturned crops, the refitted tail on both" if refit
           else "the model trained on unturned crops") + "), and averages"
        " the probabilities of the crop and its mirror image (`--no-flip-tta` to turn off).",
        f"- Training data: {training_data(train_args)} ({train_args['format']}); validation / model selection: "
        f"`{train_args['val_data']}`; best epoch {state.get('best_epoch')} of {state['epoch']}{chain_note} by validation accuracy.",
        *([f"- Then the dense tail (the layers after Flatten) refitted on the frozen convolutional layers' features "
           f"for {refit['epoch']} epochs with fixed settings (`{REFIT_SCRIPT}`): {training_data(refit['args'])}."] if refit else []),
        *([calibration_text(calibration)] if calibration else []),
        f"- Trained: {dt.datetime.fromtimestamp(args.model.stat().st_mtime, dt.timezone.utc).strftime('%Y-%m-%d')}, on CPU.",
        "", "Command" + ("s, in order (each run starts from the previous one's weights):" if len(commands) > 1 else ":"),
        "", "```", *args.prepare, *commands, "```", "", "## Measured", "",
        "| data | n | flip TTA | accuracy | macro-F1 | " + " | ".join(f"recall {label}" for label in LABELS) + " |",
        "|---|---|---|---|---|" + "---|" * len(LABELS),
    ]
    for path in args.eval:
        r = json.loads(path.read_text())
        recalls = " | ".join(f"{r['per_class'][label]['recall']:.3f}" for label in LABELS)
        lines.append(f"| `{r['data']}` | {r['n']} | {'yes' if r.get('flip_tta', True) else 'no'} | {r['accuracy']:.4f} | "
                     f"{r['macro_f1']:.4f} | {recalls} |")
    if args.e2e:
        lines += ["", "End to end (the detector finds the faces, the model classifies them; found = IoU >= 0.4 with a "
                  "labelled box; accuracy and macro-F1 over the faces found):", "",
                  "| data | photos | detector | recall | accuracy | macro-F1 | " + " | ".join(f"recall {label}" for label in LABELS) + " |",
                  "|---|---|---|---|---|---|" + "---|" * len(LABELS)]
        for path in args.e2e:
            r = json.loads(path.read_text())
            recalls = " | ".join("—" if r["per_class"][label]["recall"] is None else f"{r['per_class'][label]['recall']:.3f}"
                                 for label in LABELS)
            where = f"`{r['data']}`" + (f", fold {r['fold']} (never trained on)" if r.get("fold") else "")
            lines.append(f"| {where} | {r['photos']} | `{r['detector']}` | {r['recall']:.3f} | {r['accuracy']:.4f} | "
                         f"{r['macro_f1']:.4f} | {recalls} |")
    lines += ["", "Per-epoch history: " + ", ".join(f"`{path}`" for path in args.state) + ".", ""]
    args.out.write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
