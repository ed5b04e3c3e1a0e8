"""Gaussian-process surrogate (BoTorch ``SingleTaskGP``), the model Bayesian optimisation uses.

Matern-5/2 kernel with one lengthscale per input (ARD), double precision, outcomes standardised,
hyper-parameters by maximum marginal likelihood (``fit_gpytorch_mll``). The kernel sees a
transform of the weights, not the raw simplex coordinates: a loss moves much more between
shares 0 and 0.01 than between 0.5 and 0.51, and a stationary kernel on raw weights cannot say
so. See ``gp_common.INPUT_TRANSFORMS``.

Defaults were chosen on RegMix's training runs only (half fitted, half scored, Pile-CC,
``bench/predictor_probe.py --select``; Spearman at n = 32 / 64 / 256):
raw weights 0.882 / 0.912 / 0.976; sqrt 0.955 / 0.975 / 0.988 (the default); sqrt with
log-loss target 0.957 / 0.976 / 0.988; log(w + 1e-3) with log-loss target 0.954 / 0.978 /
0.989 (a tie, but it needs an eps); a ridge log-linear trend as prior mean was worse
(0.948 / 0.966 / 0.975). sqrt is the Hellinger map, the natural geometry of distributions.
The loss itself stays the default target (the log target's gain is within noise) so that
``model_`` is a BoTorch model of the loss in nats, usable as is by acquisition functions
(which may also hand it negated losses to maximise).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter

import gpytorch
import numpy as np
import torch
from botorch.exceptions.errors import ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.optim.fit import fit_gpytorch_mll_scipy
from gpytorch.kernels import MaternKernel, ScaleKernel
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import LogNormalPrior
from linear_operator.utils.errors import NotPSDError

from ..errors import MixsurrogateError
from .base import MixturePredictor, check_features, check_weights
from .gp_common import (
    LENGTHSCALE_FLOOR,
    floor_lengthscales,
    gaussian_interval,
    hyper_parameters,
    one_thread_if_small,
    transform_weights,
    warning_label,
)
from .intervals import conformal_quantile

PREDICT_CHUNK = 256  # query points per posterior call, see GPPredictor._posterior

#: starts of the multi-start refit after a failed first attempt (see GPPredictor._fitted_model)
RETRY_STARTS = 8
#: ``cv``: the posterior predictive std scaled by the conformal quantile of standardised
#: cross-validated residuals on the training runs; ``posterior``: the Gaussian posterior alone
INTERVAL_KINDS = ("cv", "posterior")


class GPFitError(MixsurrogateError):
    """No hyper-parameters could be fitted, even in the fallback (one line for the CLI)."""


def _slice_output(value: torch.Tensor, j: int, single: torch.Tensor, key: str) -> torch.Tensor:
    """Output ``j``'s part of a batched model's state entry, shaped like a one-output model's."""
    if value.shape == single.shape:
        return value  # shared by every output (constraint bounds, prior parameters)
    if value.shape[1:] == single.shape:
        return value[j].clone()
    raise ValueError(
        f"cannot split GP state {key!r}: {tuple(value.shape)} vs {tuple(single.shape)}"
    )


def _log_target(y: np.ndarray, name: str) -> np.ndarray:
    if np.any(y <= 0):
        raise MixsurrogateError(f"{name} with log_target=True needs positive losses")
    return np.log(y)


