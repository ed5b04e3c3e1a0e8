"""Which evaluation sets carry signal: spread across mixtures against repeat (seed) noise, and
whether that noise depends on the mixture.

Before choosing ``--objective`` a user should know, per set, whether mixtures move its loss
by more than re-training the same mixture with another seed does. From a log with repeated
runs (same weights, different seeds: rows with equal weights to 4 decimals form a group):

- ``noise``: the pooled seed std (``noise.noise_floor``, with its chi-square interval);
- ``spread``: the std across mixtures of each mixture's mean loss, less the part of it that is
  seed noise (var(means) - mean(noise^2 / n_mixture), floored at 0): the signal;
- ``snr``: spread / noise. Below ~1 a set mostly ranks seeds, not mixtures;
- noise as a function of the mixture: Bartlett's test of equal variances across the repeated
  groups (scipy), and a second GP (the ``gp`` predictor) on each group's log sample variance,
  bias-corrected (E[log s^2] = log sigma^2 + digamma(k/2) - log(k/2) with k degrees of
  freedom), whose predictions at the log's mixtures give the range of the noise std there.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma
from scipy.stats import bartlett

from ..objective import Objective
from ..predictors.gp import GPPredictor
from ..runs.log import RunsLog
from .noise import noise_floor, repeated_groups
from .results import OBJECTIVE_TARGET

#: fewest repeated groups for the noise GP (fewer: the range is not reported)
MIN_GROUPS_FOR_NOISE_MODEL = 4


def mixture_groups(log: RunsLog) -> list[list[int]]:
    """Rows of each distinct mixture (weights equal to 4 decimals), repeated or not."""
    groups: dict[tuple, list[int]] = {}
    for row, w in enumerate(log.W):
        groups.setdefault(tuple(np.round(w, 4)), []).append(row)
    return list(groups.values())


def noise_model(
    W: np.ndarray, variances: np.ndarray, dof: np.ndarray, seed: int = 0
) -> GPPredictor:  # noqa: N803
    """A GP of the log noise variance over the mixture, from repeated groups' sample variances
    (``dof`` each), bias-corrected so that it models log sigma^2."""
    bias = digamma(dof / 2) - np.log(dof / 2)
    target = np.log(np.clip(variances, 1e-300, None)) - bias
    return GPPredictor(seed=seed).fit(W, target)


def signal_to_noise(log: RunsLog, objective: Objective | None = None, seed: int = 0) -> list[dict]:
    """One row per evaluation set (and the objective): noise, spread, SNR, noise model."""
    floors = noise_floor(log, objective)
    repeated = repeated_groups(log)
    everyone = mixture_groups(log)
    values = {t: log.loss(t) for t in log.targets}
    if objective is not None:
        values[OBJECTIVE_TARGET] = objective.combine(log.Y, log.targets)
    W_rep = np.array([log.W[rows[0]] for rows in repeated])  # noqa: N806
    W_all = np.array([log.W[rows[0]] for rows in everyone])  # noqa: N806
    dof = np.array([len(rows) - 1 for rows in repeated], dtype=float)
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
        samples = [v[rows] for rows in repeated]
        if len(samples) >= 2 and all(np.ptp(s) > 0 for s in samples):
            row["bartlett_p"] = float(bartlett(*samples).pvalue)
        if len(repeated) >= MIN_GROUPS_FOR_NOISE_MODEL:
            variances = np.array([np.var(s, ddof=1) for s in samples])
            model = noise_model(W_rep, variances, dof, seed)
            predicted = np.sqrt(np.exp(model.predict(W_all)))
            row["noise_min"], row["noise_max"] = float(predicted.min()), float(predicted.max())
        out.append(row)
    return out
