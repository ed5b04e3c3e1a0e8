"""The predictor contract: scikit-learn style estimators of one evaluation set's loss.

``fit(W, y, features=None)`` and ``predict(W, features=None)`` take mixtures ``W``
(runs x domains, rows on the simplex) and optional extra ``features`` aligned with the rows
(e.g. MDE losses computed by the caller from a score store). Rates-only predictors ignore
``features``. What a predictor supports (a posterior std, MDE or fidelity inputs, a joint fit of
every set, shared tuning, a tree's piecewise-constant surface) is declared on its class as
``capabilities`` (as scikit-learn's estimator tags are), read by callers, never probed;
``__sklearn_tags__`` agrees with it. Hyper-parameters tuned for several targets at once reach
``fit`` through its ``hyperparameters`` argument, so nothing one call did changes the next fit.
Constructor arguments are plain hyper-parameters, so ``get_params``/``set_params``/``clone``
and scikit-learn's model-selection tools work unchanged. A predictor with randomness takes a
``seed`` and is deterministic given it, in any process and any order of calls; whatever a fit
had to work around (retries, fallbacks, optimiser warnings) is listed in ``fit_notes_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ..errors import NotEnoughRunsError
from ..simplex import check_mixtures
from .intervals import conformal_quantile, cv_residuals


@dataclass(frozen=True)
class Capabilities:
    """What a predictor class supports, declared once on the class (``capabilities``)."""

    #: ``predict_std``: a real posterior std of the latent loss
    std: bool = False
    #: ``predict_objective_std``: the std of a weighted sum of sets, with their covariance
    objective_std: bool = False
    #: ``predict_interval`` (every predictor: conformal on CV residuals unless it has better)
    intervals: bool = True
    #: ``fit``/``predict`` need MDE losses as ``features``
    features: bool = False
    #: ``features`` are the runs' fidelity columns (named by ``fidelity_columns()``)
    fidelity: bool = False
    #: one fit of every target: ``fit`` takes runs x sets, ``predict`` returns runs x sets
    joint: bool = False
    #: several targets' hyper-parameters can be tuned in one batch (``tune_jointly``), each
    #: handed to that target's ``fit(..., hyperparameters=...)``
    shared_tuning: bool = False
    #: a piecewise-constant surface (trees): a proposal averages the top-k candidates
    tree: bool = False
    #: a law in the log of the loss: losses must be positive (as a ``log_target=True``
    #: predictor's, which its tags add)
    positive_losses: bool = False
    #: several times gp's cost per fit: left out of ``cv``'s default list (named with ``-p``)
    opt_in: bool = False
    #: takes any non-negative inputs, so also a schedule log's flattened schedules
    #: (``runs.inputs``); False for a fixed functional form of the mixture (the mixing laws)
    schedules: bool = True
    #: needs mixtures trained more than once (repeated runs measure its noise): refused
    #: without them, so also left out of ``cv``'s default list
    repeats: bool = False


class MixturePredictor(RegressorMixin, BaseEstimator):
    """Base class. Subclasses implement ``_fit`` and ``_predict`` (and ``n_parameters``)."""

    #: short registry name, e.g. "linear"
    name: str = "base"
    #: what the predictor supports; subclasses replace it (``dataclasses.replace``)
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: runs needed beyond ``n_parameters``: a law fitted with exactly as many runs as
    #: parameters interpolates them and its held-out errors explode (dml: MSE 4e19)
    fit_margin: int = 0

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        """Free parameters to fit."""
        return 1

    def min_runs(self, n_domains: int, n_features: int = 0) -> int:
        """Fewest runs this predictor agrees to fit: its parameters plus ``fit_margin``."""
        return self.n_parameters(n_domains, n_features) + self.fit_margin

    def __sklearn_tags__(self) -> Tags:
        """A regressor of mixtures: non-negative rows (``positive_only``); positive losses
        where it fits their log; several outputs exactly when it fits every target jointly."""
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        log_target = bool(self.get_params().get("log_target", False))
        tags.target_tags.positive_only = self.capabilities.positive_losses or log_target
        tags.target_tags.required = True
        tags.target_tags.multi_output = self.capabilities.joint
        return tags

    def fit(
        self,
        W: np.ndarray,  # noqa: N803
        y: np.ndarray,
        features: np.ndarray | None = None,
        *,
        hyperparameters: Any = None,
    ):
        """Fit on mixtures ``W`` and losses ``y``. ``hyperparameters``: this target's share of
        a batched tuning (``capabilities.shared_tuning`` only; see ``tune_jointly``), used for
        this fit alone; None tunes them here."""
        W, y = self.validate_fit(W, y)  # noqa: N806
        if hyperparameters is not None and not self.capabilities.shared_tuning:
            raise ValueError(f"{self.name} takes no jointly tuned hyper-parameters")
        if self.capabilities.features:
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
        if hyperparameters is None:
            self._fit(W, y, features)
        else:  # only predictors with shared_tuning take them (their ``_fit`` has the keyword)
            self._fit(W, y, features, hyperparameters=hyperparameters)
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
                self,
                W_fit,
                y_fit,
                f_fit,
                seed=self.get_params().get("seed", 0),
                residual=residual,
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
        check_is_fitted(self)
        W = self.validate(W)  # noqa: N806
        if self.capabilities.features:
            features = check_features(features, len(W))
        return np.asarray(self._predict(W, features), dtype=float).ravel()

    def validate(self, W, reset: bool = False) -> np.ndarray:  # noqa: N803
        """Mixtures ``W`` validated as scikit-learn validates an estimator's input (sparse,
        complex, non-numeric input refused in its words; ``n_features_in_`` set when ``reset``,
        by ``fit``, and checked otherwise), and by ``check_weights`` (finite, non-negative; a
        1-D row is one mixture)."""
        W = check_array(W, ensure_2d=False, ensure_all_finite=False, input_name="W")  # noqa: N806
        return validate_data(self, check_weights(W), reset=reset)

    def validate_fit(self, W, y) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """``validate(W, reset=True)`` and the losses ``y``: numeric, finite, one per row."""
        W = check_array(W, ensure_2d=False, ensure_all_finite=False, input_name="W")  # noqa: N806
        W, y = validate_data(self, check_weights(W), y, reset=True, y_numeric=True)  # noqa: N806
        return W, np.asarray(y, dtype=float).ravel()

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
