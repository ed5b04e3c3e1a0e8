"""Evaluation results and what is computed from them without refitting: summaries with
bootstrap intervals, paired comparisons, merging (blended objectives and means over sets are
in ``aggregate.py``).

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

from ..errors import MixsurrogateError
from .metrics import (
    BATCH_METRIC_FUNCTIONS,
    BOOTSTRAP_RESAMPLES,
    HIGHER_IS_BETTER,
    METRICS,
    bootstrap_mean_ci,
    metrics,
    percentile_interval,
)

OBJECTIVE_TARGET = "objective"
#: metrics that get a bootstrap interval in summaries
INTERVAL_METRICS = ("spearman", "regret")
#: held-out coverage and mean width of prediction intervals, when they were asked for
INTERVAL_COLUMNS = ("coverage", "width")


@dataclass
class SetMean:
    """A target averaging each split's metrics over evaluation sets (see ``add_set_mean``).

    ``sets`` are the mean's sets; ``covered`` gives, per predictor, the sets its own mean
    covers: every one of ``sets`` unless it could not score some (then ``left_out`` names
    them with their reasons, and tables must mark the predictor's mean as over fewer sets).
    """

    name: str
    sets: list[str]
    covered: dict[str, list[str]]
    units: str | None = None
    reasons: dict[str, dict[str, str]] = field(default_factory=dict)  # predictor -> set -> why
    unscored: list[str] = field(default_factory=list)  # sets no predictor scored on every split

    def sets_of(self, predictor: str) -> list[str]:
        return list(self.covered.get(predictor, self.sets))

    def left_out(self) -> dict[str, list[str]]:
        """Predictor -> the sets of the mean its own mean leaves out (only those with any)."""
        out = {p: [t for t in self.sets if t not in c] for p, c in self.covered.items()}
        return {p: sets for p, sets in out.items() if sets}

    def footnotes(self) -> list[str]:
        """One line per predictor whose mean covers fewer sets (or none), naming them and why."""
        lines = []
        for predictor, sets in self.left_out().items():
            n = len(self.sets_of(predictor))
            why = "; ".join(
                f"{reason} ({', '.join(ts)})"
                for reason, ts in by_reason(self.reasons, predictor, sets)
            )
            head = (
                f"{predictor}: no mean, it scored none of the {len(self.sets)} sets"
                if n == 0
                else f"{predictor}: mean of {n} of the {len(self.sets)} sets, "
                f"left out {', '.join(sets)}"
            )
            lines.append(f"{head}: {why}")
        if self.unscored:
            lines.append(f"no predictor scored {', '.join(self.unscored)} on every split")
        return lines

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "units": self.units,
            "sets": self.sets,
            "left_out": {
                p: {t: self.reasons.get(p, {}).get(t, "") for t in sets}
                for p, sets in self.left_out().items()
            },
            "unscored": self.unscored,
        }


def by_reason(reasons: dict[str, dict[str, str]], predictor: str, sets: list[str]):
    """(reason, its sets) for one predictor's left-out sets, most sets first."""
    grouped: dict[str, list[str]] = {}
    for t in sets:
        grouped.setdefault(reasons.get(predictor, {}).get(t, "not scored"), []).append(t)
    return sorted(grouped.items(), key=lambda item: -len(item[1]))


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
    set_means: dict[str, SetMean] = field(default_factory=dict)  # see add_set_mean
    sets: list[str] = field(default_factory=list)  # the fitted evaluation sets
    #: (predictor, set, split key) -> that fit's notes, so notes can be counted per group
    split_notes: dict[tuple[str, str, tuple], list[str]] = field(default_factory=dict)
    resamples: int = BOOTSTRAP_RESAMPLES  # bootstrap resamples of every interval

    def sets_of(self, predictor: str, target: str) -> list[str]:
        """The sets behind ``target`` for ``predictor``: a set mean's covered sets, or itself."""
        mean = self.set_means.get(target)
        return [target] if mean is None else mean.sets_of(predictor)

    def summary(self, group: Sequence[str] = ()) -> pd.DataFrame:
        """One row per predictor x target (x ``group`` columns): mean, std and interval."""
        return summarise(self, list(group))


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
    predictions, notes, split_notes = {}, {}, {}
    for e in evaluations:
        predictions |= e.predictions
        notes |= e.notes
        split_notes |= e.split_notes
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
        split_notes=split_notes,
        resamples=first.resamples,
    )


