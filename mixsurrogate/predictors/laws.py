"""Parametric mixing laws: few parameters, meant for few runs.

* Data Mixing Law (Ye et al. 2024): ``L(w) = c + k * exp(t . w)`` with ``c, k > 0``.
* BiMix (Ge et al. 2024): ``L_i(w) = A_i / (w_i + eps)^alpha_i``, a power law in the target
  domain's own share; it needs to know which training domain the target is.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits

from ..errors import MixsurrogateError, UnsupportedTargetError
from .base import MixturePredictor

#: why bimix skips a set, in terms a CLI user can act on (the library's ``domain_index``
#: is set from the names: a set is a domain's when ``loss:<d>`` and ``w:<d>`` share ``<d>``)
BIMIX_NO_DOMAIN = (
    "this set's name matches no training domain; bimix fits only sets named like one "
    "(loss:<domain> beside w:<domain>), from that domain's share"
)
_MAX_EXPONENT = 60.0  # exp(60) ~ 1e26: far past any loss, still finite in float64


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss of residuals: quadratic within delta, linear beyond."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def dml_predict(theta: np.ndarray, W: np.ndarray) -> np.ndarray:  # noqa: N803
    """``c + k exp(t . w)`` at ``theta = (log c, log k, t)``."""
    return np.exp(min(theta[0], _MAX_EXPONENT)) + np.exp(
        np.clip(theta[1] + W @ theta[2:], None, _MAX_EXPONENT)
    )


def dml_objective(theta: np.ndarray, W: np.ndarray, y: np.ndarray, delta: float) -> float:  # noqa: N803
    """Mean Huber loss of the law's residuals: the quantity every start competes on."""
    return float(huber(dml_predict(theta, W) - y, delta).mean())


def _residuals(theta: np.ndarray, W: np.ndarray, y: np.ndarray, root: float) -> np.ndarray:  # noqa: N803
    fit = dml_predict(theta, W) - y
    return np.concatenate([fit, root * theta[2:]]) if root else fit


def _jacobian(theta: np.ndarray, W: np.ndarray, y: np.ndarray, root: float) -> np.ndarray:  # noqa: N803
    kz = np.exp(np.clip(theta[1] + W @ theta[2:], None, _MAX_EXPONENT))
    c = np.exp(min(theta[0], _MAX_EXPONENT))
    jac = np.column_stack([np.full(len(y), c), kz, kz[:, None] * W])
    if not root:
        return jac
    penalty = np.hstack([np.zeros((W.shape[1], 2)), root * np.eye(W.shape[1])])
    return np.vstack([jac, penalty])


def dml_local_fit(
    theta0: np.ndarray,
    W: np.ndarray,  # noqa: N803
    y: np.ndarray,
    delta: float,
    ridge: float = 0.0,
) -> np.ndarray:
    """Minimise the Huber loss (plus ``ridge * |t|^2``, as extra residual rows) from one start.

    SciPy's trust-region least squares with ``loss="huber", f_scale=delta`` minimises exactly
    the Huber objective, using the law's Jacobian (Gauss-Newton steps). Measured on RegMix
    (512 runs, 17 domains): 15-120 evaluations to converge where L-BFGS on the same
    objective still moved after 2000 iterations.
    """
    res = least_squares(
        _residuals,
        theta0,
        jac=_jacobian,
        args=(W, y, np.sqrt(2 * ridge)),
        loss="huber",
        f_scale=delta,
        method="trf",
        x_scale="jac",
    )
    return res.x


def dml_smart_starts(W: np.ndarray, y: np.ndarray, ridge: float = 1e-6) -> list[np.ndarray]:  # noqa: N803
    """Four starts that replace the published grid of thousands.

    For a fixed floor ``c < min(y)`` the law is linear in log space,
    ``log(y - c) = log k + t . w``, so one least-squares solve gives (k, t). The floors span
    from just under the best run to far below it (towards a pure exponential): the published
    grid over log c collapsed to the values that matter, with (log k, t) solved for rather
    than sampled.
    """
    lo, spread = float(y.min()), float(np.ptp(y)) or 1.0
    X = np.hstack([np.ones((len(y), 1)), W])  # noqa: N806
    starts = []
    for q in (0.05, 0.3, 1.0, 3.0):
        c = max(lo - q * spread, 1e-3 * lo)
        # a tiny ridge keeps domains that no run uses (all-zero columns) at t = 0
        coef = np.linalg.solve(X.T @ X + ridge * np.eye(X.shape[1]), X.T @ np.log(y - c))
        starts.append(np.concatenate([[np.log(c)], coef]))
    return starts


def dml_grid_starts(W: np.ndarray, y: np.ndarray, n_starts: int, seed: int) -> list[np.ndarray]:  # noqa: N803
    """The published recipe: a grid over log c and log k crossed with random t."""
    rng = np.random.default_rng(seed)
    n_grid = max(2, int(round((n_starts / 4) ** 0.5)))
    log_cs = np.log(np.linspace(0.05, 1.0, n_grid) * y.min())
    log_ks = np.log(np.linspace(0.05, 1.0, n_grid) * np.ptp(y) + 1e-3)
    starts: list[np.ndarray] = []
    while len(starts) < n_starts:
        for lc in log_cs:
            for lk in log_ks:
                starts.append(np.concatenate([[lc, lk], rng.normal(0.0, 2.0, W.shape[1])]))
    return starts[:n_starts]


