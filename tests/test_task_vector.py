"""Moving a model along its fine-tuning's change of weights (training/task_vector.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest


def _perturbed(model, scale: float, seed: int):
    """The model with every weight moved by seeded noise (variances scaled, so they stay positive)."""
    rng = np.random.default_rng(seed)
    weights = []
    for variable, w in zip(model.weights, model.get_weights()):
        if variable.path.endswith("moving_variance"):
            weights.append((w * rng.uniform(0.5, 1.5, w.shape)).astype(w.dtype))
        else:
            weights.append((w + scale * rng.standard_normal(w.shape)).astype(w.dtype))
    model.set_weights(weights)
    return model


@pytest.fixture(scope="module")
def base_and_tuned(tmp_path_factory) -> tuple[Path, Path]:
    import keras

    from training.models import build

    keras.utils.set_random_seed(3)
    folder = tmp_path_factory.mktemp("task_vector")
    base = _perturbed(build("vgg_tiny"), 0.05, seed=1)
    base.save(folder / "base.keras")
    _perturbed(base, 0.05, seed=2).save(folder / "tuned.keras")
    return folder / "base.keras", folder / "tuned.keras"


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0])
def test_every_weight_moves_alpha_times_the_change(base_and_tuned, alpha):
    import keras

    from training.task_vector import along_task_vector

    base_path, tuned_path = base_and_tuned
    base = keras.models.load_model(base_path, compile=False).get_weights()
    tuned = keras.models.load_model(tuned_path, compile=False)
    moved = along_task_vector(keras.models.load_model(base_path, compile=False), tuned, alpha)
    for variable, b, t, m in zip(moved.weights, base, tuned.get_weights(), moved.get_weights()):
        expected = b + alpha * (t - b)
        if variable.path.endswith("moving_variance"):
            expected = np.maximum(expected, 1e-3 * b.min())
        np.testing.assert_allclose(m, expected, rtol=1e-5, atol=1e-6, err_msg=variable.path)


def test_an_extrapolation_keeps_every_variance_positive(base_and_tuned):
    import keras

    from training.task_vector import along_task_vector

    base_path, tuned_path = base_and_tuned
    moved = along_task_vector(keras.models.load_model(base_path, compile=False),
                              keras.models.load_model(tuned_path, compile=False), 4.0)
    variances = [w for v, w in zip(moved.weights, moved.get_weights()) if v.path.endswith("moving_variance")]
    assert variances and all((w > 0).all() for w in variances)
    x = np.random.default_rng(0).random((3, 48, 48, 1), np.float32)
    assert np.isfinite(moved.predict(x, verbose=0)).all()


def test_the_command_writes_a_model_the_tool_loads_and_a_record(base_and_tuned, tmp_path):
    import keras

    from fer_batch.classify import load_model
    from training.task_vector import along_task_vector, main

    base_path, tuned_path = base_and_tuned
    out = tmp_path / "moved.keras"
    assert main(["--base", str(base_path), "--tuned", str(tuned_path), "--alpha", "1.5", "--out", str(out)]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["alpha"] == 1.5 and record["out"] == str(out) and record["base"] == str(base_path) and record["tuned"] == str(tuned_path)
    assert record["command"].startswith("python training/task_vector.py --base ")
    expected = along_task_vector(keras.models.load_model(base_path, compile=False),
                                 keras.models.load_model(tuned_path, compile=False), 1.5)
    x = np.random.default_rng(1).random((4, 48, 48, 1), np.float32)
    np.testing.assert_allclose(keras.models.load_model(out, compile=False).predict(x, verbose=0),
                               expected.predict(x, verbose=0), atol=1e-6)
    probs = load_model(out, flip_tta=False, runtime="tensorflow").predict([np.full((60, 60, 3), 128, np.uint8)])
    assert probs.shape == (1, 7) and probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_models_of_two_architectures_are_refused_in_one_sentence(base_and_tuned, tmp_path):
    from training.models import build
    from training.task_vector import main

    other = tmp_path / "seed.keras"
    build("seed").save(other)
    with pytest.raises(SystemExit, match="do not share an architecture"):
        main(["--base", str(base_and_tuned[0]), "--tuned", str(other), "--alpha", "1", "--out", str(tmp_path / "m.keras")])
    assert not (tmp_path / "m.keras").exists()


@pytest.mark.parametrize("argv, message", [
    (["--alpha", "9"], "--alpha must be between"),
    (["--alpha", "nan"], "--alpha must be between"),
    (["--alpha", "1", "--tuned", "missing.keras"], "--tuned"),
])
def test_bad_arguments_are_refused_before_anything_is_written(base_and_tuned, tmp_path, argv, message):
    from training.task_vector import main

    base_path, tuned_path = base_and_tuned
    given = {"--base": str(base_path), "--tuned": str(tuned_path), "--out": str(tmp_path / "m.keras")}
    for option, value in zip(argv[::2], argv[1::2]):
        given[option] = str(tmp_path / value) if option == "--tuned" else value
    with pytest.raises(SystemExit, match=message):
        main([item for pair in given.items() for item in pair])
    assert not (tmp_path / "m.keras").exists()


def test_models_table_lists_the_moved_model_with_its_command(base_and_tuned, tmp_path):
    from fer_batch.labels import LABELS
    from training.models_table import main as table_main
    from training.task_vector import main

    base_path, tuned_path = base_and_tuned
    out = tmp_path / "moved.keras"
    main(["--base", str(base_path), "--tuned", str(tuned_path), "--alpha", "1.25", "--out", str(out)])
    per_class = {label: {"recall": 0.25 + 0.1 * i} for i, label in enumerate(LABELS)}
    for name, accuracy in (("moved", 0.6570), ("raw", 0.6609)):
        (tmp_path / f"eval-{name}.json").write_text(json.dumps(
            {"accuracy": accuracy, "macro_f1": 0.63, "per_class": per_class, "flip_tta": True,
             "command": f"python training/evaluate.py --name {name}"}))
    (tmp_path / "training.json").write_text(json.dumps({"epoch": 5, "best_epoch": 5, "args": {
        "data": "fer/train", "format": "folders", "arch": "vgg_small", "epochs": 5, "out": str(tuned_path)}}))
    table = tmp_path / "models.md"
    assert table_main(["--task-vectors", f"{out.with_suffix('.json')}:{tmp_path / 'eval-moved.json'}",
                       "--runs", f"{tmp_path / 'training.json'}:{tmp_path / 'eval-raw.json'}", "--out", str(table)]) == 0
    rows = [line for line in table.read_text().splitlines() if line.startswith("| `")]
    assert rows[0].startswith(f"| `{out}` | same | `{tuned_path}` | none: every weight base + 1.25 x (tuned - base)")
    assert "0.6570" in rows[0] and "| 0.250 | 0.350 |" in rows[0]
    assert rows[1].startswith(f"| `{tuned_path}` |")
    text = table.read_text()
    assert f"--alpha 1.25 --out {out}" in text and "python training/evaluate.py --name moved" in text
