"""The noise-aware recommendation: the mixture to train at full scale now.

The best observed run is optimistically biased: among many noisy runs, the lowest loss is
partly luck (the original trial of a repeated mixture is usually its best). The GP's posterior
mean pools the neighbouring runs and shrinks that luck away, so the recommendation is the
minimiser of the posterior mean over the logged runs and fresh candidates (``argmin``) or the
mean of the top-k candidates by posterior mean (``top-k``, the default: see ``defaults``), with
the predicted objective of a new run and its interval, beside what the best observed run claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..objective import Objective
from ..predictors.multitarget import MultiTargetPredictor
from ..proposal.optimiser import best_mixture, minimise_on_simplex
from ..runs.log import LOSS_PREFIX, WEIGHT_PREFIX, RunsLog
from ..simplex import Bounds
from .candidates import local_candidates, sparse_candidates
from .defaults import DEFAULT_RECOMMEND, RECOMMEND_METHODS
from .model import ObjectiveModel

N_CANDIDATES = 2048
N_STARTS = 3
#: ``top-k``: how many of the best candidates by posterior mean are averaged
TOP_K = 100


@dataclass
class Recommendation:
    """What to train at full scale, and how it compares with the best observed run."""

    mixture: np.ndarray
    predicted: float
    level: float
    lower: float
    upper: float
    best_observed: int  # index into the model's runs
    best_observed_value: float
    best_observed_predicted: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self, domains: list[str], run_ids: list[str] | None = None) -> dict:
        best = self.best_observed
        return {
            "mixture": dict(zip(domains, map(float, self.mixture), strict=True)),
            "predicted_objective": self.predicted,
            "interval": {"level": self.level, "lower": self.lower, "upper": self.upper},
            "best_observed_run": {
                "run_id": run_ids[best] if run_ids else best,
                "observed": self.best_observed_value,
                "posterior_mean": self.best_observed_predicted,
            },
            "notes": self.notes,
        }


def recommend(
    model: ObjectiveModel,
    bounds: Bounds,
    seed: int = 0,
    level: float = 0.9,
    n_candidates: int = N_CANDIDATES,
    method: str = DEFAULT_RECOMMEND,
) -> Recommendation:
    """The mixture to train at scale from the posterior mean over logged runs (inside
    ``bounds``) and candidates.

    ``method="top-k"`` (the default; a variant added after the first closed-loop results, see
    bench/results/search.md, and made the default after the posthoc and defaults suites)
    recommends the mean of the ``TOP_K`` best candidates by posterior mean, as RegMix does with
    its trees: with few runs in many dimensions the argmin sits where the GP extrapolates, and
    averaging the good region shrinks toward it. ``method="argmin"`` minimises the posterior
    mean (refined by SLSQP).
    """
    if method not in RECOMMEND_METHODS:
        raise ValueError(
            f"unknown recommendation {method!r}; choose from {', '.join(RECOMMEND_METHODS)}"
        )
    rng = np.random.default_rng([seed, len(model.W), 7])
    logged_mean = model.mean(model.W)
    inside = model.W[bounds.contains(model.W)]
    top = model.W[np.argsort(logged_mean)[:5]]
    candidates = np.vstack(
        [
            inside,
            bounds.sample(n_candidates, seed=int(rng.integers(2**31))),
            sparse_candidates(bounds, n_candidates // 4, rng),
            local_candidates(top, 0.2, n_candidates // 2, rng, bounds),
        ]
    )
    values = model.mean(candidates)
    if method == "top-k":
        best = bounds.repair(candidates[np.argsort(values)[:TOP_K]].mean(axis=0))[0]
    else:
        best = minimise_on_simplex(model.mean, bounds, candidates[np.argsort(values)[:N_STARTS]])
        if model.mean(best[None])[0] > values.min():
            best = candidates[int(values.argmin())]
    lo, hi = model.interval(best[None], level)
    observed = int(np.argmin(model.y))
    predicted = float(model.mean(best[None])[0])
    how = (
        f"mean of the {TOP_K} lowest GP posterior means among"
        if method == "top-k"
        else "minimiser of the GP posterior mean over"
    )
    notes = [
        f"{how} {len(inside)} logged runs and {len(candidates) - len(inside)} candidates"
        + (", refined by SLSQP" if method == "argmin" else "")
    ]
    optimism = model.y[observed] - logged_mean[observed]
    if optimism < 0:
        notes.append(
            f"the best observed run looks {-optimism:.4f} better than the model believes "
            "(seed noise makes the lowest of many noisy runs optimistic)"
        )
    return Recommendation(
        mixture=best,
        predicted=predicted,
        level=level,
        lower=float(lo[0]),
        upper=float(hi[0]),
        best_observed=observed,
        best_observed_value=float(model.y[observed]),
        best_observed_predicted=float(logged_mean[observed]),
        notes=notes,
    )


class FittedTrees:
    """LightGBM fitted on one objective column, seen as the exploit search's surrogate."""

    def __init__(self, log: RunsLog, objective: Objective):
        self.objective, self.sets = objective, list(objective.sets)
        self.model = MultiTargetPredictor("lgbm")
        Y = np.column_stack([log.loss(s) for s in self.sets])  # noqa: N806
        self.model.fit(log.W, Y, self.sets, log.domains)
        self.model.require_fitted(self.sets)

    def set_losses(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.model.predict(np.atleast_2d(W))

    def __call__(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.objective.combine(self.set_losses(W), self.sets)


def lgbm_top_k(
    W: np.ndarray,  # noqa: N803
    y: np.ndarray,
    bounds: Bounds,
    seed: int = 0,
) -> np.ndarray:
    """RegMix's recipe: LightGBM on the runs, the mean of its top-k candidates (as
    ``propose`` does for tree predictors)."""
    k = W.shape[1]
    domains = [f"d{j}" for j in range(k)]
    frame = pd.DataFrame(W, columns=[f"{WEIGHT_PREFIX}{d}" for d in domains])
    frame.insert(0, "run_id", [f"r{i}" for i in range(len(W))])
    frame[f"{LOSS_PREFIX}objective"] = y
    log = RunsLog(frame)
    f = FittedTrees(log, Objective({"objective": 1.0}))
    best, _ = best_mixture(f, bounds, log.W[bounds.contains(log.W)], tree=True, seed=seed)
    return best
