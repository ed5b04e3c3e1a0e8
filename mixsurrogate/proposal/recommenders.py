"""Recommenders: ways to turn one fitted surrogate of the objective into one mixture to train.

The surrogate's argmin is where its errors flatter it most, and with few runs in many domains
it often lies far from every logged run. The other recommenders trade some of the promised
objective for trust: the mean of the top-k candidates (RegMix's averaging), the argmin of a
pessimistic bound (mean + kappa x std), the argmin of the objective plus a KL pull towards a
prior (Olmix), and the argmin inside a trust region around the best logged runs. Which of them
to believe is decided by cross-fitting (``robust``), not here.

Every recommender sees the same candidate pool (built like ``search.recommend``'s, so the
argmin here is the explore recommendation of old), refined by SLSQP when the surrogate is
smooth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from ..errors import MixsurrogateError
from ..search.candidates import local_candidates, sparse_candidates
from ..simplex import Bounds
from .kl_prior import KLPenalty
from .optimiser import minimise_on_simplex

#: what ``--recommender`` accepts besides ``auto``
RECOMMENDERS = ("argmin", "top-k", "pessimistic", "kl", "trust-region")
#: what each recommender recommends, in words (``top_k``, ``kappa``... filled in by ``describe``)
DESCRIPTIONS = {
    "argmin": "the minimiser of the predicted objective (candidates, refined by SLSQP)",
    "top-k": "the mean of the {top_k} lowest predicted candidates",
    "pessimistic": "the minimiser of the predicted objective + {kappa:g} x its std",
    "kl": "the minimiser of the predicted objective + {kl_lambda:.4g} x KL(w || prior)",
    "trust-region": "the lowest predicted objective within total variation {trust_radius:g} of "
    "the {trust_centres} best logged runs",
    "prior": "the prior mixture itself",
}
#: the prior itself, judged beside the recommenders (recommended when all are judged worse)
PRIOR = "prior"
#: ties in judged objective go to the more conservative choice (earlier here)
CONSERVATIVE_ORDER = (PRIOR, "trust-region", "kl", "top-k", "pessimistic", "argmin")
#: ``kl`` without ``--kl LAMBDA``: lambda = this x the std of the logged objective, in nats of
#: objective per nat of KL (a mixture 1 nat from the prior must promise a quarter of the runs'
#: spread); a scale-free default, the cross-fitting judges whether it helps
KL_SCALE = 0.25
#: how many of the best logged runs (by the surrogate's mean) centre the trust region
TRUST_CENTRES = 3
#: the trust region's radius: total-variation distance to the nearest centre
TRUST_RADIUS = 0.2
_PRIOR_FLOOR = 1e-9


class Surrogate(Protocol):
    """What a recommender needs: the predicted objective, and its std when the model has one."""

    def mean(self, W: np.ndarray) -> np.ndarray: ...  # noqa: N803

    def std(self, W: np.ndarray) -> np.ndarray | None: ...  # noqa: N803


class FittedSurrogate:
    """``propose.FittedObjective`` (called for the objective) seen as a :class:`Surrogate`."""

    def __init__(self, fitted):
        self.fitted = fitted

    def mean(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.asarray(self.fitted(np.atleast_2d(W)), dtype=float)

    def std(self, W: np.ndarray) -> np.ndarray | None:  # noqa: N803
        return self.fitted.std(np.atleast_2d(W))


@dataclass(frozen=True)
class RecommenderSettings:
    """Everything the recommenders share apart from the surrogate and the runs."""

    bounds: Bounds
    prior: np.ndarray  # inside the bounds
    kl_lambda: float
    kappa: float = 1.0
    top_k: int = 100
    trust_radius: float = TRUST_RADIUS
    trust_centres: int = TRUST_CENTRES
    n_candidates: int = 2048
    n_starts: int = 3
    max_iter: int = 100
    smooth: bool = True  # False for trees: no SLSQP, candidates only

    def cheap(self) -> RecommenderSettings:
        """The settings a half-data proposer uses in cross-fitting: fewer candidates, one
        SLSQP start, fewer iterations (the judge compares recommenders, not decimals)."""
        return replace(
            self,
            n_candidates=min(self.n_candidates, 512),
            n_starts=1,
            max_iter=min(50, self.max_iter),
        )


def describe(name: str, settings: RecommenderSettings) -> str:
    """What recommender ``name`` recommends under ``settings``, in words."""
    return DESCRIPTIONS[name].format(**settings.__dict__)


def default_kl_lambda(y: np.ndarray) -> float:
    """``kl``'s lambda when none is given: :data:`KL_SCALE` x the std of the logged objective."""
    y = np.asarray(y, dtype=float)
    y = y[np.isfinite(y)]
    return float(KL_SCALE * np.std(y)) if len(y) > 1 else 0.0


def total_variation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Total-variation distance between rows of ``a`` (n, K) and rows of ``b`` (m, K): (n, m)."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    return 0.5 * np.abs(a[:, None, :] - b[None, :, :]).sum(axis=2)


