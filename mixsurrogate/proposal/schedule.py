"""Schedules to propose: the feasible set of a ``propose --phases P`` and its minimiser.

A schedule is ``P`` phase mixtures and the phases' token shares. ``--bounds`` hold for every
phase's mixture (a domain capped at 10% is capped in each phase); ``--max-epochs`` caps the
*effective* mixture (what the whole run sees, ``sum_p s_p w_p``), since repetition counts tokens
over the run, not per phase. ``--phase-share s`` fixes the last phase's share (the others split
``1 - s`` equally); without it every share is free in ``[MIN_SHARE, 1]``.

The minimiser mirrors the mixture one (``optimiser.best_mixture``): the best of Sobol candidates
(each phase's mixture drawn inside the bounds, shares fixed or drawn) and the logged schedules
seeds multi-start SLSQP over every phase's weights (and the free shares), with the simplex of
each phase, the shares' sum and the epoch caps as constraints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from ..errors import MixsurrogateError
from ..runs.inputs import InputSpace
from ..simplex import Bounds

#: the smallest share a free phase may get (a phase of almost no tokens is not a phase)
MIN_SHARE = 0.05
#: a schedule breaking the epoch caps by less than this (in mixture weight) counts as feasible
CAP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ScheduleProblem:
    """Where a schedule may lie: per-phase ``bounds``, epoch ``caps`` on the effective mixture
    (None: none), a fixed last-phase ``share`` (None: free), and the space it is encoded in."""

    space: InputSpace
    bounds: Bounds
    caps: np.ndarray | None = None
    share: float | None = None
    tokens: float | None = None  # the run's training tokens (exposure features only)

    def __post_init__(self) -> None:
        if not self.space.is_schedule:
            raise MixsurrogateError("a schedule proposal needs a schedule input space")
        p = self.space.n_phases
        if self.share is not None and not (0 < self.share < 1):
            raise MixsurrogateError(f"--phase-share {self.share}: must be between 0 and 1")
        if self.share is None and p * MIN_SHARE > 1:
            raise MixsurrogateError(f"{p} phases cannot each have a share >= {MIN_SHARE}")
        if self.caps is not None and self.caps.sum() < 1 - 1e-9:
            raise MixsurrogateError(
                f"--max-epochs caps the effective mixture's weights to a total of "
                f"{self.caps.sum():.3f} < 1: no schedule fits"
            )

    @property
    def n_phases(self) -> int:
        return self.space.n_phases

    @property
    def k(self) -> int:
        return len(self.bounds.lower)

    def fixed_shares(self) -> np.ndarray | None:
        if self.share is None:
            return None
        p = self.n_phases
        return np.r_[np.full(p - 1, (1 - self.share) / (p - 1)), self.share]

    def encode(self, weights: np.ndarray, shares: np.ndarray) -> np.ndarray:
        return self.space.encode(weights, shares, self.tokens)

    def violation(self, weights: np.ndarray, shares: np.ndarray) -> np.ndarray:
        """How far each schedule's effective mixture exceeds the epoch caps (0: within)."""
        if self.caps is None:
            return np.zeros(len(weights))
        effective = np.einsum("np,npk->nk", shares, weights)
        over = np.clip(effective - self.caps[None, :], 0.0, None).sum(axis=1)
        return np.where(over > CAP_TOLERANCE, over, 0.0)

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` schedules: each phase's mixture Sobol inside the bounds, shares fixed or drawn
        uniformly on ``{s >= MIN_SHARE, sum 1}``."""
        p = self.n_phases
        weights = np.stack([self.bounds.sample(n, seed=seed + 101 * q) for q in range(p)], axis=1)
        fixed = self.fixed_shares()
        if fixed is not None:
            return weights, np.tile(fixed, (n, 1))
        rng = np.random.default_rng([seed, n, 22])
        free = rng.dirichlet(np.ones(p), size=n)
        return weights, MIN_SHARE + (1 - p * MIN_SHARE) * free

    # ------------------------------------------------------------- the optimiser's vector

    def pack(self, weights: np.ndarray, shares: np.ndarray) -> np.ndarray:
        """One schedule as SLSQP's vector: every phase's weights, then the free shares."""
        return np.r_[weights.ravel(), [] if self.share is not None else shares]

    def unpack(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(weights P x K, shares P) of SLSQP's vector ``z``."""
        p, k = self.n_phases, self.k
        weights = np.asarray(z[: p * k], float).reshape(p, k)
        fixed = self.fixed_shares()
        return weights, (fixed if fixed is not None else np.asarray(z[p * k :], float))

    def repair(self, z: np.ndarray) -> np.ndarray:
        """``z`` with each phase repaired into the bounds and the shares renormalised."""
        weights, shares = self.unpack(z)
        weights = np.vstack([self.bounds.repair(w)[0] for w in weights])
        shares = np.clip(shares, MIN_SHARE if self.share is None else 0, None)
        return self.pack(weights, shares / shares.sum())

    def slsqp_constraints(self) -> list[dict]:
        p, k = self.n_phases, self.k
        out = []
        for q in range(p):
            grad = np.zeros(len(self.pack(np.zeros((p, k)), np.zeros(p))))
            grad[q * k : (q + 1) * k] = 1.0
            out.append(
                {"type": "eq", "fun": lambda z, g=grad: g @ z - 1.0, "jac": lambda z, g=grad: g}
            )
        if self.share is None:
            grad = np.r_[np.zeros(p * k), np.ones(p)]
            out.append({"type": "eq", "fun": lambda z: grad @ z - 1.0, "jac": lambda z: grad})
        if self.caps is not None:
            out.append({"type": "ineq", "fun": self._cap_slack})
        return out

    def _cap_slack(self, z: np.ndarray) -> np.ndarray:
        weights, shares = self.unpack(z)
        return self.caps - shares @ weights

    def slsqp_bounds(self) -> list[tuple[float, float]]:
        per_phase = list(zip(self.bounds.lower, self.bounds.upper, strict=True))
        shares = [] if self.share is not None else [(MIN_SHARE, 1.0)] * self.n_phases
        return per_phase * self.n_phases + shares


Objective = Callable[[np.ndarray], np.ndarray]


def best_schedule(
    f: Objective,
    problem: ScheduleProblem,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    n_candidates: int = 2048,
    n_starts: int = 3,
    seed: int = 0,
    tree: bool = False,
    top_k: int = 100,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(weights P x K, shares P, notes) of the schedule minimising ``f`` (a function of the
    space's inputs ``X``) in ``problem``; ``extra``: more candidates (the logged schedules).
    Trees (piecewise constant): the mean of the top-k feasible candidates, as RegMix."""
    weights, shares = problem.sample(n_candidates, seed)
    if extra is not None and len(extra[0]):
        keep = np.all([problem.bounds.contains(extra[0][:, q]) for q in range(problem.n_phases)],
                      axis=0)  # fmt: skip
        fixed = problem.fixed_shares()
        if fixed is not None:
            keep &= np.abs(extra[1] - fixed).max(axis=1) < 1e-6
        weights = np.vstack([weights, extra[0][keep]])
        shares = np.vstack([shares, extra[1][keep]])
    broken = problem.violation(weights, shares)
    score = f(problem.encode(weights, shares))
    order = np.lexsort((score, broken))
    if tree:
        pool = order[broken[order] == 0][:top_k]
        pool = pool if len(pool) else order[:1]
        z = problem.repair(problem.pack(weights[pool].mean(axis=0), shares[pool].mean(axis=0)))
        best_w, best_s = problem.unpack(z)
        note = f"tree predictor: mean of the top {len(pool)} of {len(score)} candidate schedules"
        return best_w, best_s, [note + " (as RegMix)"]

    def value(z: np.ndarray) -> float:
        w, s = problem.unpack(z)
        return float(f(problem.encode(w[None], s[None]))[0])

    def value_and_grad(z: np.ndarray, step: float = 1e-6) -> tuple[float, np.ndarray]:
        batch = np.vstack([z, z + step * np.eye(len(z))])
        unpacked = [problem.unpack(row) for row in batch]
        vals = f(problem.encode(np.stack([u[0] for u in unpacked]),
                                np.stack([u[1] for u in unpacked])))  # fmt: skip
        return float(vals[0]), (vals[1:] - vals[0]) / step

    best, best_key = None, (np.inf, np.inf)
    for i in order[:n_starts]:
        res = minimize(
            value_and_grad, problem.pack(weights[i], shares[i]), jac=True, method="SLSQP",
            bounds=problem.slsqp_bounds(), constraints=problem.slsqp_constraints(),
            options={"maxiter": 100, "ftol": 1e-9},
        )  # fmt: skip
        z = problem.repair(res.x)
        w, s = problem.unpack(z)
        key = (float(problem.violation(w[None], s[None])[0]), value(z))
        if key < best_key:
            best, best_key = z, key
    best_w, best_s = problem.unpack(best)
    notes = [
        f"multi-start SLSQP over {problem.n_phases} phase mixtures"
        + (" and their shares" if problem.share is None else "")
        + f" from the best {n_starts} of {len(score)} candidate schedules"
    ]
    if best_key[0] > 0:
        notes.append(
            f"no schedule found meets the --max-epochs caps; this one exceeds them by "
            f"{best_key[0]:.4f} in total weight, the least found"
        )
    return best_w, best_s, notes


def explore_schedules(
    mean: Objective,
    std: Objective | None,
    problem: ScheduleProblem,
    n: int,
    avoid: np.ndarray,
    *,
    n_candidates: int = 2048,
    seed: int = 0,
    beta: float = 2.0,
    min_distance: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n`` schedules to train next: the lowest ``mean - beta * std`` (a lower confidence
    bound; the mean alone without a std) among Sobol candidates within the caps, taken greedily
    so that no two, and none and a logged or pending schedule (``avoid``, inputs ``X``), are
    closer than ``min_distance`` (mean absolute difference of their inputs)."""
    weights, shares = problem.sample(n_candidates, seed)
    ok = problem.violation(weights, shares) == 0
    if not ok.any():
        raise MixsurrogateError("no candidate schedule meets the --max-epochs caps")
    weights, shares = weights[ok], shares[ok]
    X = problem.encode(weights, shares)  # noqa: N806
    spread = np.zeros(len(X)) if std is None else std(X)
    score = mean(X) - beta * spread
    taken: list[int] = []
    seen = np.asarray(avoid, float).reshape(-1, X.shape[1])
    for i in np.argsort(score):
        near = np.abs(seen - X[i]).mean(axis=1) < min_distance if len(seen) else np.array([])
        if near.any():
            continue
        taken.append(int(i))
        seen = np.vstack([seen, X[i]])
        if len(taken) == n:
            break
    how = "lower confidence bound mean - 2 std" if std is not None else "predicted objective"
    notes = [
        f"explore: the {len(taken)} best of {len(X)} Sobol candidate schedules by {how}, "
        f"each at least {min_distance} (mean absolute input difference) from the others and "
        "the logged and pending runs"
    ]
    if len(taken) < n:
        notes.append(f"only {len(taken)} schedules are far enough apart; asked for {n}")
    return weights[taken], shares[taken], notes
