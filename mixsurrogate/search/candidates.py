"""Candidate mixtures for a discrete acquisition search on the simplex.

A fixed Sobol set covers the simplex's interior but almost never proposes a sparse mixture
(a few domains only), and at 17 domains it is too coarse near the incumbent. So the set mixes:
global Sobol points, sparse mixtures (Sobol on a random support), and local perturbations of
the incumbents in the Hellinger (sqrt) geometry the GP's kernel uses.
"""

from __future__ import annotations

import numpy as np

from ..simplex import Bounds

DEDUP_DISTANCE = 1e-3


def sparse_candidates(bounds: Bounds, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` mixtures on random supports of 1 .. K/2 domains (respecting ``bounds``)."""
    k = len(bounds.lower)
    if n <= 0 or k < 2:
        return np.empty((0, k))
    sizes = rng.integers(1, max(2, k // 2) + 1, size=n)
    W = np.zeros((n, k))  # noqa: N806
    for i, size in enumerate(sizes):
        support = rng.choice(k, size=size, replace=False)
        W[i, support] = rng.dirichlet(np.ones(size))
    return bounds.repair(W)


def local_candidates(
    centres: np.ndarray,
    length: float | np.ndarray,
    n: int,
    rng: np.random.Generator,
    bounds: Bounds,
    perturb_probability: float | None = None,
) -> np.ndarray:
    """``n`` perturbations of ``centres`` inside a box of side ``length`` in sqrt space.

    As TuRBO does, each candidate moves only a random subset of coordinates (probability
    ``min(1, 20 / K)`` each) when K is large, which keeps candidates near the centre along
    most axes. ``length`` may be per coordinate (lengthscale-weighted trust regions).
    """
    centres = np.atleast_2d(centres)
    k = centres.shape[1]
    if n <= 0:
        return np.empty((0, k))
    p = min(1.0, 20.0 / k) if perturb_probability is None else perturb_probability
    root = np.sqrt(centres[rng.integers(len(centres), size=n)])
    mask = rng.random((n, k)) < p
    mask[np.arange(n), rng.integers(k, size=n)] = True  # move at least one coordinate
    step = (rng.random((n, k)) - 0.5) * np.broadcast_to(length, (k,))
    moved = np.clip(root + mask * step, 0.0, None) ** 2
    moved[moved.sum(axis=1) == 0] = 1.0 / k
    return bounds.repair(moved / moved.sum(axis=1, keepdims=True))


def dedupe(
    candidates: np.ndarray, logged: np.ndarray, radius: float = DEDUP_DISTANCE
) -> np.ndarray:
    """Candidates farther than ``radius`` (L2) from every logged or pending mixture."""
    if len(logged) == 0 or len(candidates) == 0:
        return candidates
    dist = np.linalg.norm(candidates[:, None, :] - logged[None, :, :], axis=2).min(axis=1)
    return candidates[dist > radius]


def mixed_candidates(
    bounds: Bounds,
    incumbents: np.ndarray,
    n_global: int,
    n_sparse: int,
    n_local: int,
    length: float | np.ndarray,
    rng: np.random.Generator,
    seed: int,
) -> np.ndarray:
    """Global Sobol + sparse + local candidates, in that order."""
    parts = [
        bounds.sample(n_global, seed=seed),
        sparse_candidates(bounds, n_sparse, rng),
    ]
    if len(incumbents) and n_local:
        parts.append(local_candidates(incumbents, length, n_local, rng, bounds))
    return np.vstack(parts)
