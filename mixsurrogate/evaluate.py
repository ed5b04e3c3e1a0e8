"""Honest evaluation of predictors: k-fold CV, explicit train/test, learning curves.

Every fit sees only its training rows; any tuning a predictor does (ridge alpha, GP
hyper-parameters, LightGBM rounds) happens inside that fit, so no held-out loss ever steers
a choice. MDE features are a fixed function of the mixture (computed from the experts'
cached scores, never from the runs' losses), so computing them for held-out rows leaks nothing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import pearsonr, spearmanr
from sklearn.model_selection import KFold
from tqdm.auto import tqdm

from .errors import MixsurrogateError, UnsupportedTargetError
from .objective import Objective
from .predictors import make_predictor
from .predictors.multitarget import MultiTargetPredictor
from .runs import RunsLog

FeatureFn = Callable[[np.ndarray], np.ndarray]
METRICS = ("spearman", "pearson", "mse", "mae", "regret")


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Rank and error metrics of one target; ``regret`` is the top-1 regret.

    Top-1 regret: the true loss of the mixture the predictor ranks best, minus the best true
    loss in the same set. It is what a user loses by trusting the predictor's choice.
    """
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    constant = np.ptp(y_pred) == 0 or np.ptp(y_true) == 0
    with warnings.catch_warnings():  # nearly constant predictions: the rank metric says enough
        warnings.simplefilter("ignore")
        spearman = float("nan") if constant else float(spearmanr(y_true, y_pred).statistic)
        pearson = float("nan") if constant else float(pearsonr(y_true, y_pred).statistic)
    return {
        "spearman": spearman,
        "pearson": pearson,
        "mse": float(np.mean((y_true - y_pred) ** 2)),
        "mae": float(np.mean(np.abs(y_true - y_pred))),
        "regret": float(y_true[int(np.argmin(y_pred))] - y_true.min()),
    }


@dataclass
class PredictorSpec:
    """A predictor to evaluate: registry name plus hyper-parameters."""

    name: str
    params: dict | None = None

    def build(self) -> MultiTargetPredictor:
        make_predictor(self.name, **(self.params or {}))  # fail early on an unknown name
        return MultiTargetPredictor(self.name, self.params)

    @property
    def uses_features(self) -> bool:
        return bool(make_predictor(self.name, **(self.params or {})).uses_features)


def _features(
    spec: PredictorSpec, feature_fn: FeatureFn | None, W: np.ndarray
) -> np.ndarray | None:  # noqa: N803
    if not spec.uses_features:
        return None
    if feature_fn is None:
        raise MixsurrogateError(
            f"predictor {spec.name!r} needs MDE features: pass a score store (--scores)"
        )
    return feature_fn(W)


