"""Honest evaluation of predictors: repeated k-fold CV, explicit train/test, learning curves.

Every fit sees only its training rows; any tuning a predictor does (ridge alpha, GP
hyper-parameters, LightGBM rounds) happens inside that fit, so no held-out loss ever steers
a choice. MDE features are a fixed function of the mixture (computed from the experts'
cached scores, never from the runs' losses), so computing them for held-out rows leaks nothing.

The unit of evaluation is a *split* (a fold of one repeat, a draw of a learning curve, or a
test log): every predictor is fitted on the same splits, so two predictors can be compared
split by split (``splits.py``); results, summaries and comparisons are in ``results.py``.
A predictor that cannot be fitted to a target, or whose fit fails, yields a cell marked
``skipped`` or ``failed`` with its reason; the other cells are still computed.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..errors import MixsurrogateError
from ..objective import Objective
from ..predictors import Capabilities, make_predictor, predictor_class
from ..predictors.multitarget import MultiTargetPredictor, runs_note
from ..runs.log import RunsLog
from .metrics import METRICS, metrics
from .results import (
    OBJECTIVE_TARGET,
    Evaluation,
    SetMean,
    add_objective,
    add_set_mean,
    add_set_means,
    compare,
    merge,
    row_bootstrap,
    summarise,
)
from .splits import Split, curve_splits, cv_splits, scored_mask, scoring_mask, where_split

FeatureFn = Callable[[np.ndarray], np.ndarray]
#: the evaluation API in one place (results and splits live in their own modules)
__all__ = [
    "METRICS",
    "OBJECTIVE_TARGET",
    "Evaluation",
    "FitOutcome",
    "PredictorSpec",
    "SetMean",
    "Split",
    "add_objective",
    "add_set_mean",
    "add_set_means",
    "check_specs",
    "compare",
    "cross_validate",
    "cv_splits",
    "curve_splits",
    "fit_predict",
    "learning_curve",
    "merge",
    "row_bootstrap",
    "run_splits",
    "scoring_mask",
    "summarise",
    "train_test",
    "train_test_where",
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
    def capabilities(self) -> Capabilities:
        """What the predictor declares it supports (``predictors.base.Capabilities``)."""
        return predictor_class(self.name).capabilities

    @property
    def uses_features(self) -> bool:
        """Whether the predictor needs MDE features (a score store)."""
        return self.capabilities.features

    @property
    def uses_fidelity(self) -> bool:
        """Whether the predictor takes the runs' fidelity columns (``fidelity.py``) as inputs."""
        return self.capabilities.fidelity

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass
class FitOutcome:
    """One fit's predictions of some rows: NaN columns for targets it could not fit."""

    pred: np.ndarray  # (rows, targets)
    status: dict[str, tuple[str, str]]  # target -> ("ok" | "skipped" | "failed", reason)
    notes: dict[str, list[str]] = field(default_factory=dict)
    lower: np.ndarray | None = None  # prediction interval bounds, like pred (interval_level)
    upper: np.ndarray | None = None
    n_runs: dict[str, int] = field(default_factory=dict)  # target -> runs fitted on (with it)

    @property
    def fitted(self) -> list[str]:
        return [t for t, (s, _) in self.status.items() if s == "ok"]


def _features(
    spec: PredictorSpec,
    feature_fn: FeatureFn | None,
    W: np.ndarray,  # noqa: N803
    rows: RunsLog | None = None,
):
    if spec.uses_fidelity:  # per-run inputs, not a function of the mixture: read from the rows
        from ..runs.fidelity import fidelity_features

        predictor = make_predictor(spec.name, **(spec.params or {}))
        return fidelity_features(rows, predictor.fidelity_columns())
    if not spec.uses_features:
        return None
    if feature_fn is None:
        raise MixsurrogateError(
            f"predictor {spec.name!r} needs MDE features: pass a score store (--scores)"
        )
    return feature_fn(W)


