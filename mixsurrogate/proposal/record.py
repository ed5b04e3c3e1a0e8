"""What a proposal is: the proposed mixtures with what the surrogate predicts for them, and
the logged runs' own objective values and nearest runs they are compared with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import MixsurrogateError
from ..objective import Objective
from ..runs.log import RunsLog
from ..runs.schedule import schedule_row
from .constraints import OutcomeConstraints
from .kl_prior import KLResult

if TYPE_CHECKING:
    from .robust import RobustChoice


@dataclass
class Proposal:
    """Proposed mixtures with what the surrogate predicts for them."""

    mode: str
    domains: list[str]
    mixtures: np.ndarray  # (q, K)
    objective: np.ndarray  # (q,) predicted objective (nan where not predicted)
    objective_std: np.ndarray | None = None
    #: (level, lower, upper, how) of the predicted objective, when it was computed
    objective_interval: tuple[float, np.ndarray, np.ndarray, str] | None = None
    set_losses: dict[str, np.ndarray] = field(default_factory=dict)  # set -> (q,)
    nearest_run: list[tuple[str, float, float]] = field(
        default_factory=list
    )  # id, L2 distance, its objective
    notes: list[str] = field(default_factory=list)
    #: --no-worse-than rows the proposal was held to (their sets are in ``set_losses``)
    constraints: OutcomeConstraints | None = None
    #: the worst-case objective's rows (tolerance 0), when it was the one minimised
    worst_case: OutcomeConstraints | None = None
    #: what to train at full scale now (``search.recommend.Recommendation.to_dict``)
    recommendation: dict | None = None
    #: --prior/--kl: the prior, lambda and each mixture's KL to the prior (``kl_prior``)
    kl: KLResult | None = None
    #: the robust recommendation and every recommender's optimism report (``proposal.robust``)
    robust: RobustChoice | None = None
    #: the fitted surrogate behind the proposal (a ``FittedObjective`` or a search GP), kept
    #: so the robust recommendation does not fit it again; never serialised
    fitted: object = field(default=None, repr=False, compare=False)
    #: ``propose --phases``: each proposal's phase mixtures (q, P, K) and shares (q, P);
    #: ``mixtures`` are then their effective (token-weighted) mixtures
    phase_weights: np.ndarray | None = None
    phase_shares: np.ndarray | None = None

    def schedule_rows(self) -> list[dict[str, float]]:
        """Each proposed schedule as the cells of a runs-log row (``runs.schedule.schedule_row``:
        phase mixtures, shares, the effective ``w:``); empty for mixtures."""
        if self.phase_weights is None:
            return []
        return [
            schedule_row(w, s, self.domains)
            for w, s in zip(self.phase_weights, self.phase_shares, strict=True)
        ]

    def schedule_dicts(self) -> list[list[dict]]:
        """Per proposal, each phase's share and mixture (JSON and tables)."""
        if self.phase_weights is None:
            return []
        return [
            [
                {"phase": p + 1, "share": float(s[p]),
                 "mixture": dict(zip(self.domains, map(float, w[p]), strict=True))}
                for p in range(len(s))
            ]
            for w, s in zip(self.phase_weights, self.phase_shares, strict=True)
        ]  # fmt: skip

    def to_dict(self) -> dict:
        payload = {
            "mode": self.mode,
            "proposals": [
                {
                    "mixture": dict(zip(self.domains, map(float, w), strict=True)),
                    "objective": finite_or_none(self.objective[i]),
                    "objective_std": None
                    if self.objective_std is None
                    else finite_or_none(self.objective_std[i]),
                    "interval": None
                    if self.objective_interval is None
                    else {
                        "level": self.objective_interval[0],
                        "lower": finite_or_none(self.objective_interval[1][i]),
                        "upper": finite_or_none(self.objective_interval[2][i]),
                        "method": self.objective_interval[3],
                    },
                    "losses": {s: finite_or_none(v[i]) for s, v in self.set_losses.items()},
                    "nearest_run": None
                    if not self.nearest_run
                    else {
                        "run_id": self.nearest_run[i][0],
                        "distance": self.nearest_run[i][1],
                        "objective": finite_or_none(self.nearest_run[i][2]),
                    },
                }
                for i, w in enumerate(self.mixtures)
            ],
            "notes": self.notes,
        }
        if self.recommendation is not None:
            payload["recommendation"] = self.recommendation
        if self.kl is not None:
            payload["kl"] = self.kl.to_dict(self.domains)
        if self.robust is not None:
            payload["robust"] = self.robust.to_dict(self.domains)
        for i, row in enumerate(payload["proposals"]):  # keys only when asked: JSON unchanged
            if self.constraints is not None:
                row["constraints"] = self.constraint_report()[i]
            if self.worst_case is not None:
                row["worst_case"] = self.worst_case_report()[i]
            if self.kl is not None:
                row["kl_to_prior"] = float(self.kl.kl[i])
            if self.phase_weights is not None:
                row["schedule"] = self.schedule_dicts()[i]
                row["log_row"] = self.schedule_rows()[i]
        return payload

    def _losses(self, rows: OutcomeConstraints) -> tuple[np.ndarray, list[str]]:
        sets = list(dict.fromkeys(rows.sets))
        return np.column_stack([self.set_losses[s] for s in sets]), sets

    def constraint_report(self) -> list[list[dict]]:
        """Per mixture, each --no-worse-than row: reference, set, losses, excess, holds."""
        return (
            []
            if self.constraints is None
            else self.constraints.report(*self._losses(self.constraints))
        )

    def worst_case_report(self) -> list[dict]:
        """Per mixture: the reference, the worst excess and its set, every set's excess."""
        if self.worst_case is None:
            return []
        losses, sets = self._losses(self.worst_case)
        excess = self.worst_case.excess(losses, sets)
        names = self.worst_case.sets
        return [
            {
                "reference": self.worst_case.references[0],
                "excess": float(e.max()),
                "set": names[int(e.argmax())],
                "excess_by_set": dict(zip(names, map(float, e), strict=True)),
            }
            for e in excess
        ]


def finite_or_none(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def nearest_runs(
    log: RunsLog, W: np.ndarray, objective: Objective
) -> list[tuple[str, float, float]]:  # noqa: N803
    """For each mixture, the closest logged run (Euclidean on weights) and its true objective."""
    logged_obj = (
        objective_values(log, objective)
        if set(objective.sets) <= set(log.targets)
        else np.full(len(log), np.nan)
    )
    dist = np.linalg.norm(log.W[None, :, :] - np.atleast_2d(W)[:, None, :], axis=2)
    best = dist.argmin(axis=1)
    return [(log.run_ids[j], float(dist[i, j]), float(logged_obj[j])) for i, j in enumerate(best)]


def check_objective_sets(log: RunsLog, objective: Objective) -> None:
    """One clear error if the runs log lacks a loss the objective needs."""
    missing = [s for s in objective.sets if s not in log.targets]
    if missing:
        raise MixsurrogateError(
            f"the runs log has no loss for objective set(s): {', '.join(missing)}"
        )


def objective_values(log: RunsLog, objective: Objective) -> np.ndarray:
    """The true objective of every logged run."""
    check_objective_sets(log, objective)
    return objective.combine(np.column_stack([log.loss(s) for s in objective.sets]), objective.sets)
