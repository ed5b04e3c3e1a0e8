"""Seed noise as a function of the mixture, from repeated runs.

A mixture trained more than once (same weights, other seeds: ``runs.repeats``) measures the
observation noise there: its runs' sample variance. ``MixtureNoise`` turns the repeated groups
into a noise variance at any mixture: a GP (the ``gp`` predictor) on each group's log sample
variance, bias-corrected so that it models log sigma^2 (with k degrees of
freedom, E[log s^2] = log sigma^2 + digamma(k/2) - log(k/2)); with fewer than
``MIN_GROUPS_FOR_NOISE_MODEL`` groups a GP on 2-3 points says nothing about the shape, so the
pooled variance is used everywhere (constant noise) and a note says so.

Used by the ``gp-hetero`` predictor (its fixed observation noise per training run) and by
``mixsurrogate noise`` (the noise range over the log's mixtures).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma

from ..errors import NotEnoughRunsError
from ..runs.repeats import repeat_groups
from .gp import GPPredictor

#: fewest repeated groups for a noise GP; fewer: the pooled variance, constant
MIN_GROUPS_FOR_NOISE_MODEL = 4
#: fewest repeated groups at all (one group cannot tell noise that varies from noise that
#: does not, nor even give a pooled variance with any confidence)
MIN_GROUPS = 2
#: predicted noise variances are kept above this share of the losses' variance (BoTorch's
#: fixed-noise likelihood needs positive variances; zero repeat spread would pin the fit)
VARIANCE_FLOOR = 1e-6


class MixtureNoise:
    """Observation-noise variance as a function of the mixture, from repeated groups.

    ``fit(W, y)`` finds the repeated groups among the rows (at least ``MIN_GROUPS``, else a
    ``NotEnoughRunsError`` in one line); ``variance(W)`` is the predicted noise variance, in
    ``y``'s units squared; ``notes`` lists what the fit worked around.
    """

    def __init__(self, seed: int = 0, inputs: str = "sqrt", what: str = "gp-hetero"):
        self.seed, self.inputs, self.what = seed, inputs, what

    def fit(self, W: np.ndarray, y: np.ndarray) -> MixtureNoise:  # noqa: N803
        W, y = np.asarray(W, dtype=float), np.asarray(y, dtype=float).ravel()  # noqa: N806
        groups = repeat_groups(W)
        if len(groups) < MIN_GROUPS:
            raise NotEnoughRunsError(
                f"{self.what} needs repeated runs to learn the noise: at least {MIN_GROUPS} "
                f"mixtures trained at least twice (same weights, other seeds); found "
                f"{len(groups)}"
            )
        self.groups_ = groups
        self.dof_ = np.array([len(g) - 1 for g in groups], dtype=float)
        self.group_variances_ = np.array([np.var(y[g], ddof=1) for g in groups])
        pooled = float(np.sum(self.group_variances_ * self.dof_) / self.dof_.sum())
        self.floor_ = VARIANCE_FLOOR * max(float(np.var(y)), pooled, 1e-300)
        self.pooled_ = max(pooled, self.floor_)
        self.notes: list[str] = []
        self.model_: GPPredictor | None = None
        if len(groups) < MIN_GROUPS_FOR_NOISE_MODEL:
            self.notes.append(
                f"noise model: only {len(groups)} repeated mixtures (< "
                f"{MIN_GROUPS_FOR_NOISE_MODEL}); the pooled seed variance is used everywhere"
            )
            return self
        bias = digamma(self.dof_ / 2) - np.log(self.dof_ / 2)
        target = np.log(np.clip(self.group_variances_, self.floor_, None)) - bias
        centres = np.array([W[g[0]] for g in groups])
        self.model_ = GPPredictor(inputs=self.inputs, seed=self.seed, interval="posterior")
        self.model_.fit(centres, target)
        self.notes += [f"noise model: {n}" for n in self.model_.fit_notes_]
        return self

    def variance(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        """Predicted noise variance at each mixture (the pooled one without a noise GP)."""
        W = np.atleast_2d(np.asarray(W, dtype=float))  # noqa: N806
        if self.model_ is None:
            return np.full(len(W), self.pooled_)
        return np.clip(np.exp(self.model_.predict(W)), self.floor_, None)
