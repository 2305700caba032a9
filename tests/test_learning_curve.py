"""Accuracy against the number of ExpW faces trained on (training/learning_curve.py)."""
from __future__ import annotations

import json

import pytest


def test_log_line_gives_points_per_doubling():
    from training.learning_curve import log_line

    slope, intercept = log_line([100, 200, 400, 800], [0.30, 0.32, 0.34, 0.36])
    assert slope == pytest.approx(0.02) and intercept == pytest.approx(0.30 - 0.02 * 6.643856, abs=1e-5)
    with pytest.raises(ValueError, match="two different"):
        log_line([100, 100], [0.3, 0.4])


def _write_expw_labels(root) -> None:
    root.mkdir()
    rows = [f"scene_{i}.jpg {k} 10 10 60 60 50.0 {(i + k) % 7}" for i in range(300) for k in range(1 + i % 2)]
    (root / "label.lst").write_text("\n".join(rows) + "\n")


def _write_run(tmp_path, name: str, fraction: float, seed: int, accuracy: float) -> str:
    state = tmp_path / f"training-{name}.json"
    state.write_text(json.dumps({"args": {"out": f"{name}.keras", "expw_fold": [1], "folds": 2,
                                          "expw_photo_fraction": fraction, "expw_photo_seed": seed}}))
    e2e = tmp_path / f"e2e-{name}.json"
    e2e.write_text(json.dumps({"model": f"{name}.keras", "fold": "0 of 2", "found_faces": 90, "accuracy": accuracy,
                               "macro_f1": accuracy - 0.02}))
    return f"{state}:{e2e}"


def test_learning_curve_counts_the_faces_each_run_kept_and_fits_its_line(tmp_path, capsys):
    from training.datasets import expw_faces_by_photo
    from training.expw_crops import photo_fold
    from training.learning_curve import main
    from training.expw_crops import photo_kept

    expw = tmp_path / "expw"
    _write_expw_labels(expw)
    runs = [_write_run(tmp_path, "quarter", 0.25, 0, 0.33), _write_run(tmp_path, "half", 0.5, 0, 0.35),
            _write_run(tmp_path, "all", 1.0, 0, 0.37)]
    baseline = tmp_path / "e2e-base.json"
    baseline.write_text(json.dumps({"model": "base.keras", "fold": "0 of 2", "found_faces": 90, "accuracy": 0.30,
                                    "macro_f1": 0.28}))
    out = tmp_path / "reports" / "curve.md"
    assert main(["--runs", *runs, "--baseline", str(baseline), "--expw", str(expw), "--out", str(out)]) == 0

    by_photo = expw_faces_by_photo(expw / "label.lst")
    expected = {f: sum(len(v) for n, v in by_photo.items() if photo_fold(n, 2) == 1 and photo_kept(n, f, 0))
                for f in (0.25, 0.5, 1.0)}
    figures = json.loads(out.with_suffix(".json").read_text())
    assert [r["faces"] for r in figures["runs"]] == [expected[0.25], expected[0.5], expected[1.0]]
    assert expected[0.25] < expected[0.5] < expected[1.0] < sum(len(v) for v in by_photo.values())
    assert figures["slope_per_doubling"] > 0.015 and figures["baseline"]["accuracy"] == 0.30
    text = out.read_text()
    assert "| base.keras (before any ExpW face) | 0 |" in text and "points per doubling" in text
    assert text.index("quarter.keras") < text.index("half.keras") < text.index("all.keras")
    with pytest.raises(SystemExit):
        main(["--runs", runs[0], "--expw", str(expw), "--out", str(tmp_path / "one.md")])   # one run: no line
    with pytest.raises(SystemExit):
        main(["--runs", "no-colon.json", "--expw", str(expw), "--out", str(tmp_path / "bad.md")])
