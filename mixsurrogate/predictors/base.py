"""The predictor contract: scikit-learn style estimators of one evaluation set's loss.

``fit(W, y, features=None)`` and ``predict(W, features=None)`` take mixtures ``W``
(runs x domains, rows on the simplex) and optional extra ``features`` aligned with the rows
(e.g. MDE losses computed by the caller from a score store). Rates-only predictors ignore
``features``. ``predict_std`` exists only where the predictor has a real uncertainty.
Constructor arguments are plain hyper-parameters, so ``get_params``/``set_params``/``clone``
and scikit-learn's model-selection tools work unchanged.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from ..errors import NotEnoughRunsError


class MixturePredictor(RegressorMixin, BaseEstimator):
    """Base class. Subclasses implement ``_fit`` and ``_predict`` (and ``n_parameters``)."""

    #: short registry name, e.g. "linear"
    name: str = "base"
    #: whether the predictor uses ``features`` (MDE) in addition to the rates
    uses_features: bool = False

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        """Free parameters to fit; a law refuses to fit with fewer runs than this."""
        return 1

    def fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None = None):  # noqa: N803
        W, y = _check_W(W), np.asarray(y, dtype=float).ravel()
        if len(W) != len(y):
            raise ValueError(f"W has {len(W)} rows but y has {len(y)}")
        if self.uses_features:
            features = _check_features(features, len(W))
        n_params = self.n_parameters(W.shape[1], 0 if features is None else features.shape[1])
        if len(W) < n_params:
            raise NotEnoughRunsError(
                f"{self.name} has {n_params} parameters but only {len(W)} runs to fit them; "
                f"log at least {n_params} runs or choose a smaller predictor"
            )
        self.n_domains_ = W.shape[1]
        self._fit(W, y, features)
        return self

    def predict(self, W: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
        W = _check_W(W)
        if W.shape[1] != getattr(self, "n_domains_", W.shape[1]):
            raise ValueError(f"fitted on {self.n_domains_} domains, got {W.shape[1]}")
        if self.uses_features:
            features = _check_features(features, len(W))
        return np.asarray(self._predict(W, features), dtype=float).ravel()

    def _fit(self, W, y, features):  # noqa: N803
        raise NotImplementedError

    def _predict(self, W, features):  # noqa: N803
        raise NotImplementedError


def _check_W(W) -> np.ndarray:  # noqa: N802, N803
    W = np.atleast_2d(np.asarray(W, dtype=float))
    if not np.isfinite(W).all():
        raise ValueError("mixture weights contain NaN or inf")
    return W


def _check_features(features, n_rows: int) -> np.ndarray:
    if features is None:
        raise ValueError("this predictor needs features (MDE losses); pass a score store")
    features = np.atleast_2d(np.asarray(features, dtype=float))
    if features.shape[0] != n_rows:
        raise ValueError(f"features have {features.shape[0]} rows, mixtures have {n_rows}")
    return features
