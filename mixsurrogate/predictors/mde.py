"""Predictors that use the MDE loss approximations (``features``) the caller computes.

``features`` has one column per evaluation set: the mixture-of-data-experts loss of that set
for each row's mixture (MDE paper: the losses of *all* sets, not only the target's, are
useful features). ``target_feature`` is the column of the target's own MDE loss.

* ``mde``: the target's MDE loss as the prediction, no fitting (zero-shot);
* ``mde-cal``: ``a + b * mde`` fitted on the runs (MDE is biased: experts are not the model);
* ``linear+mde``, ``lgbm+mde``, ``gp+mde``: the rate predictors on ``[rates, features]``;
* ``gp+mde-res``: ``mde-cal`` plus a GP on the rates for its residual.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import MixsurrogateError, UnsupportedTargetError
from .base import MixturePredictor, check_features
from .gp import GPPredictor, JointHyperparameters
from .lgbm import LGBMPredictor
from .linear import LinearPredictor


def own_mde_column(features: np.ndarray, target_feature: int | None, name: str) -> np.ndarray:
    """The target's own MDE loss column, or one clear error naming the predictor."""
    if target_feature is None:
        raise UnsupportedTargetError(
            f"{name} needs the column of the target's own MDE loss (target_feature); "
            "this evaluation set has no MDE feature"
        )
    if not 0 <= target_feature < features.shape[1]:
        raise MixsurrogateError(
            f"{name} target_feature {target_feature} is outside the "
            f"{features.shape[1]} feature columns"
        )
    return features[:, target_feature]


def fit_mde_calibration(
    features: np.ndarray, y: np.ndarray, target_feature: int | None, name: str
) -> tuple[float, float]:
    """``(slope, intercept)`` of ``y ~ a + b * mde`` by least squares on the target's own column.

    MDE is biased (the experts are not the model), so its scale and offset are learnt from the
    runs; a constant column has no slope to learn and is refused with one clear error.
    """
    x = own_mde_column(features, target_feature, name)
    if np.ptp(x) == 0:
        raise UnsupportedTargetError(f"{name}: the MDE feature is constant over the runs")
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


class MDEPredictor(MixturePredictor):
    """The target's own MDE loss, unfitted: what the experts alone say."""

    name = "mde"
    capabilities = replace(MixturePredictor.capabilities, features=True)

    def __init__(self, target_feature: int | None = None):
        self.target_feature = target_feature

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        return 0

    def _own(self, features: np.ndarray) -> np.ndarray:
        return own_mde_column(features, self.target_feature, self.name)

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray) -> None:  # noqa: N803
        self._own(features)  # fail at fit time, not at the first prediction

    def _predict(self, W: np.ndarray, features: np.ndarray) -> np.ndarray:  # noqa: N803
        return self._own(features)


class MDECalPredictor(MDEPredictor):
    """``a + b * mde``: MDE's ranking with the scale and offset of the real runs."""

    name = "mde-cal"

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        return 2

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray) -> None:  # noqa: N803
        self.slope_, self.intercept_ = fit_mde_calibration(
            features, y, self.target_feature, self.name
        )

    def _predict(self, W: np.ndarray, features: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.intercept_ + self.slope_ * self._own(features)


class _WithFeatures:
    """Mixin: the rate predictor's design with the MDE features appended as columns (each
    class adds ``features`` to its rate predictor's ``capabilities``)."""

    def design_matrix(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return np.hstack([super().design_matrix(W, None), self._scale_features(features)])

    def _scale_features(self, features: np.ndarray) -> np.ndarray:
        return features


class LinearMDEPredictor(_WithFeatures, LinearPredictor):
    """Ridge on rates and MDE losses (the pipeline standardises every column)."""

    name = "linear+mde"
    capabilities = replace(LinearPredictor.capabilities, features=True)


class LGBMMDEPredictor(_WithFeatures, LGBMPredictor):
    """LightGBM on rates and MDE losses (trees need no scaling)."""

    name = "lgbm+mde"
    capabilities = replace(LGBMPredictor.capabilities, features=True)


class GPMDEPredictor(_WithFeatures, GPPredictor):
    """GP on transformed rates and MDE losses, the losses min-max scaled on the training runs.

    The scaling puts MDE columns in the same [0, 1] range as the transformed rates, so the
    dimension-scaled lengthscale prior treats both kinds of input alike.
    """

    name = "gp+mde"
    capabilities = replace(GPPredictor.capabilities, features=True)

    def _learn_scaling(self, W: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        self.feature_low_ = features.min(axis=0)
        spread = features.max(axis=0) - self.feature_low_
        self.feature_spread_ = np.where(spread > 0, spread, 1.0)

    def _scale_features(self, features: np.ndarray) -> np.ndarray:
        return (features - self.feature_low_) / self.feature_spread_


class GPResidualMDEPredictor(GPPredictor):
    """``mde-cal`` plus a GP on the rates for what the calibrated MDE loss gets wrong.

    ``gp+mde`` must learn from a few dozen runs that its best input is the target's own MDE
    loss, among 6 rates and 11 MDE columns; here that is given (``a + b * mde`` by least
    squares) and the GP, on the rates alone, only models the residual. ``predict_std`` is the
    residual GP's posterior std (the two calibration numbers are taken as known).
    """

    name = "gp+mde-res"
    capabilities = replace(GPPredictor.capabilities, features=True)
    PER_TARGET_PARAMS = ("target_feature",)  # the GP's inputs (the rates) are shared

    def __init__(
        self,
        target_feature: int | None = None,
        inputs: str = "sqrt",
        eps: float = 1e-3,
        max_iter: int = 100,
        hyper_runs: int = 256,
        seed: int = 0,
        interval: str = "cv",
    ):
        super().__init__(inputs, eps, False, max_iter, hyper_runs, seed, interval)
        self.target_feature = target_feature

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        return 4  # the GP's few, plus slope and intercept

    @classmethod
    def tune_jointly(cls, members, W, Y, features) -> list[JointHyperparameters] | None:  # noqa: N803
        """One batched GP fit over every target's calibration residual (see GPPredictor);
        None when a target's calibration fails (its fit raises; the others tune apart)."""
        features = check_features(features, len(W))
        Y = np.asarray(Y, dtype=float).reshape(len(W), len(members))  # noqa: N806
        residuals = []
        for j, member in enumerate(members):
            try:
                slope, intercept = fit_mde_calibration(
                    features, Y[:, j], member.target_feature, member.name
                )
            except MixsurrogateError:
                return None
            x = features[:, member.target_feature]
            residuals.append(Y[:, j] - (intercept + slope * x))
        return super().tune_jointly(members, W, np.column_stack(residuals), features)

    def _calibrated(self, features: np.ndarray) -> np.ndarray:
        own = own_mde_column(features, self.target_feature, self.name)
        return self.intercept_ + self.slope_ * own

    def _fit(
        self,
        W: np.ndarray,  # noqa: N803
        y: np.ndarray,
        features: np.ndarray,
        hyperparameters: JointHyperparameters | None = None,
    ) -> None:
        self.slope_, self.intercept_ = fit_mde_calibration(
            features, y, self.target_feature, self.name
        )
        super()._fit(W, y - self._calibrated(features), None, hyperparameters)

    def _predict(self, W: np.ndarray, features: np.ndarray) -> np.ndarray:  # noqa: N803
        return self._calibrated(features) + super()._predict(W, None)

    def _predictive(self, W: np.ndarray, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """The residual GP's posterior predictive around the calibrated MDE loss."""
        mean, std = self._posterior(W, None, observation_noise=True)
        return self._calibrated(features) + mean, std