def feature_sets_of(feature_fn: FeatureFn | None) -> list[str] | None:
    """The evaluation set of each column a feature function returns (an ``MDEFeatureMap``'s
    ``eval_sets``), or None when it does not say (columns then follow the targets)."""
    sets = getattr(feature_fn, "eval_sets", None)
    return None if sets is None else list(sets)


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
    interval_level: float | None = None,
    test_rows: RunsLog | None = None,
) -> FitOutcome:
    """Fit on ``train`` and predict ``W_test`` for every target that could be fitted (and,
    with ``interval_level``, each prediction's interval, calibrated on ``train`` alone).
    A fidelity predictor (``mfgp``) also needs the rows of ``W_test`` as ``test_rows``.

    Never raises for a target's trouble: it is in ``status`` with its reason. Pending runs of
    ``train`` (no loss yet) are left out; each target is fitted on the runs that have its loss
    (``n_runs`` counts them).
    """
    targets = list(targets)
    pred = np.full((len(W_test), len(targets)), np.nan)
    lower, upper = (pred.copy(), pred.copy()) if interval_level else (None, None)
    model = spec.build()
    train = train.completed()
    Y = np.column_stack([train.loss(t) for t in targets])  # noqa: N806
    n_runs = {t: int(np.isfinite(Y[:, j]).sum()) for j, t in enumerate(targets)}
    try:
        train_features = _features(spec, feature_fn, train.W, train)
        model.fit(
            train.W, Y, targets, train.domains, features=train_features,
            feature_sets=feature_sets_of(feature_fn),
        )  # fmt: skip
        reasons = model.reasons()
        if model.fitted_targets_:
            test_features = _features(spec, feature_fn, W_test, test_rows)
            got = model.predict(W_test, features=test_features)
            cols = [targets.index(t) for t in model.fitted_targets_]
            pred[:, cols] = got
            if interval_level:
                lo, hi = model.predict_interval(W_test, test_features, interval_level)
                lower[:, cols], upper[:, cols] = lo, hi
    except MixsurrogateError:
        raise  # configuration errors (no score store) are the user's to fix
    except Exception as err:  # noqa: BLE001 - one predictor's failure must not lose the others
        reason = f"{type(err).__name__}: {err}"
        return FitOutcome(pred, {t: ("failed", reason) for t in targets}, n_runs=n_runs)
    status = {t: reasons.get(t, ("ok", "")) for t in targets}
    return FitOutcome(pred, status, model.notes_, lower, upper, n_runs)


# --- running -----------------------------------------------------------------------------------


def _split_rows(
    spec: PredictorSpec,
    split: Split,
    outcome: FitOutcome,
    truth: np.ndarray,
    targets: list[str],
    key_columns: list[str],
) -> list[dict]:
    keys = dict(zip(key_columns, split.key[1:], strict=True))
    base = {"predictor": spec.display, **keys}
    rows = []
    for j, target in enumerate(targets):
        status, reason = outcome.status[target]
        # each target is fitted on, and scored on, the runs evaluated on it
        have = np.isfinite(truth[split.test, j])
        row = {**base, "n_train": outcome.n_runs.get(target, len(split.train))}
        row |= {"n_scored": int(have.sum()), "target": target, "status": status, "reason": reason}
        if status == "ok" and not have.any():
            row |= {"status": "skipped", "reason": "no held-out run was evaluated on this set"}
        elif status == "ok":
            y = truth[split.test, j][have]
            row |= metrics(y, outcome.pred[have, j])
            if outcome.lower is not None:
                lo, hi = outcome.lower[have, j], outcome.upper[have, j]
                row["coverage"] = float(np.mean((y >= lo) & (y <= hi)))
                row["width"] = float(np.mean(hi - lo))
        rows.append(row)
    return rows


def _split_notes(outcome: FitOutcome, train: RunsLog, split: Split) -> dict[str, list[str]]:
    """A fit's notes, with its count of the runs evaluated on a target (which differs from
    split to split) replaced by the log's count, so the note reads the same for every split."""
    completed = train.completed()
    fitted = len(train.subset(split.train).completed())
    counts = completed.run_counts()
    out = {}
    for target, items in outcome.notes.items():
        per_split = runs_note(outcome.n_runs.get(target, fitted), fitted)
        if per_split in items:
            items = [i for i in items if i != per_split]
            items.append(
                f"evaluated on {counts[target]} of the log's {len(completed)} completed runs, "
                "so fitted and scored on those (n_train, n_scored)"
            )
        out[target] = items
    return out


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
    interval_level: float | None = None,
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
    split_notes: dict[tuple[str, str, tuple], list[str]] = {}
    total = len(specs) * len(splits)
    with tqdm(total=total, desc=desc, disable=not progress, leave=False) as bar:
        for spec in specs:
            predictions[spec.display] = {}
            for split in splits:
                rows_test = scored_log.subset(split.test) if spec.uses_fidelity else None
                outcome = fit_predict(
                    spec, train.subset(split.train), scored_log.W[split.test], targets,
                    feature_fn, interval_level, rows_test,
                )  # fmt: skip
                rows += _split_rows(spec, split, outcome, truth, targets, key_columns)
                predictions[spec.display][split.key] = outcome.pred
                for target, items in _split_notes(outcome, train, split).items():
                    notes.setdefault((spec.display, target), Counter()).update(set(items))
                    split_notes[(spec.display, target, split.key)] = list(items)
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
        split_notes=split_notes,
    )
    if objective is not None:
        add_objective(evaluation, objective)
    return evaluation


