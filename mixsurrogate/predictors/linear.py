"""Ridge regression on the mixture rates, its penalty chosen on the training runs only.

``RidgeCV`` with ``cv=None`` picks alpha by efficient leave-one-out (generalised
cross-validation) on the data it is given, so no held-out run ever informs the fit.
Subclasses change the design matrix (``design_matrix``) and reuse everything else.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import MixsurrogateError
from .base import MixturePredictor

#: penalties searched by leave-one-out; wide because runs range from ~10 to thousands
DEFAULT_ALPHAS = tuple(np.logspace(-6, 4, 41))


class LinearPredictor(MixturePredictor):
    """``loss ~ b + sum_i a_i w_i`` with a ridge penalty chosen by leave-one-out."""

    name = "linear"

    def __init__(self, alphas: tuple[float, ...] | None = None, log_target: bool = False):
        self.alphas = alphas
        self.log_target = log_target

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        # Regularised: the penalty, not the run count, controls the effective parameters;
        # three runs are the least for a leave-one-out choice of the penalty to mean anything.
        return 3

    def design_matrix(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return W

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        alphas = DEFAULT_ALPHAS if self.alphas is None else tuple(self.alphas)
        if self.log_target and np.any(y <= 0):
            raise MixsurrogateError(f"{self.name} with log_target=True needs positive losses")
        target = np.log(y) if self.log_target else y
        self.model_ = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas))
        self.model_.fit(self.design_matrix(W, features), target)
        self.alpha_ = float(self.model_[-1].alpha_)

    def _predict(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        out = self.model_.predict(self.design_matrix(W, features))
        return np.exp(out) if self.log_target else out
