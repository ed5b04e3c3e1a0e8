"""Closed-loop search against an oracle: what a campaign of ``budget`` runs would recommend.

Each step asks a strategy for ``q`` mixtures, "trains" them (the oracle's noisy observation),
and at checkpoints scores each recommender by its *regret*: the true objective of the mixture
it recommends minus the oracle's minimum. Regret of the recommendation, not of the best
observed run, is what a user pays for: the best observed run is optimistically biased by noise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..simplex import Bounds
from .model import ObjectiveModel
from .oracle import Oracle
from .recommend import lgbm_top_k, recommend
from .strategies import SearchState, Strategy

#: recommenders from the GP of the objective -> their ``recommend`` method
GP_RECOMMENDERS = {"posterior-mean": "argmin", "gp-top-k": "top-k"}
RECOMMENDERS = (*GP_RECOMMENDERS, "best-observed", "lgbm-top-k")
NEAR_DUPLICATE = 0.01


@dataclass
class Campaign:
    """One simulated campaign: regret per recommender at each checkpoint."""

    oracle: str
    strategy: str
    seed: int
    checkpoints: list[int]
    regret: dict[str, list[float]]
    near_duplicates: float  # share of runs within NEAR_DUPLICATE (L2) of an earlier one
    proposal_seconds: list[float] = field(default_factory=list)
    #: the runs trained and what they observed (to score other recommenders later)
    W: np.ndarray | None = None
    y: np.ndarray | None = None

    def to_dict(self) -> dict:
        return {
            "oracle": self.oracle,
            "strategy": self.strategy,
            "seed": self.seed,
            "checkpoints": self.checkpoints,
            "regret": self.regret,
            "near_duplicates": self.near_duplicates,
            "median_proposal_seconds": float(np.median(self.proposal_seconds))
            if self.proposal_seconds
            else None,
            "W": None if self.W is None else np.round(self.W, 6).tolist(),
            "y": None if self.y is None else np.round(self.y, 6).tolist(),
        }


def near_duplicate_share(W: np.ndarray, radius: float = NEAR_DUPLICATE) -> float:  # noqa: N803
    if len(W) < 2:
        return 0.0
    dist = np.linalg.norm(W[:, None, :] - W[None, :, :], axis=2)
    earlier = np.tril(dist < radius, k=-1).any(axis=1)
    return float(earlier.mean())


def run_campaign(
    oracle: Oracle,
    strategy: Strategy,
    optimum: float,
    budget: int = 64,
    q: int = 4,
    seed: int = 0,
    checkpoints: list[int] | None = None,
    recommenders: tuple[str, ...] = ("posterior-mean",),
    bounds: Bounds | None = None,
) -> Campaign:
    """Simulate one campaign; ``optimum`` is the oracle's minimum (``global_minimum``)."""
    k = len(oracle.domains)
    bounds = bounds or Bounds.unbounded(k)
    checkpoints = sorted(set(checkpoints or [budget]))
    noise = np.random.default_rng([seed, 99])
    W, y = np.empty((0, k)), np.empty(0)  # noqa: N806
    regret: dict[str, list[float]] = {r: [] for r in recommenders}
    seconds = []
    model = None  # the GP recommenders' model at the last checkpoint
    while len(W) < budget:
        fitted = model if model is not None and len(model.W) == len(W) else None
        state = SearchState(W, y, bounds, seed=seed, model=fitted)  # reused: same runs, seed
        start = time.perf_counter()
        step = strategy.propose(state, min(q, budget - len(W)))
        if step.phase == "model":
            seconds.append(time.perf_counter() - start)
        W = np.vstack([W, step.mixtures])  # noqa: N806
        y = np.concatenate([y, oracle.observe(step.mixtures, noise)])
        for point in [c for c in checkpoints if len(W) - len(step.mixtures) < c <= len(W)]:
            Wc, yc = W[:point], y[:point]  # noqa: N806
            uses_gp = any(name in GP_RECOMMENDERS for name in recommenders)
            model = ObjectiveModel(Wc, yc, seed=seed) if uses_gp else None
            for name in recommenders:
                mixture = recommendation(name, Wc, yc, bounds, seed, model)
                regret[name].append(float(oracle.mean(mixture[None])[0] - optimum))
    return Campaign(
        oracle.name, strategy.name, seed, checkpoints, regret, near_duplicate_share(W), seconds,
        W, y,
    )  # fmt: skip


def recommendation(
    name: str,
    W: np.ndarray,  # noqa: N803
    y: np.ndarray,
    bounds: Bounds,
    seed: int,
    model: ObjectiveModel | None = None,
) -> np.ndarray:
    """The mixture recommender ``name`` would train at full scale after these runs
    (``model``: a GP already fitted on exactly these runs with ``seed``)."""
    if name == "best-observed":
        return W[int(np.argmin(y))]
    if name in GP_RECOMMENDERS:
        model = model or ObjectiveModel(W, y, seed=seed)
        return recommend(model, bounds, seed=seed, method=GP_RECOMMENDERS[name]).mixture
    if name == "lgbm-top-k":
        return lgbm_top_k(W, y, bounds, seed=seed)
    raise ValueError(f"unknown recommender {name!r}; choose from {', '.join(RECOMMENDERS)}")