def candidate_pool(
    surrogate: Surrogate,
    logged: np.ndarray,
    settings: RecommenderSettings,
    seed: int,
) -> np.ndarray:
    """Logged runs inside the bounds, Sobol points, sparse mixtures, perturbations of the five
    best logged runs by the surrogate's mean and the prior (as ``search.recommend`` builds its
    candidates, with the same generator, plus the prior)."""
    bounds, n = settings.bounds, settings.n_candidates
    rng = np.random.default_rng([seed, len(logged), 7])
    inside = logged[bounds.contains(logged)]
    top = logged[np.argsort(surrogate.mean(logged))[:5]]
    return np.vstack(
        [
            inside,
            bounds.sample(n, seed=int(rng.integers(2**31))),
            sparse_candidates(bounds, n // 4, rng),
            local_candidates(top, 0.2, n // 2, rng, bounds),
            settings.prior[None],
        ]
    )


def _minimise(f, pool: np.ndarray, values: np.ndarray, settings: RecommenderSettings) -> np.ndarray:
    """The best candidate, refined by multi-start SLSQP when the surrogate is smooth (kept only
    if it improves on the best candidate)."""
    order = np.argsort(values)
    best = pool[order[0]]
    if not settings.smooth:
        return best
    refined = minimise_on_simplex(
        f, settings.bounds, pool[order[: settings.n_starts]], max_iter=settings.max_iter
    )
    return refined if f(refined[None])[0] <= values[order[0]] else best


def recommend_all(
    surrogate: Surrogate,
    logged: np.ndarray,
    settings: RecommenderSettings,
    names: Sequence[str],
    seed: int = 0,
    known: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Each named recommender's mixture under ``surrogate`` (``logged``: the runs it was fitted
    on; ``known``: mixtures already found, e.g. the exploit proposal, not searched again)."""
    known = known or {}
    pool = candidate_pool(surrogate, logged, settings, seed)
    mean = surrogate.mean(pool)
    bounds = settings.bounds
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name in known:
            out[name] = np.asarray(known[name], dtype=float)
        elif name == "argmin":
            out[name] = _minimise(surrogate.mean, pool, mean, settings)
        elif name == "top-k":
            top = pool[np.argsort(mean)[: settings.top_k]]
            out[name] = bounds.repair(top.mean(axis=0))[0]
        elif name == "pessimistic":
            out[name] = pessimistic_argmin(surrogate, pool, mean, settings)
        elif name == "kl":
            out[name] = kl_argmin(surrogate, pool, mean, settings)
        elif name == "trust-region":
            out[name] = trust_region_argmin(surrogate, logged, pool, mean, settings, seed)
        else:
            raise MixsurrogateError(
                f"unknown recommender {name!r}; choose from auto, {', '.join(RECOMMENDERS)}"
            )
    return out


def pessimistic_argmin(
    surrogate: Surrogate, pool: np.ndarray, pool_mean: np.ndarray, settings: RecommenderSettings
) -> np.ndarray:
    """The minimiser of ``mean + kappa x std``: where the surrogate is good *and* sure."""
    if surrogate.std(pool[:1]) is None:
        raise MixsurrogateError(
            "the pessimistic recommender needs a predictor with a posterior std (e.g. gp)"
        )

    def bound(W: np.ndarray) -> np.ndarray:  # noqa: N803
        return surrogate.mean(W) + settings.kappa * surrogate.std(W)

    return _minimise(bound, pool, pool_mean + settings.kappa * surrogate.std(pool), settings)


def kl_argmin(
    surrogate: Surrogate, pool: np.ndarray, pool_mean: np.ndarray, settings: RecommenderSettings
) -> np.ndarray:
    """The minimiser of ``mean + lambda x KL(w || prior)`` (Olmix's pull towards the prior)."""
    prior = np.maximum(settings.prior, _PRIOR_FLOOR)
    penalty = KLPenalty(prior / prior.sum(), settings.kl_lambda)

    def penalised(W: np.ndarray) -> np.ndarray:  # noqa: N803
        return surrogate.mean(W) + penalty(W)

    return _minimise(penalised, pool, pool_mean + penalty(pool), settings)


def trust_region_argmin(
    surrogate: Surrogate,
    logged: np.ndarray,
    pool: np.ndarray,
    pool_mean: np.ndarray,
    settings: RecommenderSettings,
    seed: int,
) -> np.ndarray:
    """The lowest predicted objective within ``trust_radius`` (total variation) of one of the
    ``trust_centres`` best logged runs inside the bounds (best by the surrogate's mean, which
    pools away the luck of a single noisy run); searched over the pool and dense perturbations
    of the centres (the centres themselves are always in)."""
    bounds = settings.bounds
    inside = logged[bounds.contains(logged)]
    if not len(inside):  # no logged run inside the bounds: centre on the prior
        inside = settings.prior[None]
    centres = inside[np.argsort(surrogate.mean(inside))[: settings.trust_centres]]
    rng = np.random.default_rng([seed, len(logged), 11])
    local = np.vstack(
        [centres, local_candidates(centres, 0.3, settings.n_candidates // 2, rng, bounds)]
    )
    region = np.vstack([pool, local])
    values = np.concatenate([pool_mean, surrogate.mean(local)])
    near = total_variation(region, centres).min(axis=1) <= settings.trust_radius + 1e-12
    values = np.where(near, values, np.inf)
    return region[int(np.argmin(values))]
