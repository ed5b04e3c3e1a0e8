"""The predictor contract: scikit-learn style estimators of one evaluation set's loss.

``fit(W, y, features=None)`` and ``predict(W, features=None)`` take mixtures ``W``
(runs x domains, rows on the simplex) and optional extra ``features`` aligned with the rows
(e.g. MDE losses computed by the caller from a score store). Rates-only predictors ignore
``features``. ``predict_std`` exists only where the predictor has a real uncertainty.
Constructor arguments are plain hyper-parameters, so ``get_params``/``set_params``/``clone``
and scikit-learn's model-selection tools work unchanged. A predictor with randomness takes a
``seed`` and is deterministic given it, in any process and any order of calls; whatever a fit
had to work around (retries, fallbacks, optimiser warnings) is listed in ``fit_notes_``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from ..errors import NotEnoughRunsError
from ..simplex import check_mixtures
from .intervals import conformal_quantile, cv_residuals


class MixturePredictor(RegressorMixin, BaseEstimator):
    """Base class. Subclasses implement ``_fit`` and ``_predict`` (and ``n_parameters``)."""

    #: short registry name, e.g. "linear"
    name: str = "base"
    #: whether the predictor uses ``features`` (MDE) in addition to the rates
    uses_features: bool = False
    #: runs needed beyond ``n_parameters``: a law fitted with exactly as many runs as
    #: parameters interpolates them and its held-out errors explode (dml: MSE 4e19)
    fit_margin: int = 0

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        """Free parameters to fit."""
        return 1

    def min_runs(self, n_domains: int, n_features: int = 0) -> int:
        """Fewest runs this predictor agrees to fit: its parameters plus ``fit_margin``."""
        return self.n_parameters(n_domains, n_features) + self.fit_margin

    def fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None = None):  # noqa: N803
        W, y = check_weights(W), np.asarray(y, dtype=float).ravel()
        if len(W) != len(y):
            raise ValueError(f"W has {len(W)} rows but y has {len(y)}")
        if self.uses_features:
            features = check_features(features, len(W))
        n_features = 0 if features is None else features.shape[1]
        n_params = self.n_parameters(W.shape[1], n_features)
        needed = self.min_runs(W.shape[1], n_features)
        if len(W) < needed:
            margin = f" (its {n_params} parameters + {self.fit_margin})" if self.fit_margin else ""
            raise NotEnoughRunsError(
                f"{self.name} needs at least {needed} runs{margin}, got {len(W)}"
            )
        self.n_domains_ = W.shape[1]
        self.fit_notes_: list[str] = []
        self._fit(W, y, features)
        self.training_data_ = (W, y, features)  # for predict_interval's calibration only
        self.conformal_residuals_ = None
        return self

    def predict_interval(
        self,
        W: np.ndarray,  # noqa: N803
        features: np.ndarray | None = None,
        level: float = 0.9,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of a ``level`` prediction interval for a new run's observed loss.

        Split conformal on cross-validated residuals of the training runs (``intervals``),
        computed once, on first use (it refits the predictor on each fold). GPs override this:
        their posterior predictive, scaled by a conformal quantile of standardised residuals.
        """
        pred = self.predict(W, features)
        half = conformal_quantile(self.calibration_residuals(), level)
        return pred - half, pred + half

    def calibration_residuals(self, residual=None) -> np.ndarray:
        """Out-of-fold residuals of the training runs (``intervals.cv_residuals``; a GP
        passes ``residual`` to standardise them), computed once per fit, failures noted."""
        if self.conformal_residuals_ is None:
            W_fit, y_fit, f_fit = self.training_data_  # noqa: N806
            residuals = cv_residuals(
                self, W_fit, y_fit, f_fit, seed=getattr(self, "seed", 0), residual=residual
            )
            failed = int(np.isnan(residuals).sum())
            if failed:
                self.fit_notes_.append(
                    f"interval calibration: {failed} of {len(residuals)} runs in folds too "
                    "small to fit"
                )
            self.conformal_residuals_ = residuals
        return self.conformal_residuals_

    def predict(self, W: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
        W = check_weights(W)
        if W.shape[1] != getattr(self, "n_domains_", W.shape[1]):
            raise ValueError(f"fitted on {self.n_domains_} domains, got {W.shape[1]}")
        if self.uses_features:
            features = check_features(features, len(W))
        return np.asarray(self._predict(W, features), dtype=float).ravel()

    def _fit(self, W, y, features):  # noqa: N803
        raise NotImplementedError

    def _predict(self, W, features):  # noqa: N803
        raise NotImplementedError


def check_weights(W) -> np.ndarray:  # noqa: N803
    """Mixture weights as a finite, non-negative 2-D float array (rows are mixtures); the one
    validator (``simplex.check_mixtures``), with an optimiser's rounding tolerated."""
    return check_mixtures(W, negative_tolerance=1e-6)


def check_features(features, n_rows: int) -> np.ndarray:
    """MDE features as a 2-D float array with one row per mixture."""
    if features is None:
        raise ValueError("this predictor needs features (MDE losses); pass a score store")
    features = np.atleast_2d(np.asarray(features, dtype=float))
    if features.shape[0] != n_rows:
        raise ValueError(f"features have {features.shape[0]} rows, mixtures have {n_rows}")
    return features
