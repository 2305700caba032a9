r"""Train an expression classifier.

python training/train.py --data ../shared/data/fer2013/train --val-data ../shared/data/fer2013/val \
    --arch vgg_small --epochs 30 --out my-model.keras
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from fer_batch.native_logs import import_tensorflow  # noqa: E402

import_tensorflow()  # first, so that the CUDA probe's start-up lines on a CPU machine stay off the terminal

from training.cli_checks import (data_problem, folder_problem, load_keras_model, load_problem,  # noqa: E402
                                  model_out_problem, unused_option_problem)
from training.datasets import FORMATS, load_dataset  # noqa: E402
from training.models import ARCHITECTURES, DEFAULT_ARCH  # noqa: E402
from training.weight_average import WeightAverage, snapshot_callback  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="training data (folder of class folders, fer2013 CSV or ExpW root, "
                   "as --format says); --extra-data mixes more in")
    p.add_argument("--format", default="folders", choices=FORMATS,
                   help="folders: class-named subfolders (angry/ ... or 0/ .. 6/); fer2013-csv: fer2013.csv (pick a "
                        "split with --usage); expw: label.lst and image/ (default folders)")
    p.add_argument("--usage", default=None, help="fer2013-csv: keep one Usage (e.g. Training)")
    p.add_argument("--extra-data", action="append", default=[], metavar="PATH:FORMAT",
                   help="more training data, e.g. crops/:folders (repeatable)")
    p.add_argument("--extra-repeat", type=int, default=1,
                   help="each --extra-data face appears this many times an epoch (for small in-the-wild sets)")
    p.add_argument("--val-data", required=True, help="validation data, given explicitly (never carved from a test set)")
    p.add_argument("--val-format", default=None, choices=FORMATS, help="defaults to --format")
    p.add_argument("--val-usage", default=None, help="fer2013-csv: Usage for validation (e.g. PublicTest)")
    p.add_argument("--min-confidence", type=float, default=0.0, help="expw: minimum box confidence")
    p.add_argument("--arch", default=DEFAULT_ARCH, choices=sorted(ARCHITECTURES),
                   help=f"the network (default {DEFAULT_ARCH}; vgg_tiny for quick experiments; seed: the original "
                        "notebook's, 64x64 RGB)")
    p.add_argument("--dropout-scale", type=float, default=1.0,
                   help="multiply the architecture's dropout rates (e.g. 0.5 to fit more; weights are unchanged)")
    p.add_argument("--epochs", type=int, default=30, help="length of the cosine schedule (default 30)")
    p.add_argument("--batch-size", type=int, default=128, help="(default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (Adam, one warm-up epoch, cosine decay; "
                   "default 1e-3)")
    p.add_argument("--label-smoothing", type=float, default=0.1, help="(default 0.1)")
    p.add_argument("--class-weight", default="sqrt", choices=("none", "sqrt", "balanced"),
                   help="class-imbalance handling: none, sqrt of inverse frequency (default), or inverse frequency")
    p.add_argument("--no-augment", action="store_true", help="no flip, scale/shift or brightness/contrast augmentation")
    p.add_argument("--blur-augment", action="store_true",
                   help="also soften each training face by a random amount (a Gaussian blur mixed in)")
    p.add_argument("--erase-augment", type=float, default=0.0, metavar="P",
                   help="replace a random rectangle (2-20%% of the face) of this share of the training faces by "
                        "noise: random erasing, for occluded faces (default 0: off)")
    p.add_argument("--domain-adversarial", type=float, default=0.0, metavar="LAMBDA",
                   help="train a second head to tell --data faces from --extra-data faces through a gradient reversal, "
                        "with this loss weight, so the features cannot tell them apart (0: off)")
    p.add_argument("--patience", type=int, default=0, help="stop after N epochs without a better val accuracy (0: never)")
    p.add_argument("--seed", type=int, default=1234, help="seeds the weights, data order and augmentation (default 1234)")
    p.add_argument("--out", required=True, help="best model (by val accuracy) is written here (.keras)")
    p.add_argument("--checkpoint-dir", default=None, help="last-epoch checkpoint and history (default: OUT.ckpt/)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --checkpoint-dir, with the options it was started with")
    p.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="stop after N epochs of this invocation (a long run in sittings; continue with --resume)")
    p.add_argument("--average-from", type=int, default=None, metavar="EPOCH",
                   help="also average the network's weights (batch-norm statistics included) over snapshots taken from this "
                        "epoch (1-based) to the end, and write the mean to --average-out (SWA)")
    p.add_argument("--average-every", type=int, default=50, metavar="STEPS",
                   help="with --average-from: a snapshot after every this many optimizer steps of those epochs (default 50)")
    p.add_argument("--average-out", default=None, metavar="MODEL",
                   help="with --average-from: where the averaged network is written (.keras)")
    p.add_argument("--init-from", metavar="MODEL",
                   help="start from this model's weights (same --arch) with a fresh optimizer and schedule "
                        "(a warm restart of the cosine schedule)")
    args = p.parse_args(argv)
    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size), ("--extra-repeat", args.extra_repeat),
                          ("--stop-after", 1 if args.stop_after is None else args.stop_after)):
        if value < 1:
            p.error(f"{option} must be at least 1")
    if not args.lr > 0:
        p.error("--lr must be above 0")
    if not 0 <= args.erase_augment <= 1:
        p.error("--erase-augment must be between 0 and 1 (the share of training faces erased)")
    if args.no_augment and (args.erase_augment or args.blur_augment):
        p.error("--no-augment turns augmentation off: drop it, or --blur-augment and --erase-augment")
    if not 0 <= args.dropout_scale <= 1.5:
        p.error("--dropout-scale must be between 0 and 1.5")
    if not 0 <= args.label_smoothing < 1:
        p.error("--label-smoothing must be at least 0 and below 1")
    if args.patience < 0:
        p.error("--patience must be at least 0 (0: never stop early)")
    for spec in args.extra_data:
        if spec.rpartition(":")[2] not in FORMATS:
            p.error(f"--extra-data {spec!r}: give PATH:FORMAT, FORMAT one of {', '.join(FORMATS)}")
    if args.init_from is not None and not Path(args.init_from).exists():
        p.error(f"--init-from {args.init_from}: no such file")
    val_format = args.val_format or args.format
    sets = [("--data", args.data, args.format, args.usage), ("--val-data", args.val_data, val_format, args.val_usage),
            *(("--extra-data", spec.rpartition(":")[0], spec.rpartition(":")[2], None) for spec in args.extra_data)]
    for option, path, fmt, _ in sets:
        problem = data_problem(option, path, fmt)
        if problem:
            p.error(problem)
    for option, path, fmt, usage in sets[:1] + sets[2:]:
        if same_faces((path, fmt, usage), (args.val_data, val_format, args.val_usage)):
            p.error(f"--val-data {args.val_data} holds the same faces as {option}"
                    + ("" if usage or fmt != "fer2013-csv" else " (no --usage: every row of the file)")
                    + ": validation faces must not be training faces; give another split (FER2013: --val-data its "
                    "PublicTest folder, or --usage Training --val-usage PublicTest on fer2013.csv)")
    problem = (unused_option_problem("--usage", args.usage is not None, "fer2013-csv", [args.format])
               or unused_option_problem("--val-usage", args.val_usage is not None, "fer2013-csv", [val_format])
               or unused_option_problem("--min-confidence", args.min_confidence != 0, "expw",
                                        [fmt for _, _, fmt, _ in sets]))
    if problem:
        p.error(problem)
    problem = model_out_problem("--out", args.out) or (
        args.checkpoint_dir and folder_problem("--checkpoint-dir", args.checkpoint_dir))
    if problem:
        p.error(problem)
    if args.domain_adversarial < 0:
        p.error("--domain-adversarial must be at least 0")
    if (args.average_from is None) != (args.average_out is None):
        p.error("--average-from and --average-out go together: the epoch the average starts at and where it is written")
    if args.average_from is not None:
        if not 1 <= args.average_from <= args.epochs:
            p.error(f"--average-from must be an epoch from 1 to --epochs ({args.epochs})")
        if args.average_every < 1:
            p.error("--average-every must be at least 1")
        problem = model_out_problem("--average-out", args.average_out)
        if problem:
            p.error(problem)
        if Path(args.average_out).resolve() == Path(args.out).resolve():
            p.error("--average-out must differ from --out: both models are written")
    if args.domain_adversarial > 0 and not args.extra_data:
        p.error("--domain-adversarial needs --extra-data: the faces of the second domain")
    return args


def same_faces(a: tuple[str, str, str | None], b: tuple[str, str, str | None]) -> bool:
    """Whether two (path, format, usage) data sets share faces: the same file or folder read the same way, with a
    Usage that does not tell them apart (no --usage takes every row)."""
    (path_a, fmt_a, usage_a), (path_b, fmt_b, usage_b) = a, b
    return (Path(path_a).resolve() == Path(path_b).resolve() and fmt_a == fmt_b
            and (usage_a is None or usage_b is None or usage_a == usage_b))


# options that may differ between a run and its --resume: they change nothing in the training itself
RESUME_MAY_CHANGE = frozenset({"resume", "stop_after", "patience", "checkpoint_dir"})


def options_changed(recorded: dict, now: dict) -> list[str]:
    """'name old -> new' for each option the interrupted run used differently (the learning-rate schedule, the
    data and the architecture are fixed when a run starts). An option newer than the run's record counts as
    unchanged while it is off (None, False, 0), as the run was trained without it."""
    return [f"{key} {recorded.get(key)!r} -> {now.get(key)!r}" for key in sorted(set(recorded) | set(now))
            if key not in RESUME_MAY_CHANGE and recorded.get(key) != now.get(key)
            and (key in recorded or now.get(key))]


def class_weights(labels: np.ndarray, mode: str, num_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    if mode == "none":
        return np.ones(num_classes)
    freq = np.where(counts > 0, counts, 1.0) / counts.sum()
    weights = 1.0 / (num_classes * freq)
    if mode == "sqrt":
        weights = np.sqrt(weights)
    weights = np.where(counts > 0, weights, 0.0)
    return weights / (weights * counts).sum() * counts.sum()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tf = import_tensorflow()
    import keras

    from fer_batch.labels import LABELS, NUM_CLASSES
    from training.augment import augment_batch
    from training.domain_adversarial import (DOMAIN, EXPRESSION, domain_sample_weights, expression_network,
                                             with_domain_head)
    from training.models import build

    keras.utils.set_random_seed(args.seed)
    out = Path(args.out)
    ckpt_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else out.with_suffix(".ckpt")
    last_path, state_path = ckpt_dir / "last.keras", ckpt_dir / "state.json"
    average_path = ckpt_dir / "average.npz"

    state = {"epoch": 0, "best_val_accuracy": -1.0, "history": []}
    adversarial = args.domain_adversarial > 0
    if args.resume:
        if not last_path.exists():
            print(f"--resume: no checkpoint at {last_path}", file=sys.stderr)
            return 2
        state = json.loads(state_path.read_text())
        changed = options_changed(state.get("args", {}), vars(args))
        if changed:
            print(f"--resume: the checkpoint in {ckpt_dir} was trained with other options ({'; '.join(changed)}); "
                  f"resume with the same ones, or start a new schedule from it with --init-from {last_path}",
                  file=sys.stderr)
            return 2
        trainer = keras.models.load_model(last_path, safe_mode=True)
        model = expression_network(trainer, args.arch) if adversarial else trainer
        print(f"resuming after epoch {state['epoch']} (best val accuracy {state['best_val_accuracy']:.4f})")
    else:
        model = build(args.arch, args.dropout_scale)
        if args.init_from:
            try:
                start = load_keras_model("--init-from", args.init_from)
            except ValueError as exc:
                print(f"train.py: error: {exc}", file=sys.stderr)
                return 2
            if [w.shape for w in start.get_weights()] != [w.shape for w in model.get_weights()]:
                print(f"train.py: error: --init-from {args.init_from} is a {start.name} network, whose weights do not "
                      f"fit --arch {args.arch}: give the --arch it was trained with", file=sys.stderr)
                return 2
            model.set_weights(start.get_weights())
            print(f"starting from the weights of {args.init_from}")
        trainer = with_domain_head(model) if adversarial else model
    size, channels = tuple(model.input_shape[1:3]), model.input_shape[3]

    t0 = time.time()
    loaded = []
    for option, path, fmt, usage in [("--data", args.data, args.format, args.usage),
                                     *(("--extra-data", *spec.rpartition(":")[::2], None) for spec in args.extra_data),
                                     ("--val-data", args.val_data, args.val_format or args.format, args.val_usage)]:
        try:
            loaded.append(load_dataset(path, fmt, size, channels, usage, args.min_confidence))
        except (ValueError, KeyError, OSError) as exc:   # no class folders, a bad label line, a CSV without its columns
            print(f"train.py: error: {load_problem(option, path, exc)}", file=sys.stderr)
            return 2
    train, *extras, val = loaded
    xs, ys, domains = [train.x], [train.y], [np.zeros(len(train.y), np.float32)]
    for extra in extras:
        xs.append(np.repeat(extra.x, args.extra_repeat, axis=0))
        ys.append(np.repeat(extra.y, args.extra_repeat, axis=0))
        domains.append(np.ones(len(extra.y) * args.extra_repeat, np.float32))
    x_train, y_train, d_train = np.concatenate(xs), np.concatenate(ys), np.concatenate(domains)
    try:   # after the data loaded, so that a failed start leaves no empty checkpoint folder behind
        for folder in (ckpt_dir, out.parent):
            folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"train.py: error: cannot make {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"loaded {len(y_train)} training and {len(val.y)} validation faces in {time.time() - t0:.0f}s; "
          f"train counts {dict(zip(LABELS, np.bincount(y_train, minlength=NUM_CLASSES).tolist()))}")

    weights = class_weights(y_train, args.class_weight, NUM_CLASSES).astype(np.float32)
    steps_per_epoch = int(np.ceil(len(y_train) / args.batch_size))
    if not args.resume:
        schedule = keras.optimizers.schedules.CosineDecay(
            args.lr * 0.1, decay_steps=steps_per_epoch * args.epochs, warmup_target=args.lr,
            warmup_steps=steps_per_epoch)
        expression_loss = keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing)
        if adversarial:
            trainer.compile(optimizer=keras.optimizers.Adam(schedule),
                            loss={EXPRESSION: expression_loss, DOMAIN: keras.losses.BinaryCrossentropy()},
                            loss_weights={EXPRESSION: 1.0, DOMAIN: args.domain_adversarial},
                            metrics={EXPRESSION: ["accuracy"]})
        else:
            model.compile(optimizer=keras.optimizers.Adam(schedule), loss=expression_loss, metrics=["accuracy"])
    d_weights = domain_sample_weights(d_train) if adversarial else np.ones_like(d_train)   # unused without the head

    def train_epoch(epoch: int) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices((x_train, y_train, d_train, d_weights))
        ds = ds.shuffle(len(y_train), seed=args.seed + epoch).batch(args.batch_size)
        ds = ds.enumerate().map(lambda i, xy: _prepare(i, xy, epoch), num_parallel_calls=1)
        return ds.prefetch(2)

    def _prepare(i, xyd, epoch):
        x, y, d, dw = xyd
        if not args.no_augment:
            x = augment_batch(x, tf.stack([tf.cast(args.seed + epoch, tf.int64), i]), blur=args.blur_augment,
                              erase=args.erase_augment)
        if adversarial:
            return x, {EXPRESSION: tf.one_hot(y, NUM_CLASSES), DOMAIN: d[:, None]}, {EXPRESSION: tf.gather(weights, y), DOMAIN: dw}
        return x, tf.one_hot(y, NUM_CLASSES), tf.gather(weights, y)

    val_y = tf.one_hot(val.y, NUM_CLASSES)
    val_ds = tf.data.Dataset.from_tensor_slices(
        (val.x, {EXPRESSION: val_y, DOMAIN: np.zeros((len(val.y), 1), np.float32)} if adversarial else val_y)).batch(256)
    average = None
    if args.average_from is not None:
        average = WeightAverage(model, after_step=(args.average_from - 1) * steps_per_epoch, every=args.average_every)
        if args.resume:
            average.load(average_path)
        else:   # an earlier run's sums in the same checkpoint folder must not join a new run's average
            average_path.unlink(missing_ok=True)
    patience_left = args.patience
    last_epoch = args.epochs if args.stop_after is None else min(args.epochs, state["epoch"] + args.stop_after)
    for epoch in range(state["epoch"], last_epoch):
        t = time.time()
        callbacks = [snapshot_callback(average, steps_per_epoch, epoch)] if average is not None else []
        history = trainer.fit(train_epoch(epoch), epochs=1, verbose=0, shuffle=False, callbacks=callbacks).history
        fitted = {key: float(values[0]) for key, values in history.items()}
        scores = trainer.evaluate(val_ds, verbose=0, return_dict=True)
        prefix = f"{EXPRESSION}_" if adversarial else ""
        val_loss, val_acc = scores[prefix + "loss"], scores[prefix + "accuracy"]
        row = {"epoch": epoch + 1, "loss": fitted[prefix + "loss"], "accuracy": fitted[prefix + "accuracy"],
               "val_loss": float(val_loss), "val_accuracy": float(val_acc), "seconds": round(time.time() - t, 1)}
        if adversarial:
            row["domain_loss"] = fitted[f"{DOMAIN}_loss"]   # ln 2 = 0.693 when the head cannot tell the domains apart
        state["history"].append(row)
        improved = val_acc > state["best_val_accuracy"]
        if improved:
            state["best_val_accuracy"] = float(val_acc)
            state["best_epoch"] = epoch + 1
            _atomic_save(_without_optimizer(model), out)
            patience_left = args.patience
        else:
            patience_left -= 1
        state["epoch"] = epoch + 1
        state["args"] = vars(args)
        if average is not None and average.count:
            state["average"] = _write_average(average, model, val_ds, adversarial, Path(args.average_out))
            average.save(average_path)
        _atomic_save(trainer, last_path)
        _atomic_write(state_path, json.dumps(state, indent=1))
        print(f"epoch {epoch + 1}/{args.epochs} loss {row['loss']:.4f} acc {row['accuracy']:.4f} "
              f"val_loss {val_loss:.4f} val_acc {val_acc:.4f}{' *' if improved else ''} ({row['seconds']:.0f}s)"
              + (f" domain_loss {row['domain_loss']:.4f}" if adversarial else ""), flush=True)
        if average is not None and average.count:
            print(f"  average of {state['average']['snapshots']} snapshots: val_acc "
                  f"{state['average']['val_accuracy']:.4f} ({args.average_out})", flush=True)
        if args.patience and patience_left <= 0:
            print(f"early stop: no better val accuracy for {args.patience} epochs")
            break
    if state["epoch"] < args.epochs and not (args.patience and patience_left <= 0):
        print(f"stopped after epoch {state['epoch']} of {args.epochs}: continue with the same command and --resume")
    print(f"best val accuracy {state['best_val_accuracy']:.4f} at epoch {state.get('best_epoch')}; model in {out}")
    return 0


def _write_average(average: WeightAverage, model, val_ds, adversarial: bool, path: Path) -> dict:
    """Writes the averaged network and scores it on the validation faces; the training network is left as it was."""
    from training.domain_adversarial import EXPRESSION

    averaged = _without_optimizer(model)
    averaged.set_weights(average.mean())
    averaged.compile(loss="categorical_crossentropy", metrics=["accuracy"])
    faces = val_ds.map(lambda x, y: (x, y[EXPRESSION])) if adversarial else val_ds
    scores = averaged.evaluate(faces, verbose=0, return_dict=True)
    _atomic_save(averaged, path)
    return {"snapshots": average.count, "val_accuracy": float(scores["accuracy"]), "val_loss": float(scores["loss"])}


def _without_optimizer(model):
    """A copy for shipping: same architecture and weights, no optimizer state (a third of the size)."""
    import keras

    clean = keras.Model.from_config(model.get_config())  # clone_model would carry the compiled optimizer along
    clean.set_weights(model.get_weights())
    return clean


def _atomic_save(model, path: Path) -> None:
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    tmp.replace(path)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    raise SystemExit(main())
