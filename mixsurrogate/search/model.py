"""The search's model: a GP of the objective (lower is better) that acquisitions can use.

BoTorch maximises, so the GP is fitted on the negated objective; ``mean`` and ``std`` are
back in loss units. MDE features (when a score store is given) enter through the predictor's
own input map, so candidates are scored through ``design`` and no optimiser needs to know.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..predictors import make_predictor
from ..predictors.gp import GPPredictor, hyper_parameters
from ..predictors.gp_algebra import ClosedFormGP

FeatureFn = Callable[[np.ndarray], np.ndarray]


class ObjectiveModel:
    """A fitted GP of the objective over mixtures (optionally with MDE features)."""

    def __init__(
        self,
        W: np.ndarray,  # noqa: N803
        y: np.ndarray,
        feature_fn: FeatureFn | None = None,
        seed: int = 0,
        hypers: dict[str, torch.Tensor] | None = None,
    ):
        """``hypers``: condition on the runs with these hyper-parameters (``hyper_parameters``
        of a model of the same objective), untuned; cross-fitting refits halves this way."""
        self.feature_fn = feature_fn
        self.gp: GPPredictor = make_predictor("gp+mde" if feature_fn else "gp", seed=seed)
        if hypers is not None:
            self.gp.use_hyper_parameters(hypers)
        self.gp.fit(W, -np.asarray(y, dtype=float), features=self._features(W))
        self.W, self.y = np.asarray(W, dtype=float), np.asarray(y, dtype=float)
        # the same posterior without GPyTorch's per-call overhead (None: not a plain GP)
        self.closed_form = None if self.gp.log_target else ClosedFormGP.of(self.gp.model_)

    def hyper_parameters(self) -> dict[str, torch.Tensor]:
        """The fitted hyper-parameters (for ``ObjectiveModel(..., hypers=...)``)."""
        return hyper_parameters(self.gp.model_)

    def _features(self, W: np.ndarray) -> np.ndarray | None:  # noqa: N803
        return None if self.feature_fn is None else self.feature_fn(W)

    @property
    def botorch_model(self):
        return self.gp.model_

    @property
    def notes(self) -> list[str]:
        return list(self.gp.fit_notes_)

    def design(self, W: np.ndarray) -> torch.Tensor:  # noqa: N803
        return torch.as_tensor(self.gp.design_matrix(W, self._features(W)), dtype=torch.float64)

    def mean(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        """Posterior mean of the objective (loss units)."""
        if self.closed_form is not None:
            return -self.closed_form.mean(self._design(W))
        return -self.gp.predict(W, features=self._features(W))

    def std(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        if self.closed_form is not None:
            return self.closed_form.std(self._design(W))
        return self.gp.predict_std(W, features=self._features(W))

    def _design(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        W = np.atleast_2d(np.asarray(W, dtype=float))  # noqa: N806
        return self.gp.design_matrix(W, self._features(W))

    def interval(self, W: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """Central interval of a new run's objective (latent plus observation noise)."""
        lo, hi = self.gp.predict_interval(W, features=self._features(W), level=level)
        return -hi, -lo

    def mixture_lengthscales(self, k: int) -> np.ndarray:
        """The kernel's lengthscales on the K mixture inputs, normalised to geometric mean 1
        (TuRBO stretches its trust region along the axes the objective varies slowly on)."""
        ls = self.gp.model_.covar_module.base_kernel.lengthscale.detach().numpy().reshape(-1)[:k]
        return ls / np.exp(np.mean(np.log(ls)))
