"""Which evaluation sets carry signal: spread across mixtures against repeat (seed) noise, and
whether that noise depends on the mixture.

Before choosing ``--objective`` a user should know, per set, whether mixtures move its loss
by more than re-training the same mixture with another seed does. From a log with repeated
runs (same weights, different seeds: rows with equal weights to 4 decimals form a group):

- ``noise``: the pooled seed std (``noise.noise_floor``, with its chi-square interval);
- ``spread``: the std across mixtures of each mixture's mean loss, less the part of it that is
  seed noise (var(means) - mean(noise^2 / n_mixture), floored at 0): the signal;
- ``snr``: spread / noise. Below ~1 a set mostly ranks seeds, not mixtures;
- noise as a function of the mixture: the range of the repeated mixtures' own sample std (how
  many groups it rests on), Bartlett's test of equal variances across them (scipy), and the
  noise model ``gp-hetero`` uses (``predictors.noise_model.MixtureNoise``: a GP on each group's log
  sample variance, bias-corrected), whose predictions at the log's mixtures give the range of
  the noise std there (from ``MIN_GROUPS_FOR_NOISE_MODEL`` groups on).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import bartlett

from ..objective import Objective
from ..predictors.noise_model import MIN_GROUPS_FOR_NOISE_MODEL, MixtureNoise
from ..runs.log import RunsLog
from ..runs.repeats import mixture_groups
from .noise import noise_floor, repeated_groups
from .results import OBJECTIVE_TARGET


def signal_to_noise(log: RunsLog, objective: Objective | None = None, seed: int = 0) -> list[dict]:
    """One row per evaluation set (and the objective): noise, spread, SNR, noise model."""
    floors = noise_floor(log, objective)
    repeated = repeated_groups(log)
    everyone = mixture_groups(log.W)
    values = {t: log.loss(t) for t in log.targets}
    if objective is not None:
        values[OBJECTIVE_TARGET] = objective.combine(log.Y, log.targets)
    W_all = np.array([log.W[rows[0]] for rows in everyone])  # noqa: N806
    out = []
    for name, v in values.items():
        floor = floors[name]
        groups = [[r for r in rows if np.isfinite(v[r])] for rows in everyone]
        groups = [g for g in groups if g]
        means = np.array([v[g].mean() for g in groups])
        sizes = np.array([len(g) for g in groups])
        signal_var = np.var(means, ddof=1) - np.mean(floor.std**2 / sizes) if len(means) > 1 else 0
        spread = float(np.sqrt(max(signal_var, 0.0)))
        row = {
            "set": name,
            "mixtures": int(len(groups)),
            "repeated_mixtures": int(len(repeated)),
            "noise": floor.std,
            "noise_lo": floor.lo,
            "noise_hi": floor.hi,
            "spread": spread,
            "snr": spread / floor.std if floor.std > 0 else float("inf"),
            "bartlett_p": float("nan"),
            "noise_min": float("nan"),
            "noise_max": float("nan"),
        }
        samples = [s for s in (v[rows][np.isfinite(v[rows])] for rows in repeated) if len(s) > 1]
        stds = [float(np.std(s, ddof=1)) for s in samples]
        row["repeat_groups"] = len(samples)
        row["repeat_std_min"] = min(stds, default=float("nan"))
        row["repeat_std_max"] = max(stds, default=float("nan"))
        if len(samples) >= 2 and all(np.ptp(s) > 0 for s in samples):
            row["bartlett_p"] = float(bartlett(*samples).pvalue)
        if len(samples) >= MIN_GROUPS_FOR_NOISE_MODEL:
            finite = np.isfinite(v)
            model = MixtureNoise(seed, what="the noise model").fit(log.W[finite], v[finite])
            predicted = np.sqrt(model.variance(W_all))
            row["noise_min"], row["noise_max"] = float(predicted.min()), float(predicted.max())
        out.append(row)
    return out
