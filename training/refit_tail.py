r"""Refit a model's dense tail on frozen convolutional features, with in-the-wild faces weighted up.

    python training/refit_tail.py --model vgg_small-stage4-expw-f1.keras --data ../shared/data/fer2013/train \
        --expw ../shared/data/expw-sample --expw-fold 1 --detections-cache expw-mtcnn.npz --out vgg_small-refit.keras

The layers up to Flatten are frozen, so their outputs are computed once (each crop and its mirror image) and the
layers after it are trained on those from their current weights: minutes on a CPU instead of an hour. The ExpW
faces of one fold are cut the way `fer-batch analyze` cuts them (the detector's boxes matched to the labelled ones,
the run-time margin, aligned and unaligned), and each counts `--expw-weight` times a FER2013 face in the loss.
Writes the model (no optimizer state) and OUT.ckpt/state.json in train.py's layout, for the model card and table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fer_batch.crops import DEFAULT_CROP_MARGIN, crop_faces  # noqa: E402
from fer_batch.detect import DEFAULT_DETECTOR, DETECTORS  # noqa: E402
from fer_batch.labels import NUM_CLASSES  # noqa: E402
from fer_batch.preprocess import preprocess  # noqa: E402
from training.cli_checks import data_problem, expw_root_problem, load_keras_model, load_problem, model_out_problem  # noqa: E402
from training.datasets import FORMATS, expw_faces_by_photo, load_dataset  # noqa: E402
from training.expw_detections import DetectedPhotos, DetectionCache, match_faces  # noqa: E402
from training.domain_weights import domain_weights  # noqa: E402
from training.expw_crops import photo_fold, photo_kept  # noqa: E402
from training.model_card import REFIT_SCRIPT, folds_text, train_command  # noqa: E402
from training.train import _atomic_save, _atomic_write, _without_optimizer, class_weights  # noqa: E402

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the model whose tail is refitted (its layers up to Flatten stay)")
    p.add_argument("--data", required=True, help="the main training data (e.g. FER2013 Training)")
    p.add_argument("--format", default="folders", choices=list(FORMATS), help="of --data, as in train.py (default folders)")
    p.add_argument("--expw", type=Path, required=True, help="ExpW root (label.lst and image/)")
    p.add_argument("--expw-fold", type=int, nargs="+", required=True,
                   help="train on the photos of these folds only (e.g. 1, or 1 2 3 with --folds 4)")
    p.add_argument("--folds", type=int, default=2, help="how many folds the photos are split into (default 2)")
    p.add_argument("--expw-photo-fraction", type=float, default=1.0,
                   help="keep only this share of the folds' photos, picked by a seeded hash of their names (nested: a "
                        "smaller share with the same seed is a subset of a larger one); for learning curves")
    p.add_argument("--expw-photo-seed", type=int, default=0, help="the seed of --expw-photo-fraction's pick")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, choices=list(DETECTORS))
    p.add_argument("--detections-cache", type=Path, default=None,
                   help="an .npz of the detector's faces per photo, shared with eval_end_to_end.py (one per detector)")
    p.add_argument("--iou", type=float, default=0.4)
    p.add_argument("--crop-margin", type=float, default=DEFAULT_CROP_MARGIN)
    p.add_argument("--expw-weight", type=float, default=5.0, help="loss weight of an ExpW face against a main-data face (default 5)")
    p.add_argument("--dropout-scale", type=float, default=0.5, help="multiply the tail's dropout rates (default 0.5)")
    p.add_argument("--epochs", type=int, default=5, help="(default 5; no epoch selection)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-4, help="Adam's learning rate (default 1e-4)")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--class-weight", default="sqrt", choices=["none", "sqrt", "balanced"],
                   help="for the main data's class imbalance (the ExpW sample is balanced)")
    p.add_argument("--domain-weighting", type=float, default=0.0, metavar="EXPONENT",
                   help="weight each main-data face by (its odds of looking like the ExpW faces) ** EXPONENT, from a "
                        "logistic classifier on the frozen features (0: off, 1: the full density ratio)")
    p.add_argument("--expw-label-trust", type=float, default=1.0,
                   help="soft bootstrapping for labels people read differently: an ExpW face's target is this share its "
                        "label and the rest the model's own prediction before the refit (1: the label alone)")
    p.add_argument("--fit-class-bias", action="store_true",
                   help="after the refit, shift the output layer's class biases to fit the ExpW faces' labels (maximum "
                        "likelihood on those faces): corrects the class balance the main data leaves in the tail")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--out", type=Path, required=True,
                   help="the refitted model (.keras; its run record goes to OUT.ckpt/state.json)")
    args = p.parse_args(argv)
    if not 0.0 < args.expw_photo_fraction <= 1.0:
        p.error("--expw-photo-fraction must be above 0 and at most 1")
    if not 0.0 <= args.expw_label_trust <= 1.0:
        p.error("--expw-label-trust must be between 0 and 1")
    if args.domain_weighting < 0:
        p.error("--domain-weighting must be at least 0")
    if args.folds < 1:
        p.error("--folds must be at least 1")
    if not all(0 <= k < args.folds for k in args.expw_fold):
        p.error(f"--expw-fold must be between 0 and {args.folds - 1} (--folds {args.folds})")
    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value < 1:
            p.error(f"{option} must be at least 1")
    if not args.lr > 0:
        p.error("--lr must be above 0")
    if args.expw_weight < 0:
        p.error("--expw-weight must be at least 0")
    if not 0 <= args.dropout_scale <= 1.5:
        p.error("--dropout-scale must be between 0 and 1.5")
    if not 0 < args.iou <= 1:
        p.error("--iou must be above 0 and at most 1")
    if not Path(args.model).exists():
        p.error(f"--model {args.model}: no such file")
    problem = (data_problem("--data", args.data, args.format) or expw_root_problem("--expw", args.expw)
               or model_out_problem("--out", args.out))
    if problem:
        p.error(problem)
    return args


def split_at_flatten(model, dropout_scale: float = 1.0):
    """(the layers up to Flatten as one model, the layers after it as another with the same weights); the tail's
    dropout rates are multiplied by `dropout_scale`."""
    import keras

    flatten = [i for i, layer in enumerate(model.layers) if isinstance(layer, keras.layers.Flatten)]
    if len(flatten) != 1:
        raise ValueError(f"model {model.name} needs exactly one Flatten layer to split at, it has {len(flatten)}")
    body = keras.Model(model.input, model.layers[flatten[0]].output, name=model.name + "_body")
    inputs = keras.Input(body.output_shape[1:])
    x = inputs
    for layer in model.layers[flatten[0] + 1:]:
        config = layer.get_config()
        if isinstance(layer, keras.layers.Dropout):
            config["rate"] = config["rate"] * dropout_scale
        copy = layer.__class__.from_config(config)
        x = copy(x)
        copy.set_weights(layer.get_weights())
    return body, keras.Model(inputs, x, name=model.name + "_tail")


def join(body, tail, name: str):
    """One model: the body's layers, then the tail's (as trained; dropout rates as the tail has them)."""
    import keras

    x = body.output
    for layer in tail.layers[1:]:
        x = layer(x)
    return keras.Model(body.input, x, name=name)


def expw_fold_crops(root: Path, fold: int | Sequence[int], folds: int, detector_name: str, cache: DetectionCache,
                    iou: float, margin: float, photo_fraction: float = 1.0,
                    photo_seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The labelled ExpW faces the detector finds in the photos of one fold (or of several), each cut twice (aligned
    and not, when the detector gives landmarks), with their labels and whether each crop is the aligned one; only
    the `photo_fraction` of those photos that photo_kept picks with `photo_seed`."""
    wanted = {fold} if isinstance(fold, int) else set(fold)
    by_image = {name: faces for name, faces in expw_faces_by_photo(root / "label.lst").items()
                if photo_kept(name, photo_fraction, photo_seed)}
    crops: list[np.ndarray] = []
    labels: list[int] = []
    aligned: list[bool] = []
    names = sorted(n for n in by_image if photo_fold(n, folds) in wanted)
    for name, image, faces in DetectedPhotos(root, names, cache, detector_name, need_landmarks=detector_name != "haar"):
        matches = match_faces(np.array([b for b, _ in by_image[name]], np.float32), faces.boxes, iou)
        hits = [(i, d) for i, d in enumerate(matches) if d is not None]
        if not hits:
            continue
        picked = [d for _, d in hits]
        variants = [None] if faces.landmarks is None else [None, faces.landmarks[picked]]
        for landmarks in variants:
            crops += [c.copy() for c in crop_faces(image, faces.boxes[picked], margin, landmarks)]
            labels += [by_image[name][i][1] for i, _ in hits]
            aligned += [landmarks is not None] * len(hits)
    return crops, np.array(labels, np.int64), np.array(aligned, bool)