def cell_status(statuses: pd.Series, reasons: pd.Series) -> tuple[str, str]:
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
        status, reason = cell_status(cell["status"], cell["reason"])
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
        row["notes"] = _cell_notes(evaluation, predictor, target, cell, group)
        rows.append(row)
    return pd.DataFrame(rows)


def _cell_notes(
    evaluation: Evaluation, predictor: str, target: str, cell: pd.DataFrame, group: list[str]
) -> str:
    """The notes of a cell's fits, counted: over the cell's own splits when the evaluation
    kept notes per split (so a learning curve says what happened at each size), else over
    every split of the (predictor, set) pair; a set mean pools its sets' notes."""
    sets = evaluation.sets_of(predictor, target)
    keys = [(evaluation.protocol, *k) for k in cell[evaluation.key_columns].itertuples(index=False)]
    counter: Counter = Counter()
    if evaluation.split_notes:
        for t in sets:
            for key in keys:
                counter.update(set(evaluation.split_notes.get((predictor, t, key), [])))
        fits, scope = len(keys) * len(sets), ""
    else:  # notes counted over every split of the pair
        scores = evaluation.scores
        for t in sets:
            counter.update(evaluation.notes.get((predictor, t), Counter()))
        pair = (scores["predictor"] == predictor) & scores["target"].isin(sets)
        fits, scope = int(pair.sum()), (f", over every {'/'.join(group)}" if group else "")
    over = f" over {len(sets)} sets" if len(sets) > 1 else ""
    return "; ".join(f"{n} [{c} of {fits} fits{over}{scope}]" for n, c in sorted(counter.items()))


def _interval(
    evaluation: Evaluation, predictor: str, target: str, cell: pd.DataFrame, metric: str
) -> tuple[float, float]:
    if len(cell) > 1:
        return bootstrap_mean_ci(
            cell[metric].to_numpy(), evaluation.seed, resamples=evaluation.resamples
        )
    key = (evaluation.protocol, *cell[evaluation.key_columns].iloc[0].tolist())
    return row_bootstrap(evaluation, key, target, metric, predictor)


def row_bootstrap(
    evaluation: Evaluation,
    key: tuple,
    target: str,
    metric: str,
    a: str,
    b: str | None = None,
    sets: Sequence[str] | None = None,
) -> tuple[float, float]:
    """Percentile interval over one split's resampled runs of predictor ``a``'s metric on
    ``target`` (averaged over the sets of a set mean, or over ``sets``), or of ``a`` minus
    ``b`` on the same resamples.

    One resample matrix serves every set and both predictors, and each metric is computed
    for all resamples at once (``BATCH_METRIC_FUNCTIONS``): the same draws, and so the same
    interval, as one resample at a time, without the Python loop over resamples.
    """
    rows = evaluation.split_rows[key]
    sets = list(sets) if sets is not None else evaluation.sets_of(a, target)
    cols = [evaluation.targets.index(t) for t in sets]
    fn = BATCH_METRIC_FUNCTIONS[metric]
    rng = np.random.default_rng(evaluation.seed)
    draws = rng.integers(0, len(rows), size=(evaluation.resamples, len(rows)))
    true = evaluation.truth[rows]

    def score(pred: np.ndarray) -> np.ndarray:
        values, valid = [], []
        for j in cols:
            t = true[draws, j]
            have = np.isfinite(t)  # runs not evaluated on a set are not scored on it
            values.append(fn(t, pred[draws, j], have))
            valid.append(have.any(axis=1))
        v, ok = np.array(values), np.array(valid)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok, v, 0.0).sum(axis=0) / ok.sum(axis=0)

    stats = score(evaluation.predictions[a][key])
    if b is not None:
        stats = stats - score(evaluation.predictions[b][key])
    return percentile_interval(stats)


