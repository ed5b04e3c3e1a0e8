"""A search step on a real runs log: the next runs to train, and what to train at scale now.

Rows of the log are split two ways for the objective: runs with every objective set (the
model's data), and runs in flight or not yet evaluated on every objective set (pending: never
proposed again, and in batch acquisition as ``X_pending``). An empty
log (or none, with the domains given) starts the campaign's space-filling design.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MixsurrogateError
from ..objective import Objective
from ..predictors.multitarget import MultiTargetPredictor
from ..proposal.constraints import bind, required_sets
from ..proposal.record import Proposal, check_objective_sets, nearest_runs
from ..runs.log import RunsLog
from ..simplex import Bounds
from .defaults import DEFAULT_RECOMMEND, DEFAULT_STRATEGY
from .model import FeatureFn
from .recommend import Recommendation, recommend
from .strategies import LogFeasibility, SearchState, make_strategy


@dataclass
class CampaignData:
    """The log as the objective sees it."""

    domains: list[str]
    W: np.ndarray  # runs with every objective set
    y: np.ndarray
    run_ids: list[str]
    pending: np.ndarray  # in flight, or missing an objective set

    @classmethod
    def from_log(cls, log: RunsLog | None, objective: Objective, domains: list[str] | None = None):
        if log is None:
            if not domains:
                raise MixsurrogateError("an empty campaign needs its domains (--domains a,b,c)")
            k = len(domains)
            return cls(list(domains), np.empty((0, k)), np.empty(0), [], np.empty((0, k)))
        check_objective_sets(log, objective)
        losses = np.column_stack([log.loss(s) for s in objective.sets])
        complete = np.isfinite(losses).all(axis=1)
        y = objective.combine(losses[complete], objective.sets)
        ids = [r for r, ok in zip(log.run_ids, complete, strict=True) if ok]
        return cls(log.domains, log.W[complete], y, ids, log.W[~complete])


def constraint_feasibility(
    log: RunsLog, constraints: list, seed: int = 0
) -> tuple[LogFeasibility, list[str]]:
    """``--no-worse-than`` as outcome constraints of the acquisition: per-set GPs (fitted on
    the runs that have each set) give every candidate's predictive mean and std, and the
    acquisition adds log P(every constrained set within its limit). The references' losses are
    these GPs' predictions at the reference mixtures (see ``constraints``)."""
    completed = log.completed()
    sets = required_sets(constraints)
    model = MultiTargetPredictor("gp", {"seed": seed})
    model.fit(
        completed.W, np.column_stack([completed.loss(s) for s in sets]), sets, completed.domains
    )
    model.require_fitted(sets)
    rows = bind(constraints, model.predict, sets)

    def log_feasibility(candidates: np.ndarray, _objective_model) -> np.ndarray:
        return rows.log_probability_feasible(
            model.predict(candidates), model.predict_std(candidates), sets
        )

    notes = [
        f"outcome constraint: {rows.sets[r]} <= {rows.limit[r]:.4f} ({rows.references[r]}'s "
        f"predicted {rows.reference_loss[r]:.4f} + {rows.tolerance[r]:g})"
        for r in range(len(rows))
    ]
    return log_feasibility, notes


def propose_next_runs(
    data: CampaignData,
    objective: Objective,
    q: int = 4,
    bounds: Bounds | None = None,
    strategy: str = DEFAULT_STRATEGY,
    initial: int | None = None,
    feature_fn: FeatureFn | None = None,
    seed: int = 0,
    log_feasibility: LogFeasibility | None = None,
    log: RunsLog | None = None,
    interval_level: float = 0.9,
    recommend_method: str = DEFAULT_RECOMMEND,
) -> tuple[Proposal, Recommendation | None]:
    """The next ``q`` runs by ``strategy``, and (once a model is fitted) the recommendation,
    also in the proposal's ``recommendation`` (run ids of the runs with every objective set)."""
    if q < 1:  # nothing proposed would look like a finished search
        raise MixsurrogateError(f"-n (runs to propose) must be >= 1, got {q}")
    k = len(data.domains)
    bounds = bounds or Bounds.unbounded(k)
    chosen = make_strategy(strategy, k, initial)
    state = SearchState(
        data.W, data.y, bounds, seed, data.pending, feature_fn, log_feasibility
    )  # fmt: skip
    step = chosen.propose(state, q)
    notes = list(step.notes)
    if len(data.pending):
        notes.append(f"{len(data.pending)} run(s) in flight or not evaluated on every objective set: "
                     "not proposed again" + (", pending in the acquisition" if step.phase == "model" else ""))  # fmt: skip
    recommendation = None
    mean = std = np.full(len(step.mixtures), np.nan)
    if step.model is not None:
        notes += [f"GP fit: {n}" for n in step.model.notes]
        mean, std = step.model.mean(step.mixtures), step.model.std(step.mixtures)
        recommendation = recommend(
            step.model, bounds, seed=seed, level=interval_level, method=recommend_method
        )
    proposal = Proposal(
        mode=f"explore ({chosen.name})",
        domains=data.domains,
        mixtures=step.mixtures,
        objective=mean,
        objective_std=None if step.model is None else std,
        nearest_run=[] if log is None or not len(data.W) else nearest_runs(log, step.mixtures, objective),
        notes=notes,
        recommendation=None if recommendation is None else recommendation.to_dict(data.domains, data.run_ids),
        fitted=step.model,
    )  # fmt: skip
    return proposal, recommendation