class DMLPredictor(MixturePredictor):
    """Data Mixing Law ``c + k exp(t . w)`` by robust (Huber) least squares, multi-start.

    ``starts="smart"`` (default) runs the local fit from ``dml_smart_starts`` (4 starts);
    an integer uses the published grid-and-random recipe with that many starts (slow; kept
    to check that the smart starts reach the same optimum). ``huber_delta`` is in nats;
    ``ridge`` adds ``ridge * |t|^2`` to the summed loss (so its weight per run falls as 1/n:
    a fixed prior on t that the data outweighs as runs accrue). With K + 1 parameters and a
    few dozen runs the law's exact optimum overfits (on RegMix a 300-start L-BFGS reference
    that stops short of it ranked better at 32 runs), so the defaults regularise. Chosen on
    RegMix's training runs only (halves, ``bench/predictor_probe.py --select`` protocol, 10
    draws; Spearman Pile-CC / github at n = 24, 32, 64, 128): delta 0.01, no ridge 0.706 /
    0.748, 0.794 / 0.773, 0.919 / 0.891, 0.935 / 0.952; delta 0.3 (near least squares) 0.749 /
    0.768, 0.844 / 0.837, 0.925 / 0.944, 0.938 / 0.961; delta 0.3 with ridge 1e-4 (default)
    0.867 / 0.808, 0.880 / 0.875, 0.928 / 0.939, 0.939 / 0.958. Much smaller deltas (1e-3)
    turn the fit into least absolute deviations, whose many local optima no start recipe
    finds reliably.
    """

    name = "dml"
    capabilities = replace(MixturePredictor.capabilities, positive_losses=True, schedules=False)
    fit_margin = 2

    def __init__(
        self,
        huber_delta: float = 0.3,
        starts: str | int = "smart",
        ridge: float = 1e-4,
        seed: int = 0,
    ):
        self.huber_delta = huber_delta
        self.starts = starts
        self.ridge = ridge
        self.seed = seed

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        # c, k and one t per domain; on the simplex a constant shift of t is absorbed by k,
        # so K + 1 of the K + 2 numbers are identifiable.
        return n_domains + 1

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        if self.starts == "smart":
            starts = dml_smart_starts(W, y)
        elif isinstance(self.starts, int) and self.starts > 0:
            starts = dml_grid_starts(W, y, self.starts, self.seed)
        else:
            raise MixsurrogateError(
                f"dml starts must be 'smart' or a positive integer, not {self.starts!r}"
            )
        # Tiny matrices: BLAS threads only add contention (20x slower on 2 busy cores).
        with threadpool_limits(limits=1):
            fits = [dml_local_fit(t0, W, y, self.huber_delta, self.ridge) for t0 in starts]
        losses = [
            dml_objective(theta, W, y, self.huber_delta)
            + self.ridge * theta[2:] @ theta[2:] / len(y)
            for theta in fits
        ]
        best = int(np.argmin(losses))
        self.theta_, self.loss_ = fits[best], float(losses[best])
        # c and k for reading only (predictions use theta_ in log space): along the ridge
        # k exp(t . w) = const, log k can drift past what a float holds, so k may read inf.
        with np.errstate(over="ignore"):
            self.c_, self.k_ = float(np.exp(self.theta_[0])), float(np.exp(self.theta_[1]))
        self.t_ = self.theta_[2:].copy()

    def _predict(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return dml_predict(self.theta_, W)


class BiMixPredictor(MixturePredictor):
    """BiMix ``A / (w_d + eps)^alpha`` on the target domain's own share ``w_d``.

    ``domain_index`` is the column of ``W`` holding the target's domain; evaluation sets that
    are not a training domain (end tasks, unseen domains) cannot be modelled and raise
    ``UnsupportedTargetError``. Fit: least squares in log space (closed form) refined by
    least squares on the loss itself.
    """

    name = "bimix"
    capabilities = replace(MixturePredictor.capabilities, positive_losses=True, schedules=False)
    fit_margin = 2

    def __init__(self, domain_index: int | None = None, eps: float = 1e-3):
        self.domain_index = domain_index
        self.eps = eps

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        return 2

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        if self.domain_index is None:
            raise UnsupportedTargetError(BIMIX_NO_DOMAIN)
        if not 0 <= self.domain_index < W.shape[1]:
            raise MixsurrogateError(
                f"bimix domain_index {self.domain_index} is outside the {W.shape[1]} domains"
            )
        x = np.log(W[:, self.domain_index] + self.eps)
        if np.ptp(x) == 0:
            raise UnsupportedTargetError(
                "bimix needs runs with different shares of the target's domain; all are equal"
            )
        slope, intercept = np.polyfit(x, np.log(y), 1)
        res = least_squares(
            lambda p: np.exp(p[0] - p[1] * x) - y, x0=np.array([intercept, -slope]), method="lm"
        )
        self.A_, self.alpha_ = float(np.exp(res.x[0])), float(res.x[1])

    def _predict(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return self.A_ / (W[:, self.domain_index] + self.eps) ** self.alpha_
