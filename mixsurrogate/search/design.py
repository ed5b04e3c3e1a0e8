"""The space-filling start of a campaign: one scrambled sequence per campaign seed.

The initial runs of a campaign are consecutive points of one scrambled Sobol sequence (or one
stream of uniform Dirichlet draws), continued by position: a campaign that logged ``n`` runs
gets points ``n .. n + q - 1``. Re-seeding by log length (as ``seed + len(log)`` did) makes
each batch a fresh, unrelated design, so the start is not one space-filling design and nearby
seeds share draws.
"""

from __future__ import annotations

import numpy as np

from ..simplex import Bounds

DESIGNS = ("sobol", "uniform")


def campaign_points(
    bounds: Bounds, start: int, n: int, seed: int = 0, method: str = "sobol"
) -> np.ndarray:
    """Points ``start .. start + n - 1`` of the campaign's design inside ``bounds``."""
    if method not in DESIGNS:
        raise ValueError(f"unknown design {method!r}; choose from {', '.join(DESIGNS)}")
    if n <= 0:
        return np.empty((0, len(bounds.lower)))
    sampler = "sobol" if method == "sobol" else "dirichlet"
    return bounds.sample(start + n, seed=seed, method=sampler)[start:]


def default_initial_size(n_domains: int) -> int:
    """Space-filling runs before the model takes over: one per GP input plus one (K + 1).

    The old default, 2(K + 1), spent 36 of 64 runs at 17 domains on the design; the dimension-
    scaled lengthscale prior of the GP (long lengthscales unless the data say otherwise) lets
    the model act on fewer runs.
    """
    return n_domains + 1