def _partial_cv_splits(
    log: RunsLog, folds: int, repeats: int, seed: int, scored: np.ndarray
) -> list[Split] | None:
    """Folds stratified on which sets each scored run was evaluated on, so that every fold
    holds out some runs of every set; None when every scored run has every loss (then the
    usual folds, unchanged)."""
    from sklearn.model_selection import RepeatedStratifiedKFold

    has = ~np.isnan(log.Y)
    scored_idx, always = np.flatnonzero(scored), np.flatnonzero(~scored)
    _, pattern = np.unique(has[scored_idx], axis=0, return_inverse=True)
    if pattern.max(initial=0) == 0 or not 2 <= folds <= len(scored_idx) or repeats < 1:
        return None  # one pattern, or arguments cv_splits refuses with its clear error
    kfold = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a rare pattern: fewer runs than folds, as good as can be
        try:
            pairs = list(kfold.split(scored_idx, pattern.ravel()))
        except ValueError:  # every pattern has fewer runs than folds: plain folds
            return None
    return [
        Split(("cv", i // folds, i % folds), np.sort(np.concatenate([scored_idx[tr], always])),
              scored_idx[te])
        for i, (tr, te) in enumerate(pairs)
    ]  # fmt: skip


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
    interval_level: float | None = None,
) -> Evaluation:
    """Repeated k-fold CV on one log, identical folds for every predictor.

    With ``interval_level`` every cell also gets the held-out ``coverage`` of that interval
    and its mean ``width`` (each fit calibrates its intervals on its own training runs).
    Pending runs are left out; when some runs lack some losses, folds are stratified on
    which sets each run has, so every fold can score every set.
    """
    # a pending run (no loss yet) is never scored, and contributes to no fit
    scored = scored_mask(len(log), scored) & ~log.pending_mask
    splits = _partial_cv_splits(log, folds, repeats, seed, scored)
    if splits is None:
        splits = cv_splits(len(log), folds, repeats, seed, scored)
    return run_splits(
        specs, log, splits, list(targets or log.targets), ["repeat", "fold"], feature_fn,
        objective, None, progress, seed, "cross-validation", interval_level,
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
    interval_level: float | None = None,
) -> Evaluation:
    """Fit each predictor on ``train`` once and score it on the scored rows of ``test``."""
    rows = np.flatnonzero(scored_mask(len(test), scored) & ~test.pending_mask)
    if len(rows) == 0:
        raise MixsurrogateError("no test run is left to score")
    splits = [Split(("test", "test"), np.arange(len(train)), rows)]
    return run_splits(
        specs, train, splits, list(targets or train.targets), ["test"], feature_fn, objective,
        test, progress, seed, "predictors", interval_level,
    )  # fmt: skip


def train_test_where(
    specs: Sequence[PredictorSpec],
    log: RunsLog,
    train_where: str,
    test_where: str,
    targets: Sequence[str] | None = None,
    feature_fn: FeatureFn | None = None,
    progress: bool = True,
    objective: Objective | None = None,
    scored: np.ndarray | None = None,
    seed: int = 0,
    interval_level: float | None = None,
) -> Evaluation:
    """Fit on the runs of ``log`` matching ``train_where`` (e.g. ``params<1e8``), score on
    those matching ``test_where`` (``params>=1e9``): do small runs predict large ones?"""
    split = where_split(log, train_where, test_where, scored)
    return run_splits(
        specs, log, [split], list(targets or log.targets), ["test"], feature_fn, objective,
        None, progress, seed, "predictors", interval_level,
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
    interval_level: float | None = None,
) -> Evaluation:
    """Metrics vs number of training runs: ``draws`` random subsets of each size (with
    ``interval_level``, also held-out coverage and width of that interval, as ``cross_validate``).

    With no ``test`` log each draw is scored on the (scored) runs it did not train on. A size
    a predictor cannot fit shows as a ``skipped`` cell with the reason, never as a gap.
    """
    scored = scored_mask(len(train), scored) & ~train.pending_mask  # sizes count trained runs
    splits, dropped = curve_splits(
        len(train), sizes, draws, seed, scored, None if test is None else len(test)
    )
    if not splits:
        raise MixsurrogateError(f"no learning-curve size can be drawn: {'; '.join(dropped)}")
    evaluation = run_splits(
        specs, train, splits, list(targets or train.targets), ["size", "draw"], feature_fn,
        objective, test, progress, seed, "learning curves", interval_level,
    )  # fmt: skip
    evaluation.dropped = dropped
    return evaluation
