"""Probe (issue 12): two GP variants against ``gp`` on RegMix's *training* runs only.

* ``gp+dml``: the Data Mixing Law fitted on the training runs as the GP's prior mean, the GP
  (as ``gp``, on sqrt rates) on its residual;
* ``gp-warp``: BoTorch's ``Warp`` input transform (a learned Kumaraswamy CDF per share) on the
  raw shares instead of the fixed sqrt map.

Protocol of ``bench/predictor_probe.py --select``: the 512 training runs split in halves (seed
123); fit on n = 24, 32, 64, 128 runs of one half (5 draws), Spearman on the other half. No
test run is used. Neither variant beat ``gp``, so neither is registered; the classes live here
with the experiment. Measured (Spearman at n = 24 / 32 / 64 / 128):

    pile_cc  gp       0.944 / 0.955 / 0.975 / 0.981
    pile_cc  gp+dml   0.872 / 0.896 / 0.930 / 0.973
    pile_cc  gp-warp  0.887 / 0.926 / 0.941 / 0.976
    github   gp       0.960 / 0.971 / 0.983 / 0.990
    github   gp+dml   0.787 / 0.861 / 0.938 / 0.976
    github   gp-warp  0.936 / 0.980 / 0.984 / 0.976

The law as prior mean hurts most where runs are few: with K + 1 = 18 law parameters fitted on
24-64 runs the law's residual at the training runs is small and its error elsewhere large, so
the GP learns from near-zero residuals and adds nothing where the law is wrong. Warping learns
17 x 2 more parameters from the same runs; the fixed sqrt map encodes the same "shares near 0
matter most" shape for free. (A ridge log-linear trend as prior mean was tried when ``gp`` was
built and was also worse, see ``gp.py``.)

    python bench/gp_variants.py
"""

from __future__ import annotations

import math

import numpy as np
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.input import Warp
from botorch.models.transforms.outcome import Standardize
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.priors import LogNormalPrior
from scipy.stats import spearmanr

from mixsurrogate.predictors import make_predictor
from mixsurrogate.predictors.base import check_weights
from mixsurrogate.predictors.gp import GPPredictor, gaussian_interval
from mixsurrogate.predictors.laws import DMLPredictor
from mixsurrogate.runs.builtin import regmix_runs


class GPLawPredictor(GPPredictor):
    """``dml`` fitted on the runs as prior mean, a GP on the sqrt rates for its residual."""

    name = "gp+dml"
    tune_jointly = None  # each target's residual comes from its own law fit

    def __init__(self, max_iter: int = 100, hyper_runs: int = 256, seed: int = 0):
        super().__init__("sqrt", 1e-3, False, max_iter, hyper_runs, seed)

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        return DMLPredictor().min_runs(n_domains)  # the law needs its runs

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        self.law_ = DMLPredictor(seed=self.seed).fit(W, y)
        super()._fit(W, y - self.law_.predict(W), None)

    def _predict(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return self.law_.predict(W) + super()._predict(W, None)

    def predict_interval(
        self,
        W: np.ndarray,  # noqa: N803
        features: np.ndarray | None = None,
        level: float = 0.9,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The residual GP's posterior predictive around the law (the law taken as known)."""
        W = check_weights(W)  # noqa: N806
        mean, std = self._posterior(W, None, observation_noise=True)
        return gaussian_interval(self.law_.predict(W) + mean, std, level)


class GPWarpPredictor(GPPredictor):
    """``gp`` with a learned per-share warping (BoTorch ``Warp``) of the raw shares."""

    name = "gp-warp"
    tune_jointly = None

    def __init__(self, max_iter: int = 100, hyper_runs: int = 256, seed: int = 0):
        super().__init__("raw", 1e-3, False, max_iter, hyper_runs, seed)

    @staticmethod
    def _model(X: torch.Tensor, Y: torch.Tensor) -> SingleTaskGP:  # noqa: N803
        d = X.shape[-1]
        prior = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(d), scale=math.sqrt(3))
        kernel = ScaleKernel(MaternKernel(nu=2.5, ard_num_dims=d, lengthscale_prior=prior))
        warp = Warp(
            d=d, indices=list(range(d)), bounds=torch.stack([X.new_zeros(d), X.new_ones(d)])
        )
        return SingleTaskGP(
            X, Y, covar_module=kernel, outcome_transform=Standardize(m=1), input_transform=warp
        )


def main() -> None:
    train = regmix_runs("train-1m")
    perm = np.random.default_rng(123).permutation(len(train))
    pool, held = perm[:256], perm[256:]
    build = {"gp": lambda: make_predictor("gp"), "gp+dml": GPLawPredictor,
             "gp-warp": GPWarpPredictor}  # fmt: skip
    for target in ("pile_cc", "github"):
        y = train.loss(target)
        for name, make in build.items():
            cells = []
            for n in (24, 32, 64, 128):
                draws = [np.random.default_rng(s).choice(pool, n, replace=False) for s in range(5)]
                rhos = [
                    spearmanr(make().fit(train.W[i], y[i]).predict(train.W[held]), y[held])[0]
                    for i in draws
                ]
                cells.append(f"n{n} {np.mean(rhos):.4f}")
            print(f"{target:10s} {name:8s} " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
