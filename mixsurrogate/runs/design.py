"""Which mixtures to train first: space-filling points on the simplex, optionally with the K
vertices (each domain alone) and the uniform mixture, inside optional per-domain bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..simplex import Bounds, dirichlet_simplex, sobol_simplex, vertices_and_uniform


def design_frame(
    domains: list[str],
    n: int,
    *,
    method: str = "sobol",
    alpha: float = 1.0,
    vertices: bool = True,
    bounds: Bounds | None = None,
    seed: int = 0,
    prefix: str = "run",
) -> pd.DataFrame:
    """``run_id`` and ``w:<domain>`` columns: vertices and uniform (if asked), then ``n`` points.

    ``method`` is ``sobol`` (scrambled Sobol mapped to the simplex; any prefix is space-filling)
    or ``dirichlet`` (i.i.d. with concentration ``alpha``). Points are drawn on the sub-simplex
    above the bounds' lower limits and repaired into the upper limits; vertices and uniform are
    added as they are. Weights are rounded to 6 decimals and renormalised, so they survive CSV.
    """
    bounds = bounds or Bounds.parse([], domains)
    k = len(domains)
    unit = sobol_simplex(n, k, seed) if method == "sobol" else dirichlet_simplex(n, k, alpha, seed)
    W = bounds.repair(bounds.lower + (1 - bounds.lower.sum()) * unit)  # noqa: N806
    if vertices:
        W = np.vstack([vertices_and_uniform(k), W])  # noqa: N806
    W = W.round(6)  # noqa: N806
    frame = pd.DataFrame(W / W.sum(axis=1, keepdims=True), columns=[f"w:{d}" for d in domains])
    frame.insert(0, "run_id", [f"{prefix}-{i:03d}" for i in range(len(frame))])
    return frame