class GPPredictor(MixturePredictor):
    """Exact GP regression with a Matern-5/2 ARD kernel; ``predict_std`` is the posterior std."""

    name = "gp"
    #: parameters that may differ between the members of one ``tune_jointly`` call
    PER_TARGET_PARAMS: tuple[str, ...] = ()

    def __init__(
        self,
        inputs: str = "sqrt",
        eps: float = 1e-3,
        log_target: bool = False,
        max_iter: int = 100,
        hyper_runs: int = 256,
        seed: int = 0,
        interval: str = "cv",
    ):
        self.inputs = inputs
        self.eps = eps
        self.log_target = log_target
        self.max_iter = max_iter
        self.hyper_runs = hyper_runs
        self.seed = seed
        self.interval = interval

    def use_hyper_parameters(self, hypers: dict[str, torch.Tensor]) -> GPPredictor:
        """Let the next ``fit`` condition on its runs with these hyper-parameters (from
        ``hyper_parameters`` of another fit with the same inputs) instead of tuning its own:
        a refit on part of the runs costs one Cholesky, not an L-BFGS run."""
        self._joint_hypers = hypers
        return self

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        # The marginal likelihood regularises the lengthscales; a handful of runs suffices
        # to fit (badly), and the evaluation reports how badly.
        return 3

    def design_matrix(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return transform_weights(W, self.inputs, self.eps)

    def _learn_scaling(self, W: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        """Hook for subclasses whose extra inputs need scaling learnt on the training runs."""

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        self._learn_scaling(W, features)
        X = torch.tensor(self.design_matrix(W, features), dtype=torch.float64)  # noqa: N806
        target = _log_target(y, self.name) if self.log_target else y
        Y = torch.tensor(target, dtype=torch.float64).unsqueeze(-1)  # noqa: N806
        with one_thread_if_small(len(X)):
            hypers = self.__dict__.pop("_joint_hypers", None)  # from tune_jointly, used once
            if hypers is None:
                hypers = hyper_parameters(self._tuned_model(X, Y))
            self.model_ = self._model(X, Y)
            self.model_.load_state_dict(hypers, strict=False)
            self.model_.eval()
        self.fit_notes_ += self.__dict__.pop("_pending_notes", [])

    def _tuned_model(
        self,
        X: torch.Tensor,  # noqa: N803
        Y: torch.Tensor,  # noqa: N803
        restart: bool = True,
    ) -> SingleTaskGP:
        """Hyper-parameters by marginal likelihood on at most ``hyper_runs`` runs
        (``restart``: see ``_fitted_model``).

        The GP then conditions on every run with them. Each L-BFGS step costs an O(n^3)
        Cholesky backward; on RegMix (512 runs, 3 targets) hyper-parameters from 256 runs
        predict as well as from all 512 at a fifth of the time.
        """
        if len(X) > self.hyper_runs:
            rows = np.random.default_rng(self.seed).choice(len(X), self.hyper_runs, replace=False)
            X, Y = X[rows], Y[rows]  # noqa: N806
        return self._fitted_model(X, Y, restart=restart)

    @classmethod
    def tune_jointly(
        cls,
        members: list[GPPredictor],
        W: np.ndarray,  # noqa: N803
        Y: np.ndarray,  # noqa: N803
        features: np.ndarray | None,
    ) -> None:
        """Tune one GP per column of ``Y`` in a single batched marginal-likelihood fit.

        ``members`` must share their class and hyper-parameters (so also their inputs). The
        batched model keeps separate hyper-parameters per target, and the summed marginal
        likelihood separates, so this finds what separate fits would, but one L-BFGS run over
        all targets replaces one per target. On the real-text benchmark (11 sets, 5-fold CV)
        Spearman matched separate fits within 0.012 on every set while CV took 30 s, not 71 s,
        for gp+mde and 42 s, not 62 s, for gp (2 loaded cores). Each member's next ``fit`` then
        conditions on its own column with its slice of the hyper-parameters.
        """
        first = members[0]

        def shared(member: GPPredictor) -> dict:
            params = member.get_params()
            return {k: v for k, v in params.items() if k not in cls.PER_TARGET_PARAMS}

        if any(type(m) is not type(first) or shared(m) != shared(first) for m in members):
            raise ValueError("tune_jointly needs members of one class with equal parameters")
        W = check_weights(W)  # noqa: N806
        features = check_features(features, len(W)) if first.uses_features else None
        Y = np.asarray(Y, dtype=float).reshape(len(W), len(members))  # noqa: N806
        first._learn_scaling(W, features)
        X = torch.tensor(first.design_matrix(W, features), dtype=torch.float64)  # noqa: N806
        target = _log_target(Y, first.name) if first.log_target else Y
        Yt = torch.tensor(target, dtype=torch.float64)  # noqa: N806
        with one_thread_if_small(len(X)):
            try:
                # No batched restarts: they would keep the best *summed* likelihood, which can
                # leave single targets at a noise-only optimum (RegMix, 32 runs: 4 of 13 sets
                # at Spearman ~0.1, 0.92-0.99 when fitted alone); if the first attempt fails,
                # the caller tunes each target apart, with its own restarts.
                batched = hyper_parameters(first._tuned_model(X, Yt, restart=False))
            finally:  # a failed joint fit's notes must not reach ``first``'s own fit
                notes = first.__dict__.pop("_pending_notes", [])
            single = hyper_parameters(first._model(X[:2], Yt[:2, :1]))
        notes = [f"{n} (joint fit of {len(members)} targets)" for n in notes]
        sliced = [  # every slice first, so a failure hands no member a partial set
            {k: _slice_output(v, j, single[k], k) for k, v in batched.items()}
            for j in range(len(members))
        ]
        for member, hypers in zip(members, sliced, strict=True):
            member._joint_hypers = hypers
            member._pending_notes = list(notes)

    @staticmethod
    def _model(X: torch.Tensor, Y: torch.Tensor) -> SingleTaskGP:  # noqa: N803
        """A GP per column of Y (a batch of independent GPs when Y has several columns)."""
        d = X.shape[-1]
        batch = torch.Size([Y.shape[-1]]) if Y.shape[-1] > 1 else torch.Size()
        # BoTorch's dimension-scaled lengthscale prior (Hvarfner et al. 2024) on a Matern-5/2:
        # long lengthscales by default in many dimensions, so 17-30 inputs do not overfit.
        prior = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(d), scale=math.sqrt(3))
        kernel = ScaleKernel(
            MaternKernel(nu=2.5, ard_num_dims=d, lengthscale_prior=prior, batch_shape=batch),
            batch_shape=batch,
        )
        return SingleTaskGP(X, Y, covar_module=kernel, outcome_transform=Standardize(m=Y.shape[-1]))

    def _fitted_model(
        self,
        X: torch.Tensor,  # noqa: N803
        Y: torch.Tensor,  # noqa: N803
        restart: bool = True,
    ) -> SingleTaskGP:
        """Maximise the marginal likelihood, deterministically given ``seed``.

        When the first attempt fails, ``restart`` refits from several prior draws; without it
        a ``RuntimeError`` says the first attempt failed.

        ``fit_gpytorch_mll`` retries a failed attempt from hyper-parameters drawn from their
        priors with torch's *global* generator, so the fit runs on a forked, seeded generator:
        the same seed gives the same model in any process and after any other torch work.
        L-BFGS is capped at ``max_iter`` steps: the marginal likelihood flattens long before
        its tolerance is met and the predictions stop moving (measured on RegMix). Hitting
        the cap (and any other optimiser warning) is accepted rather than treated as a
        failure, but counted in ``fit_notes_``, as are retries and other warnings.

        When no attempt is kept (each hit a kernel matrix that is not p.d.), the multi-start
        is redone with lengthscales bounded below (``floor_lengthscales``) and a note says
        so; only if that fails too does a ``GPFitError`` say why. Fits that succeed without
        it are untouched by it.
        """
        attempts = failures = 0

        def counted_optimizer(mll, closure=None, **kwargs):
            nonlocal attempts, failures
            attempts += 1
            try:
                return fit_gpytorch_mll_scipy(mll, closure=closure, **kwargs)
            except NotPSDError:  # BoTorch drops the attempt and logs it at DEBUG level only
                failures += 1
                raise

        accepted: list[str] = []

        def accept(warning: warnings.WarningMessage) -> bool:
            accepted.append(warning_label(warning))
            return True

        def fit(floor: bool = False, **options) -> SingleTaskGP | None:
            """The fitted model, or None when every attempt failed."""
            model = self._model(X, Y)
            if floor:
                floor_lengthscales(model)
            try:
                fit_gpytorch_mll(
                    ExactMarginalLogLikelihood(model.likelihood, model),
                    optimizer=counted_optimizer,
                    optimizer_kwargs={"options": {"maxiter": self.max_iter}},
                    warning_handler=accept,
                    **options,
                )
            except ModelFittingError:
                return None
            return model

        labels: list[str] = []
        with (
            torch.random.fork_rng(devices=[]),
            warnings.catch_warnings(record=True) as other,
        ):
            warnings.simplefilter("always")
            torch.manual_seed(self.seed)
            model = fit()
            if attempts > 1 and not restart:
                raise RuntimeError("the first attempt failed")
            if model is not None and attempts > 1:
                # The first attempt failed and BoTorch kept the first restart that did not,
                # which can be a noise-only optimum (RegMix stackexchange: Spearman 0.38).
                # Rare, so afford a proper multi-start: the best marginal likelihood of
                # RETRY_STARTS attempts from prior samples (still seeded).
                restarts = attempts - 1
                model = fit(max_attempts=RETRY_STARTS, pick_best_of_all_attempts=True)
                if model is not None:
                    labels.append(
                        f"first attempt failed ({restarts} restart(s)); kept the best of "
                        f"{RETRY_STARTS} starts"
                    )
            if model is None:  # every attempt failed: bounded lengthscales, a fresh multi-start
                tried, failed = attempts, failures
                model = fit(floor=True, max_attempts=RETRY_STARTS, pick_best_of_all_attempts=True)
                if model is None:
                    raise GPFitError(
                        f"GP fit failed: {failed} of {tried} marginal-likelihood attempts hit a "
                        "kernel matrix that is not positive definite, and all "
                        f"{RETRY_STARTS} more with lengthscales >= {LENGTHSCALE_FLOOR:g}"
                    )
                labels.append(
                    f"no fit kept ({failed} of {tried} attempts hit a kernel matrix not p.d.); "
                    f"refitted with lengthscales >= {LENGTHSCALE_FLOOR:g}, best of "
                    f"{RETRY_STARTS} starts ({failures - failed} of them failed)"
                )
        self._note_fit(labels + accepted + [warning_label(w) for w in other])
        return model

    def _note_fit(self, labels: list[str]) -> None:
        """Record what one hyper-parameter fit worked around (restarts, warnings, counted) for
        ``fit_notes_``."""
        notes = self.__dict__.setdefault("_pending_notes", [])
        for label, count in Counter(labels).items():
            notes.append(f"{label} ({count}x)" if count > 1 else label)

    def _posterior(
        self,
        W: np.ndarray,  # noqa: N803
        features: np.ndarray | None,
        with_std: bool = True,
        observation_noise: bool = False,
    ):
        """Posterior mean (and std) per point, in chunks.

        GPyTorch forms the joint prior covariance of all query points even when only the mean
        or the diagonal is wanted, so thousands of candidates at once cost n^2 kernel entries;
        chunks of ``PREDICT_CHUNK`` keep that negligible (measured 13x faster for 4096 points).
        """
        X = torch.as_tensor(self.design_matrix(W, features), dtype=torch.float64)  # noqa: N806
        means, stds = [], []
        with torch.no_grad(), one_thread_if_small(len(self.model_.train_targets)):
            for chunk in torch.split(X, PREDICT_CHUNK):
                if with_std:
                    post = self.model_.posterior(chunk, observation_noise=observation_noise)
                    stds.append(post.variance.clamp_min(0).sqrt().reshape(-1))
                else:
                    with gpytorch.settings.skip_posterior_variances():
                        post = self.model_.posterior(chunk)
                means.append(post.mean.reshape(-1))
        mean = torch.cat(means).numpy()
        return mean, torch.cat(stds).numpy() if with_std else None

    def _predict(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        mean, _ = self._posterior(W, features, with_std=False)
        return np.exp(mean) if self.log_target else mean

    def predict_std(self, W: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
        """Posterior std of the latent loss (no observation noise), in nats."""
        W = check_weights(W)  # noqa: N806
        if self.uses_features:  # else passed on as given (mfgp's fidelity inputs), as in fit
            features = check_features(features, len(W))
        mean, std = self._posterior(W, features)
        # log target: delta method, d exp(m) = exp(m) dm
        return np.exp(mean) * std if self.log_target else std

    def predict_interval(
        self,
        W: np.ndarray,  # noqa: N803
        features: np.ndarray | None = None,
        level: float = 0.9,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``level`` interval of a new run's loss around the posterior predictive (the latent
        loss plus the fitted observation noise: a new run is one noisy draw).

        ``interval="posterior"``: its Gaussian quantiles. ``interval="cv"`` (default): its
        std times the conformal quantile of the training runs' standardised 5-fold CV
        residuals (normalised split conformal; each fold refits the GP, hyper-parameters
        included). With 16-64 runs the marginal-likelihood hyper-parameters are
        over-confident (RegMix Pile-CC, 16 runs: 0.77 coverage of the posterior's 90%
        interval); closed-form leave-one-out residuals with the same hyper-parameters were
        no better (0.85 / 0.81 / 0.79 at 16 / 32 / 64 runs), refitted folds were.
        """
        if self.interval not in INTERVAL_KINDS:
            raise MixsurrogateError(
                f"gp interval {self.interval!r}: choose one of {', '.join(INTERVAL_KINDS)}"
            )
        W = check_weights(W)  # noqa: N806
        if self.uses_features:  # else passed on as given (mfgp's fidelity inputs), as in fit
            features = check_features(features, len(W))
        center, std = self._predictive(W, features)
        if self.interval == "posterior":
            lo, hi = gaussian_interval(center, std, level)
        else:
            half = conformal_quantile(self._cv_standardized_residuals(), level) * std
            lo, hi = center - half, center + half
        return (np.exp(lo), np.exp(hi)) if self.log_target else (lo, hi)

    def _predictive(
        self,
        W: np.ndarray,  # noqa: N803
        features: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Centre and std of a new run's loss in the model's space (log loss for a log
        target): the posterior predictive."""
        return self._posterior(W, features, observation_noise=True)

    def standardized_residuals(
        self,
        W: np.ndarray,  # noqa: N803
        y: np.ndarray,
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        """``(y - centre) / std`` of the posterior predictive at runs with losses ``y``."""
        W = check_weights(W)  # noqa: N806
        if self.uses_features:  # else passed on as given (mfgp's fidelity inputs), as in fit
            features = check_features(features, len(W))
        center, std = self._predictive(W, features)
        target = np.log(y) if self.log_target else np.asarray(y, float)
        return (target - center) / std

    def _cv_standardized_residuals(self) -> np.ndarray:
        """Out-of-fold standardised residuals of the training runs, computed once per fit."""
        return self.calibration_residuals(
            residual=lambda model, W, y, f: model.standardized_residuals(W, y, f)
        )
