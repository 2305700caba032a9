"""Weight averaging along a training run (train.py --average-from): which steps it takes, their mean, and resuming."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_batch.classify import load_model
from training.weight_average import WeightAverage

from test_training import _write_class_folders


class _Weights:
    """Stands in for a Keras model where only get_weights() is read: the weights the optimizer left at a step."""

    def __init__(self):
        self.weights: list[np.ndarray] = []

    def get_weights(self) -> list[np.ndarray]:
        return self.weights


def test_snapshots_are_taken_after_every_n_steps_of_the_window_and_averaged():
    model = _Weights()
    average = WeightAverage(model, after_step=2, every=2)
    taken = []
    for step in range(1, 8):
        model.weights = [np.full((2, 3), step, np.float32), np.array([step], np.int64)]
        average.on_step(step)
        if average.due(step):
            taken.append(step)
    assert taken == [4, 6] and average.count == 2
    mean_kernel, counter = average.mean()
    np.testing.assert_array_equal(mean_kernel, np.full((2, 3), 5.0, np.float32))
    assert mean_kernel.dtype == np.float32
    assert counter.tolist() == [6]   # not floating point: the latest snapshot's value, never an average


def test_no_snapshot_no_mean_and_bad_arguments_refused():
    average = WeightAverage(_Weights(), after_step=0, every=1)
    with pytest.raises(ValueError, match="no snapshot"):
        average.mean()
    with pytest.raises(ValueError):
        WeightAverage(_Weights(), after_step=0, every=0)


def test_saved_sums_continue_the_same_average(tmp_path):
    first = WeightAverage(_Weights(), after_step=0, every=1)
    first.add([np.array([1.0, 2.0]), np.zeros((1, 1))])
    first.add([np.array([3.0, 6.0]), np.ones((1, 1))])
    first.save(tmp_path / "average.npz")
    resumed = WeightAverage(_Weights(), after_step=0, every=1)
    resumed.load(tmp_path / "average.npz")
    resumed.add([np.array([5.0, 10.0]), np.full((1, 1), 2.0)])
    np.testing.assert_allclose(resumed.mean()[0], [3.0, 6.0])
    np.testing.assert_allclose(resumed.mean()[1], [[1.0]])


def _weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.models.load_model(path, safe_mode=True).get_weights()


def test_train_averages_the_networks_at_epoch_ends_across_a_resume(tmp_path, astronaut_bgr):
    from training.train import main as train_main

    _write_class_folders(tmp_path / "train", per_class=20, seed=5)   # 140 faces: 9 steps of 16 an epoch
    _write_class_folders(tmp_path / "val", per_class=4, seed=6)
    averaged = tmp_path / "averaged.keras"
    command = ["--data", str(tmp_path / "train"), "--val-data", str(tmp_path / "val"), "--arch", "vgg_tiny",
               "--epochs", "2", "--batch-size", "16", "--out", str(tmp_path / "best.keras"),
               "--average-from", "1", "--average-every", "9", "--average-out", str(averaged)]
    last = tmp_path / "best.ckpt" / "last.keras"

    assert train_main([*command, "--stop-after", "1"]) == 0
    state = json.loads((tmp_path / "best.ckpt" / "state.json").read_text())
    assert state["average"]["snapshots"] == 1
    after_epoch_1 = _weights(last)
    for mean, weight in zip(_weights(averaged), after_epoch_1):   # one snapshot, at the end of epoch 1
        np.testing.assert_allclose(mean, weight, rtol=1e-6, atol=1e-7)

    assert train_main([*command, "--resume"]) == 0
    state = json.loads((tmp_path / "best.ckpt" / "state.json").read_text())
    assert state["average"]["snapshots"] == 2 and 0 <= state["average"]["val_accuracy"] <= 1
    after_epoch_2 = _weights(last)
    assert any(not np.allclose(a, b) for a, b in zip(after_epoch_1, after_epoch_2))
    for mean, w1, w2 in zip(_weights(averaged), after_epoch_1, after_epoch_2):
        np.testing.assert_allclose(mean, (w1.astype(np.float64) + w2) / 2, rtol=1e-5, atol=1e-6)

    probs = load_model(averaged, batch_size=8).predict([astronaut_bgr[55:180, 170:290]])
    assert probs.shape == (1, 7) and np.isclose(probs.sum(), 1, atol=1e-5)

    assert train_main([*command, "--stop-after", "1"]) == 0   # a new run in the same folder starts a new average
    assert json.loads((tmp_path / "best.ckpt" / "state.json").read_text())["average"]["snapshots"] == 1


@pytest.mark.parametrize("change, message", [
    (["--average-from", "1"], "--average-from and --average-out go together"),
    (["--average-out", "avg.keras"], "--average-from and --average-out go together"),
    (["--average-from", "0", "--average-out", "avg.keras"], "--average-from must be an epoch from 1 to --epochs (3)"),
    (["--average-from", "4", "--average-out", "avg.keras"], "--average-from must be an epoch from 1 to --epochs (3)"),
    (["--average-from", "2", "--average-every", "0", "--average-out", "avg.keras"], "--average-every must be at least 1"),
    (["--average-from", "2", "--average-out", "m.keras"], "--average-out must differ from --out"),
])
def test_train_refuses_bad_averaging_options_in_one_line(change, message, train_refusal):
    assert message in train_refusal(change)


def test_averaging_leaves_the_run_itself_unchanged(tmp_path):
    """The best-epoch model of a run with --average-from is the one the same run without it writes: its control."""
    from training.train import main as train_main

    _write_class_folders(tmp_path / "train", per_class=10, seed=5)
    _write_class_folders(tmp_path / "val", per_class=3, seed=6)
    common = ["--data", str(tmp_path / "train"), "--val-data", str(tmp_path / "val"), "--arch", "vgg_tiny",
              "--epochs", "1", "--batch-size", "16"]
    assert train_main([*common, "--out", str(tmp_path / "plain.keras")]) == 0
    assert train_main([*common, "--out", str(tmp_path / "with.keras"), "--average-from", "1",
                       "--average-every", "2", "--average-out", str(tmp_path / "averaged.keras")]) == 0
    for a, b in zip(_weights(tmp_path / "plain.keras"), _weights(tmp_path / "with.keras")):
        np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, b) for a, b in zip(_weights(tmp_path / "with.keras"),
                                                        _weights(tmp_path / "averaged.keras")))

    from fer_batch.labels import LABELS
    from training.models_table import main as table_main

    per_class = {label: {"recall": 0.25 + 0.1 * i} for i, label in enumerate(LABELS)}
    for name, accuracy in (("averaged", 0.6123), ("with", 0.6009)):
        (tmp_path / f"eval-{name}.json").write_text(json.dumps(
            {"accuracy": accuracy, "macro_f1": 0.6, "per_class": per_class, "command": f"python training/evaluate.py --name {name}"}))
    state = tmp_path / "with.ckpt" / "state.json"
    table = tmp_path / "models.md"
    assert table_main(["--averages", f"{state}:{tmp_path / 'eval-averaged.json'}",
                       "--runs", f"{state}:{tmp_path / 'eval-with.json'}", "--out", str(table)]) == 0
    rows = [line for line in table.read_text().splitlines() if line.startswith("| `")]
    snapshots = json.loads(state.read_text())["average"]["snapshots"]
    assert snapshots == 2   # 70 faces in batches of 16: 5 steps, a snapshot after steps 2 and 4
    assert rows[0].startswith(f"| `{tmp_path / 'averaged.keras'}` | `vgg_tiny` | scratch |")
    assert f"the mean of {snapshots} snapshots of the weights, every 2 steps from epoch 1" in rows[0] and "0.6123" in rows[0]
    assert rows[1].startswith(f"| `{tmp_path / 'with.keras'}` |") and "0.6009" in rows[1]
    assert f"--average-from 1 --average-every 2 --average-out {tmp_path / 'averaged.keras'}" in table.read_text()
