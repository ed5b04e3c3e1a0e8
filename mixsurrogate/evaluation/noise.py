"""Seed noise: how much a loss moves when the same mixture is trained again with another seed.

It sets the scale for every accuracy number. A top-1 regret below the noise floor means a
predictor chose as well as anyone could tell without re-training, and the noise caps how well
any predictor can correlate with observed losses (``noise_ceiling``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, rankdata

from ..errors import RunsLogError
from ..objective import Objective
from ..runs.log import RunsLog
from ..runs.repeats import repeat_groups
from .results import OBJECTIVE_TARGET


@dataclass(frozen=True)
class NoiseFloor:
    """Pooled seed std of one loss with its degrees of freedom and 95% chi-square interval."""

    std: float
    dof: int
    lo: float
    hi: float


def repeated_groups(seeds: RunsLog) -> list[list[int]]:
    """Rows of each mixture trained more than once (weights equal to 4 decimals,
    ``runs.repeats``, as ``gp-hetero`` groups them)."""
    repeated = repeat_groups(seeds.W)
    if not repeated:
        raise RunsLogError("the seeds log has no mixture trained more than once")
    return repeated


def noise_floor(
    seeds: RunsLog, objective: Objective | None = None, level: float = 0.95
) -> dict[str, NoiseFloor]:
    """``seed_noise`` with its uncertainty: with G mixtures of n_g seeds the pooled variance
    has sum(n_g - 1) degrees of freedom, and (dof s^2 / sigma^2) is chi-square under Gaussian
    noise, so few repeats leave the floor (and every ceiling derived from it) uncertain."""
    dof = sum(len(rows) - 1 for rows in repeated_groups(seeds))
    lo_q, hi_q = chi2.ppf((1 - level) / 2, dof), chi2.ppf((1 + level) / 2, dof)
    return {
        name: NoiseFloor(std, dof, std * np.sqrt(dof / hi_q), std * np.sqrt(dof / lo_q))
        for name, std in seed_noise(seeds, objective).items()
    }


def seed_noise(seeds: RunsLog, objective: Objective | None = None) -> dict[str, float]:
    """Pooled std across seeds of the same mixture, per evaluation set (and the objective).

    ``seeds`` holds several runs of each repeated mixture (rows with equal weights, to 4
    decimals, form a group); groups of one run carry no information and are ignored.
    """
    repeated = repeated_groups(seeds)
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
    log: RunsLog,
    noise: dict[str, float],
    objective: Objective | None = None,
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Spearman that even the exact expected losses would reach against these noisy observations.

    Monte Carlo: the expected losses are stood in for by the observed ones shrunk toward their
    mean until their variance is the observed variance minus the seed-noise variance; each draw
    adds seed noise and ranks. Ranks matter: a closed form from variances (Pearson's
    sqrt(1 - s^2 / var)) lets a few far-off runs (e.g. single-domain vertices) inflate the
    ceiling, while Spearman must also order the many runs that are close together. Assumes
    every mixture's seed noise is Gaussian and like that of the repeated mixtures.
    """
    values = {t: log.loss(t) for t in log.targets if t in noise}
    if objective is not None and OBJECTIVE_TARGET in noise:
        values[OBJECTIVE_TARGET] = objective.combine(log.Y, log.targets)
    rng = np.random.default_rng(seed)
    ceilings = {}
    for target, observed in values.items():
        spread, s = np.std(observed, ddof=1), noise[target]
        shrink = np.sqrt(max(0.0, spread**2 - s**2)) / spread if spread > 0 else 0.0
        truth = observed.mean() + (observed - observed.mean()) * shrink
        noisy = truth + rng.normal(0.0, s, (draws, len(truth)))
        true_ranks = rankdata(truth) - (len(truth) + 1) / 2
        noisy_ranks = rankdata(noisy, axis=1) - (len(truth) + 1) / 2
        corr = (
            noisy_ranks
            @ true_ranks
            / (np.linalg.norm(noisy_ranks, axis=1) * np.linalg.norm(true_ranks) + 1e-300)
        )
        ceilings[target] = float(np.mean(corr)) if shrink > 0 else 0.0
    return ceilings
