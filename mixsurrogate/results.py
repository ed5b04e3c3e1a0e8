"""Evaluation results and what is computed from them without refitting: summaries with
bootstrap intervals, paired comparisons, blended objectives, means over sets, merging.

Metrics are computed per split and then averaged (scikit-learn's user guide warns that pooled
out-of-fold scores are not a generalisation measure: per-fold intercepts anti-correlate with
the held-out fold, which made the uninformative ``mean`` predictor score -0.30 on the pooled
Spearman); the pooled score is kept as a secondary column. A cell is reported only if every
split of it was scored, so two predictors are never compared on different splits.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import MixsurrogateError
from .metrics import (
    BOOTSTRAP_RESAMPLES,
    CONFIDENCE,
    HIGHER_IS_BETTER,
    METRIC_FUNCTIONS,
    METRICS,
    bootstrap_mean_ci,
    metrics,
)
from .objective import Objective

OBJECTIVE_TARGET = "objective"
#: metrics that get a bootstrap interval in summaries
INTERVAL_METRICS = ("spearman", "regret")
#: held-out coverage and mean width of prediction intervals, when they were asked for
INTERVAL_COLUMNS = ("coverage", "width")


@dataclass
class Evaluation:
    """Per-split scores of every predictor and target, and the predictions behind them.

    ``scores`` has one row per predictor x split x target (including ``objective`` when an
    objective is given): the split's key columns, ``status``, ``reason``, ``n_train``,
    ``n_scored`` and every metric (NaN unless ``status == "ok"``). ``predictions`` maps
    predictor -> split key -> predictions (test rows x ``targets``, blends last).
    """

    scores: pd.DataFrame
    predictions: dict[str, dict[tuple, np.ndarray]]
    truth: np.ndarray  # (rows of the scored log, targets)
    targets: list[str]  # the evaluated sets, then any blends (add_objective)
    protocol: str  # "cv", "curve" or "test": the first element of every split key
    key_columns: list[str]
    split_rows: dict[tuple, np.ndarray]  # split key -> its scored rows (index into truth)
    notes: dict[tuple[str, str], Counter]
    seed: int = 0
    dropped: list[str] = field(default_factory=list)
    set_means: dict[str, list[str]] = field(default_factory=dict)  # see add_set_mean
    sets: list[str] = field(default_factory=list)  # the fitted evaluation sets

    def summary(self, group: Sequence[str] = ()) -> pd.DataFrame:
        """One row per predictor x target (x ``group`` columns): mean, std and interval."""
        return summarise(self, list(group))


def add_objective(
    evaluation: Evaluation, objective: Objective, name: str = OBJECTIVE_TARGET
) -> str:
    """Score a blend of the evaluated sets as target ``name``, from the stored predictions.

    No refitting: each split's per-set predictions are combined, so several objectives (SP,
    ET, ET+SP) cost one evaluation. A split's blend is scored only if every set it weighs
    was fitted there; otherwise it is ``skipped`` with the sets it lacked.
    """
    missing = [s for s in objective.sets if s not in evaluation.sets]
    if missing:
        raise MixsurrogateError(f"objective {objective.spec!r} needs unevaluated {missing}")
    if name in evaluation.targets:
        raise MixsurrogateError(f"target {name!r} is already evaluated")
    n = len(evaluation.sets)
    cols = [evaluation.sets.index(s) for s in objective.sets]
    truth = objective.combine(evaluation.truth[:, :n], evaluation.sets)
    evaluation.truth = np.column_stack([evaluation.truth, truth])
    evaluation.targets.append(name)
    scores = evaluation.scores
    per_set = scores[scores["target"].isin(objective.sets)]
    keys = ["predictor", *evaluation.key_columns]
    rows = []
    for values, cell in per_set.groupby(keys, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        predictor, split_values = values[0], values[1:]
        key = (evaluation.protocol, *split_values)
        pred = evaluation.predictions[predictor][key]
        first = cell.iloc[0]
        row = {k: v for k, v in zip(keys, values, strict=True)}
        # a blend is only as well fitted as its least evaluated set
        row |= {"n_train": cell["n_train"].min(), "n_scored": first["n_scored"], "target": name}
        lacking = cell.loc[cell["status"] != "ok", "target"].tolist()
        est = objective.combine(pred[:, cols], objective.sets)
        # the blend is scored on the held-out runs evaluated on every set it weighs
        true = truth[evaluation.split_rows[key]]
        have = np.isfinite(true)
        row["n_scored"] = int(have.sum())
        if lacking:
            row |= {"status": "skipped", "reason": f"needs {', '.join(lacking)}, not fitted"}
        elif not have.any():
            row |= {"status": "skipped", "reason": "no held-out run was evaluated on every set"}
        else:
            row |= {"status": "ok", "reason": ""}
            row |= metrics(true[have], est[have])
        evaluation.predictions[predictor][key] = np.column_stack([pred, est])
        rows.append(row)
    evaluation.scores = pd.concat([scores, pd.DataFrame(rows)], ignore_index=True)
    return name


def merge(evaluations: Sequence[Evaluation]) -> Evaluation:
    """One evaluation of several predictor groups run apart (e.g. in worker processes) on the
    same splits of the same runs; blends and set means are added after merging."""
    first = evaluations[0]
    for other in evaluations[1:]:
        same = (
            other.split_rows.keys() == first.split_rows.keys()
            and other.sets == first.sets
            and np.array_equal(other.truth, first.truth, equal_nan=True)
        )
        if not same or other.targets != other.sets:
            raise ValueError("merge needs evaluations of the same splits, sets and truth")
    predictions, notes = {}, {}
    for e in evaluations:
        predictions |= e.predictions
        notes |= e.notes
    return Evaluation(
        pd.concat([e.scores for e in evaluations], ignore_index=True),
        predictions,
        first.truth.copy(),
        list(first.sets),
        first.protocol,
        first.key_columns,
        first.split_rows,
        notes,
        first.seed,
        list(first.dropped),
        sets=list(first.sets),
    )


def _cell_status(statuses: pd.Series, reasons: pd.Series) -> tuple[str, str]:
    """A cell is ok only if every split was; otherwise the most common reason, counted."""
    bad = statuses != "ok"
    if not bad.any():
        return "ok", ""
    status = "failed" if (statuses == "failed").any() else "skipped"
    reason, count = Counter(reasons[bad]).most_common(1)[0]
    share = "" if count == len(statuses) else f" (in {count} of {len(statuses)} splits)"
    return status, f"{reason}{share}"


def summarise(evaluation: Evaluation, group: list[str]) -> pd.DataFrame:
    """Mean, std and 95% bootstrap interval of per-split metrics, per cell.

    A cell's metrics are reported only if every split of it was scored (otherwise two
    predictors would be compared on different splits); its ``reason`` says why not. With a
    single split (a test log) the interval resamples the held-out runs instead.
    """
    scores = evaluation.scores
    rows = []
    for (predictor, target, *values), cell in scores.groupby(
        ["predictor", "target", *group], sort=False, dropna=False
    ):
        status, reason = _cell_status(cell["status"], cell["reason"])
        row = {"predictor": predictor, "target": target, **dict(zip(group, values, strict=True))}
        row |= {"status": status, "reason": reason, "splits": len(cell)}
        row["n_train"] = float(cell["n_train"].mean())
        row["n_scored"] = float(cell["n_scored"].mean())
        for m in METRICS + tuple(m for m in INTERVAL_COLUMNS if m in cell.columns):
            ok = status == "ok"
            row[m] = float(cell[m].mean()) if ok else np.nan
            row[f"{m}_std"] = float(cell[m].std(ddof=1)) if ok and len(cell) > 1 else np.nan
        if status == "ok":
            for m in INTERVAL_METRICS:
                row[f"{m}_lo"], row[f"{m}_hi"] = _interval(evaluation, predictor, target, cell, m)
        if "repeat" in evaluation.key_columns and status == "ok":
            row["spearman_pooled"] = _pooled_spearman(evaluation, predictor, target)
        # notes are counted per (predictor, target) over every split, so with groups (curve
        # sizes) the count is out of all of that pair's fits, and says so
        counter = evaluation.notes.get((predictor, target), Counter())
        fits = int(((scores["predictor"] == predictor) & (scores["target"] == target)).sum())
        scope = f", over every {'/'.join(group)}" if group else ""
        row["notes"] = "; ".join(
            f"{n} [{c} of {fits} fits{scope}]" for n, c in sorted(counter.items())
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _interval(
    evaluation: Evaluation, predictor: str, target: str, cell: pd.DataFrame, metric: str
) -> tuple[float, float]:
    if len(cell) > 1:
        return bootstrap_mean_ci(cell[metric].to_numpy(), evaluation.seed)
    key = (evaluation.protocol, *cell[evaluation.key_columns].iloc[0].tolist())
    return _row_bootstrap(evaluation, key, target, metric, predictor)


def _row_bootstrap(
    evaluation: Evaluation, key: tuple, target: str, metric: str, a: str, b: str | None = None
) -> tuple[float, float]:
    """Percentile interval over one split's resampled runs of predictor ``a``'s metric on
    ``target`` (averaged over the sets of a set mean), or of ``a`` minus ``b`` on the same
    resamples."""
    rows = evaluation.split_rows[key]
    cols = [evaluation.targets.index(t) for t in evaluation.set_means.get(target, [target])]
    fn = METRIC_FUNCTIONS[metric]
    pred_a = evaluation.predictions[a][key]
    pred_b = None if b is None else evaluation.predictions[b][key]

    def score(true: np.ndarray, pred: np.ndarray, i: np.ndarray) -> float:
        have = np.isfinite(true)  # runs not evaluated on a set are not scored on it
        values = [fn(true[have[:, j], j], pred[i[have[:, j]], j]) for j in cols if have[:, j].any()]
        return float(np.mean(values)) if values else np.nan

    def statistic(i: np.ndarray) -> float:
        true = evaluation.truth[rows[i]]
        value = score(true, pred_a, i)
        return value if pred_b is None else value - score(true, pred_b, i)

    rng = np.random.default_rng(evaluation.seed)
    draws = rng.integers(0, len(rows), size=(BOOTSTRAP_RESAMPLES, len(rows)))
    stats = np.array([statistic(i) for i in draws])
    stats = stats[np.isfinite(stats)]
    if len(stats) == 0:
        return (np.nan, np.nan)
    tail = (1 - CONFIDENCE) / 2
    return float(np.quantile(stats, tail)), float(np.quantile(stats, 1 - tail))


def _pooled_spearman(evaluation: Evaluation, predictor: str, target: str) -> float:
    """Spearman of the pooled out-of-fold predictions, averaged over repeats (and over the
    sets of a set mean): a secondary column, biased against fitted models (see the module)."""
    cols = [evaluation.targets.index(t) for t in evaluation.set_means.get(target, [target])]
    by_repeat: dict[int, tuple[list, list]] = {}
    for key, pred in evaluation.predictions[predictor].items():
        rows = evaluation.split_rows[key]
        true, est = by_repeat.setdefault(key[1], ([], []))
        true.append(evaluation.truth[rows])
        est.append(pred)
    values = []
    for t, e in by_repeat.values():
        true, est = np.concatenate(t), np.concatenate(e)
        for j in cols:
            have = np.isfinite(true[:, j])  # runs not evaluated on a set are not scored on it
            if have.any():
                values.append(metrics(true[have, j], est[have, j])["spearman"])
    return float(np.mean(values)) if values else np.nan


def compare(
    evaluation: Evaluation,
    a: str,
    b: str,
    target: str,
    metric: str = "spearman",
    group: Sequence[str] = (),
) -> pd.DataFrame:
    """Paired difference ``a - b`` of a metric on the same splits, with a 95% interval.

    ``better`` is the share of splits on which ``a`` beats ``b`` (ties count half).
    """
    scores = evaluation.scores
    for name in (a, b):
        if name not in set(scores["predictor"]):
            raise MixsurrogateError(f"--compare: {name!r} was not evaluated")
    keys = [*evaluation.key_columns]
    pick = scores[scores["target"] == target]
    left = pick[pick["predictor"] == a].set_index(keys)[[metric, "status"]]
    right = pick[pick["predictor"] == b].set_index(keys)[[metric, "status"]]
    joined = left.join(right, lsuffix="_a", rsuffix="_b", how="inner").reset_index()
    rows = []
    grouped = joined.groupby(list(group), sort=False) if group else [((), joined)]
    for values, cell in grouped:
        values = values if isinstance(values, tuple) else (values,)
        row = {"comparison": f"{a} - {b}", "target": target, "metric": metric}
        row |= dict(zip(group, values, strict=True))
        ok = (cell["status_a"] == "ok") & (cell["status_b"] == "ok")
        row["splits"] = int(ok.sum())
        if not ok.all():
            row |= {"difference": np.nan, "lo": np.nan, "hi": np.nan, "better": np.nan}
            row["reason"] = f"{int((~ok).sum())} split(s) not scored for both"
            rows.append(row)
            continue
        diff = (cell[f"{metric}_a"] - cell[f"{metric}_b"]).to_numpy()
        sign = 1 if HIGHER_IS_BETTER[metric] else -1
        row["difference"] = float(diff.mean())
        row["lo"], row["hi"] = _paired_interval(evaluation, a, b, target, metric, diff)
        row["better"] = float(np.mean((sign * diff > 0) + 0.5 * (diff == 0)))
        row["reason"] = ""
        rows.append(row)
    return pd.DataFrame(rows)


def _paired_interval(
    evaluation: Evaluation, a: str, b: str, target: str, metric: str, diff: np.ndarray
) -> tuple[float, float]:
    if len(diff) > 1:
        return bootstrap_mean_ci(diff, evaluation.seed)
    # one split (a test log): resample its runs, both predictors on the same resample
    (key,) = evaluation.predictions[a]
    return _row_bootstrap(evaluation, key, target, metric, a, b)


def add_set_mean(evaluation: Evaluation, sets: Sequence[str] | None = None) -> tuple[str, dict]:
    """Add a target ``mean of N sets``: per split, each metric averaged over ``sets``.

    Default ``sets``: those every predictor scored on every split, so the mean never covers
    different sets for different predictors. Returns the new target's name and, for each set
    left out, the predictors that did not score it. Summaries then give the mean its interval
    (over splits) and ``compare`` can pair it.
    """
    scores = evaluation.scores
    per_set = scores[scores["target"].isin(evaluation.sets)]
    predictors = list(dict.fromkeys(per_set["predictor"]))
    all_sets = list(dict.fromkeys(per_set["target"]))
    ok = per_set.groupby(["target", "predictor"])["status"].agg(lambda x: bool((x == "ok").all()))
    fully = {t: {p for p in predictors if ok.get((t, p), False)} for t in all_sets}
    if sets is None:
        sets = [t for t in all_sets if fully[t] == set(predictors)]
    left_out = {t: ", ".join(sorted(set(predictors) - fully[t])) for t in all_sets if t not in sets}
    name = f"mean of {len(sets)} sets"
    if not sets:
        return name, left_out
    keys = [*evaluation.key_columns]
    chosen = per_set[per_set["target"].isin(sets)]
    columns = list(METRICS) + [c for c in INTERVAL_COLUMNS if c in chosen.columns]
    means = chosen.groupby(["predictor", *keys], sort=False)[columns].mean()
    first = chosen.groupby(["predictor", *keys], sort=False)[["n_train", "n_scored"]].first()
    table = means.join(first).reset_index()
    table["target"], table["status"], table["reason"] = name, "ok", ""
    # a split where some set was not scored (a curve size a law cannot fit) is not scored either
    lacking = chosen[chosen["status"] != "ok"].groupby(["predictor", *keys], sort=False)
    missing = lacking["target"].agg(lambda t: ", ".join(t)).rename("lacking").reset_index()
    table = table.merge(missing, on=["predictor", *keys], how="left")
    bad = table["lacking"].notna()
    table.loc[bad, "status"] = "skipped"
    table.loc[bad, "reason"] = "needs " + table.loc[bad, "lacking"] + ", not scored"
    table.loc[bad, columns] = np.nan
    table = table.drop(columns=["lacking"])
    evaluation.scores = pd.concat([scores, table], ignore_index=True)
    evaluation.set_means[name] = list(sets)
    return name, left_out
