"""Multi-fidelity GP: one surrogate of the loss over (mixture, log model size, log tokens).

The GP of ``gp.py`` on the Hellinger map of the mixture, with the run's fidelity as extra
inputs (``features``: log10 of the runs log's ``params`` and ``tokens`` columns, see
``fidelity.fidelity_features``). Kernel, on standardised (log) losses:

    k = s_0 k_fid(f, f')  +  k_mix(w, w') * [ s_1 a(f) a(f')  +  s_2 k_fid'(f, f') ]

``k_mix`` is a Matern-5/2 with one lengthscale per domain (the ``gp`` predictor's kernel and
prior); ``k_fid``, ``k_fid'`` are Matern-5/2 kernels with one lengthscale per fidelity input;
``a(f) = exp(beta . z)`` (``FidelityAmplitudeKernel``) lets the mixture effect grow or shrink
with the scale. The first term is the scale's own effect (a 1M model's loss is ~5.7 nats on
Pile-CC, a 1B model's ~3.0, whatever the mixture); in the bracket, the ``s_1`` term is a
mixture effect with one shape at every scale (RegMix's rank invariance) and the ``s_2`` term a
scale-specific discrepancy, correlated over nearby scales: the marginal likelihood weighs the
two, i.e. learns how far small runs speak for large ones (the continuous-fidelity form of
Kennedy and O'Hagan's autoregressive co-kriging). It is a product of a kernel on the mixture
and kernels on each fidelity, as BoTorch's ``SingleTaskMultiFidelityGP``, with Matern kernels
on log fidelity: ``ExponentialDecayKernel`` models learning-curve fidelities that converge as
the fidelity grows to 1, while model size and tokens here are open-ended (the target is usually
beyond every logged run). With few large runs (3 in 43, on a synthetic test) the likelihood
barely tells the two bracket terms apart, and the prediction at the large scale is poor;
with 8 it is good.

Predictions at a fidelity never logged (the target scale) are an
extrapolation in the fidelity inputs; the posterior std says how far it trusts it.

The target is log loss by default (``log_target``): across scales a mixture's effect is closer
to a constant factor than to a constant number of nats (on RegMix's Pile-CC the spread over
mixtures is 0.32 nats at 1M, 0.22 at 60M, 0.10 at 1B; relative to the mean loss 5.6%, 4.7%,
3.4%). Disclosure: this default was set after seeing one 1B score of each variant, with an
earlier kernel; with this kernel the full bench (bench/scale_transfer.py, which reports both)
puts the two within noise of each other (Pile-CC, 1B: 0.962-0.972 vs 0.964-0.971 over k).

Fidelity inputs are scaled to [0, 1] over the training runs' range (so the lengthscale prior
means the same whatever the units); a single logged fidelity gives span 1 around it.
Hyper-parameters are fitted on at most ``hyper_runs`` runs drawn so that rare fidelities keep
all their runs (512 1M runs and eight 60M runs: all eight stay).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from gpytorch.kernels import Kernel, MaternKernel, ScaleKernel
from gpytorch.priors import LogNormalPrior, NormalPrior

from ..errors import MixsurrogateError
from .gp import GPPredictor
from .gp_common import transform_weights


def check_fidelity_features(features, n_rows: int, n_columns: int) -> np.ndarray:
    """Fidelity inputs (log10 params, log10 tokens, ...) as a finite (n_rows, n_columns) array."""
    if features is None:
        raise MixsurrogateError(
            "mfgp needs the runs' fidelity (log10 of params and tokens) as features; runs logs "
            "give them through fidelity.fidelity_features"
        )
    features = np.atleast_2d(np.asarray(features, dtype=float))
    if features.shape != (n_rows, n_columns):
        raise ValueError(
            f"fidelity features have shape {features.shape}, expected ({n_rows}, {n_columns})"
        )
    if not np.isfinite(features).all():
        raise MixsurrogateError("fidelity features hold NaN or inf (log10 of a zero size?)")
    return features


class FidelityAmplitudeKernel(Kernel):
    """``exp(beta . (z + z'))`` over the fidelity inputs ``z``: multiplied into the mixture
    kernel, the mixture effect's amplitude changes by a factor ``exp(beta)`` per unit of each
    scaled fidelity input, while its shape stays correlated across scales.

    Without it a stationary product kernel has one amplitude for every scale, and when the
    larger runs vary less (RegMix: the spread over mixtures halves in relative terms from 1M
    to 1B) the marginal likelihood prefers to decorrelate the scales instead. ``beta`` has a
    standard normal prior (a factor within e^-2..e^2 over the logged range).
    """

    has_lengthscale = False

    def __init__(self, fidelity_dims: tuple[int, ...], **kwargs):
        super().__init__(**kwargs)
        self.fidelity_dims = list(fidelity_dims)
        n = len(self.fidelity_dims)
        self.register_parameter("beta", torch.nn.Parameter(torch.zeros(*self.batch_shape, 1, n)))
        self.register_prior("beta_prior", NormalPrior(0.0, 1.0), "beta")

    def forward(self, x1, x2, diag=False, last_dim_is_batch=False, **params):
        s1 = (x1[..., self.fidelity_dims] * self.beta).sum(-1)
        s2 = (x2[..., self.fidelity_dims] * self.beta).sum(-1)
        if diag:
            return torch.exp(s1 + s2)
        return torch.exp(s1.unsqueeze(-1) + s2.unsqueeze(-2))


class MFGPPredictor(GPPredictor):
    """GP over mixture and log fidelity (product kernel); ``features`` = fidelity inputs.

    ``fidelity`` names the runs-log columns it reads (comma-separated, default
    ``params,tokens``), in the order of the ``features`` columns.
    """

    name = "mfgp"
    uses_fidelity = True
    #: batched tuning of several targets is not implemented for the sum kernel: each target
    #: tunes its own hyper-parameters (``MultiTargetPredictor`` skips a None here)
    tune_jointly = None

    def __init__(
        self,
        fidelity: str = "params,tokens",
        inputs: str = "sqrt",
        eps: float = 1e-3,
        log_target: bool = True,
        max_iter: int = 100,
        hyper_runs: int = 256,
        seed: int = 0,
    ):
        self.fidelity = fidelity
        # intervals: the plain posterior predictive (CV calibration, gp's default, has not
        # been evaluated for the multi-fidelity kernel)
        super().__init__(inputs, eps, log_target, max_iter, hyper_runs, seed, "posterior")

    def fidelity_columns(self) -> tuple[str, ...]:
        columns = tuple(c.strip() for c in str(self.fidelity).split(",") if c.strip())
        if not columns:
            raise MixsurrogateError("mfgp: name at least one fidelity column (fidelity=...)")
        return columns

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        return 5

    def _learn_scaling(self, W: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        n_fid = len(self.fidelity_columns())
        features = check_fidelity_features(features, len(W), n_fid)
        lo, hi = features.min(axis=0), features.max(axis=0)
        span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
        self.fidelity_offset_, self.fidelity_span_ = lo, span
        self.n_fidelity_ = n_fid

    def design_matrix(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        features = check_fidelity_features(features, len(W), self.n_fidelity_)
        z = (features - self.fidelity_offset_) / self.fidelity_span_
        return np.hstack([transform_weights(W, self.inputs, self.eps), z])

    def _model(self, X: torch.Tensor, Y: torch.Tensor) -> SingleTaskGP:  # noqa: N803
        n_fid = self.n_fidelity_
        k = X.shape[-1] - n_fid
        mix_dims, fid_dims = tuple(range(k)), tuple(range(k, k + n_fid))
        mix_prior = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(k), scale=math.sqrt(3))
        mixture = MaternKernel(
            nu=2.5, ard_num_dims=k, active_dims=mix_dims, lengthscale_prior=mix_prior
        )

        def fidelity_kernel() -> MaternKernel:
            # fidelity inputs span [0, 1] over the logged runs; a lengthscale near 1 says
            # "the smallest and largest logged scales are related but not equal"
            prior = LogNormalPrior(loc=0.0, scale=math.sqrt(3))
            return MaternKernel(
                nu=2.5, ard_num_dims=n_fid, active_dims=fid_dims, lengthscale_prior=prior
            )

        # the mixture effect: one shape shared by every scale (amplitude free to change with
        # the scale) plus a scale-specific discrepancy (correlated over nearby scales)
        across_scales = ScaleKernel(FidelityAmplitudeKernel(fid_dims)) + ScaleKernel(
            fidelity_kernel()
        )
        kernel = ScaleKernel(fidelity_kernel()) + mixture * across_scales
        return SingleTaskGP(X, Y, covar_module=kernel, outcome_transform=Standardize(m=1))

    def _tuned_model(self, X: torch.Tensor, Y: torch.Tensor) -> SingleTaskGP:  # noqa: N803
        """Hyper-parameters on at most ``hyper_runs`` runs, every fidelity represented: the
        rarest fidelities keep all their runs, the commonest are subsampled (seeded)."""
        if len(X) > self.hyper_runs:
            rows = stratified_rows(X[:, -self.n_fidelity_ :].numpy(), self.hyper_runs, self.seed)
            X, Y = X[rows], Y[rows]  # noqa: N806
        return self._fitted_model(X, Y)


def stratified_rows(groups: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` row indices, as many per distinct row of ``groups`` as a fair share allows.

    Groups are filled from the smallest: each takes all its rows if they fit in an equal
    share of what is left, else a seeded random subset of that share.
    """
    _, labels = np.unique(np.round(groups, 9), axis=0, return_inverse=True)
    labels = labels.ravel()
    rng = np.random.default_rng(seed)
    members = sorted((np.flatnonzero(labels == g) for g in np.unique(labels)), key=len)
    chosen, left = [], n
    for i, rows in enumerate(members):
        share = left // (len(members) - i)
        take = rows if len(rows) <= share else rng.choice(rows, share, replace=False)
        chosen.append(take)
        left -= len(take)
    return np.sort(np.concatenate(chosen))
