"""The baseline every predictor must beat: the mean training loss, whatever the mixture."""

from __future__ import annotations

import numpy as np

from .base import MixturePredictor


class MeanPredictor(MixturePredictor):
    """Predicts the mean of the training losses; a floor for honest comparisons."""

    name = "mean"

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        return 1

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        self.mean_ = float(np.mean(y))

    def _predict(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return np.full(len(W), self.mean_)