def fit_class_bias(probabilities: np.ndarray, labels: np.ndarray, steps: int = 2000, lr: float = 1.0) -> np.ndarray:
    """The additive shift of the log-probabilities (one per class, mean 0) that maximises the likelihood of `labels`:
    a convex problem, solved by gradient descent."""
    logits = np.log(np.clip(probabilities.astype(np.float64), 1e-12, 1.0))
    target = np.eye(probabilities.shape[1])[labels]
    shift = np.zeros(probabilities.shape[1])
    for _ in range(steps):
        z = logits + shift
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        shift -= lr * (p - target).mean(axis=0)
    return shift - shift.mean()


def bootstrap_targets(labels: np.ndarray, teacher: np.ndarray, label_trust: float) -> np.ndarray:
    """Soft bootstrapping targets: `label_trust` of each one-hot label plus the rest of the teacher's probabilities."""
    one_hot = np.eye(teacher.shape[1], dtype=np.float32)[labels]
    return (label_trust * one_hot + (1.0 - label_trust) * teacher).astype(np.float32)


def with_mirrors(body, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The body's features of each image and of its mirror image, stacked (2n rows)."""
    return np.concatenate([body.predict(x, batch_size=batch_size, verbose=0),
                           body.predict(np.ascontiguousarray(x[:, :, ::-1, :]), batch_size=batch_size, verbose=0)])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras

    keras.utils.set_random_seed(args.seed)
    t0 = time.time()
    try:   # everything that can be wrong with the inputs, before the minutes of features
        model = load_keras_model("--model", args.model)
        body, tail = split_at_flatten(model, args.dropout_scale)
        cache = DetectionCache(args.detections_cache, args.detector)
        expw_faces_by_photo(args.expw / "label.lst")   # a bad line stops here, not after the main data's features
    except ValueError as exc:
        print(f"refit_tail.py: error: {exc}", file=sys.stderr)
        return 2
    _, height, width, channels = model.input_shape
    try:
        main_data = load_dataset(args.data, args.format, (height, width), channels)
    except (ValueError, KeyError, OSError) as exc:
        print(f"refit_tail.py: error: {load_problem('--data', args.data, exc)}", file=sys.stderr)
        return 2
    crops, expw_labels, _ = expw_fold_crops(args.expw, args.expw_fold, args.folds, args.detector, cache, args.iou,
                                            args.crop_margin, args.expw_photo_fraction, args.expw_photo_seed)
    if not crops:
        print(f"refit_tail.py: error: no labelled ExpW faces found in {folds_text(args.expw_fold, args.folds)} of "
              f"{args.expw}", file=sys.stderr)
        return 2
    expw_x = preprocess(crops, (height, width), channels)
    features = np.concatenate([with_mirrors(body, main_data.x), with_mirrors(body, expw_x)])
    labels = np.concatenate([main_data.y, main_data.y, expw_labels, expw_labels])
    main_weights = class_weights(main_data.y, args.class_weight, NUM_CLASSES)[main_data.y]
    if args.domain_weighting > 0:
        n_main = len(main_data.y)
        shift = domain_weights(features[:n_main], features[2 * n_main:2 * n_main + len(expw_labels)],
                               args.domain_weighting, seed=args.seed)
        main_weights = main_weights * shift.weights
        print(f"domain weights: effective sample {shift.effective_fraction:.3f} of the main faces; the classifier "
              f"calls {shift.main_recognised:.3f} of the main faces it did not fit main", flush=True)
    weights = np.concatenate([main_weights, main_weights, np.full(2 * len(expw_labels), args.expw_weight)])
    weights = (weights / weights.mean()).astype(np.float32)
    print(f"features: {len(main_data.y)} main faces, {len(expw_labels)} ExpW crops ({folds_text(args.expw_fold, args.folds)}), "
          f"each with its mirror image ({time.time() - t0:.0f}s)", flush=True)

    expw_rows = slice(len(labels) - 2 * len(expw_labels), None)   # the ExpW crops and their mirrors come last
    targets = keras.utils.to_categorical(labels, NUM_CLASSES)
    if args.expw_label_trust < 1.0:
        teacher = tail.predict(features[expw_rows], batch_size=args.batch_size, verbose=0)
        targets[expw_rows] = bootstrap_targets(labels[expw_rows], teacher, args.expw_label_trust)
    tail.compile(keras.optimizers.Adam(args.lr), keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
                 metrics=["accuracy"])
    history = tail.fit(features, targets, sample_weight=weights,
                       batch_size=args.batch_size, epochs=args.epochs, shuffle=True, verbose=0)
    if args.fit_class_bias:
        shift = fit_class_bias(tail.predict(features[expw_rows], batch_size=args.batch_size, verbose=0), labels[expw_rows])
        output = tail.layers[-1]
        kernel, bias = output.get_weights()
        output.set_weights([kernel, bias + shift.astype(bias.dtype)])
        print("class biases shifted by " + ", ".join(f"{v:+.2f}" for v in shift), flush=True)
    refitted = join(body, tail, model.name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(_without_optimizer(refitted), args.out)

    checkpoint_dir = args.out.with_suffix(".ckpt")   # as train.py names it
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    run_args = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()}
    run_args.update(script=REFIT_SCRIPT, arch=model.name, init_from=args.model)
    state = {"epoch": args.epochs, "best_epoch": args.epochs, "args": run_args,
             "command": train_command(run_args), "seconds": round(time.time() - t0, 1),
             "history": [{"epoch": i + 1, "loss": float(loss), "accuracy": float(acc)}
                         for i, (loss, acc) in enumerate(zip(history.history["loss"], history.history["accuracy"]))]}
    _atomic_write(checkpoint_dir / "state.json", json.dumps(state, indent=1))
    last = state["history"][-1]
    print(f"tail refitted in {state['seconds']:.0f}s: training loss {last['loss']:.4f}, accuracy {last['accuracy']:.4f}; "
          f"model in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
