"""Honest evaluation of predictors: repeated k-fold CV, explicit train/test, learning curves.

Every fit sees only its training rows; any tuning a predictor does (ridge alpha, GP
hyper-parameters, LightGBM rounds) happens inside that fit, so no held-out loss ever steers
a choice. MDE features are a fixed function of the mixture (computed from the experts'
cached scores, never from the runs' losses), so computing them for held-out rows leaks nothing.

The unit of evaluation is a *split* (a fold of one repeat, a draw of a learning curve, or a
test log): every predictor is fitted on the same splits, so two predictors can be compared
split by split. Metrics are computed per split and then averaged (scikit-learn's user guide
warns that pooled out-of-fold scores are not a generalisation measure: per-fold intercepts
anti-correlate with the held-out fold, which made the uninformative ``mean`` predictor score
-0.30 on the pooled Spearman); the pooled score is kept as a secondary column.

Rows can be kept for fitting but left out of scoring (``scored``): the splits are drawn over
the scored rows and every unscored row is in every training set. A predictor that cannot be
fitted to a target, or whose fit fails, yields a cell marked ``skipped`` or ``failed`` with its
reason; the other cells are still computed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedKFold
from tqdm.auto import tqdm

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
from .predictors import make_predictor
from .predictors.multitarget import MultiTargetPredictor
from .runs import RunsLog

FeatureFn = Callable[[np.ndarray], np.ndarray]
OBJECTIVE_TARGET = "objective"
#: metrics that get a bootstrap interval in summaries
INTERVAL_METRICS = ("spearman", "regret")
__all__ = [
    "METRICS",
    "OBJECTIVE_TARGET",
    "Evaluation",
    "FitOutcome",
    "PredictorSpec",
    "Split",
    "add_objective",
    "add_set_mean",
    "compare",
    "cross_validate",
    "cv_splits",
    "curve_splits",
    "fit_predict",
    "learning_curve",
    "merge",
    "scoring_mask",
    "train_test",
]


@dataclass
class PredictorSpec:
    """A predictor to evaluate: registry name plus hyper-parameters (and a display label)."""

    name: str
    params: dict | None = None
    label: str | None = None

    def build(self) -> MultiTargetPredictor:
        make_predictor(self.name, **(self.params or {}))  # fail early on an unknown name
        return MultiTargetPredictor(self.name, self.params)

    @property
    def uses_features(self) -> bool:
        return bool(make_predictor(self.name, **(self.params or {})).uses_features)

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass
class FitOutcome:
    """One fit's predictions of some rows: NaN columns for targets it could not fit."""

    pred: np.ndarray  # (rows, targets)
    status: dict[str, tuple[str, str]]  # target -> ("ok" | "skipped" | "failed", reason)
    notes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def fitted(self) -> list[str]:
        return [t for t, (s, _) in self.status.items() if s == "ok"]


def _features(spec: PredictorSpec, feature_fn: FeatureFn | None, W: np.ndarray):  # noqa: N803
    if not spec.uses_features:
        return None
    if feature_fn is None:
        raise MixsurrogateError(
            f"predictor {spec.name!r} needs MDE features: pass a score store (--scores)"
        )
    return feature_fn(W)


def check_specs(specs: Sequence[PredictorSpec], feature_fn: FeatureFn | None) -> None:
    """Configuration errors (unknown names, MDE without a store) stop before any fitting."""
    labels = [s.display for s in specs]
    if len(set(labels)) != len(labels):
        raise MixsurrogateError(f"predictor names repeat: {', '.join(labels)}")
    for spec in specs:
        spec.build()
        if spec.uses_features and feature_fn is None:
            raise MixsurrogateError(
                f"predictor {spec.name!r} needs MDE features: pass a score store (--scores)"
            )


def fit_predict(
    spec: PredictorSpec,
    train: RunsLog,
    W_test: np.ndarray,  # noqa: N803
    targets: Sequence[str],
    feature_fn: FeatureFn | None = None,
) -> FitOutcome:
    """Fit on ``train`` and predict ``W_test`` for every target that could be fitted.

    Never raises for a target's trouble: it is in ``status`` with its reason.
    """
    targets = list(targets)
    pred = np.full((len(W_test), len(targets)), np.nan)
    model = spec.build()
    Y = np.column_stack([train.loss(t) for t in targets])  # noqa: N806
    try:
        model.fit(train.W, Y, targets, train.domains, features=_features(spec, feature_fn, train.W))
        reasons = model.reasons()
        if model.fitted_targets_:
            got = model.predict(W_test, features=_features(spec, feature_fn, W_test))
            for j, target in enumerate(model.fitted_targets_):
                pred[:, targets.index(target)] = got[:, j]
    except MixsurrogateError:
        raise  # configuration errors (no score store) are the user's to fix
    except Exception as err:  # noqa: BLE001 - one predictor's failure must not lose the others
        reason = f"{type(err).__name__}: {err}"
        return FitOutcome(pred, {t: ("failed", reason) for t in targets})
    status = {t: reasons.get(t, ("ok", "")) for t in targets}
    return FitOutcome(pred, status, dict(model.notes_))


