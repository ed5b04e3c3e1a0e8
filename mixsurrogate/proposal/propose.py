"""Choose mixtures: exploit (minimise the predicted objective), explore (the next runs to train),
and zero-run (minimise the experts' MDE objective when no run is logged yet).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize

from ..errors import MixsurrogateError
from ..evaluation.protocol import FeatureFn, PredictorSpec, feature_sets_of
from ..objective import Objective
from ..predictors.multitarget import MultiTargetPredictor
from ..runs.log import RunsLog
from ..simplex import Bounds
from .constraints import (
    FEASIBILITY_TOLERANCE,
    NoWorseThan,
    OutcomeConstraints,
    bind,
    required_sets,
)
from .kl_prior import KLPenalty, KLResult, KLSetting

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

    def to_dict(self) -> dict:
        payload = {
            "mode": self.mode,
            "proposals": [
                {
                    "mixture": dict(zip(self.domains, map(float, w), strict=True)),
                    "objective": _num(self.objective[i]),
                    "objective_std": None
                    if self.objective_std is None
                    else _num(self.objective_std[i]),
                    "interval": None
                    if self.objective_interval is None
                    else {
                        "level": self.objective_interval[0],
                        "lower": _num(self.objective_interval[1][i]),
                        "upper": _num(self.objective_interval[2][i]),
                        "method": self.objective_interval[3],
                    },
                    "losses": {s: _num(v[i]) for s, v in self.set_losses.items()},
                    "nearest_run": None
                    if not self.nearest_run
                    else {
                        "run_id": self.nearest_run[i][0],
                        "distance": self.nearest_run[i][1],
                        "objective": _num(self.nearest_run[i][2]),
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


def _num(x: float) -> float | None:
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


class FittedObjective:
    """A multi-target surrogate fitted on the objective's sets, seen as f(W) -> objective.

    ``extra_sets`` (e.g. sets a constraint names outside the objective) are fitted too, after
    the objective's; they carry no weight in the objective.
    """

    def __init__(
        self,
        spec: PredictorSpec,
        log: RunsLog,
        objective: Objective,
        feature_fn: FeatureFn | None,
        extra_sets: Sequence[str] = (),
    ):
        check_objective_sets(log, objective)
        self.spec, self.objective, self.feature_fn = spec, objective, feature_fn
        self.sets = objective.sets + [
            s for s in dict.fromkeys(extra_sets) if s not in objective.sets
        ]
        self.model = MultiTargetPredictor(spec.name, spec.params)
        Y = np.column_stack([log.loss(s) for s in self.sets])  # noqa: N806
        self.model.fit(
            log.W, Y, self.sets, log.domains, features=self._features(log.W),
            feature_sets=feature_sets_of(feature_fn),
        )  # fmt: skip
        self.model.require_fitted(self.sets)  # a proposal needs every set of the objective

    def _features(self, W: np.ndarray) -> np.ndarray | None:  # noqa: N803
        if not self.spec.uses_features:
            return None
        if self.feature_fn is None:
            raise MixsurrogateError(
                f"predictor {self.spec.name!r} needs MDE features: pass --scores"
            )
        return self.feature_fn(W)

    def set_losses(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        W = np.atleast_2d(W)  # noqa: N806
        return self.model.predict(W, features=self._features(W))

    def __call__(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.objective.combine(self.set_losses(W), self.sets)

    def std(self, W: np.ndarray) -> np.ndarray | None:  # noqa: N803
        """Posterior std of the objective: with the sets' posterior covariance for a joint
        model (``mtgp``: correlated sets add up), else from per-set stds taken as independent."""
        capabilities = self.spec.capabilities
        W = np.atleast_2d(W)  # noqa: N806
        if capabilities.objective_std:
            weights = {s: self.objective.weights.get(s, 0.0) for s in self.sets}
            return self.model.predict_objective_std(W, weights, features=self._features(W))
        if not capabilities.std:
            return None
        stds = self.model.predict_std(W, features=self._features(W))
        return self.objective.combine_std(stds, self.sets)


def conformal_objective_interval(
    spec: PredictorSpec,
    log: RunsLog,
    objective: Objective,
    feature_fn: FeatureFn | None,
    predicted: np.ndarray,
    level: float = 0.9,
    folds: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, str]:
    """A ``level`` interval of the predicted objective of new runs, by split conformal on the
    objective's cross-validated residuals over the logged runs (refits the predictor ``folds``
    times; the objective's sets are fitted together, so their correlated errors count)."""
    from ..evaluation.protocol import fit_predict
    from ..evaluation.splits import cv_splits
    from ..predictors.intervals import conformal_quantile

    folds = min(folds, len(log))
    truth = objective_values(log, objective)
    residuals = np.full(len(log), np.nan)
    for split in cv_splits(len(log), folds, 1, seed):
        outcome = fit_predict(
            spec, log.subset(split.train), log.W[split.test], objective.sets, feature_fn
        )
        if all(outcome.status[t][0] == "ok" for t in objective.sets):
            est = objective.combine(outcome.pred, objective.sets)
            residuals[split.test] = truth[split.test] - est
    half = conformal_quantile(residuals, level)
    how = f"split conformal over {folds}-fold CV of the {int(np.isfinite(residuals).sum())} logged runs"
    return predicted - half, predicted + half, how


