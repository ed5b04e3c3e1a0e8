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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold
from tqdm.auto import tqdm

from ..errors import MixsurrogateError
from ..objective import Objective
from ..predictors.multitarget import runs_note
from ..runs.inputs import InputSpace
from ..runs.log import RunsLog
from .aggregate import add_objective, add_set_mean, add_set_means
from .fitting import (
    FeatureFn,
    FitOutcome,
    PredictorSpec,
    check_specs,
    feature_sets_of,
    fit_predict,
)
from .metrics import METRICS, metrics
from .results import (
    OBJECTIVE_TARGET,
    Evaluation,
    SetMean,
    compare,
    merge,
    row_bootstrap,
    summarise,
)
from .splits import Split, curve_splits, cv_splits, scored_mask, scoring_mask, where_split

#: the evaluation API in one place (fits, results, aggregates and splits live in their own modules)
__all__ = [
    "METRICS",
    "OBJECTIVE_TARGET",
    "Evaluation",
    "FeatureFn",
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
    "feature_sets_of",
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
    unique_tokens: Mapping[str, float] | None = None,
) -> Evaluation:
    """Fit every predictor on every split and score it on the split's test rows.

    Test rows index ``test`` when given (train/test and curves with a test log), else ``train``.
    With an ``objective``, the target ``objective`` scores its blend (see ``add_objective``).
    Inputs are ``InputSpace.of(train, unique_tokens)``'s: a schedule log's flattened schedules,
    with exposure features when ``unique_tokens`` (domain -> unique training tokens) is given.
    """
    targets = list(targets)
    space = InputSpace.of(train, unique_tokens)
    check_specs(specs, feature_fn, space, train)
    if test is not None and test.domains != train.domains:
        if sorted(test.domains) != sorted(train.domains):
            raise MixsurrogateError(
                "train and test logs have different domains "
                f"({', '.join(train.domains)} vs {', '.join(test.domains)})"
            )
        test = test.with_domain_order(train.domains)  # same domains, another column order
    scored_log = test if test is not None else train
    X_scored = space.inputs(scored_log)  # noqa: N806
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
                    spec, train.subset(split.train), X_scored[split.test], targets,
                    feature_fn, interval_level, rows_test, space,
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


@dataclass(frozen=True)
class EvaluationContext:
    """What every evaluation entry point is given alike: the predictors, the targets scored
    (default: every target of the training log), MDE features, the objective scored as its own
    target, which runs are scored (of the log scored on), the seed, the interval level whose
    coverage and width are scored, whether to show progress, and the domains' unique training
    tokens when the inputs carry exposure features (``runs.inputs``)."""

    specs: Sequence[PredictorSpec]
    targets: Sequence[str] | None = None
    feature_fn: FeatureFn | None = None
    objective: Objective | None = None
    scored: np.ndarray | None = None
    seed: int = 0
    interval_level: float | None = None
    progress: bool = True
    unique_tokens: Mapping[str, float] | None = None

    def run(
        self, train: RunsLog, splits: Sequence[Split], key_columns: list[str],
        test: RunsLog | None, desc: str,
    ) -> Evaluation:  # fmt: skip
        """``run_splits`` with this context's arguments."""
        return run_splits(
            self.specs, train, splits, list(self.targets or train.targets), key_columns,
            self.feature_fn, self.objective, test, self.progress, self.seed, desc,
            self.interval_level, self.unique_tokens,
        )  # fmt: skip


def cross_validate(
    context: EvaluationContext, log: RunsLog, folds: int = 5, repeats: int = 1
) -> Evaluation:
    """Repeated k-fold CV on one log, identical folds for every predictor.

    With ``interval_level`` every cell also gets the held-out ``coverage`` of that interval
    and its mean ``width`` (each fit calibrates its intervals on its own training runs).
    Pending runs are left out; when some runs lack some losses, folds are stratified on
    which sets each run has, so every fold can score every set.
    """
    # a pending run (no loss yet) is never scored, and contributes to no fit
    scored = scored_mask(len(log), context.scored) & ~log.pending_mask
    splits = _partial_cv_splits(log, folds, repeats, context.seed, scored)
    if splits is None:
        splits = cv_splits(len(log), folds, repeats, context.seed, scored)
    return context.run(log, splits, ["repeat", "fold"], None, "cross-validation")


def train_test(context: EvaluationContext, train: RunsLog, test: RunsLog) -> Evaluation:
    """Fit each predictor on ``train`` once and score it on the scored rows of ``test``."""
    rows = np.flatnonzero(scored_mask(len(test), context.scored) & ~test.pending_mask)
    if len(rows) == 0:
        raise MixsurrogateError("no test run is left to score")
    splits = [Split(("test", "test"), np.arange(len(train)), rows)]
    return context.run(train, splits, ["test"], test, "predictors")


def train_test_where(
    context: EvaluationContext, log: RunsLog, train_where: str, test_where: str
) -> Evaluation:
    """Fit on the runs of ``log`` matching ``train_where`` (e.g. ``params<1e8``), score on
    those matching ``test_where`` (``params>=1e9``): do small runs predict large ones?"""
    split = where_split(log, train_where, test_where, context.scored)
    return context.run(log, [split], ["test"], None, "predictors")


def learning_curve(
    context: EvaluationContext,
    train: RunsLog,
    test: RunsLog | None,
    sizes: Sequence[int],
    draws: int = 5,
) -> Evaluation:
    """Metrics vs number of training runs: ``draws`` random subsets of each size (with
    ``interval_level``, also held-out coverage and width of that interval, as ``cross_validate``).

    With no ``test`` log each draw is scored on the (scored) runs it did not train on. A size
    a predictor cannot fit shows as a ``skipped`` cell with the reason, never as a gap.
    """
    scored = scored_mask(len(train), context.scored) & ~train.pending_mask  # sizes: trained runs
    splits, dropped = curve_splits(
        len(train), sizes, draws, context.seed, scored, None if test is None else len(test)
    )
    if not splits:
        raise MixsurrogateError(f"no learning-curve size can be drawn: {'; '.join(dropped)}")
    evaluation = context.run(train, splits, ["size", "draw"], test, "learning curves")
    evaluation.dropped = dropped
    return evaluation
