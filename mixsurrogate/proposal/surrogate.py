"""The fitted surrogate a proposal minimises: a multi-target predictor on the objective's
sets seen as f(W) -> objective, and the conformal interval of its predicted objective."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import MixsurrogateError
from ..evaluation.fitting import check_space
from ..evaluation.protocol import FeatureFn, PredictorSpec, feature_sets_of, fit_predict
from ..evaluation.splits import cv_splits
from ..objective import Objective
from ..predictors.intervals import conformal_quantile
from ..predictors.multitarget import MultiTargetPredictor
from ..runs.inputs import InputSpace
from ..runs.log import RunsLog
from .record import check_objective_sets, objective_values


class FittedObjective:
    """A multi-target surrogate fitted on the objective's sets, seen as f(W) -> objective.

    ``extra_sets`` (e.g. sets a constraint names outside the objective) are fitted too, after
    the objective's; they carry no weight in the objective. ``W`` are inputs of ``space``
    (default ``InputSpace.of(log)``): mixtures, or a schedule log's flattened schedules.
    """

    def __init__(
        self,
        spec: PredictorSpec,
        log: RunsLog,
        objective: Objective,
        feature_fn: FeatureFn | None,
        extra_sets: Sequence[str] = (),
        space: InputSpace | None = None,
    ):
        check_objective_sets(log, objective)
        self.space = space or InputSpace.of(log)
        check_space(spec, self.space)
        self.spec, self.objective = spec, objective
        self.feature_fn = self.space.features(feature_fn)
        self.sets = objective.sets + [
            s for s in dict.fromkeys(extra_sets) if s not in objective.sets
        ]
        self.model = MultiTargetPredictor(spec.name, spec.params)
        Y = np.column_stack([log.loss(s) for s in self.sets])  # noqa: N806
        X = self.space.inputs(log)  # noqa: N806
        names = log.domains if self.space.is_mixture else self.space.names()
        self.model.fit(
            X, Y, self.sets, names, features=self._features(X),
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
        capabilities = self.spec.capabilities
        W = np.atleast_2d(W)  # noqa: N806
        if capabilities.objective_std:
            weights = {s: self.objective.weights.get(s, 0.0) for s in self.sets}
            return self.model.predict_objective_std(W, weights, features=self._features(W))
        if not capabilities.std:
            return None
        stds = self.model.predict_std(W, features=self._features(W))
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
    space: InputSpace | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """A ``level`` interval of the predicted objective of new runs, by split conformal on the
    objective's cross-validated residuals over the logged runs (refits the predictor ``folds``
    times; the objective's sets are fitted together, so their correlated errors count)."""
    folds = min(folds, len(log))
    truth = objective_values(log, objective)
    residuals = np.full(len(log), np.nan)
    space = space or InputSpace.of(log)
    X = space.inputs(log)  # noqa: N806
    for split in cv_splits(len(log), folds, 1, seed):
        outcome = fit_predict(
            spec,
            log.subset(split.train),
            X[split.test],
            objective.sets,
            feature_fn,
            space=space,
        )
        if all(outcome.status[t][0] == "ok" for t in objective.sets):
            est = objective.combine(outcome.pred, objective.sets)
            residuals[split.test] = truth[split.test] - est
    half = conformal_quantile(residuals, level)
    how = f"split conformal over {folds}-fold CV of the {int(np.isfinite(residuals).sum())} logged runs"
    return predicted - half, predicted + half, how