def _pooled_spearman(evaluation: Evaluation, predictor: str, target: str) -> float:
    """Spearman of the pooled out-of-fold predictions, averaged over repeats (and over the
    sets of a set mean): a secondary column, biased against fitted models (see the module)."""
    cols = [evaluation.targets.index(t) for t in evaluation.sets_of(predictor, target)]
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


def _paired_cells(
    evaluation: Evaluation, name: str, target: str, sets: list[str] | None, metric: str
) -> pd.DataFrame:
    """Per split: predictor ``name``'s metric on ``target`` and its status; with ``sets``,
    the metric averaged over those sets (a set mean restricted to sets both predictors
    scored)."""
    scores = evaluation.scores
    keys = [*evaluation.key_columns]
    if sets is None:
        pick = scores[(scores["target"] == target) & (scores["predictor"] == name)]
        return pick.set_index(keys)[[metric, "status"]]
    pick = scores[scores["target"].isin(sets) & (scores["predictor"] == name)]
    grouped = pick.groupby(keys, sort=False)
    cells = grouped[[metric]].mean()
    cells["status"] = grouped["status"].agg(lambda x: "ok" if (x == "ok").all() else "skipped")
    return cells


def compare(
    evaluation: Evaluation,
    a: str,
    b: str,
    target: str,
    metric: str = "spearman",
    group: Sequence[str] = (),
) -> pd.DataFrame:
    """Paired difference ``a - b`` of a metric on the same splits, with a 95% interval.

    ``better`` is the share of splits on which ``a`` beats ``b`` (ties count half). On a set
    mean whose sets differ between ``a`` and ``b`` (one could not score some), the pair is
    compared on the sets both scored, and ``reason`` says so.
    """
    scores = evaluation.scores
    for name in (a, b):
        if name not in set(scores["predictor"]):
            raise MixsurrogateError(f"--compare: {name!r} was not evaluated")
    sets, note = None, ""
    mean = evaluation.set_means.get(target)
    if mean is not None and mean.sets_of(a) != mean.sets_of(b):
        sets = [t for t in mean.sets_of(a) if t in mean.sets_of(b)]
        note = f"over the {len(sets)} of {len(mean.sets)} sets both scored"
    left = _paired_cells(evaluation, a, target, sets, metric)
    right = _paired_cells(evaluation, b, target, sets, metric)
    joined = left.add_suffix("_a").join(right.add_suffix("_b"), how="inner").reset_index()
    rows = []
    grouped = joined.groupby(list(group), sort=False) if group else [((), joined)]
    for values, cell in grouped:
        values = values if isinstance(values, tuple) else (values,)
        row = {"comparison": f"{a} - {b}", "target": target, "metric": metric}
        row |= dict(zip(group, values, strict=True))
        ok = (cell["status_a"] == "ok") & (cell["status_b"] == "ok")
        row["splits"] = int(ok.sum())
        if sets == [] or not ok.all() or not len(cell):
            row |= {"difference": np.nan, "lo": np.nan, "hi": np.nan, "better": np.nan}
            row["reason"] = (
                f"no set of {target} was scored by both"
                if sets == [] or not len(cell)
                else f"{int((~ok).sum())} split(s) not scored for both"
            )
            rows.append(row)
            continue
        diff = (cell[f"{metric}_a"] - cell[f"{metric}_b"]).to_numpy()
        sign = 1 if HIGHER_IS_BETTER[metric] else -1
        row["difference"] = float(diff.mean())
        row["lo"], row["hi"] = _paired_interval(evaluation, a, b, target, metric, diff, sets)
        row["better"] = float(np.mean((sign * diff > 0) + 0.5 * (diff == 0)))
        row["reason"] = note
        rows.append(row)
    return pd.DataFrame(rows)


def _paired_interval(
    evaluation: Evaluation,
    a: str,
    b: str,
    target: str,
    metric: str,
    diff: np.ndarray,
    sets: list[str] | None,
) -> tuple[float, float]:
    if len(diff) > 1:
        return bootstrap_mean_ci(diff, evaluation.seed, resamples=evaluation.resamples)
    # one split (a test log): resample its runs, both predictors on the same resample
    (key,) = evaluation.predictions[a]
    return row_bootstrap(evaluation, key, target, metric, a, b, sets)
