"""``--kl auto``: lambda of the KL-regularised proposal (``kl_prior``) by cross-fitting on the
logged runs only: split the runs in two halves, propose with a surrogate fitted on one half and
judge that proposal by a surrogate fitted on the other (whose errors are independent of the
proposer's, so a proposal that exploits the proposer's errors is not rewarded), both
directions, over a few random halvings; the lambda with the best mean judged objective wins
(ties: the larger lambda).
"""

from __future__ import annotations

import numpy as np

from ..errors import MixsurrogateError
from .kl_prior import KLPenalty
from .optimiser import best_mixture
from .surrogate import TREE_PREDICTORS, FittedObjective

#: the lambdas ``--kl auto`` chooses from (nats of objective per nat of KL)
KL_GRID = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
#: random halvings of the runs ``--kl auto`` averages over (each judged both ways)
AUTO_REPEATS = 3


def choose_lambda(
    log,
    spec,
    objective,
    bounds,
    prior: np.ndarray,
    feature_fn=None,
    grid: tuple[float, ...] = KL_GRID,
    repeats: int = AUTO_REPEATS,
    seed: int = 0,
    n_candidates: int = 2048,
) -> tuple[float, dict[float, float], str]:
    """``--kl auto``: lambda by cross-fitting on ``log``'s runs only (see the module doc).

    For each of ``repeats`` random halvings (A, B) of the runs, and both ways round, the
    proposal of every lambda under a surrogate fitted on A is scored by a surrogate fitted
    on B. Returns (lambda, {lambda: mean judged objective}, how)."""
    done = log.completed() if hasattr(log, "completed") else log
    n = len(done)
    if n < 8:
        raise MixsurrogateError(
            f"--kl auto needs at least 8 completed runs (it fits on halves); the log has {n}"
        )
    totals = {lam: [] for lam in grid}
    rng = np.random.default_rng(seed)
    for _ in range(repeats):
        order = rng.permutation(n)
        halves = (np.sort(order[: n // 2]), np.sort(order[n // 2 :]))
        fitted = []
        for rows in halves:
            part = done.subset(rows)
            try:
                fitted.append((part, FittedObjective(spec, part, objective, feature_fn)))
            except MixsurrogateError as err:
                raise MixsurrogateError(
                    f"--kl auto fits {spec.name} on half the runs ({len(rows)}) and could not: {err}"
                ) from err
        for (part, proposer), (_, judge) in (
            (fitted[0], fitted[1]),
            (fitted[1], fitted[0]),
        ):
            for lam in grid:
                best, _ = best_mixture(
                    proposer, bounds, part.W[bounds.contains(part.W)],
                    tree=spec.name in TREE_PREDICTORS, n_candidates=n_candidates,
                    n_starts=2, seed=seed, penalty=KLPenalty(prior, lam) if lam > 0 else None,
                )  # fmt: skip
                totals[lam].append(float(judge(best[None])[0]))
    scores = {lam: float(np.mean(v)) for lam, v in totals.items()}
    best_score = min(scores.values())
    chosen = max(lam for lam, v in scores.items() if v <= best_score + 1e-12)
    how = (
        f"auto: best of {len(grid)} lambdas by cross-fitting on the {n} logged runs "
        f"({repeats} random halvings, each half's proposal judged by a surrogate fitted on the "
        "other half)"
    )
    return chosen, scores, how
