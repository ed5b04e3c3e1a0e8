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
from scipy.stats import bootstrap, pearsonr, rankdata, spearmanr

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


def _degenerate(true: np.ndarray, pred: np.ndarray, have: np.ndarray):
    """Rows where ``_correlation`` gives 0 (a constant prediction, fewer than 2 cells) and
    rows where it gives NaN (a constant truth)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no cell: zero below
        masked_pred, masked_true = np.where(have, pred, np.nan), np.where(have, true, np.nan)
        ptp_pred = np.nanmax(masked_pred, axis=1) - np.nanmin(masked_pred, axis=1)
        ptp_true = np.nanmax(masked_true, axis=1) - np.nanmin(masked_true, axis=1)
        scale = np.maximum(1.0, np.nanmax(np.abs(masked_pred), axis=1))
    zero = (have.sum(axis=1) < 2) | ~(ptp_pred > 1e-12 * scale)
    return zero, ptp_true == 0


def _pearson_rows(true: np.ndarray, pred: np.ndarray, have: np.ndarray) -> np.ndarray:
    n = np.maximum(have.sum(axis=1), 1)[:, None]
    dt = np.where(have, true - np.where(have, true, 0).sum(axis=1)[:, None] / n, 0.0)
    dp = np.where(have, pred - np.where(have, pred, 0).sum(axis=1)[:, None] / n, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (dt * dp).sum(axis=1) / np.sqrt((dt * dt).sum(axis=1) * (dp * dp).sum(axis=1))
    return np.clip(r, -1.0, 1.0)


def _batch_correlation(
    true: np.ndarray, pred: np.ndarray, have: np.ndarray, ranks: bool = False
) -> np.ndarray:
    """Pearson (or, with ``ranks``, Spearman) per row over its ``have`` cells, with
    ``_correlation``'s conventions."""
    zero, undefined = _degenerate(true, pred, have)
    if ranks:
        true = rankdata(np.where(have, true, np.nan), axis=1, nan_policy="omit")
        pred = rankdata(np.where(have, pred, np.nan), axis=1, nan_policy="omit")
    r = np.where(undefined, np.nan, _pearson_rows(true, pred, have))
    return np.where(zero, 0.0, r)


def _batch_regret(true: np.ndarray, pred: np.ndarray, have: np.ndarray) -> np.ndarray:
    masked_pred = np.where(have, pred, np.inf)
    scale = np.maximum(1.0, np.max(np.where(have, np.abs(pred), 0.0), axis=1))
    best = have & (masked_pred <= masked_pred.min(axis=1)[:, None] + 1e-12 * scale[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        picked = np.where(best, true, 0.0).sum(axis=1) / best.sum(axis=1)
    return picked - np.min(np.where(have, true, np.inf), axis=1)


def _batch_mean(values: np.ndarray, have: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(have, values, 0.0).sum(axis=1) / have.sum(axis=1)


#: each metric of many resamples at once: rows of ``(true, pred, have)`` arrays, where
#: ``have`` marks the cells a row scores (a resample's runs evaluated on the set); the same
#: values as ``METRIC_FUNCTIONS`` on each row's ``have`` cells (up to rounding)
BATCH_METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "spearman": lambda t, p, h: _batch_correlation(t, p, h, ranks=True),
    "pearson": _batch_correlation,
    "mse": lambda t, p, h: _batch_mean((t - p) ** 2, h),
    "mae": lambda t, p, h: _batch_mean(np.abs(t - p), h),
    "regret": _batch_regret,
}


def percentile_interval(stats: np.ndarray, level: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of bootstrap statistics (NaN ones dropped; NaN if none)."""
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return (math.nan, math.nan)
    tail = (1 - level) / 2
    return float(np.quantile(stats, tail)), float(np.quantile(stats, 1 - tail))


def bootstrap_mean_ci(
    values: np.ndarray,
    seed: int = 0,
    level: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
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
        n_resamples=resamples,
        vectorized=True,
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
