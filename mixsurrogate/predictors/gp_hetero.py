"""``gp-hetero``: the ``gp`` predictor with observation noise that depends on the mixture.

``gp`` fits one noise variance for every run. Seed noise need not be constant: on a set where a
domain's share makes training less stable, runs rich in it scatter more. Where the runs log
holds repeated runs of a mixture (same weights, other seeds), their sample variances measure
the noise there; ``noise_model.MixtureNoise`` fits a GP to their log (bias-corrected) over the
mixture, and its prediction at every training run is the GP's fixed observation noise
(BoTorch ``SingleTaskGP(train_Yvar=...)``, a ``FixedNoiseGaussianLikelihood``). The latent
surface then trusts quiet runs more than noisy ones, and a new run's predictive interval widens
where the noise is larger (``predict_noise_std``).

Seed noise is not all a GP's noise term absorbs: what the kernel cannot fit (misfit) looks like
noise too, and seed noise alone as fixed noise made the GP interpolate and be over-confident
(real-text runs, first version: held-out log-likelihood below ``gp``'s on every set, -15.9 vs
1.3 on arc_easy). So a homoscedastic term is learnt on top of the fixed one
(``learn_additional_noise``, with the prior and floor of BoTorch's default likelihood): the
marginal likelihood keeps it near its floor where repeats explain the scatter.

Needs at least two mixtures trained twice or more; with fewer it refuses in one line (it is
named explicitly, never a default: ``capabilities.repeats``). With 2-3 repeated mixtures the
noise is their pooled variance everywhere (a note says so). Kernel, inputs, prior and fit are
``gp``'s; hyper-parameters are tuned per target (no joint tuning: each set has its own noise).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.models.utils.gpytorch_modules import MIN_INFERRED_NOISE_LEVEL
from gpytorch.constraints import GreaterThan
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
from gpytorch.priors import LogNormalPrior

from .gp import GPPredictor
from .noise_model import MixtureNoise


class HeteroGPPredictor(GPPredictor):
    """``gp`` with a fixed, mixture-dependent noise variance learnt from repeated runs."""

    name = "gp-hetero"
    capabilities = replace(GPPredictor.capabilities, shared_tuning=False, repeats=True)

    def _fit(self, W, y, features, hyperparameters=None):  # noqa: N803
        target = np.log(y) if self.log_target else np.asarray(y, dtype=float)
        self.noise_ = MixtureNoise(self.seed, self.inputs, self.name).fit(W, target)
        self.fit_notes_ += self.noise_.notes
        self.train_yvar_ = torch.tensor(self.noise_.variance(W), dtype=torch.float64)
        self._active_yvar = self.train_yvar_
        super()._fit(W, y, features, hyperparameters)

    def _tuned_model(self, X, Y, restart=True):  # noqa: N803
        """``gp``'s tuning on at most ``hyper_runs`` runs (the same rows), with their noise."""
        rows = np.arange(len(X))
        if len(X) > self.hyper_runs:
            rows = np.random.default_rng(self.seed).choice(len(X), self.hyper_runs, replace=False)
        self._active_yvar = self.train_yvar_[rows]
        try:
            return self._fitted_model(X[rows], Y[rows], restart=restart)
        finally:
            self._active_yvar = self.train_yvar_

    def _model(self, X: torch.Tensor, Y: torch.Tensor) -> SingleTaskGP:  # noqa: N803
        """``gp``'s model, its likelihood the fixed noise of the runs being fitted."""
        base = GPPredictor._model(X, Y)
        yvar = self._active_yvar.reshape(-1, 1)
        if len(yvar) != len(X):
            raise ValueError(f"{len(yvar)} noise variances for {len(X)} runs")
        model = SingleTaskGP(
            X, Y, train_Yvar=yvar, covar_module=base.covar_module,
            outcome_transform=Standardize(m=Y.shape[-1]),
        )  # fmt: skip
        # the same fixed noise (standardised by the model), plus a learnt homoscedastic term
        prior = LogNormalPrior(loc=-4.0, scale=1.0)
        model.likelihood = FixedNoiseGaussianLikelihood(
            noise=model.likelihood.noise_covar.noise,
            learn_additional_noise=True,
            noise_prior=prior,
            noise_constraint=GreaterThan(
                MIN_INFERRED_NOISE_LEVEL, transform=None, initial_value=prior.mode
            ),
        )
        return model

    def extra_noise_variance(self) -> float:
        """The learnt noise on top of the seed noise (misfit), in the loss's units squared."""
        extra = self.model_.likelihood.second_noise_covar.noise.detach().reshape(-1)[0]
        scale = self.model_.outcome_transform.stdvs.detach().reshape(-1)[0]
        return float(extra * scale**2)

    def predict_noise_std(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        """The noise model's seed-noise std at each mixture (log-loss units for a log target)."""
        return np.sqrt(self.noise_.variance(self.validate(W)))

    def _predictive(self, W, features):  # noqa: N803
        """The posterior of the latent loss plus the seed noise at ``W`` and the extra noise."""
        center, std = self._posterior(W, features)
        return center, np.sqrt(std**2 + self.noise_.variance(W) + self.extra_noise_variance())
