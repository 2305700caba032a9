"""Refitting a model's dense tail on frozen convolutional features (training/refit_tail.py)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from test_expw_folds import expw_scenes  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    import keras

    from training.models import build

    keras.utils.set_random_seed(5)
    path = tmp_path_factory.mktemp("base") / "base.keras"
    build("vgg_tiny").save(path)
    return path


def test_split_and_join_give_the_same_network(base_model):
    import keras

    from training.refit_tail import join, split_at_flatten

    model = keras.models.load_model(base_model, compile=False)
    body, tail = split_at_flatten(model, dropout_scale=0.5)
    assert [layer.rate for layer in tail.layers if hasattr(layer, "rate")] == pytest.approx(
        [layer.rate / 2 for layer in model.layers[len(body.layers):] if hasattr(layer, "rate")])
    x = np.random.default_rng(0).random((6, 48, 48, 1), np.float32)
    joined = join(body, tail, model.name)
    np.testing.assert_allclose(joined.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    assert joined.count_params() == model.count_params()


def test_split_needs_one_flatten_layer():
    import keras

    from training.refit_tail import split_at_flatten

    inputs = keras.Input((48, 48, 1))
    model = keras.Model(inputs, keras.layers.Dense(7)(keras.layers.GlobalAveragePooling2D()(inputs)))
    with pytest.raises(ValueError, match="Flatten"):
        split_at_flatten(model)


def test_refit_changes_only_the_tail_is_reproducible_and_renders_its_command(base_model, expw_scenes, tmp_path):  # noqa: F811
    import keras

    from test_training import _write_class_folders
    from training.model_card import train_command, training_data
    from training.refit_tail import main

    _write_class_folders(tmp_path / "train", per_class=4, seed=1)
    cache = tmp_path / "boxes.npz"
    outs = [tmp_path / "a.keras", tmp_path / "b.keras"]
    for out in outs:
        assert main(["--model", str(base_model), "--data", str(tmp_path / "train"), "--expw", str(expw_scenes),
                     "--expw-fold", "1", "--detections-cache", str(cache), "--epochs", "2", "--lr", "0.01",
                     "--batch-size", "16", "--out", str(out)]) == 0
    base = keras.models.load_model(base_model, compile=False)
    first, second = (keras.models.load_model(out, compile=False, safe_mode=True) for out in outs)
    flatten = next(i for i, layer in enumerate(base.layers) if isinstance(layer, keras.layers.Flatten))
    for before, after in zip(base.layers[:flatten], first.layers[:flatten]):
        for w0, w1 in zip(before.get_weights(), after.get_weights()):
            np.testing.assert_array_equal(w0, w1)   # the convolutional body is frozen
    assert any(not np.array_equal(w0, w1) for w0, w1 in zip(base.layers[-1].get_weights(), first.layers[-1].get_weights()))
    for w1, w2 in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(w1, w2)       # same seed, same model
    state = json.loads((outs[0].with_suffix(".ckpt") / "state.json").read_text())
    assert state["epoch"] == 2 and state["args"]["arch"] == base.name and cache.exists()
    command = train_command(state["args"])
    assert command.startswith("python training/refit_tail.py --model ") and "--expw-fold 1" in command
    assert command == state["command"] and f"--out {outs[0]}" in command
    assert "fold 1 of 2" in training_data(state["args"]) and "tail only" in training_data(state["args"])


def test_expw_fold_faces_are_cut_aligned_and_not(expw_scenes, tmp_path):  # noqa: F811
    from test_expw_folds import NAMES

    from training.expw_detections import DetectionCache
    from training.expw_crops import photo_fold
    from training.refit_tail import expw_fold_crops

    crops, labels, aligned = expw_fold_crops(expw_scenes, 0, 2, "mtcnn", DetectionCache(None, "mtcnn"), 0.4, 0.0)
    in_fold = sum(photo_fold(f"{name}.jpg", 2) == 0 for name in NAMES)
    found = int(aligned.sum())
    assert in_fold - 1 <= found <= in_fold and found > 0   # the rough label boxes match MTCNN's at IoU >= 0.4 mostly
    assert len(crops) == len(labels) == len(aligned) == 2 * found   # each found face cut twice
    assert all(c.shape[0] == c.shape[1] > 0 for c in crops)
    assert sorted(labels[aligned]) == sorted(labels[~aligned])


def test_several_folds_give_the_union_of_their_faces(expw_scenes):  # noqa: F811
    from training.expw_detections import DetectionCache
    from training.refit_tail import expw_fold_crops

    cache = DetectionCache(None, "mtcnn")
    per_fold = [expw_fold_crops(expw_scenes, k, 2, "mtcnn", cache, 0.4, 0.0)[1] for k in (0, 1)]
    both = expw_fold_crops(expw_scenes, [0, 1], 2, "mtcnn", cache, 0.4, 0.0)[1]
    assert sorted(both) == sorted(np.concatenate(per_fold)) and len(per_fold[0]) and len(per_fold[1])
    nested = expw_fold_crops(expw_scenes, [0, 2], 4, "mtcnn", cache, 0.4, 0.0)[1]
    assert sorted(nested) == sorted(per_fold[0])


def test_class_bias_fit_corrects_a_class_called_too_often():
    from training.refit_tail import fit_class_bias

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 700)
    logits = 2.0 * np.eye(7)[labels] + rng.normal(0, 1, (700, 7))
    logits[:, 0] += 1.5                         # class 0 favoured regardless of the face
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    def nll(shift):
        z = np.log(probabilities) + shift
        return -(z[np.arange(700), labels] - np.log(np.exp(z).sum(axis=1))).mean()

    shift = fit_class_bias(probabilities, labels)
    assert shift.mean() == pytest.approx(0, abs=1e-9) and shift[0] < shift[1:].min() - 1.0
    assert nll(shift) < nll(np.zeros(7)) - 0.05
    assert ((np.log(probabilities) + shift).argmax(1) == 0).mean() < (probabilities.argmax(1) == 0).mean()
    balanced = fit_class_bias(np.exp(logits - 1.5 * np.eye(7)[0]) / np.exp(logits - 1.5 * np.eye(7)[0]).sum(1, keepdims=True), labels)
    assert np.abs(balanced).max() < 0.3


def test_refit_with_class_bias_changes_only_the_output_bias(base_model, expw_scenes, tmp_path):  # noqa: F811
    import keras

    from test_training import _write_class_folders
    from training.model_card import train_command, training_data
    from training.refit_tail import main

    _write_class_folders(tmp_path / "train", per_class=4, seed=1)
    common = ["--model", str(base_model), "--data", str(tmp_path / "train"), "--expw", str(expw_scenes),
              "--folds", "4", "--expw-fold", "0", "1", "3", "--epochs", "1", "--batch-size", "16"]
    plain, shifted = tmp_path / "plain.keras", tmp_path / "shifted.keras"
    assert main(common + ["--out", str(plain)]) == 0
    assert main(common + ["--fit-class-bias", "--out", str(shifted)]) == 0
    a, b = (keras.models.load_model(p, compile=False, safe_mode=True) for p in (plain, shifted))
    weights_a, weights_b = a.get_weights(), b.get_weights()
    for w1, w2 in zip(weights_a[:-1], weights_b[:-1]):
        np.testing.assert_array_equal(w1, w2)
    shift = weights_b[-1] - weights_a[-1]
    assert np.abs(shift).max() > 1e-3 and abs(float(shift.mean())) < 1e-4
    state = json.loads((shifted.with_suffix(".ckpt") / "state.json").read_text())
    assert "--expw-fold 0 1 3 --folds 4" in train_command(state["args"]) and "--fit-class-bias" in state["command"]
    assert "folds 0, 1, 3 of 4" in training_data(state["args"]) and "class biases fitted" in training_data(state["args"])
    with pytest.raises(SystemExit):
        main(common[:-4] + ["--expw-fold", "4", "--out", str(tmp_path / "never.keras")])   # only folds 0-3 of 4


def test_bootstrap_targets_mix_the_label_with_the_teacher():
    from training.refit_tail import bootstrap_targets

    rng = np.random.default_rng(3)
    teacher = rng.dirichlet(np.ones(7), 50).astype(np.float32)
    labels = rng.integers(0, 7, 50)
    np.testing.assert_array_equal(bootstrap_targets(labels, teacher, 1.0), np.eye(7)[labels])
    np.testing.assert_allclose(bootstrap_targets(labels, teacher, 0.0), teacher, atol=1e-7)
    mixed = bootstrap_targets(labels, teacher, 0.6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-6)
    assert (mixed.argmax(axis=1) == labels).all()       # more than half the weight stays on the label
    np.testing.assert_allclose(mixed[np.arange(50), labels], 0.6 + 0.4 * teacher[np.arange(50), labels], atol=1e-6)


def refit_without_and_with(option: list[str], base_model: Path, expw_scenes: Path, tmp_path: Path):
    """The same small refit run twice, without and with `option`: (the runner's arguments but --out, whether the two
    tails differ, the two runs' recorded states)."""
    import keras

    from test_training import _write_class_folders
    from training.refit_tail import main

    _write_class_folders(tmp_path / "train", per_class=4, seed=1)
    common = ["--model", str(base_model), "--data", str(tmp_path / "train"), "--expw", str(expw_scenes),
              "--expw-fold", "1", "--epochs", "2", "--lr", "0.01", "--batch-size", "16"]
    plain, changed = tmp_path / "plain.keras", tmp_path / "changed.keras"
    assert main(common + ["--out", str(plain)]) == 0
    assert main(common + option + ["--out", str(changed)]) == 0
    a, b = (keras.models.load_model(p, compile=False, safe_mode=True) for p in (plain, changed))
    differ = any(not np.array_equal(w1, w2) for w1, w2 in zip(a.get_weights(), b.get_weights()))
    states = [json.loads((p.with_suffix(".ckpt") / "state.json").read_text()) for p in (plain, changed)]
    return common, differ, states


def test_refit_with_bootstrapped_expw_targets_trains_a_different_tail(base_model, expw_scenes, tmp_path):  # noqa: F811
    from training.model_card import training_data
    from training.refit_tail import main

    common, differ, states = refit_without_and_with(["--expw-label-trust", "0.3"], base_model, expw_scenes, tmp_path)
    assert differ
    assert "--expw-label-trust" not in states[0]["command"] and "--expw-label-trust 0.3" in states[1]["command"]
    assert "0.3 label" in training_data(states[1]["args"]) and "label," not in training_data(states[0]["args"])
    with pytest.raises(SystemExit):
        main(common + ["--expw-label-trust", "1.5", "--out", str(tmp_path / "never.keras")])


def test_model_card_of_a_refitted_model_lists_both_commands(expw_scenes, tmp_path, capsys):  # noqa: F811
    from test_training import _write_class_folders
    from training.evaluate import main as evaluate_main
    from training.model_card import main as card_main
    from training.refit_tail import main as refit_main
    from training.train import main as train_main

    _write_class_folders(tmp_path / "train", per_class=3, seed=1)
    _write_class_folders(tmp_path / "val", per_class=2, seed=2)
    base, refitted = tmp_path / "base.keras", tmp_path / "refit.keras"
    assert train_main(["--data", str(tmp_path / "train"), "--val-data", str(tmp_path / "val"), "--arch", "vgg_tiny",
                       "--epochs", "1", "--batch-size", "16", "--out", str(base)]) == 0
    assert refit_main(["--model", str(base), "--data", str(tmp_path / "train"), "--expw", str(expw_scenes),
                       "--expw-fold", "0", "--epochs", "1", "--batch-size", "16", "--out", str(refitted)]) == 0
    assert evaluate_main(["--model", str(refitted), "--data", str(tmp_path / "val"), "--name", "r",
                          "--out-dir", str(tmp_path)]) == 0
    states = [str(base.with_suffix(".ckpt") / "state.json"), str(refitted.with_suffix(".ckpt") / "state.json")]
    card = tmp_path / "CARD.md"
    assert card_main(["--model", str(refitted), "--state", *states, "--eval", str(tmp_path / "eval-r.json"),
                      "--out", str(card)]) == 0
    text = card.read_text()
    assert "python training/train.py" in text and f"python training/refit_tail.py --model {base}" in text
    assert "Then the dense tail" in text and "refitted tail on both" in text and "(1 epochs in all)" not in text
    with pytest.raises(SystemExit):
        card_main(["--model", str(refitted), "--state", states[1], "--eval", str(tmp_path / "eval-r.json"),
                   "--out", str(card)])
    assert "needs the history of the run it started from" in capsys.readouterr().err


def test_photo_shares_nest_follow_their_fraction_and_their_seed():
    from training.expw_crops import photo_kept

    names = [f"scene_{i}.jpg" for i in range(4000)]
    kept = {f: {n for n in names if photo_kept(n, f, seed=0)} for f in (0.125, 0.25, 0.5, 1.0)}
    assert kept[0.125] <= kept[0.25] <= kept[0.5] <= kept[1.0] == set(names)
    for fraction, chosen in kept.items():
        assert abs(len(chosen) / len(names) - fraction) < 0.03
    other_seed = {n for n in names if photo_kept(n, 0.5, seed=1)}
    assert 0.35 < len(other_seed & kept[0.5]) / len(kept[0.5]) < 0.65     # another seed, another half


def test_refit_on_a_share_of_the_photos_uses_only_their_faces(base_model, expw_scenes, tmp_path):  # noqa: F811
    from test_expw_folds import NAMES

    from training.expw_detections import DetectionCache
    from training.expw_crops import photo_kept
    from training.refit_tail import expw_fold_crops

    cache = DetectionCache(None, "mtcnn")
    everything = expw_fold_crops(expw_scenes, [0, 1], 2, "mtcnn", cache, 0.4, 0.0)[1]
    kept_names = [n for n in NAMES if photo_kept(f"{n}.jpg", 0.5, 3)]
    assert 0 < len(kept_names) < len(NAMES)                 # seed 3 keeps some of the 8 scenes, not all
    half = expw_fold_crops(expw_scenes, [0, 1], 2, "mtcnn", cache, 0.4, 0.0, photo_fraction=0.5, photo_seed=3)[1]
    assert 0 < len(half) < len(everything)
    from_kept = Counter(NAMES.index(n) % 7 for n in kept_names for _ in range(2))   # each face cut aligned and not
    assert Counter(half.tolist()) <= from_kept and len(half) >= 2 * (len(kept_names) - 1)

    from test_training import _write_class_folders
    from training.model_card import train_command, training_data
    from training.refit_tail import main

    _write_class_folders(tmp_path / "train", per_class=4, seed=1)
    out = tmp_path / "share.keras"
    assert main(["--model", str(base_model), "--data", str(tmp_path / "train"), "--expw", str(expw_scenes),
                 "--expw-fold", "0", "1", "--expw-photo-fraction", "0.5", "--expw-photo-seed", "3", "--epochs", "1",
                 "--batch-size", "16", "--out", str(out)]) == 0
    state = json.loads((out.with_suffix(".ckpt") / "state.json").read_text())
    assert "--expw-photo-fraction 0.5 --expw-photo-seed 3" in train_command(state["args"]) == state["command"]
    assert "(0.5 of the photos, seed 3)" in training_data(state["args"])
    with pytest.raises(SystemExit):
        main(["--model", str(out), "--data", str(tmp_path / "train"), "--expw", str(expw_scenes), "--expw-fold", "0",
              "--expw-photo-fraction", "0", "--out", str(tmp_path / "never.keras")])
