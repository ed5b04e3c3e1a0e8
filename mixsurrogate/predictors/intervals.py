"""Prediction intervals for predictors without a posterior: split conformal on CV residuals.

A predictor's own training runs are split k-fold; a clone fitted on each fold's rest predicts
the fold, and the absolute residuals calibrate a symmetric interval ``prediction +- q``, where
``q`` is the ``ceil((n + 1) level) / n`` empirical quantile (the finite-sample conformal
correction). Only the training runs take part, so no held-out loss reaches the interval. The
residuals are those of models fitted on (k-1)/k of the runs, so the interval is slightly
conservative for the model fitted on all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold

CONFORMAL_FOLDS = 5


def conformal_quantile(residuals: np.ndarray, level: float) -> float:
    """The conformal half-width for ``level`` coverage (inf when too few residuals)."""
    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    r = np.sort(np.abs(np.asarray(residuals, float)[np.isfinite(residuals)]))
    k = math.ceil((len(r) + 1) * level)
    return float(r[k - 1]) if 0 < k <= len(r) else math.inf


def cv_residuals(
    predictor,
    W: np.ndarray,  # noqa: N803
    y: np.ndarray,
    features: np.ndarray | None,
    folds: int = CONFORMAL_FOLDS,
    seed: int = 0,
    residual: Callable | None = None,
) -> np.ndarray:
    """Out-of-fold residuals of clones of ``predictor`` on its training runs: ``y -
    prediction``, or ``residual(fitted_clone, W, y, features)`` of the held-out fold (a GP
    standardises them by its predictive std).

    A fold whose fit fails (too few runs for the predictor) leaves NaN residuals, which the
    quantile ignores.
    """
    residuals = np.full(len(y), np.nan)
    folds = min(folds, len(y))
    if folds < 2:
        return residuals
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(W):
        fold_features = None if features is None else features[train]
        try:
            model = clone(predictor).fit(W[train], y[train], fold_features)
            test_features = None if features is None else features[test]
            residuals[test] = (
                y[test] - model.predict(W[test], test_features)
                if residual is None
                else residual(model, W[test], y[test], test_features)
            )
        except Exception:  # noqa: BLE001, S112 - a fold too small for this predictor
            continue
    return residuals