# --- splits -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """Rows to fit on and rows to score; ``key`` names the split within its protocol."""

    key: tuple
    train: np.ndarray
    test: np.ndarray
    group: tuple = ()  # what summaries average over (e.g. (n_train,) for a learning curve)


def _scored_mask(n: int, scored: np.ndarray | None) -> np.ndarray:
    mask = np.ones(n, bool) if scored is None else np.asarray(scored, bool)
    if mask.shape != (n,):
        raise ValueError(f"scored mask has shape {mask.shape}, expected ({n},)")
    return mask


def cv_splits(
    n_rows: int, folds: int, repeats: int = 1, seed: int = 0, scored: np.ndarray | None = None
) -> list[Split]:
    """Repeated k-fold over the scored rows; unscored rows are in every training set."""
    mask = _scored_mask(n_rows, scored)
    scored_idx, always = np.flatnonzero(mask), np.flatnonzero(~mask)
    if folds < 2 or folds > len(scored_idx):
        raise MixsurrogateError(
            f"--folds must be between 2 and the number of scored runs ({len(scored_idx)}), "
            f"got {folds}"
        )
    if repeats < 1:
        raise MixsurrogateError(f"--repeats must be >= 1, got {repeats}")
    kfold = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    splits = []
    for i, (tr, te) in enumerate(kfold.split(scored_idx)):
        train = np.sort(np.concatenate([scored_idx[tr], always]))
        splits.append(Split(("cv", i // folds, i % folds), train, scored_idx[te]))
    return splits


def curve_splits(
    n_rows: int,
    sizes: Sequence[int],
    draws: int,
    seed: int = 0,
    scored: np.ndarray | None = None,
    test_rows: int | None = None,
) -> tuple[list[Split], list[str]]:
    """``draws`` random subsets of each size of the scored rows (plus every unscored row).

    Without a test log (``test_rows`` None) each draw is scored on the scored rows it did not
    train on, so a size needs at least 3 of them left. Returns the splits and one line per
    size that had to be left out, saying why.
    """
    mask = _scored_mask(n_rows, scored)
    pool, always = np.flatnonzero(mask), np.flatnonzero(~mask)
    rng = np.random.default_rng(seed)
    splits, dropped = [], []
    limit = len(pool) if test_rows is not None else len(pool) - 3
    for n in sizes:
        if n < 1 or n > limit:
            dropped.append(f"size {n}: needs 1..{limit} runs to draw from {len(pool)}")
            continue
        for d in range(draws):
            if n == len(pool) and d > 0:
                break  # every draw of the whole pool is the same set
            idx = np.sort(rng.choice(pool, n, replace=False))
            train = np.sort(np.concatenate([idx, always]))
            test = np.arange(test_rows) if test_rows is not None else np.setdiff1d(pool, idx)
            splits.append(Split(("curve", n, d), train, test, (n,)))
    return splits, dropped


# --- running and scoring ------------------------------------------------------------------------


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


def _split_rows(
    spec: PredictorSpec,
    split: Split,
    outcome: FitOutcome,
    truth: np.ndarray,
    targets: list[str],
    key_columns: list[str],
) -> list[dict]:
    keys = dict(zip(key_columns, split.key[1:], strict=True))
    base = {"predictor": spec.display, **keys, "n_train": len(split.train)}
    base["n_scored"] = len(split.test)
    rows = []
    for j, target in enumerate(targets):
        status, reason = outcome.status[target]
        row = {**base, "target": target, "status": status, "reason": reason}
        if status == "ok":
            row |= metrics(truth[split.test, j], outcome.pred[:, j])
        rows.append(row)
    return rows


def run_splits(
    specs: Sequence[PredictorSpec],
    train: RunsLog,
    splits: Sequence[Split],
    targets: Sequence[str],
    key_columns: list[str],
    feature_fn: FeatureFn | None = None,
    objective: Objective | None = None,
    test: RunsLog | None = None,
    progress: bool = True,
    seed: int = 0,
    desc: str = "evaluation",
) -> Evaluation:
    """Fit every predictor on every split and score it on the split's test rows.

    Test rows index ``test`` when given (train/test and curves with a test log), else ``train``.
    With an ``objective``, the target ``objective`` scores its blend (see ``add_objective``).
    """
    targets = list(targets)
    check_specs(specs, feature_fn)
    if test is not None and test.domains != train.domains:
        if sorted(test.domains) != sorted(train.domains):
            raise MixsurrogateError(
                "train and test logs have different domains "
                f"({', '.join(train.domains)} vs {', '.join(test.domains)})"
            )
        test = test.with_domain_order(train.domains)  # same domains, another column order
    scored_log = test if test is not None else train
    truth = np.column_stack([scored_log.loss(t) for t in targets])
    rows: list[dict] = []
    predictions: dict[str, dict[tuple, np.ndarray]] = {}
    notes: dict[tuple[str, str], Counter] = {}
    total = len(specs) * len(splits)
    with tqdm(total=total, desc=desc, disable=not progress, leave=False) as bar:
        for spec in specs:
            predictions[spec.display] = {}
            for split in splits:
                outcome = fit_predict(
                    spec, train.subset(split.train), scored_log.W[split.test], targets, feature_fn
                )
                rows += _split_rows(spec, split, outcome, truth, targets, key_columns)
                predictions[spec.display][split.key] = outcome.pred
                for target, items in outcome.notes.items():
                    notes.setdefault((spec.display, target), Counter()).update(set(items))
                bar.update()
    scores = pd.DataFrame(rows)
    for m in METRICS:
        if m not in scores.columns:
            scores[m] = np.nan
    evaluation = Evaluation(
        scores,
        predictions,
        truth,
        list(targets),
        splits[0].key[0] if splits else "",
        key_columns,
        {s.key: s.test for s in splits},
        notes,
        seed,
        sets=list(targets),
    )
    if objective is not None:
        add_objective(evaluation, objective)
    return evaluation


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
        row |= {"n_train": first["n_train"], "n_scored": first["n_scored"], "target": name}
        lacking = cell.loc[cell["status"] != "ok", "target"].tolist()
        est = objective.combine(pred[:, cols], objective.sets)
        if lacking:
            row |= {"status": "skipped", "reason": f"needs {', '.join(lacking)}, not fitted"}
        else:
            row |= {"status": "ok", "reason": ""}
            row |= metrics(truth[evaluation.split_rows[key]], est)
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
            and np.array_equal(other.truth, first.truth)
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
        for m in METRICS:
            ok = status == "ok"
            row[m] = float(cell[m].mean()) if ok else np.nan
            row[f"{m}_std"] = float(cell[m].std(ddof=1)) if ok and len(cell) > 1 else np.nan
        if status == "ok":
            for m in INTERVAL_METRICS:
                row[f"{m}_lo"], row[f"{m}_hi"] = _interval(evaluation, predictor, target, cell, m)
        if "repeat" in evaluation.key_columns and status == "ok":
            row["spearman_pooled"] = _pooled_spearman(evaluation, predictor, target)
        counter = evaluation.notes.get((predictor, target), Counter())
        row["notes"] = "; ".join(
            f"{n} [{c} of {len(cell)} fits]" for n, c in sorted(counter.items())
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _interval(
    evaluation: Evaluation, predictor: str, target: str, cell: pd.DataFrame, metric: str
) -> tuple[float, float]:
    if len(cell) > 1:
        return bootstrap_mean_ci(cell[metric].to_numpy(), evaluation.seed)
    key = (evaluation.protocol, *cell[evaluation.key_columns].iloc[0].tolist())
    pred, rows = evaluation.predictions[predictor][key], evaluation.split_rows[key]
    cols = [evaluation.targets.index(t) for t in evaluation.set_means.get(target, [target])]
    fn = METRIC_FUNCTIONS[metric]

    def statistic(i: np.ndarray) -> float:  # the metric (mean over sets) on resampled runs
        true = evaluation.truth[rows[i]]
        return float(np.mean([fn(true[:, j], pred[i, j]) for j in cols]))

    return _row_bootstrap(evaluation, rows, statistic)


def _row_bootstrap(
    evaluation: Evaluation, rows: np.ndarray, statistic: Callable[[np.ndarray], float]
) -> tuple[float, float]:
    """Percentile interval of ``statistic(resampled positions)`` over one split's runs."""
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
    values = [
        metrics(np.concatenate(t)[:, j], np.concatenate(e)[:, j])["spearman"]
        for t, e in by_repeat.values()
        for j in cols
    ]
    return float(np.mean(values))


def cross_validate(
    specs: Sequence[PredictorSpec],
    log: RunsLog,
    folds: int = 5,
    targets: Sequence[str] | None = None,
    feature_fn: FeatureFn | None = None,
    seed: int = 0,
    progress: bool = True,
    objective: Objective | None = None,
    repeats: int = 1,
    scored: np.ndarray | None = None,
) -> Evaluation:
    """Repeated k-fold CV on one log, identical folds for every predictor."""
    splits = cv_splits(len(log), folds, repeats, seed, scored)
    return run_splits(
        specs, log, splits, list(targets or log.targets), ["repeat", "fold"], feature_fn,
        objective, None, progress, seed, "cross-validation",
    )  # fmt: skip


def train_test(
    specs: Sequence[PredictorSpec],
    train: RunsLog,
    test: RunsLog,
    targets: Sequence[str] | None = None,
    feature_fn: FeatureFn | None = None,
    progress: bool = True,
    objective: Objective | None = None,
    scored: np.ndarray | None = None,
    seed: int = 0,
) -> Evaluation:
    """Fit each predictor on ``train`` once and score it on the scored rows of ``test``."""
    rows = np.flatnonzero(_scored_mask(len(test), scored))
    if len(rows) == 0:
        raise MixsurrogateError("no test run is left to score")
    splits = [Split(("test", "test"), np.arange(len(train)), rows)]
    return run_splits(
        specs, train, splits, list(targets or train.targets), ["test"], feature_fn, objective,
        test, progress, seed, "predictors",
    )  # fmt: skip


def learning_curve(
    specs: Sequence[PredictorSpec],
    train: RunsLog,
    test: RunsLog | None,
    sizes: Sequence[int],
    draws: int = 5,
    targets: Sequence[str] | None = None,
    feature_fn: FeatureFn | None = None,
    seed: int = 0,
    progress: bool = True,
    objective: Objective | None = None,
    scored: np.ndarray | None = None,
) -> Evaluation:
    """Metrics vs number of training runs: ``draws`` random subsets of each size.

    With no ``test`` log each draw is scored on the (scored) runs it did not train on. A size
    a predictor cannot fit shows as a ``skipped`` cell with the reason, never as a gap.
    """
    splits, dropped = curve_splits(
        len(train), sizes, draws, seed, scored, None if test is None else len(test)
    )
    if not splits:
        raise MixsurrogateError(f"no learning-curve size can be drawn: {'; '.join(dropped)}")
    evaluation = run_splits(
        specs, train, splits, list(targets or train.targets), ["size", "draw"], feature_fn,
        objective, test, progress, seed, "learning curves",
    )  # fmt: skip
    evaluation.dropped = dropped
    return evaluation


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
    rows = evaluation.split_rows[key]
    cols = [evaluation.targets.index(t) for t in evaluation.set_means.get(target, [target])]
    pa, pb = evaluation.predictions[a][key], evaluation.predictions[b][key]
    fn = METRIC_FUNCTIONS[metric]

    def difference(i: np.ndarray) -> float:
        true = evaluation.truth[rows[i]]
        return float(np.mean([fn(true[:, j], pa[i, j]) - fn(true[:, j], pb[i, j]) for j in cols]))

    return _row_bootstrap(evaluation, rows, difference)


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
    means = chosen.groupby(["predictor", *keys], sort=False)[list(METRICS)].mean()
    first = chosen.groupby(["predictor", *keys], sort=False)[["n_train", "n_scored"]].first()
    table = means.join(first).reset_index()
    table["target"], table["status"], table["reason"] = name, "ok", ""
    evaluation.scores = pd.concat([scores, table], ignore_index=True)
    evaluation.set_means[name] = list(sets)
    return name, left_out


def scoring_mask(log: RunsLog, only: Sequence[str] = (), exclude: Sequence[str] = ()) -> np.ndarray:
    """Rows to score: run ids matching any ``only`` glob (default all), minus ``exclude`` globs.

    Rows left out are still fitted on (e.g. ``--exclude-scoring 'vertex-*'``: single-domain
    runs are what data experts already are, so MDE is exact there and they would flatter it).
    """
    ids = pd.Series(log.run_ids, dtype=str)
    mask = np.ones(len(ids), bool)
    for label, patterns in (("--score-only", only), ("--exclude-scoring", exclude)):
        for pattern in patterns:
            if not fnmatch_any(ids, pattern).any():
                raise MixsurrogateError(f"{label} {pattern!r} matches no run id")
    if only:
        mask = np.logical_or.reduce([fnmatch_any(ids, p) for p in only])
    for pattern in exclude:
        mask &= ~fnmatch_any(ids, pattern)
    if mask.sum() < 3:
        raise MixsurrogateError(f"only {int(mask.sum())} run(s) left to score; need at least 3")
    return mask


def fnmatch_any(ids: pd.Series, pattern: str) -> np.ndarray:
    """Which run ids match a shell-style pattern (``vertex-*``)."""
    from fnmatch import fnmatchcase

    return np.array([fnmatchcase(i, pattern) for i in ids], bool)
