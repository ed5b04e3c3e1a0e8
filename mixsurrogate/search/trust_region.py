"""A TuRBO-style trust region on the simplex (Eriksson et al. 2019), replayed from the log.

The region is a box of side ``length`` in sqrt (Hellinger) coordinates around the incumbent,
stretched by the GP's lengthscales. A batch that improves on the best value so far is a
success; ``success_tolerance`` successes in a row double the length, ``failure_tolerance``
failures halve it, and below ``length_min`` the region restarts at ``length_init``.

The state is not stored anywhere: it is replayed from the order of the logged runs (batches
of ``q`` after the initial design), so ``propose`` called on the same log always sees the same
region, and several workers agree on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class TrustRegion:
    length: float = 0.8
    length_init: float = 0.8
    length_min: float = 0.5**5
    length_max: float = 1.6
    success_tolerance: int = 3
    failure_tolerance: int = 4
    successes: int = 0
    failures: int = 0
    restarts: int = 0

    def update(self, improved: bool) -> None:
        if improved:
            self.successes, self.failures = self.successes + 1, 0
        else:
            self.successes, self.failures = 0, self.failures + 1
        if self.successes >= self.success_tolerance:
            self.length, self.successes = min(2 * self.length, self.length_max), 0
        elif self.failures >= self.failure_tolerance:
            self.length, self.failures = self.length / 2, 0
        if self.length < self.length_min:
            self.length, self.restarts = self.length_init, self.restarts + 1


def failure_tolerance(n_domains: int, q: int) -> int:
    """TuRBO's ceil(max(4 / q, d / q)): a region gets about d evaluations before shrinking."""
    return math.ceil(max(4 / q, n_domains / q))


def replay(
    y: np.ndarray, initial: int, q: int, n_domains: int, tolerance: float = 1e-3
) -> TrustRegion:
    """The trust region after the logged history ``y`` (in log order)."""
    region = TrustRegion(failure_tolerance=failure_tolerance(n_domains, q))
    y = np.asarray(y, dtype=float)
    if len(y) <= initial:
        return region
    best = float(np.min(y[:initial]))
    for start in range(initial, len(y), q):
        batch = y[start : start + q]
        improved = float(batch.min()) < best - tolerance * abs(best)
        region.update(improved)
        best = min(best, float(batch.min()))
    return region
