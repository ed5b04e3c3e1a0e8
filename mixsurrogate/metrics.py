"""Metrics of one prediction of held-out runs, and their intervals.

Rank metrics of a constant prediction are 0, not undefined: a predictor that cannot tell the
runs apart has no ranking information (the uninformative ``mean`` predictor scores 0 on every
fold, as it should). Top-1 regret breaks ties at random, so a constant prediction's regret is
the mean regret of a random pick.

Intervals: :func:`bootstrap_mean_ci` resamples per-split values (folds, draws);
with a single split the evaluation resamples its held-out runs instead. Both are seeded, so
the same call gives the same interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
from scipy.stats import bootstrap, pearsonr, spearmanr

METRICS = ("spearman", "pearson", "mse", "mae", "regret")
#: metrics where larger is better (for sorting and paired comparisons)
HIGHER_IS_BETTER = {"spearman": True, "pearson": True, "mse": False, "mae": False, "regret": False}
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


def is_constant(values: np.ndarray) -> bool:
    """Equal up to rounding: a blend of constant columns differs in its last bits by row."""
    scale = max(1.0, float(np.max(np.abs(values))))
    return bool(np.ptp(values) <= 1e-12 * scale)


def _correlation(fn: Callable, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if len(y_true) < 2 or is_constant(y_pred):
        return 0.0
    if np.ptp(y_true) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # near-constant inputs: the value itself says enough
        return float(fn(y_true, y_pred).statistic)


def top1_regret(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """True loss of the run ranked best (ties: the mean over them) minus the best true loss."""
    best = y_pred <= y_pred.min() + 1e-12 * max(1.0, float(np.max(np.abs(y_pred))))
    return float(y_true[best].mean() - y_true.min())


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Rank and error metrics of one target on one set of held-out runs.

    Top-1 regret is what a user loses by trusting the predictor's choice among these runs.
    """
    y_true, y_pred = np.asarray(y_true, float).ravel(), np.asarray(y_pred, float).ravel()
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(f"need equal, non-empty arrays, got {len(y_true)} and {len(y_pred)}")
    return {name: fn(y_true, y_pred) for name, fn in METRIC_FUNCTIONS.items()}


METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "spearman": lambda t, p: _correlation(spearmanr, t, p),
    "pearson": lambda t, p: _correlation(pearsonr, t, p),
    "mse": lambda t, p: float(np.mean((t - p) ** 2)),
    "mae": lambda t, p: float(np.mean(np.abs(t - p))),
    "regret": top1_regret,
}


def bootstrap_mean_ci(
    values: np.ndarray, seed: int = 0, level: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-split values (NaN with < 2 values)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return (math.nan, math.nan)
    if np.ptp(values) == 0:
        return (float(values[0]), float(values[0]))
    result = bootstrap(
        (values,),
        np.mean,
        confidence_level=level,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def json_safe(value):
    """``value`` with NaN and infinities replaced by None, so ``json.dumps`` writes valid JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value
