"""Multi-task GP over evaluation sets: one model of every set's loss at once.

The 13 Pile sets (or 11 real-text sets) move together with the mixture, so a run's loss on one
set says something about the others; per-set GPs throw that away exactly where runs are scarce.
Here the covariance of set ``i`` at mixture ``w`` and set ``j`` at ``w'`` is
``B[i, j] * k(w, w')``: a Matern-5/2 ARD kernel on the sqrt-mapped rates (as ``gp``) times a
learned covariance ``B`` between sets (the intrinsic coregionalisation model), with a noise per
set. When every run has every set the model is BoTorch's ``KroneckerMultiTaskGP`` (the kernel
matrix is ``B (x) K``, cheap to factor); when some cells are missing it is ``MultiTaskGP`` with
the set as a task column, fitted on the observed cells only.

Each set's losses are standardised on its own observed runs before the fit (the sets' scales
differ by 3x on RegMix), and predictions are mapped back. ``predict_objective_std`` gives the
posterior std of a weighted sum of sets using ``B``: for a blend of positively correlated sets
this is larger than the independent-sets formula ``sqrt(sum a_j^2 s_j^2)``.

This predictor is *joint* (``joint = True``): ``fit(W, Y)`` takes the runs x sets matrix (NaN
for a loss not measured) and ``predict`` returns runs x sets; ``MultiTargetPredictor`` fits it
once for all targets. With a 1-D ``y`` it is an ordinary one-set GP.
"""

from __future__ import annotations

import math

import gpytorch
import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import KroneckerMultiTaskGP, MultiTaskGP, SingleTaskGP
from botorch.optim.fit import fit_gpytorch_mll_scipy
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import LogNormalPrior

from ..errors import NotEnoughRunsError
from .base import MixturePredictor, check_features, check_weights
from .gp import PREDICT_CHUNK, GPPredictor
from .gp_common import gaussian_interval, hyper_parameters, one_thread_if_small, warning_label

#: fewest runs (with at least one loss) a joint fit accepts
MIN_RUNS = 3


def _data_kernel(d: int, active_dims: list[int] | None = None) -> MaternKernel:
    """Matern-5/2 ARD with ``gp``'s dimension-scaled lengthscale prior (no outputscale: the
    between-set covariance carries each set's scale)."""
    prior = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(d), scale=math.sqrt(3))
    return MaternKernel(nu=2.5, ard_num_dims=d, lengthscale_prior=prior, active_dims=active_dims)


