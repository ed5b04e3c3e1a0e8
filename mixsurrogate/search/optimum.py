"""The global minimum of a known function on the simplex (an oracle's optimum, for regret)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..proposal.optimiser import minimise_on_simplex
from ..simplex import Bounds, vertices_and_uniform
from .candidates import sparse_candidates


def global_minimum(
    f: Callable[[np.ndarray], np.ndarray],
    bounds: Bounds,
    n_candidates: int = 1 << 15,
    n_starts: int = 8,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """Dense search then multi-start SLSQP: the best of Sobol points, vertices, sparse and
    uniform mixtures seeds the local optimiser (every start is kept if it improves)."""
    k = len(bounds.lower)
    rng = np.random.default_rng(seed)
    grid = np.vstack(
        [
            bounds.sample(n_candidates, seed=seed),
            sparse_candidates(bounds, n_candidates // 4, rng),
            bounds.repair(vertices_and_uniform(k)),
        ]
    )
    values = np.concatenate([f(chunk) for chunk in np.array_split(grid, max(1, len(grid) // 4096))])
    starts = grid[np.argsort(values)[:n_starts]]
    best = minimise_on_simplex(f, bounds, starts, max_iter=200)
    value = float(f(best[None])[0])
    if value > values.min():  # SLSQP never made it worse than its best start, but be safe
        best, value = grid[int(values.argmin())], float(values.min())
    return best, value
