"""Which mixtures to train first: space-filling points on the simplex, optionally with the K
vertices (each domain alone) and the uniform mixture, inside optional per-domain bounds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import MixsurrogateError
from ..simplex import (
    Bounds,
    dirichlet_simplex,
    exponential_spacings,
    sobol_cube,
    sobol_simplex,
    vertices_and_uniform,
)
from .names import WEIGHT_PREFIX
from .schedule import schedule_row


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


#: the smallest share a phase gets when the shares are designed too (no ``--share``)
MIN_FREE_SHARE = 0.05


def schedule_design_frame(
    domains: list[str],
    n: int,
    phases: int,
    *,
    last_share: float | None = None,
    vertices: bool = False,
    bounds: Bounds | None = None,
    seed: int = 0,
    prefix: str = "run",
) -> pd.DataFrame:
    """``n`` schedules of ``phases`` phases, in the runs log's schedule format.

    Scrambled Sobol points over the product of the phase simplices (one block of ``K`` columns
    per phase, each mapped onto the simplex) and, without ``last_share``, of the share simplex
    too: free shares are at least :data:`MIN_FREE_SHARE` each. With ``last_share`` the last
    phase trains that share of the tokens and the earlier phases split the rest equally. Each
    phase mixture is drawn inside ``bounds``. ``vertices`` puts the K pure-domain mixtures and
    uniform first, as single-phase rows (their phase cells empty). Phase weights and shares are
    rounded to 6 decimals and renormalised; ``w:`` is the effective mixture.
    """
    k = len(domains)
    if phases < 2:
        raise MixsurrogateError(f"--phases {phases}: a schedule has at least 2 phases")
    if last_share is not None and not 0 < last_share < 1:
        raise MixsurrogateError(f"--share {last_share}: the last phase's share must be in (0, 1)")
    if last_share is None and phases * MIN_FREE_SHARE >= 1:
        raise MixsurrogateError(
            f"--phases {phases}: too many phases for free shares of >= {MIN_FREE_SHARE} each"
        )
    if n < 1:
        raise MixsurrogateError(f"-n {n}: design at least one schedule")
    bounds = bounds or Bounds.parse([], domains)
    u = sobol_cube(n, phases * k + (phases if last_share is None else 0), seed)
    lower, room = bounds.lower, 1 - bounds.lower.sum()
    blocks = [exponential_spacings(u[:, p * k : (p + 1) * k]) for p in range(phases)]
    weights = np.stack([bounds.repair(lower + room * b) for b in blocks], axis=1).round(6)
    weights = weights / weights.sum(axis=2, keepdims=True)
    if last_share is None:
        free = exponential_spacings(u[:, phases * k :])
        shares = MIN_FREE_SHARE + (1 - phases * MIN_FREE_SHARE) * free
    else:
        earlier = np.full(phases - 1, (1 - last_share) / (phases - 1))
        shares = np.tile(np.append(earlier, last_share), (n, 1))
    shares = shares.round(6)
    shares = shares / shares.sum(axis=1, keepdims=True)
    rows = []
    if vertices:
        for i, w in enumerate(vertices_and_uniform(k)):
            rows.append({"run_id": f"{prefix}-v{i:02d}"} | {
                WEIGHT_PREFIX + d: float(x) for d, x in zip(domains, w, strict=True)
            })  # fmt: skip
    for i in range(n):
        rows.append({"run_id": f"{prefix}-{i:03d}"} | schedule_row(weights[i], shares[i], domains))
    frame = pd.DataFrame(rows)
    effective = [WEIGHT_PREFIX + d for d in domains]
    rest = [c for c in frame.columns if c != "run_id" and c not in effective]
    return frame[["run_id", *effective, *rest]]