class LossesAt:
    """The set losses and their forward-difference Jacobian at one mixture, remembered: SLSQP
    asks for the objective, its gradient and every constraint at the same point, and one batched
    predictor call of K+1 points answers them all."""

    def __init__(self, set_losses: Callable[[np.ndarray], np.ndarray], k: int, step: float = 1e-6):
        self.set_losses, self.k, self.step = set_losses, k, step
        self._at: np.ndarray | None = None
        self._value: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(losses (S,), Jacobian (S, K)) at ``w``."""
        w = np.asarray(w, dtype=float)
        if self._at is None or not np.array_equal(w, self._at):
            out = np.atleast_2d(self.set_losses(np.vstack([w, w + self.step * np.eye(self.k)])))
            self._at, self._value = w.copy(), (out[0], ((out[1:] - out[0]) / self.step).T)
        return self._value


def _violation(constraints: Sequence[dict], w: np.ndarray) -> float:
    """Total amount by which SLSQP inequality constraints are broken at ``w`` (0 if within
    the feasibility tolerance)."""
    broken = sum(float(np.maximum(-np.atleast_1d(c["fun"](w)), 0.0).sum()) for c in constraints)
    return broken if broken > FEASIBILITY_TOLERANCE else 0.0


def minimise_on_simplex(
    f: Callable[[np.ndarray], np.ndarray],
    bounds: Bounds,
    starts: np.ndarray,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
    max_iter: int = 100,
    constraints: Sequence[dict] = (),
) -> np.ndarray:
    """Multi-start SLSQP on {sum w = 1, lower <= w <= upper}; returns the best point found.

    Without an analytic gradient, forward differences are evaluated as one batch of K+1
    points, which costs one predictor call instead of K+1. ``constraints`` are extra SLSQP
    inequality dicts on w (``{"type": "ineq", "fun": w -> (m,) >= 0, "jac": w -> (m, K)}``);
    with them the best point is the best feasible one, or the least infeasible if none is.
    """
    k = starts.shape[1]
    step = 1e-6

    def value_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        if grad is not None:
            return float(f(w[None])[0]), grad(w)
        batch = np.vstack([w, w + step * np.eye(k)])
        vals = f(batch)
        return float(vals[0]), (vals[1:] - vals[0]) / step

    best_w, best_key = None, (np.inf, np.inf)
    for w0 in starts:
        res = minimize(
            value_and_grad,
            w0,
            jac=True,
            method="SLSQP",
            bounds=list(zip(bounds.lower, bounds.upper, strict=True)),
            constraints=[
                {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)},
                *constraints,
            ],
            options={"maxiter": max_iter, "ftol": 1e-9},
        )
        w = bounds.repair(res.x)[0]
        key = (_violation(constraints, w), float(f(w[None])[0]))
        if key < best_key:
            best_w, best_key = w, key
    return best_w


def minimise_worst_excess(
    losses_at: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    worst: OutcomeConstraints,
    sets: Sequence[str],
    bounds: Bounds,
    starts: np.ndarray,
    max_iter: int = 100,
    constraints: Sequence[dict] = (),
) -> np.ndarray:
    """Multi-start SLSQP for ``min_w max_r L_r(w) - reference_r`` in epigraph form: the max is
    not smooth, so minimise t over (w, t) subject to ``L_r(w) - reference_r <= t`` for every row
    of ``worst`` (a smooth problem SLSQP solves), the simplex and the bounds; ``constraints``
    are extra SLSQP inequality dicts on w. ``losses_at``: w -> (losses in ``sets`` order,
    Jacobian), e.g. a :class:`LossesAt`."""
    k = starts.shape[1]
    lifted = [
        {
            "type": "ineq",
            "fun": lambda z, c=c: c["fun"](z[:-1]),
            "jac": lambda z, c=c: np.hstack(
                [np.atleast_2d(c["jac"](z[:-1])), np.zeros((np.size(c["fun"](z[:-1])), 1))]
            ),
        }
        for c in constraints
    ]
    last = np.r_[np.zeros(k), 1.0]
    system = [
        {
            "type": "eq",
            "fun": lambda z: z[:-1].sum() - 1.0,
            "jac": lambda z: np.r_[np.ones(k), 0.0],
        },
        worst.slsqp_epigraph(losses_at, sets),
        *lifted,
    ]

    def worst_at(w: np.ndarray) -> float:
        return float(worst.worst_excess(losses_at(w)[0][None], sets)[0])

    best_w, best_key = None, (np.inf, np.inf)
    for w0 in starts:
        res = minimize(
            lambda z: (z[-1], last),
            np.r_[w0, worst_at(w0)],
            jac=True,
            method="SLSQP",
            bounds=[*zip(bounds.lower, bounds.upper, strict=True), (None, None)],
            constraints=system,
            options={"maxiter": max_iter, "ftol": 1e-9},
        )
        w = bounds.repair(res.x[:-1])[0]
        key = (_violation(constraints, w), worst_at(w))
        if key < best_key:
            best_w, best_key = w, key
    return best_w


def propose_exploit(
    log: RunsLog,
    spec: PredictorSpec,
    objective: Objective,
    bounds: Bounds | None = None,
    feature_fn: FeatureFn | None = None,
    n_candidates: int = 8192,
    n_starts: int = 3,
    top_k: int = 100,
    seed: int = 0,
    interval_level: float | None = 0.9,
    constraints: Sequence[NoWorseThan] = (),
    worst_case: NoWorseThan | None = None,
    kl: KLSetting | None = None,
) -> Proposal:
    """The mixture minimising the predicted objective inside the bounds, with a
    ``interval_level`` interval of its predicted objective (None: no interval).

    Smooth predictors: the best of a Sobol candidate set (plus the logged runs inside the
    bounds) seeds multi-start SLSQP. Trees are piecewise constant, so gradients say nothing:
    as RegMix does, average the top-k candidates instead.

    ``constraints`` (parsed ``--no-worse-than``) keep every constrained set's predicted loss
    within its tolerance of the same surrogate's prediction at the reference mixture.
    ``worst_case`` (parsed ``--worst-case``: a reference and sets, default the objective's)
    minimises ``max_s L_s(w) - L_s(reference)`` over its sets instead of the objective (whose
    predicted value and interval are still reported); its tolerance is ignored.

    ``kl`` (``--prior``, ``--kl``) minimises ``objective + lambda * KL(w || prior)`` instead
    (Olmix); lambda 0 is the plain proposal, ``auto`` chooses lambda on the logged runs by
    cross-fitting (``kl_prior.choose_lambda``). Not with ``worst_case``.
    """
    bounds = bounds or Bounds.unbounded(len(log.domains))
    if kl is not None and worst_case is not None:
        raise MixsurrogateError(
            "--kl pulls the blended objective to a prior; not with --worst-case"
        )
    constraints = list(constraints)
    worst_rows = [] if worst_case is None else [replace(worst_case, tolerance=0.0)]
    extra = required_sets(constraints + worst_rows)
    f = FittedObjective(spec, log, objective, feature_fn, extra_sets=extra)
    checks = bind(constraints, f.set_losses, f.sets) if constraints else None
    worst = bind(worst_rows, f.set_losses, f.sets) if worst_rows else None
    references = [c.reference.mixture for c in constraints + worst_rows]
    lam, how, grid = None, "", {}
    if kl is not None:
        from .kl_prior import choose_lambda

        if kl.auto:
            lam, grid, how = choose_lambda(
                log, spec, objective, bounds, kl.prior.mixture, feature_fn, seed=seed
            )
        else:
            lam, how = float(kl.lam), "given by --kl"
    penalty = KLPenalty(kl.prior.mixture, lam) if lam else None
    best, notes = best_mixture(
        f,
        bounds,
        log.W[bounds.contains(log.W)],
        checks,
        worst,
        tree=spec.capabilities.tree,
        n_candidates=n_candidates,
        n_starts=n_starts,
        top_k=top_k,
        seed=seed,
        references=references,
        penalty=penalty,
    )
    kl_result = None
    if kl is not None:
        from .kl_prior import kl_divergence

        solver = notes[0] if notes else ""
        if lam == 0:
            solver = "lambda 0: the plain exploit search (" + solver + ")"
        kl_result = KLResult(
            kl.prior, lam, how, solver, kl_divergence(best[None], kl.prior.mixture), grid
        )
    W = best[None]  # noqa: N806
    losses = f.set_losses(W)
    std = f.std(W)
    predicted = f.objective.combine(losses, f.sets)
    interval = None
    if interval_level:
        lo, hi, how = conformal_objective_interval(
            spec, log, objective, feature_fn, predicted, interval_level, seed=seed
        )
        interval = (interval_level, lo, hi, how)
    recommendation = versus_best_observed(log, objective, f, best, float(predicted[0]), interval)
    return Proposal(
        recommendation=recommendation,
        mode="exploit",
        domains=log.domains,
        mixtures=W,
        objective=predicted,
        objective_std=std,
        objective_interval=interval,
        set_losses={s: losses[:, j] for j, s in enumerate(f.sets)},
        nearest_run=nearest_runs(log, W, objective),
        notes=notes,
        constraints=checks,
        worst_case=worst,
        kl=kl_result,
        fitted=f,
    )


def versus_best_observed(
    log: RunsLog,
    objective: Objective,
    f: FittedObjective,
    mixture: np.ndarray,
    predicted: float,
    interval: tuple | None,
) -> dict:
    """The exploit proposal as the recommendation to train at full scale, beside the best
    observed run and what the same surrogate predicts there (the observed best of many noisy
    runs is optimistic; the surrogate pools its neighbours)."""
    values = objective_values(log, objective)  # NaN where a run lacks an objective set
    best = int(np.nanargmin(values))
    there = float(f(log.W[best][None])[0])
    notes = []
    if values[best] < there:
        notes.append(
            f"the best observed run looks {there - values[best]:.4f} better than the surrogate "
            "predicts there (seed noise makes the lowest of many noisy runs optimistic)"
        )
    return {
        "same_as_proposal": True,
        "mixture": dict(zip(log.domains, map(float, mixture), strict=True)),
        "predicted_objective": predicted,
        "interval": None
        if interval is None
        else {"level": interval[0], "lower": float(interval[1][0]), "upper": float(interval[2][0])},
        "best_observed_run": {
            "run_id": log.run_ids[best],
            "observed": float(values[best]),
            "posterior_mean": there,
        },
        "notes": notes,
    }


def best_mixture(
    f: FittedObjective,
    bounds: Bounds,
    extra_candidates: np.ndarray,
    checks: OutcomeConstraints | None = None,
    worst: OutcomeConstraints | None = None,
    *,
    tree: bool = False,
    n_candidates: int = 8192,
    n_starts: int = 3,
    top_k: int = 100,
    seed: int = 0,
    references: Sequence[np.ndarray] = (),
    penalty: KLPenalty | None = None,
) -> tuple[np.ndarray, list[str]]:
    """The exploit mixture of a fitted objective, and notes saying how it was found.

    Minimises the objective, or with ``worst`` the worst excess over its reference; ``checks``
    are rows to hold. Candidates (Sobol points inside the bounds, ``extra_candidates`` such as
    the logged runs, and the ``references`` inside the bounds) are ranked feasible first (least
    total violation), then by what is minimised. The references also start SLSQP, so a
    feasible start exists whenever one lies inside the bounds (it meets its own rows).
    Trees: the mean of the top-k feasible candidates, or the best one when that mean breaks a
    row. With neither ``checks`` nor ``worst`` this is the plain exploit search.

    ``penalty`` (``lambda * KL(w || prior)``) is added to the objective everywhere it is
    ranked or minimised (not with ``worst``); an affine objective without ``checks`` is then
    solved exactly by cvxpy when it is installed (``kl_prior.solve_affine``).
    """
    if penalty is not None and worst is not None:
        raise MixsurrogateError("a KL penalty applies to the blended objective, not --worst-case")
    k = len(bounds.lower)
    constrained = checks is not None or worst is not None
    refs = np.array(references, dtype=float).reshape(-1, k)
    refs = refs[bounds.contains(refs)]
    candidates = np.vstack([bounds.sample(n_candidates, seed=seed), extra_candidates, refs])
    chunks = np.array_split(candidates, max(1, len(candidates) // 4096))
    pen = (lambda W: penalty(W)) if penalty is not None else (lambda W: 0.0)  # noqa: N803
    if not constrained:
        score = np.concatenate([f(c) + pen(c) for c in chunks])
        broken = np.zeros(len(candidates))
        order = np.argsort(score)
    else:
        losses = np.vstack([f.set_losses(c) for c in chunks])
        score = (
            f.objective.combine(losses, f.sets) + pen(candidates)
            if worst is None
            else worst.worst_excess(losses, f.sets)
        )
        broken = np.zeros(len(candidates)) if checks is None else checks.violation(losses, f.sets)
        broken = np.where(broken > FEASIBILITY_TOLERANCE, broken, 0.0)
        order = np.lexsort((score, broken))
    what = "the objective" if worst is None else f"the worst excess over {worst.references[0]}"
    if penalty is not None:
        what = f"the objective + {penalty.lam:g} x KL(w || prior)"
    notes = []
    if tree:
        feasible = order[broken[order] == 0]
        pool = feasible[:top_k] if len(feasible) else order[:1]
        best = bounds.repair(candidates[pool].mean(axis=0))[0]
        notes.append(
            f"tree predictor: mean of the top {len(pool)} of {len(candidates)} candidates "
            + (f"on {what} " if worst is not None or penalty is not None else "")
            + ("meeting the constraints " if checks is not None else "")
            + "(as RegMix)"
        )
        if checks is not None and not checks.satisfied(f.set_losses(best[None]), f.sets)[0]:
            best = candidates[pool[0]]
            notes.append("that mean breaks a constraint, so the best feasible candidate instead")
    elif not constrained and penalty is not None:
        best = _minimise_penalised(f, penalty, bounds, candidates[order[:n_starts]], notes)
    elif not constrained:
        best = minimise_on_simplex(f, bounds, candidates[order[:n_starts]])
        notes.append(f"multi-start SLSQP from the best {n_starts} of {len(candidates)} candidates")
    else:
        losses_at = LossesAt(f.set_losses, k)
        extra = [] if checks is None else [checks.slsqp(losses_at, f.sets)]
        starts = np.vstack([candidates[order[:n_starts]], refs])
        if worst is not None:
            best = minimise_worst_excess(
                losses_at, worst, f.sets, bounds, starts, constraints=extra
            )
            notes.append(
                f"minimised {what} on {len(worst)} set(s) by epigraph SLSQP "
                f"from {len(starts)} starts; the objective shown is the blended one"
            )
        else:
            weights = f.objective.vector(f.sets)

            def value(W: np.ndarray) -> np.ndarray:  # noqa: N803
                out = np.array([weights @ losses_at(W[0])[0]]) if len(W) == 1 else f(W)
                return out + pen(W)

            def gradient(w: np.ndarray) -> np.ndarray:
                g = weights @ losses_at(w)[1]
                return g if penalty is None else g + penalty.grad(w)

            best = minimise_on_simplex(value, bounds, starts, grad=gradient, constraints=extra)
            notes.append(
                f"multi-start SLSQP under the constraints from {len(starts)} starts "
                f"(the best {n_starts} of {len(candidates)} candidates and the references)"
                + (f" on {what}" if penalty is not None else "")
            )
    if checks is not None:
        final = f.set_losses(best[None])
        notes.append(
            f"held to {len(checks)} --no-worse-than row(s); reference losses are the "
            "surrogate's own predictions at the reference mixtures"
        )
        if not checks.satisfied(final, f.sets)[0]:
            notes.append(
                "no mixture found inside the bounds meets every --no-worse-than row "
                f"(predicted); this one breaks them by {checks.violation(final, f.sets)[0]:.4f} "
                "nats in total, the least found"
            )
    return best, notes


def _minimise_penalised(
    f: FittedObjective,
    penalty: KLPenalty,
    bounds: Bounds,
    starts: np.ndarray,
    notes: list[str],
) -> np.ndarray:
    """``min f(w) + lambda KL(w || prior)``: exactly by cvxpy when ``f`` is affine in ``w``
    and cvxpy is installed, otherwise multi-start SLSQP (the notes say which)."""
    from .kl_prior import affine_coefficients, solve_affine

    k = starts.shape[1]
    c = affine_coefficients(f, k)
    if c is not None:
        best = solve_affine(c, penalty.prior, penalty.lam, bounds)
        if best is not None:
            notes.append(
                f"the objective is affine in w: objective + {penalty.lam:g} x KL(w || prior) "
                "solved exactly by cvxpy (convex)"
            )
            return best
    best = minimise_on_simplex(lambda W: f(W) + penalty(W), bounds, starts)  # noqa: N803
    why = (
        " (affine objective, but cvxpy is not installed or failed: pip install cvxpy)"
        if c is not None
        else ""
    )
    notes.append(
        f"multi-start SLSQP on the objective + {penalty.lam:g} x KL(w || prior) from "
        f"{len(starts)} starts{why}"
    )
    return best


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


def propose_zero_run(
    feature_map,
    objective: Objective,
    bounds: Bounds | None = None,
    n_candidates: int = 2048,
    n_starts: int = 4,
    seed: int = 0,
) -> Proposal:
    """With no run logged: minimise the experts' MDE objective directly.

    The MDE loss of a mixture is the loss of the ensemble of experts, an approximation of the
    model trained on that mixture; it needs no proxy run, only the score store.
    ``feature_map`` is an ``MDEFeatureMap`` over the objective's sets (token kind).
    """
    sets = list(feature_map.eval_sets)
    weights = objective.vector(sets)
    bounds = bounds or Bounds.unbounded(len(feature_map.store.experts))

    def f(W: np.ndarray) -> np.ndarray:  # noqa: N803
        return feature_map.transform(W)[:, : len(sets)] @ weights

    def grad(w: np.ndarray) -> np.ndarray:
        _, jac = feature_map.loss_and_grad(w[None])
        return np.einsum("s,sk->k", weights, np.asarray(jac)[0] if np.ndim(jac) == 3 else jac)

    candidates = bounds.sample(n_candidates, seed=seed)
    starts = candidates[np.argsort(f(candidates))[:n_starts]]
    best = minimise_on_simplex(f, bounds, starts, grad=grad)[None]
    losses = feature_map.transform(best)[:, : len(sets)]
    return Proposal(
        mode="zero-run",
        domains=list(feature_map.store.experts),
        mixtures=best,
        objective=losses @ weights,
        set_losses={s: losses[:, j] for j, s in enumerate(sets)},
        notes=[
            "zero-run mode: no runs logged, minimised the MDE (ensemble-of-experts) objective directly; "
            "its values are ensemble losses, not trained-model losses"
        ],
    )