class MTGPPredictor(GPPredictor):
    """ICM multi-task GP over evaluation sets (Kronecker when complete, task column when not).

    ``rank`` is the rank of the between-set covariance ``B`` (None: full rank). Fitting follows
    ``gp``: float64, hyper-parameters by marginal likelihood on at most ``hyper_runs`` runs
    (64 by default, for time: a 13-set fit on 128 runs took 110 s on 2 shared cores, on 64 runs
    20 s)
    (seeded, on a forked torch generator; restarts and optimiser warnings counted in
    ``fit_notes_``), then the model conditions on every observed cell.
    """

    name = "mtgp"
    #: fitted once on every target (``MultiTargetPredictor`` honours this)
    joint = True
    #: the joint fit already shares everything; no per-target tuning hook
    tune_jointly = None
    log_target = False

    def __init__(
        self,
        inputs: str = "sqrt",
        eps: float = 1e-3,
        rank: int | None = None,
        max_iter: int = 100,
        hyper_runs: int = 64,
        seed: int = 0,
    ):
        self.inputs = inputs
        self.eps = eps
        self.rank = rank
        self.max_iter = max_iter
        self.hyper_runs = hyper_runs
        self.seed = seed

    # --- fitting ----------------------------------------------------------------------------

    def fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None = None):  # noqa: N803
        """Fit on runs ``W`` and losses ``y``: a vector (one set) or runs x sets, NaN = not
        measured. Runs with no loss at all are ignored."""
        W = check_weights(W)  # noqa: N806
        Y = np.asarray(y, dtype=float)  # noqa: N806
        self.one_target_ = Y.ndim == 1
        Y = Y.reshape(len(Y), -1)  # noqa: N806
        if len(W) != len(Y):
            raise ValueError(f"W has {len(W)} rows but y has {len(Y)}")
        if self.uses_features:
            features = check_features(features, len(W))
        if np.isinf(Y).any():
            raise ValueError("losses must be finite (NaN marks a loss not measured)")
        has = ~np.isnan(Y)
        rows = has.any(axis=1)
        W, Y, has = W[rows], Y[rows], has[rows]  # noqa: N806
        features = None if features is None else features[rows]
        if len(W) < MIN_RUNS or (has.sum(axis=0) < 1).any():
            raise NotEnoughRunsError(
                f"{self.name} needs at least {MIN_RUNS} runs and one run per set, got "
                f"{len(W)} runs, per set {has.sum(axis=0).tolist()}"
            )
        self.n_domains_ = W.shape[1]
        self.n_targets_ = Y.shape[1]
        self.fit_notes_: list[str] = []
        self._learn_scaling(W, features)
        self.y_mean_ = np.nanmean(Y, axis=0)
        spread = np.array([np.std(Y[has[:, j], j]) for j in range(Y.shape[1])])
        self.y_scale_ = np.where(spread > 0, spread, 1.0)
        Z = (Y - self.y_mean_) / self.y_scale_  # noqa: N806
        X = torch.tensor(self.design_matrix(W, features), dtype=torch.float64)  # noqa: N806
        self.layout_ = "single" if Y.shape[1] == 1 else "kronecker" if has.all() else "tasks"
        if self.layout_ == "tasks":
            run, task = np.nonzero(has)
            X = torch.cat(  # noqa: N806
                [X[run], torch.tensor(task, dtype=torch.float64).unsqueeze(-1)], dim=-1
            )
            Zt = torch.tensor(Z[run, task], dtype=torch.float64).unsqueeze(-1)  # noqa: N806
        else:
            Zt = torch.tensor(Z, dtype=torch.float64)  # noqa: N806
        with one_thread_if_small(len(X)):
            hypers = hyper_parameters(self._tuned_model(X, Zt))
            self.model_ = self._model(X, Zt)
            self.model_.load_state_dict(hypers, strict=False)
            self.model_.eval()
        self.fit_notes_ += self.__dict__.pop("_pending_notes", [])
        self.training_data_ = (W, Y, features)
        self.conformal_residuals_ = None
        return self

    def _model(self, X: torch.Tensor, Y: torch.Tensor):  # noqa: N803
        """The model for the layout chosen in ``fit`` (outcomes already standardised)."""
        if self.layout_ == "single":
            d = X.shape[-1]
            return SingleTaskGP(X, Y, covar_module=ScaleKernel(_data_kernel(d)),
                                outcome_transform=None)  # fmt: skip
        if self.layout_ == "kronecker":
            return KroneckerMultiTaskGP(
                X, Y, data_covar_module=_data_kernel(X.shape[-1]), rank=self.rank
            )
        d = X.shape[-1] - 1
        return MultiTaskGP(
            X, Y, task_feature=-1, covar_module=_data_kernel(d, list(range(d))),
            rank=self.rank, outcome_transform=None, all_tasks=list(range(self.n_targets_)),
        )  # fmt: skip

    def _fitted_model(self, X: torch.Tensor, Y: torch.Tensor, restart: bool = True):  # noqa: N803
        """``gp``'s seeded fit; when its first attempt fails, BoTorch restarts from
        hyper-parameters drawn from their priors, but the LKJ prior of the Kronecker model's
        between-set covariance cannot be drawn into the model (RuntimeError). Then the first
        attempt is kept, its warnings accepted and counted, and a note says so."""
        try:
            return super()._fitted_model(X, Y, restart=restart)
        except RuntimeError as err:
            if "inverse transform" not in str(err):
                raise
        accepted: list[str] = []

        def accept(warning) -> bool:
            accepted.append(warning_label(warning))
            return True

        # the usual failure is a kernel matrix that is not p.d. along the way: more jitter
        with torch.random.fork_rng(devices=[]), gpytorch.settings.cholesky_jitter(1e-4, 1e-4):
            torch.manual_seed(self.seed)
            model = self._model(X, Y)
            fit_gpytorch_mll(
                ExactMarginalLogLikelihood(model.likelihood, model),
                optimizer=fit_gpytorch_mll_scipy,
                optimizer_kwargs={"options": {"maxiter": self.max_iter}},
                warning_handler=accept,
                max_attempts=1,
            )
        note = "first attempt failed and the between-set prior cannot be sampled for restarts"
        self._note_fit([f"{note}; refitted once with Cholesky jitter 1e-4", *accepted])
        return model

    # --- prediction -------------------------------------------------------------------------

    def _query(self, W: np.ndarray, features: np.ndarray | None) -> torch.Tensor:  # noqa: N803
        W = check_weights(W)  # noqa: N806
        if W.shape[1] != self.n_domains_:
            raise ValueError(f"fitted on {self.n_domains_} domains, got {W.shape[1]}")
        features = check_features(features, len(W)) if self.uses_features else None
        return torch.as_tensor(self.design_matrix(W, features), dtype=torch.float64)

    def _moments(
        self,
        W: np.ndarray,  # noqa: N803
        features: np.ndarray | None,
        with_std: bool,
        observation_noise: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Standardised posterior mean and std, points x sets, in chunks (see ``gp``)."""
        X = self._query(W, features)  # noqa: N806
        means, stds = [], []
        with torch.no_grad(), one_thread_if_small(self._n_train()):
            for chunk in torch.split(X, PREDICT_CHUNK):
                if with_std and self.layout_ == "kronecker":  # exact, see _set_covariances
                    cov = self._set_covariances(chunk)
                    var = torch.diagonal(cov, dim1=-2, dim2=-1)
                    stds.append((var + self._noise() * observation_noise).clamp_min(0).sqrt())
                elif with_std:
                    post = self.model_.posterior(chunk, observation_noise=observation_noise)
                    stds.append(post.variance.clamp_min(0).sqrt().reshape(len(chunk), -1))
                with gpytorch.settings.skip_posterior_variances():
                    post = self.model_.posterior(chunk)
                means.append(post.mean.reshape(len(chunk), -1))
        mean = torch.cat(means).numpy()
        return mean, torch.cat(stds).numpy() if with_std else None

    def _noise(self) -> torch.Tensor:
        """Each set's fitted observation noise variance (Kronecker layout, standardised)."""
        lik = self.model_.likelihood
        noise = torch.zeros(self.n_targets_, dtype=torch.float64)
        if lik.has_task_noise:
            noise = noise + lik.task_noises.reshape(-1)
        if lik.has_global_noise:
            noise = noise + lik.noise.reshape(-1)
        return noise

    def _n_train(self) -> int:
        return int(self.model_.train_inputs[0].shape[-2])

    def _shape(self, values: np.ndarray) -> np.ndarray:
        return values[:, 0] if self.one_target_ else values

    def predict(self, W: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
        """Posterior mean loss: points x sets (a vector when fitted on one set)."""
        mean, _ = self._moments(W, features, with_std=False)
        return self._shape(self.y_mean_ + self.y_scale_ * mean)

    def predict_std(self, W: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
        """Posterior std of each set's latent loss (no observation noise), in nats."""
        _, std = self._moments(W, features, with_std=True)
        return self._shape(self.y_scale_ * std)

    def predict_interval(
        self,
        W: np.ndarray,  # noqa: N803
        features: np.ndarray | None = None,
        level: float = 0.9,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Central ``level`` interval of the posterior predictive per set (latent loss plus the
        set's fitted noise), Gaussian."""
        mean, std = self._moments(W, features, with_std=True, observation_noise=True)
        lo, hi = gaussian_interval(self.y_mean_ + self.y_scale_ * mean, self.y_scale_ * std, level)
        return self._shape(lo), self._shape(hi)

    def predict_objective_std(
        self,
        W: np.ndarray,  # noqa: N803
        weights: np.ndarray,
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        """Posterior std of ``sum_j weights[j] * loss_j(w)`` per point (latent, no noise).

        ``weights`` has one entry per set in ``fit``'s column order. The sets' posterior
        covariance at each point (from the learned between-set covariance) enters, so the
        std is exact for the model, not the independent-sets bound.
        """
        a = np.asarray(weights, dtype=float).ravel()
        if len(a) != self.n_targets_:
            raise ValueError(f"{len(a)} weights for {self.n_targets_} fitted sets")
        X = self._query(W, features)  # noqa: N806
        c = torch.as_tensor(a * self.y_scale_, dtype=torch.float64)
        stds = []
        with torch.no_grad(), one_thread_if_small(self._n_train()):
            for chunk in torch.split(X, PREDICT_CHUNK):
                cov = self._set_covariances(chunk)
                stds.append(torch.einsum("i,bij,j->b", c, cov, c).clamp_min(0).sqrt())
        return torch.cat(stds).numpy()

    def _set_covariances(self, X: torch.Tensor) -> torch.Tensor:  # noqa: N803
        """Posterior covariance between the sets at each point, points x sets x sets
        (standardised units, latent)."""
        if self.layout_ != "kronecker":  # exact joint posterior of the sets at one point
            cov = self.model_.posterior(X.unsqueeze(-2)).mvn.covariance_matrix
            return cov.reshape(len(X), self.n_targets_, self.n_targets_)
        # BoTorch's Kronecker posterior keeps only the diagonal; the full block follows from
        # the eigendecompositions of K (runs) and of the noise-whitened B (sets):
        # (K (x) B + I (x) D)^-1 = M (U (x) V) diag(1 / (lambda_i s_j + 1)) (U (x) V)' M,
        # M = I (x) D^-1/2, so Cov(x) = k(x, x) B - G' diag_j(sum_i a_i^2 / (lambda_i s_j + 1)) G
        # with a = U' k_x and G = V' D^-1/2 B.
        if not hasattr(self, "_kron_cache"):
            train_x = self.model_.train_inputs[0]
            kernel = self.model_.covar_module.data_covar_module
            lam, u = torch.linalg.eigh(kernel(train_x).to_dense())
            b = self.model_._task_covar_matrix.to_dense()
            root = self._noise().rsqrt()
            s, v = torch.linalg.eigh(root[:, None] * b * root[None, :])
            self._kron_cache = (train_x, kernel, lam.clamp_min(0), u, b, s.clamp_min(0),
                                v.T @ (root[:, None] * b))  # fmt: skip
        train_x, kernel, lam, u, b, s, g = self._kron_cache
        a2 = (kernel(X, train_x).to_dense() @ u) ** 2  # points x runs
        shrink = a2 @ (1.0 / (lam[:, None] * s[None, :] + 1.0))  # points x sets
        prior = kernel(X, diag=True).reshape(-1, 1, 1) * b
        return prior - torch.einsum("ki,bk,kj->bij", g, shrink, g)

    def set_covariance(self) -> np.ndarray:
        """The learned between-set covariance ``B`` in nats^2 (sets x sets, prior scale)."""
        if self.layout_ == "single":
            var = float(self.model_.covar_module.outputscale)
            return np.array([[var]]) * self.y_scale_**2
        if self.layout_ == "kronecker":
            b = self.model_.covar_module.task_covar_module.covar_matrix
        else:
            b = self.model_.covar_module.kernels[1].covar_matrix
        b = b.to_dense().detach().numpy() if hasattr(b, "to_dense") else b.detach().numpy()
        return b * np.outer(self.y_scale_, self.y_scale_)


class MTGPMDEPredictor(MTGPPredictor):
    """``mtgp`` on the sqrt-mapped rates and the MDE losses of every set (as ``gp+mde``), the
    losses min-max scaled on the training runs."""

    name = "mtgp+mde"
    uses_features = True

    def design_matrix(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        rates = super().design_matrix(W, None)
        return np.hstack([rates, (features - self.feature_low_) / self.feature_spread_])

    def _learn_scaling(self, W: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        self.feature_low_ = features.min(axis=0)
        spread = features.max(axis=0) - self.feature_low_
        self.feature_spread_ = np.where(spread > 0, spread, 1.0)


__all__ = ["MIN_RUNS", "MTGPMDEPredictor", "MTGPPredictor", "MixturePredictor"]