def fit_predict(
    spec: PredictorSpec,
    train: RunsLog,
    W_test: np.ndarray,  # noqa: N803
    targets: Sequence[str],
    feature_fn: FeatureFn | None = None,
) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Fit on ``train`` and predict ``W_test`` for ``targets``; returns (pred, fitted, skipped)."""
    model = spec.build()
    Y = np.column_stack([train.loss(t) for t in targets])  # noqa: N806
    model.fit(
        train.W, Y, list(targets), train.domains, features=_features(spec, feature_fn, train.W)
    )
    pred = model.predict(W_test, features=_features(spec, feature_fn, W_test))
    return pred, list(model.fitted_targets_), dict(model.skipped_)


OBJECTIVE_TARGET = "objective"


def _score_rows(
    spec, targets, fitted, y_true_cols, pred, extra: dict, objective=None
) -> list[dict]:
    """Metric rows per fitted target, plus the blended objective when every set it needs was fitted."""
    rows = []
    for j, target in enumerate(fitted):
        m = metrics(y_true_cols[targets.index(target)], pred[:, j])
        rows.append({"predictor": spec.name, "target": target, **extra, **m})
    if objective is not None and all(s in fitted for s in objective.sets):
        true = np.column_stack([y_true_cols[targets.index(s)] for s in objective.sets])
        est = np.column_stack([pred[:, fitted.index(s)] for s in objective.sets])
        m = metrics(objective.combine(true, objective.sets), objective.combine(est, objective.sets))
        rows.append({"predictor": spec.name, "target": OBJECTIVE_TARGET, **extra, **m})
    return rows


def train_test(
    specs: Sequence[PredictorSpec],
    train: RunsLog,
    test: RunsLog | dict[str, RunsLog],
    targets: Sequence[str] | None = None,
    feature_fn: FeatureFn | None = None,
    progress: bool = True,
    objective: Objective | None = None,
) -> pd.DataFrame:
    """Fit each predictor on ``train`` once and score it on ``test`` (one row per predictor x target).

    ``test`` may be a dict of labelled logs: the rows then carry a ``test`` column, and each
    predictor is still fitted only once. With an ``objective``, a row ``target == "objective"``
    scores the blend of the predicted sets.
    """
    tests = test if isinstance(test, dict) else {"": test}
    for log in tests.values():
        _check_same_domains(train, log)
    targets = list(targets or train.targets)
    labels = list(tests)
    W_all = np.vstack([tests[label].W for label in labels])  # noqa: N806
    bounds = np.cumsum([0] + [len(tests[label]) for label in labels])
    rows: list[dict] = []
    for spec in tqdm(specs, desc="predictors", disable=not progress, leave=False):
        try:
            pred, fitted, _ = fit_predict(spec, train, W_all, targets, feature_fn)
        except UnsupportedTargetError:
            continue
        for i, label in enumerate(labels):
            log = tests[label]
            extra = {"n_train": len(train)} | ({"test": label} if label else {})
            y_true = [log.loss(t) for t in targets]
            rows += _score_rows(
                spec, targets, fitted, y_true, pred[bounds[i] : bounds[i + 1]], extra, objective
            )
    return pd.DataFrame(rows)


def cross_validate(
    specs: Sequence[PredictorSpec],
    log: RunsLog,
    folds: int = 5,
    targets: Sequence[str] | None = None,
    feature_fn: FeatureFn | None = None,
    seed: int = 0,
    progress: bool = True,
    objective: Objective | None = None,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """K-fold CV on one log, identical folds for every predictor.

    Rank and error metrics are computed on the pooled out-of-fold predictions (every run is
    predicted once, by a model that never saw it); regret is averaged over folds, because a
    choice is made within one held-out set. Returns the table and the out-of-fold predictions
    per predictor (runs x targets, NaN where a target was skipped).
    """
    if folds < 2 or folds > len(log):
        raise MixsurrogateError(
            f"--folds must be between 2 and the number of runs ({len(log)}), got {folds}"
        )
    targets = list(targets or log.targets)
    splits = list(KFold(folds, shuffle=True, random_state=seed).split(log.W))
    rows: list[dict] = []
    oof_by_predictor: dict[str, np.ndarray] = {}
    total = len(specs) * len(splits)
    with tqdm(total=total, desc="cross-validation", disable=not progress, leave=False) as bar:
        for spec in specs:
            oof = np.full((len(log), len(targets)), np.nan)
            regrets: dict[str, list[float]] = {t: [] for t in targets}
            fitted: list[str] = []
            try:
                for train_idx, test_idx in splits:
                    pred, fitted, _ = fit_predict(
                        spec, log.subset(train_idx), log.W[test_idx], targets, feature_fn
                    )
                    for j, target in enumerate(fitted):
                        col = targets.index(target)
                        oof[test_idx, col] = pred[:, j]
                        regrets[target].append(
                            metrics(log.loss(target)[test_idx], pred[:, j])["regret"]
                        )
                    bar.update()
            except UnsupportedTargetError:
                bar.update(len(splits) - len(regrets[targets[0]]))
                continue
            n_train = len(log) - len(log) // folds
            for target in fitted:
                col = targets.index(target)
                m = metrics(log.loss(target), oof[:, col])
                m["regret"] = float(np.mean(regrets[target]))
                rows.append({"predictor": spec.name, "target": target, "n_train": n_train, **m})
            if objective is not None and all(s in fitted for s in objective.sets):
                cols = [targets.index(s) for s in objective.sets]
                true = objective.combine(
                    np.column_stack([log.loss(s) for s in objective.sets]), objective.sets
                )
                est = objective.combine(oof[:, cols], objective.sets)
                m = metrics(true, est)
                m["regret"] = float(
                    np.mean([metrics(true[te], est[te])["regret"] for _, te in splits])
                )
                rows.append(
                    {"predictor": spec.name, "target": OBJECTIVE_TARGET, "n_train": n_train, **m}
                )
            oof_by_predictor[spec.name] = oof
    return pd.DataFrame(rows), oof_by_predictor


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
) -> pd.DataFrame:
    """Metrics vs number of training runs: ``draws`` random subsets of each size.

    With no ``test`` log, each draw is scored on the runs it did not train on.
    Sizes a predictor cannot fit (too few runs for its parameters) are left out of its curve.
    """
    from .errors import NotEnoughRunsError

    targets = list(targets or train.targets)
    if test is not None:
        _check_same_domains(train, test)
    sizes = [n for n in sizes if n <= len(train) - (0 if test is not None else 2)]
    rng = np.random.default_rng(seed)
    subsets = {
        (n, d): np.sort(rng.choice(len(train), n, replace=False))
        for n in sizes
        for d in range(draws)
    }
    rows: list[dict] = []
    with tqdm(
        total=len(specs) * len(subsets), desc="learning curves", disable=not progress, leave=False
    ) as bar:
        for spec in specs:
            for (n, d), idx in subsets.items():
                bar.update()
                if n == len(train) and d > 0:
                    continue  # every draw of the full set is the same set
                held = (
                    test
                    if test is not None
                    else train.subset(np.setdiff1d(np.arange(len(train)), idx))
                )
                try:
                    pred, fitted, _ = fit_predict(
                        spec, train.subset(idx), held.W, targets, feature_fn
                    )
                except (NotEnoughRunsError, UnsupportedTargetError):
                    continue
                y_true = [held.loss(t) for t in targets]
                rows += _score_rows(
                    spec, targets, fitted, y_true, pred, {"n_train": n, "draw": d}, objective
                )
    return pd.DataFrame(rows)


def summarise_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over draws, per predictor, target and size."""
    if curve.empty:
        return curve
    grouped = curve.groupby(["predictor", "target", "n_train"])
    return grouped[list(METRICS)].agg(["mean", "std"]).reset_index()


def _check_same_domains(a: RunsLog, b: RunsLog) -> None:
    if a.domains != b.domains:
        raise MixsurrogateError(
            f"train and test logs have different domains ({', '.join(a.domains)} vs {', '.join(b.domains)})"
        )
