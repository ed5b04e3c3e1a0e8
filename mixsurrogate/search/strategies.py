"""Search strategies: which mixtures to train next, given the runs so far.

Every strategy starts with the campaign's space-filling design (``initial`` runs, counting
pending ones) and then proposes from a GP of the objective:

- ``sobol`` / ``uniform``: the design forever (the baselines);
- ``exploit``: the minimisers of the posterior mean (no exploration; repeats itself);
- ``qlognei``: batch qLogNEI over a mixed candidate set (global Sobol, sparse mixtures, local
  perturbations of the incumbents), refined around the best candidates;
- ``turbo``: qLogNEI restricted to a trust region around the incumbent (TuRBO), for many
  domains, where a global candidate set is hopelessly sparse. The default
  (``defaults.DEFAULT_STRATEGY``: chosen after seeing the posthoc results, then scored on
  fresh seeds, bench/results/search_defaults.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..simplex import Bounds
from .acquisition import select_batch, top_by_acquisition
from .candidates import dedupe, local_candidates, mixed_candidates
from .defaults import STRATEGIES
from .design import campaign_points, default_initial_size
from .model import FeatureFn, ObjectiveModel
from .trust_region import replay

#: candidates scored per step (global Sobol, sparse, local) and in the refinement round
N_GLOBAL, N_SPARSE, N_LOCAL, N_REFINE = 1024, 512, 1024, 512
LOCAL_LENGTH, REFINE_LENGTH = 0.3, 0.08
#: fewest completed runs a GP is fitted on
MIN_MODEL_RUNS = 3

#: (candidates, model) -> log P(candidate satisfies the outcome constraints)
LogFeasibility = Callable[[np.ndarray, ObjectiveModel], np.ndarray]


@dataclass
class SearchState:
    """What a strategy sees: completed runs with their objective, and runs in flight."""

    W: np.ndarray  # (n, K) completed runs
    y: np.ndarray  # (n,) their objective (lower is better)
    bounds: Bounds
    seed: int = 0
    pending: np.ndarray | None = None  # (m, K) runs in flight
    feature_fn: FeatureFn | None = None
    log_feasibility: LogFeasibility | None = None
    #: a model already fitted on exactly (W, y) with this seed (saves refitting it)
    model: ObjectiveModel | None = None

    @property
    def n_domains(self) -> int:
        return len(self.bounds.lower)

    @property
    def held(self) -> np.ndarray:
        """Logged and pending mixtures: never proposed again."""
        parts = [self.W] + ([] if self.pending is None else [np.atleast_2d(self.pending)])
        return np.vstack(parts) if sum(len(p) for p in parts) else np.empty((0, self.n_domains))

    def rng(self, salt: int) -> np.random.Generator:
        # one stream per (campaign seed, step, purpose): nearby seeds share no draws
        return np.random.default_rng([self.seed, len(self.held), salt])


@dataclass
class Step:
    """One proposal: the mixtures, what the model predicts for them, and how they were chosen."""

    mixtures: np.ndarray
    phase: str  # "design" or "model"
    model: ObjectiveModel | None = None
    acquisition: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Strategy:
    """A strategy's settings; ``propose`` is stateless given the state (replayable)."""

    name: str
    initial: int | None = None  # None: K + 1
    design: str = "sobol"

    def initial_size(self, n_domains: int) -> int:
        return default_initial_size(n_domains) if self.initial is None else self.initial

    def propose(self, state: SearchState, q: int) -> Step:
        start = len(state.held)
        initial = self.initial_size(state.n_domains)
        if start < initial or len(state.W) < MIN_MODEL_RUNS:
            points = campaign_points(state.bounds, start, q, state.seed, self.design)
            return Step(
                points,
                "design",
                notes=[
                    f"space-filling {self.design} design, points {start}-{start + q - 1} of the "
                    f"campaign's sequence (seed {state.seed}; {initial} before the model takes over)"
                ],
            )
        model = state.model or ObjectiveModel(state.W, state.y, state.feature_fn, seed=state.seed)
        return self.model_step(state, q, model)

    def model_step(self, state: SearchState, q: int, model: ObjectiveModel) -> Step:
        raise NotImplementedError


@dataclass
class SpaceFilling(Strategy):
    """The design alone, for ever (Sobol or uniform random)."""

    def initial_size(self, n_domains: int) -> int:
        return 1 << 30


@dataclass
class Exploit(Strategy):
    """The q lowest posterior means (refined locally), no exploration."""

    def model_step(self, state: SearchState, q: int, model: ObjectiveModel) -> Step:
        rng = state.rng(1)
        top = state.W[np.argsort(model.mean(state.W))[:4]]
        candidates = mixed_candidates(
            state.bounds, top, N_GLOBAL, N_SPARSE, N_LOCAL, LOCAL_LENGTH, rng, _seed(rng)
        )
        candidates = dedupe(candidates, state.held)
        order = np.argsort(model.mean(candidates))
        return Step(candidates[order[:q]], "model", model, notes=["lowest posterior means"])


