"""Refitting a model's dense tail on frozen convolutional features (training/refit_tail.py)."""
from __future__ import annotations

import json
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

    from training.eval_end_to_end import DetectionCache
    from training.expw_crops import photo_fold
    from training.refit_tail import expw_fold_crops

    crops, labels, aligned = expw_fold_crops(expw_scenes, 0, 2, "mtcnn", DetectionCache(None, "mtcnn"), 0.4, 0.0)
    in_fold = sum(photo_fold(f"{name}.jpg", 2) == 0 for name in NAMES)
    found = int(aligned.sum())
    assert in_fold - 1 <= found <= in_fold and found > 0   # the rough label boxes match MTCNN's at IoU >= 0.4 mostly
    assert len(crops) == len(labels) == len(aligned) == 2 * found   # each found face cut twice
    assert all(c.shape[0] == c.shape[1] > 0 for c in crops)
    assert sorted(labels[aligned]) == sorted(labels[~aligned])


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
