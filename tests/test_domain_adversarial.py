"""Domain-adversarial fine-tuning (training/domain_adversarial.py, train.py --domain-adversarial)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest


def test_gradient_reversal_is_the_identity_forward_and_flips_the_gradient():
    import tensorflow as tf

    from training.domain_adversarial import GradientReversal

    x = tf.constant([[1.0, -2.0, 3.0]])
    layer = GradientReversal(scale=0.5)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * tf.constant([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), [[-0.5, -1.0, -1.5]])
    assert GradientReversal.from_config(layer.get_config()).scale == 0.5


def test_domain_weights_balance_the_two_domains():
    from training.domain_adversarial import domain_sample_weights

    domains = np.array([0.0] * 9 + [1.0] * 3)
    weights = domain_sample_weights(domains)
    assert weights.mean() == pytest.approx(1.0)
    assert weights[domains == 0].sum() == pytest.approx(weights[domains == 1].sum())
    with pytest.raises(ValueError, match="both domains"):
        domain_sample_weights(np.zeros(5))


def test_the_head_shares_the_network_and_the_shipped_part_is_the_plain_network():
    import keras

    from training.domain_adversarial import EXPRESSION, expression_network, with_domain_head
    from training.models import build

    keras.utils.set_random_seed(2)
    model = build("vgg_tiny")
    trainer = with_domain_head(model)
    x = np.random.default_rng(0).random((3, 48, 48, 1), np.float32)
    outputs = trainer.predict(x, verbose=0)
    np.testing.assert_allclose(outputs[EXPRESSION], model.predict(x, verbose=0), atol=1e-6)
    assert outputs["domain"].shape == (3, 1)
    inner = expression_network(trainer, "vgg_tiny")
    assert inner.name == "vgg_tiny" and inner.count_params() == model.count_params()
    with pytest.raises(ValueError, match="Flatten"):
        with_domain_head(keras.Sequential([keras.Input((4,)), keras.layers.Dense(7)]))


def _shifted_faces(source: Path, target: Path) -> None:
    """A second domain: the same kind of faces, blurred and darker (as faces cut from large photos are softer)."""
    for path in source.rglob("*.png"):
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(out), (cv2.GaussianBlur(img, (0, 0), 2.0) * 0.7).astype(np.uint8))


def test_adversarial_training_writes_the_plain_network_records_its_option_and_resumes(tmp_path, astronaut_bgr):
    from fer_batch.classify import load_model
    from test_training import _write_class_folders
    from training.model_card import train_command, training_data
    from training.train import main as train_main

    _write_class_folders(tmp_path / "train", per_class=6, seed=5)
    _write_class_folders(tmp_path / "val", per_class=2, seed=6)
    _shifted_faces(tmp_path / "train", tmp_path / "wild")
    out, ckpt = tmp_path / "model.keras", tmp_path / "model.ckpt"
    common = ["--data", str(tmp_path / "train"), "--extra-data", f"{tmp_path / 'wild'}:folders", "--extra-repeat", "2",
              "--val-data", str(tmp_path / "val"), "--arch", "vgg_tiny", "--batch-size", "16", "--out", str(out),
              "--checkpoint-dir", str(ckpt), "--domain-adversarial", "0.3"]
    assert train_main(common + ["--epochs", "2", "--stop-after", "1"]) == 0
    state = json.loads((ckpt / "state.json").read_text())
    assert np.isfinite(state["history"][0]["domain_loss"]) and state["history"][0]["domain_loss"] > 0
    assert "--domain-adversarial 0.3" in train_command(state["args"])
    assert "domain-adversarial head, loss weight 0.3" in training_data(state["args"])
    classifier = load_model(out, batch_size=8)     # the run-time loader (safe mode) takes the shipped part as it is
    probs = classifier.predict([astronaut_bgr[55:180, 170:290]] * 3)
    assert probs.shape == (3, 7) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)

    resumed = tmp_path / "resumed.ckpt"
    shutil.copytree(ckpt, resumed)
    assert train_main(common[:-4] + ["--checkpoint-dir", str(resumed), "--domain-adversarial", "0.3",
                                     "--epochs", "2", "--resume"]) == 0
    state = json.loads((resumed / "state.json").read_text())
    assert [row["epoch"] for row in state["history"]] == [1, 2] and "domain_loss" in state["history"][1]

    with pytest.raises(SystemExit):
        train_main(["--data", str(tmp_path / "train"), "--val-data", str(tmp_path / "val"), "--out", str(out),
                    "--domain-adversarial", "0.3"])
