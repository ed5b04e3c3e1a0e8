"""Minimisers on the (bounded) simplex: multi-start SLSQP, the worst excess in epigraph
form, the KL-penalised objective (exactly by cvxpy when affine), and the exploit search that
seeds them from candidates (``best_mixture``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from scipy.optimize import minimize

from ..errors import MixsurrogateError
from ..objective import Objective
from ..simplex import Bounds
from .constraints import FEASIBILITY_TOLERANCE, OutcomeConstraints
from .kl_prior import KLPenalty, affine_coefficients, solve_affine


class SurrogateObjective(Protocol):
    """What the exploit search needs of a fitted surrogate (e.g. ``surrogate.FittedObjective``):
    the objective of a batch of mixtures and, under constraints, each set's loss."""

    objective: Objective
    sets: list[str]

    def __call__(self, W: np.ndarray) -> np.ndarray: ...  # noqa: N803

    def set_losses(self, W: np.ndarray) -> np.ndarray: ...  # noqa: N803


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


def best_mixture(
    f: SurrogateObjective,
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
        best = minimise_penalised(f, penalty, bounds, candidates[order[:n_starts]], notes)
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


def minimise_penalised(
    f: SurrogateObjective,
    penalty: KLPenalty,
    bounds: Bounds,
    starts: np.ndarray,
    notes: list[str],
) -> np.ndarray:
    """``min f(w) + lambda KL(w || prior)``: exactly by cvxpy when ``f`` is affine in ``w``
    and cvxpy is installed, otherwise multi-start SLSQP (the notes say which)."""
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
