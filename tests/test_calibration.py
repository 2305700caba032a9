"""training/calibration.py: temperature, calibration error, reliability and the report, on seeded synthetic faces."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fer_batch.labels import LABELS
from training import calibration
from training.expw_crops import photo_fold


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _overconfident(n: int, factor: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the 'model' says softmax(factor * z): overconfident when factor > 1."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, size=(n, len(LABELS)))
    truth = _softmax(logits)
    labels = np.array([rng.choice(len(LABELS), p=row) for row in truth])
    return _softmax(factor * logits), labels


def _faces_csv(path, probs, labels, photos, sides=None, unfound=0):
    rows = pd.DataFrame({"photo": photos, "face": 0, "label": [LABELS[i] for i in labels], "found": 1,
                         "predicted": [LABELS[i] for i in probs.argmax(axis=1)]})
    for k, label in enumerate(LABELS):
        rows[f"p_{label}"] = probs[:, k]
    if sides is not None:
        rows["box_side"] = sides
    missed = pd.DataFrame({"photo": [f"missed{i}.jpg" for i in range(unfound)], "face": 0, "label": "happy",
                           "found": 0, "predicted": ""})
    pd.concat([rows, missed], ignore_index=True).to_csv(path, index=False)


def test_temperature_keeps_the_top_expression_and_sums_to_one():
    probs, _ = _overconfident(200, 2.0, seed=1)
    for temperature in (0.5, 1.0, 3.0):
        scaled = calibration.with_temperature(probs, temperature)
        assert np.allclose(scaled.sum(axis=1), 1) and (scaled.argmax(axis=1) == probs.argmax(axis=1)).all()
    assert np.allclose(calibration.with_temperature(probs, 1.0), probs, atol=1e-9)
    assert calibration.with_temperature(probs, 3.0).max(axis=1).mean() < probs.max(axis=1).mean()


def test_fitted_temperature_undoes_a_known_overconfidence():
    probs, labels = _overconfident(4000, 2.0, seed=2)
    assert calibration.fit_temperature(probs, labels) == pytest.approx(2.0, rel=0.1)
    honest, honest_labels = _overconfident(4000, 1.0, seed=3)
    assert calibration.fit_temperature(honest, honest_labels) == pytest.approx(1.0, rel=0.1)


def test_calibration_error_of_a_hand_made_example():
    # four faces at confidence 0.95, two right: one bin, |0.5 - 0.95|; plus a calibrated pair at 0.5
    probs = np.full((6, len(LABELS)), 0.05 / 6)
    probs[:4, 0] = 0.95
    probs[4:, :] = 0.5 / 6
    probs[4:, 1] = 0.5
    labels = np.array([0, 0, 3, 3, 1, 2])
    expected = 4 / 6 * 0.45 + 2 / 6 * 0.0
    assert calibration.expected_calibration_error(probs, labels) == pytest.approx(expected)
    table = calibration.reliability(probs, labels)
    assert sum(row["faces"] for row in table) == 6
    top = [row for row in table if row["low"] == 0.9][0]
    assert top["faces"] == 4 and top["accuracy"] == 0.5 and top["mean_confidence"] == pytest.approx(0.95)


def test_accuracy_by_size_counts_each_face_once():
    sides = np.array([25, 39.9, 40, 100, 500])
    right = np.array([True, False, True, True, False])
    rows = calibration.accuracy_by_size(sides, right)
    assert [r["faces"] for r in rows] == [2, 1, 0, 1, 1]
    assert rows[0]["accuracy"] == 0.5 and rows[2]["accuracy"] is None and rows[-1]["high"] is None


def test_photo_groups_split_the_scored_fold_by_photo():
    photos = pd.Series([f"photo_{i}.jpg" for i in range(400)])
    in_fold0 = photos[[photo_fold(p, 2) == 0 for p in photos]]
    groups = calibration.photo_groups(in_fold0, fold=0, folds=2, cv=2)
    assert set(groups) == {0, 1} and min(np.bincount(groups)) > 50
    assert list(groups) == [photo_fold(p, 4) // 2 for p in in_fold0]


def test_report_cross_fits_the_temperature_and_scores_other_faces(tmp_path):
    probs, labels = _overconfident(600, 2.5, seed=4)
    photos = [f"p{i}.jpg" for i in range(600)]
    _faces_csv(tmp_path / "wild.csv", probs, labels, photos, sides=np.linspace(20, 300, 600), unfound=7)
    other, other_labels = _overconfident(300, 1.0, seed=5)
    _faces_csv(tmp_path / "other.csv", other, other_labels, [f"o{i}" for i in range(300)])
    assert calibration.main([str(tmp_path / "wild.csv"), "--also", str(tmp_path / "other.csv"), "--name", "t",
                             "--out-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "t.json").read_text())
    assert result["faces"] == 600 and set(result["cv_temperatures"]) == {"0", "1"}
    assert result["temperature"] == pytest.approx(2.5, rel=0.2)
    assert result["cross_fitted"]["nll"] < result["before"]["nll"] and result["nll_change_ci95"][1] < 0
    assert result["cross_fitted"]["ece"] < result["before"]["ece"]
    assert result["cross_fitted"]["accuracy"] == result["before"]["accuracy"]
    assert sum(row["faces"] for row in result["by_size"]) == 600
    assert result["also"][0]["after"]["nll"] > result["also"][0]["before"]["nll"]   # calibrated faces get worse
    markdown = (tmp_path / "t.md").read_text()
    assert "python" in markdown and "## Accuracy by face size" in markdown and "other.csv" in markdown


def test_a_faces_csv_without_probabilities_is_refused(tmp_path):
    pd.DataFrame({"photo": ["a.jpg"], "face": [0], "label": ["happy"], "found": [1],
                  "predicted": ["happy"]}).to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(SystemExit, match="no p_angry"):
        calibration.read_faces(tmp_path / "old.csv")


def test_baked_temperature_softens_every_view_and_the_card_lists_it(tmp_path):
    import keras

    from test_training import _write_class_folders
    from training.evaluate import main as evaluate_main
    from training.model_card import main as card_main
    from training.train import main as train_main

    _write_class_folders(tmp_path / "train", per_class=3, seed=1)
    _write_class_folders(tmp_path / "val", per_class=2, seed=2)
    base, calibrated = tmp_path / "base.keras", tmp_path / "calibrated.keras"
    assert train_main(["--data", str(tmp_path / "train"), "--val-data", str(tmp_path / "val"), "--arch", "vgg_tiny",
                       "--epochs", "1", "--batch-size", "16", "--out", str(base)]) == 0
    probs, labels = _overconfident(300, 2.0, seed=6)
    _faces_csv(tmp_path / "faces.csv", probs, labels, [f"p{i}.jpg" for i in range(300)])
    assert calibration.main([str(tmp_path / "faces.csv"), "--name", "cal", "--out-dir", str(tmp_path),
                             "--model", str(base), "--model-out", str(calibrated)]) == 0
    temperature = json.loads((tmp_path / "cal.json").read_text())["temperature"]
    assert temperature > 1.5
    x = np.random.default_rng(0).random((5, 48, 48, 1)).astype(np.float32)
    before = keras.models.load_model(base, compile=False, safe_mode=True).predict(x, verbose=0)
    after = keras.models.load_model(calibrated, compile=False, safe_mode=True).predict(x, verbose=0)
    assert np.allclose(after, calibration.with_temperature(before.astype(np.float64), temperature), atol=1e-5)
    assert calibrated.stat().st_size == pytest.approx(base.stat().st_size, rel=0.01)

    assert evaluate_main(["--model", str(calibrated), "--data", str(tmp_path / "val"), "--name", "c",
                          "--out-dir", str(tmp_path)]) == 0
    card = tmp_path / "CARD.md"
    assert card_main(["--model", str(calibrated), "--state", str(base.with_suffix(".ckpt") / "state.json"),
                      "--eval", str(tmp_path / "eval-c.json"), "--calibration", str(tmp_path / "cal.json"),
                      "--out", str(card)]) == 0
    text = card.read_text()
    assert f"--out {base}" in text and f"--model-out {calibrated}" in text
    assert f"temperature T = {temperature:.2f}" in text


def test_models_table_lists_a_calibrated_model_above_the_run_it_came_from(tmp_path):
    from training.models_table import main as table_main

    per_class = {label: {"recall": 0.5} for label in LABELS}
    for name, accuracy in (("raw", 0.6609), ("cal", 0.6606)):
        (tmp_path / f"eval-{name}.json").write_text(json.dumps(
            {"accuracy": accuracy, "macro_f1": 0.63, "per_class": per_class, "flip_tta": True,
             "command": f"python training/evaluate.py --name {name}"}))
    (tmp_path / "training.json").write_text(json.dumps({"epoch": 5, "best_epoch": 5, "args": {
        "script": "training/refit_tail.py", "model": "stage4.keras", "data": "fer/train", "format": "folders",
        "expw": "expw", "expw_fold": 1, "folds": 2, "detector": "mtcnn", "expw_weight": 5.0, "epochs": 5,
        "arch": "vgg_small", "init_from": "stage4.keras", "out": "fer_batch/assets/model.keras"}}))
    (tmp_path / "cal.json").write_text(json.dumps({
        "model": "vgg_small-refit.keras", "model_out": "fer_batch/assets/model.keras", "temperature": 1.34,
        "faces": 539, "faces_csv": "faces.csv", "command": "python training/calibration.py faces.csv --model-out x"}))
    out = tmp_path / "models.md"
    assert table_main(["--calibrations", f"{tmp_path / 'cal.json'}:{tmp_path / 'eval-cal.json'}",
                       "--runs", f"{tmp_path / 'training.json'}:{tmp_path / 'eval-raw.json'}", "--out", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if line.startswith("| `")]
    assert rows[0].startswith("| `fer_batch/assets/model.keras` | same | `vgg_small-refit.keras` |")
    assert "T = 1.34" in rows[0] and "0.6606" in rows[0]
    assert rows[1].startswith("| `vgg_small-refit.keras` |") and "0.6609" in rows[1]
    text = out.read_text()
    assert "python training/calibration.py faces.csv" in text and "--out vgg_small-refit.keras" in text


def test_a_set_of_face_crops_is_cross_fitted_face_by_face(tmp_path):
    from training.evaluate import write_face_probabilities

    probs, labels = _overconfident(400, 0.5, seed=7)          # underconfident: T below 1
    write_face_probabilities(tmp_path / "crops.csv", labels, probs.astype(np.float32))
    assert calibration.main([str(tmp_path / "crops.csv"), "--name", "crops", "--out-dir", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "crops.json").read_text())
    assert result["group_by"] == "face" and result["faces"] == 400 and result["temperature"] < 0.7
    assert result["cross_fitted"]["nll"] < result["before"]["nll"]
    assert "cross-fitted by face" in (tmp_path / "crops.md").read_text()
