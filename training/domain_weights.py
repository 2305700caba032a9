"""Covariate-shift weights: how much more each main-data face looks like the in-the-wild faces than like its own set.

A logistic domain classifier on the frozen features (main rows 0, target rows 1) estimates p(target | x); the
density ratio p(x | target) / p(x | main) is then proportional to p / (1 - p). Each main row's probability comes
from a classifier fitted without it (two halves of the main rows, each scored by the fit on the other half and all
target rows), so a face is not judged by a fit that has memorised it. The weights are tempered by `exponent`
(0: all equal, 1: the full ratio), clipped at `clip` times their median and scaled to mean 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DomainWeights:
    weights: np.ndarray          # one per main row, mean 1
    effective_fraction: float    # Kish effective sample size over the number of rows
    main_recognised: float       # share of the main rows the classifier, fitted without them, calls main


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Class-balanced L2-regularised logistic regression (L-BFGS): (coefficients, intercept)."""
    from scipy.optimize import minimize
    from scipy.special import expit

    balance = np.where(y == 1, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1))
    sign = 2.0 * y - 1.0

    def loss_and_gradient(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-1], theta[-1]
        margin = sign * (x @ w + b)
        loss = float(balance @ np.logaddexp(0.0, -margin) + 0.5 * l2 * w @ w)
        g = -balance * sign * expit(-margin)
        return loss, np.append(x.T @ g + l2 * w, g.sum())

    theta = minimize(loss_and_gradient, np.zeros(x.shape[1] + 1), jac=True, method="L-BFGS-B",
                     options={"maxiter": 500}).x
    return theta[:-1], float(theta[-1])


def domain_weights(main: np.ndarray, target: np.ndarray, exponent: float, clip: float = 20.0, l2: float = 1e-2,
                   seed: int = 0) -> DomainWeights:
    """Weights for the `main` rows that make them look, on average, like the `target` rows (see the module's doc)."""
    if exponent < 0:
        raise ValueError(f"the exponent must be at least 0, not {exponent}")
    if len(main) < 2 or len(target) == 0:
        raise ValueError("domain weights need at least two main rows and one target row")
    main = main.reshape(len(main), -1).astype(np.float64)
    target = target.reshape(len(target), -1).astype(np.float64)
    mean, scale = main.mean(axis=0), main.std(axis=0) + 1e-6
    main, target = (main - mean) / scale, (target - mean) / scale

    halves = np.random.default_rng(seed).permutation(len(main)) % 2
    logit = np.empty(len(main))
    for half in (0, 1):
        fit_rows = main[halves != half]
        x = np.concatenate([fit_rows, target])
        y = np.concatenate([np.zeros(len(fit_rows)), np.ones(len(target))])
        w, b = fit_logistic(x, y, l2)
        logit[halves == half] = main[halves == half] @ w + b
    # the logit is log(p / (1 - p)) of a class-balanced fit: the ratio up to a constant, which the scaling removes
    weights = np.exp(exponent * (logit - logit.max()))
    weights = np.minimum(weights, clip * np.median(weights))
    weights = weights / weights.mean()
    return DomainWeights(weights=weights.astype(np.float32),
                         effective_fraction=float(weights.sum() ** 2 / (weights ** 2).sum() / len(weights)),
                         main_recognised=float((logit < 0).mean()))
