"""The fitted surrogate a proposal minimises: a multi-target predictor on the objective's
sets seen as f(W) -> objective, and the conformal interval of its predicted objective."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import MixsurrogateError
from ..evaluation.protocol import FeatureFn, PredictorSpec, feature_sets_of, fit_predict
from ..evaluation.splits import cv_splits
from ..objective import Objective
from ..predictors.intervals import conformal_quantile
from ..predictors.multitarget import MultiTargetPredictor
from ..runs.log import RunsLog
from .record import check_objective_sets, objective_values

TREE_PREDICTORS = ("lgbm", "lgbm+mde")


class FittedObjective:
    """A multi-target surrogate fitted on the objective's sets, seen as f(W) -> objective.

    ``extra_sets`` (e.g. sets a constraint names outside the objective) are fitted too, after
    the objective's; they carry no weight in the objective.
    """

    def __init__(
        self,
        spec: PredictorSpec,
        log: RunsLog,
        objective: Objective,
        feature_fn: FeatureFn | None,
        extra_sets: Sequence[str] = (),
    ):
        check_objective_sets(log, objective)
        self.spec, self.objective, self.feature_fn = spec, objective, feature_fn
        self.sets = objective.sets + [
            s for s in dict.fromkeys(extra_sets) if s not in objective.sets
        ]
        self.model = MultiTargetPredictor(spec.name, spec.params)
        Y = np.column_stack([log.loss(s) for s in self.sets])  # noqa: N806
        self.model.fit(
            log.W, Y, self.sets, log.domains, features=self._features(log.W),
            feature_sets=feature_sets_of(feature_fn),
        )  # fmt: skip
        self.model.require_fitted(self.sets)  # a proposal needs every set of the objective

    def _features(self, W: np.ndarray) -> np.ndarray | None:  # noqa: N803
        if not self.spec.uses_features:
            return None
        if self.feature_fn is None:
            raise MixsurrogateError(
                f"predictor {self.spec.name!r} needs MDE features: pass --scores"
            )
        return self.feature_fn(W)

    def set_losses(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        W = np.atleast_2d(W)  # noqa: N806
        return self.model.predict(W, features=self._features(W))

    def __call__(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.objective.combine(self.set_losses(W), self.sets)

    def std(self, W: np.ndarray) -> np.ndarray | None:  # noqa: N803
        """Posterior std of the objective: with the sets' posterior covariance for a joint
        model (``mtgp``: correlated sets add up), else from per-set stds taken as independent."""
        if hasattr(self.model, "predict_objective_std"):
            W = np.atleast_2d(W)  # noqa: N806
            weights = {s: self.objective.weights.get(s, 0.0) for s in self.sets}
            return self.model.predict_objective_std(W, weights, features=self._features(W))
        if not hasattr(self.model, "predict_std"):
            return None
        try:
            stds = self.model.predict_std(
                np.atleast_2d(W), features=self._features(np.atleast_2d(W))
            )
        except (AttributeError, NotImplementedError):
            return None
        return self.objective.combine_std(stds, self.sets)


def conformal_objective_interval(
    spec: PredictorSpec,
    log: RunsLog,
    objective: Objective,
    feature_fn: FeatureFn | None,
    predicted: np.ndarray,
    level: float = 0.9,
    folds: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, str]:
    """A ``level`` interval of the predicted objective of new runs, by split conformal on the
    objective's cross-validated residuals over the logged runs (refits the predictor ``folds``
    times; the objective's sets are fitted together, so their correlated errors count)."""
    folds = min(folds, len(log))
    truth = objective_values(log, objective)
    residuals = np.full(len(log), np.nan)
    for split in cv_splits(len(log), folds, 1, seed):
        outcome = fit_predict(
            spec, log.subset(split.train), log.W[split.test], objective.sets, feature_fn
        )
        if all(outcome.status[t][0] == "ok" for t in objective.sets):
            est = objective.combine(outcome.pred, objective.sets)
            residuals[split.test] = truth[split.test] - est
    half = conformal_quantile(residuals, level)
    how = f"split conformal over {folds}-fold CV of the {int(np.isfinite(residuals).sum())} logged runs"
    return predicted - half, predicted + half, how