@dataclass
class QLogNEI(Strategy):
    """Batch qLogNEI over a mixed candidate set, refined around its best candidates.

    ``candidates="sobol"`` with ``refine=False`` and ``initial=2(K+1)`` is the earlier
    ``--explore`` (kept as a benchmark baseline).
    """

    candidates: str = "mixed"
    refine: bool = True
    n_sobol: int = 4096

    def candidate_set(self, state: SearchState, model: ObjectiveModel) -> np.ndarray:
        rng = state.rng(2)
        if self.candidates == "sobol":
            return state.bounds.sample(self.n_sobol, seed=_seed(rng))
        top = state.W[np.argsort(model.mean(state.W))[:4]]
        return mixed_candidates(
            state.bounds, top, N_GLOBAL, N_SPARSE, N_LOCAL, LOCAL_LENGTH, rng, _seed(rng)
        )

    def model_step(self, state: SearchState, q: int, model: ObjectiveModel) -> Step:
        candidates = dedupe(self.candidate_set(state, model), state.held)
        notes = [f"qLogNEI over {len(candidates)} {self.candidates} candidates"]
        if self.refine:
            seeds = top_by_acquisition(model, candidates, 16)
            extra = local_candidates(seeds, REFINE_LENGTH, N_REFINE, state.rng(3), state.bounds)
            candidates = np.vstack([candidates, dedupe(extra, state.held)])
            notes.append(f"refined with {len(extra)} perturbations of the 16 best")
        return _select(state, q, model, candidates, notes)


@dataclass
class TuRBO(Strategy):
    """qLogNEI inside a trust region around the incumbent (lowest posterior mean logged; with
    outcome constraints, among the runs that probably satisfy them)."""

    def model_step(self, state: SearchState, q: int, model: ObjectiveModel) -> Step:
        k = state.n_domains
        region = replay(state.y, self.initial_size(k), q, k)
        centre = state.W[int(np.argmin(model.mean(state.W) + _infeasible(state, model)))]
        length = region.length * model.mixture_lengthscales(k)
        rng = state.rng(4)
        candidates = local_candidates(centre, length, N_GLOBAL + N_LOCAL, rng, state.bounds)
        candidates = dedupe(candidates, state.held)
        notes = [
            f"trust region: side {region.length:.3f} (sqrt space), {region.restarts} restart(s), "
            f"{region.successes} success(es) / {region.failures} failure(s) in a row; "
            f"qLogNEI over {len(candidates)} candidates in it"
        ]
        return _select(state, q, model, candidates, notes)


def _infeasible(state: SearchState, model: ObjectiveModel) -> np.ndarray:
    """0 for logged runs that probably satisfy the outcome constraints (P > 0.5), else a
    penalty larger than any spread of posterior means, ordered by feasibility: a trust region
    centred on an infeasible incumbent would search where the constraints fail."""
    if state.log_feasibility is None:
        return np.zeros(len(state.W))
    logged = state.log_feasibility(state.W, model)
    return np.where(logged > np.log(0.5), 0.0, 1e6 * (1.0 - np.exp(logged)))


def _select(state, q, model, candidates, notes) -> Step:
    feasibility, incumbents = None, None
    if state.log_feasibility is not None:
        feasibility = state.log_feasibility(candidates, model)
        logged = state.log_feasibility(state.W, model)
        feasible = logged > np.log(0.5)
        # no logged run is (probably) feasible yet: improve on the most feasible one
        incumbents = state.W[feasible] if feasible.any() else state.W[[int(np.argmax(logged))]]
        notes.append(
            "acquisition times P(no-worse-than constraints hold), improving on the "
            f"{len(incumbents)} logged run(s) that probably satisfy them"
        )
    chosen, values, warned = select_batch(
        model, candidates, q, state.pending, feasibility, state.seed, incumbents
    )
    notes += [f"acquisition warning: {w}" for w in warned]
    return Step(chosen, "model", model, values, notes)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31))


def make_strategy(name: str, n_domains: int, initial: int | None = None) -> Strategy:
    """A strategy by name (``STRATEGIES``); ``initial`` overrides the design's length."""
    if name == "sobol":
        return SpaceFilling("sobol", design="sobol")
    if name == "uniform":
        return SpaceFilling("uniform", design="uniform")
    if name == "exploit":
        return Exploit("exploit", initial)
    if name == "qlognei":
        return QLogNEI("qlognei", initial)
    if name == "qlognei-v1":
        return QLogNEI(
            "qlognei-v1",
            2 * (n_domains + 1) if initial is None else initial,
            candidates="sobol",
            refine=False,
        )
    if name == "turbo":
        return TuRBO("turbo", initial)
    raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
