"""Seed noise: how much a loss moves when the same mixture is trained again with another seed.

It sets the scale for every accuracy number. A top-1 regret below the noise floor means a
predictor chose as well as anyone could tell without re-training, and the noise caps how well
any predictor can correlate with observed losses (``noise_ceiling``).
"""

from __future__ import annotations

import numpy as np

from .errors import RunsLogError
from .evaluate import OBJECTIVE_TARGET
from .objective import Objective
from .runs import RunsLog


def seed_noise(seeds: RunsLog, objective: Objective | None = None) -> dict[str, float]:
    """Pooled std across seeds of the same mixture, per evaluation set (and the objective).

    ``seeds`` holds several runs of each repeated mixture (rows with equal weights, to 4
    decimals, form a group); groups of one run carry no information and are ignored.
    """
    mixture = [tuple(np.round(w, 4)) for w in seeds.W]
    groups = {}
    for row, key in enumerate(mixture):
        groups.setdefault(key, []).append(row)
    repeated = [rows for rows in groups.values() if len(rows) > 1]
    if not repeated:
        raise RunsLogError("the seeds log has no mixture trained more than once")
    values = {t: seeds.loss(t) for t in seeds.targets}
    if objective is not None:
        values[OBJECTIVE_TARGET] = objective.combine(seeds.Y, seeds.targets)
    dof = sum(len(rows) - 1 for rows in repeated)
    return {
        name: float(
            np.sqrt(sum(np.var(v[rows], ddof=1) * (len(rows) - 1) for rows in repeated) / dof)
        )
        for name, v in values.items()
    }


def noise_ceiling(
    log: RunsLog, noise: dict[str, float], objective: Objective | None = None
) -> dict[str, float]:
    """Highest correlation any predictor can reach against seed-noisy observed losses.

    If an observed loss is the mixture's expected loss plus seed noise of std s, even the exact
    expected loss correlates with the observations at sqrt(1 - s^2 / var(observed)) (Pearson,
    Gaussian noise; Spearman behaves alike). Assumes every mixture's seed noise is like that of
    the repeated mixtures.
    """
    values = {t: log.loss(t) for t in log.targets if t in noise}
    if objective is not None and OBJECTIVE_TARGET in noise:
        values[OBJECTIVE_TARGET] = objective.combine(log.Y, log.targets)
    return {
        t: float(np.sqrt(max(0.0, 1.0 - noise[t] ** 2 / np.var(v, ddof=1))))
        for t, v in values.items()
    }
