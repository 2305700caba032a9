"""Covariate-shift weights for the main-data faces of the tail refit (training/domain_weights.py)."""
from __future__ import annotations


import numpy as np
import pytest

from test_expw_folds import expw_scenes  # noqa: F401  (fixture)
from test_refit_tail import base_model  # noqa: F401  (fixture)


def _shifted_sets(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    main = rng.normal(size=(3000, 20))
    target = rng.normal(size=(200, 20))
    target[:, 0] += 1.5          # the target set sits to one side along the first feature only
    return main, target


def test_main_rows_like_the_target_weigh_more_and_the_weights_average_one():
    from training.domain_weights import domain_weights

    main, target = _shifted_sets()
    result = domain_weights(main, target, exponent=1.0)
    assert result.weights.shape == (len(main),)
    assert result.weights.mean() == pytest.approx(1.0, abs=1e-5)
    assert np.corrcoef(result.weights, main[:, 0])[0, 1] > 0.5
    for other in range(1, 20):
        assert abs(np.corrcoef(result.weights, main[:, other])[0, 1]) < 0.2
    assert 0.0 < result.effective_fraction < 1.0
    assert result.main_recognised > 0.6
    reweighted_mean = np.average(main[:, 0], weights=result.weights)
    assert abs(reweighted_mean - target[:, 0].mean()) < abs(main[:, 0].mean() - target[:, 0].mean()) / 2


def test_the_exponent_tempers_the_weights_and_the_clip_bounds_them():
    from training.domain_weights import domain_weights

    main, target = _shifted_sets(1)
    flat = domain_weights(main, target, exponent=0.0)
    np.testing.assert_array_equal(flat.weights, np.ones(len(main), np.float32))
    assert flat.effective_fraction == pytest.approx(1.0)
    half, full = domain_weights(main, target, exponent=0.5), domain_weights(main, target, exponent=1.0)
    assert 1.0 > half.effective_fraction > full.effective_fraction
    clipped = domain_weights(main, target, exponent=1.0, clip=3.0)
    assert clipped.weights.max() / np.median(clipped.weights) <= 3.0 + 1e-4
    np.testing.assert_array_equal(domain_weights(main, target, 1.0).weights, full.weights)   # deterministic


def test_domain_weights_refuse_what_they_cannot_do():
    from training.domain_weights import domain_weights

    main, target = _shifted_sets()
    with pytest.raises(ValueError, match="exponent"):
        domain_weights(main, target, exponent=-1.0)
    with pytest.raises(ValueError, match="target row"):
        domain_weights(main, target[:0], exponent=1.0)


def test_refit_with_domain_weights_trains_a_different_tail_and_records_it(base_model, expw_scenes, tmp_path, capsys):  # noqa: F811
    from test_refit_tail import refit_without_and_with
    from training.model_card import training_data
    from training.refit_tail import main

    common, differ, states = refit_without_and_with(["--domain-weighting", "1"], base_model, expw_scenes, tmp_path)
    assert "domain weights: effective sample" in capsys.readouterr().out
    assert differ
    assert "--domain-weighting" not in states[0]["command"] and "--domain-weighting 1.0" in states[1]["command"]
    assert "exponent 1" in training_data(states[1]["args"]) and "likeness" not in training_data(states[0]["args"])
    with pytest.raises(SystemExit):
        main(common + ["--domain-weighting", "-0.5", "--out", str(tmp_path / "never.keras")])
