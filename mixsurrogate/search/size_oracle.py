"""A second multi-scale oracle, independent of the ``mfgp`` predictor: one GP per RegMix size.

``multiscale_oracle`` takes the project's own multi-fidelity GP as the truth, so a search that
uses that same model is judged on a world shaped like its own kernel. This oracle is built
differently, from the same public runs:

- one single-fidelity GP (the ``gp`` predictor: Matern-5/2 ARD on the Hellinger map, log loss)
  per RegMix size, fitted on that size's runs alone: 1M (768 runs, 1B tokens), 60M (256 runs,
  1B tokens), 1B (64 runs, 25B tokens). The 1B runs are the target's truth: the 1B GP's
  posterior mean is the true target loss. No kernel ties the sizes together; how well one size
  speaks for another is whatever the runs say (``rank_agreement``).
- between sizes, the log loss is interpolated linearly in log10 model size between the two
  nearest logged sizes (and the observation noise likewise); a fidelity's token count is not
  an input (RegMix ties tokens to size: 1B tokens below 1B parameters, 25B at 1B). Sizes
  outside [1M, 1B] are refused: nothing backs them.
- a run observes the true loss times exp(noise), with the noise of its size's GP (fitted
  observation noise on log loss: the scatter of real runs of that size around a smooth surface).

The same 5 domain groups as the other oracle (fixed within-group shares) keep the search
low-dimensional.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import spearmanr

from ..predictors.gp import GPPredictor
from ..runs.fidelity import Fidelity, fidelity_features, format_size, regmix_all_scales
from ..simplex import Bounds
from .multiscale_oracle import GROUPS, MultiScaleOracle, group_expansion
from .oracle import MEAN_OBJECTIVE


@dataclass
class PerSizeOracle(MultiScaleOracle):
    """True loss from one GP per logged size, interpolated in log size."""

    #: log10 params of each logged size, ascending, and its GP and log-noise std
    log_sizes: np.ndarray = field(default_factory=lambda: np.empty(0))
    size_models: list[GPPredictor] = field(default_factory=list)
    size_noise: np.ndarray = field(default_factory=lambda: np.empty(0))

    def _bracket(self, fidelity: Fidelity) -> tuple[int, int, float]:
        """The two logged sizes around ``fidelity`` and the weight of the upper one."""
        x = float(np.log10(fidelity.params))
        lo, hi = self.log_sizes[0], self.log_sizes[-1]
        if not lo - 1e-9 <= x <= hi + 1e-9:
            raise ValueError(f"{fidelity}: outside the logged sizes [{10**lo:.3g}, {10**hi:.3g}]")
        j = int(np.clip(np.searchsorted(self.log_sizes, x), 1, len(self.log_sizes) - 1))
        t = (x - self.log_sizes[j - 1]) / (self.log_sizes[j] - self.log_sizes[j - 1])
        return j - 1, j, float(np.clip(t, 0.0, 1.0))

    def mean(self, W: np.ndarray, fidelity: Fidelity) -> np.ndarray:  # noqa: N803
        W = self.model_weights(W)  # noqa: N806
        a, b, t = self._bracket(fidelity)
        log_loss = (1 - t) * np.log(self.size_models[a].predict(W)) if t < 1 else 0.0
        if t > 0:
            log_loss = log_loss + t * np.log(self.size_models[b].predict(W))
        return np.exp(log_loss)

    def log_noise(self, fidelity: Fidelity) -> float:
        a, b, t = self._bracket(fidelity)
        return float((1 - t) * self.size_noise[a] + t * self.size_noise[b])

    def noise_std(self, fidelity: Fidelity, W: np.ndarray | None = None) -> float:  # noqa: N803
        """Observation noise in nats at ``fidelity`` (its relative noise times the typical loss)."""
        W = Bounds.unbounded(len(self.domains)).sample(256, seed=0) if W is None else W  # noqa: N806
        return float(self.log_noise(fidelity) * np.mean(self.mean(W, fidelity)))

    def observe(self, W: np.ndarray, fidelity: Fidelity, rng: np.random.Generator) -> np.ndarray:  # noqa: N803
        truth = self.mean(W, fidelity)
        return truth * np.exp(self.log_noise(fidelity) * rng.standard_normal(len(truth)))


def regmix_per_size_oracle(
    target: str = "pile_cc", groups: dict[str, list[str]] | None = GROUPS, seed: int = 0
) -> PerSizeOracle:
    """The per-size oracle for ``target`` (a RegMix set, or ``mean`` of the 13)."""
    log = regmix_all_scales()
    y = log.Y.mean(axis=1) if target == MEAN_OBJECTIVE else log.loss(target)
    sizes = fidelity_features(log)[:, 0]
    log_sizes = np.unique(sizes)
    models, noise, notes = [], [], []
    for s in log_sizes:
        rows = np.isclose(sizes, s)
        model = GPPredictor(log_target=True, seed=seed).fit(log.W[rows], y[rows])
        gp = model.model_
        var = float(gp.likelihood.noise.detach().reshape(-1)[0])
        scale = float(gp.outcome_transform.stdvs.detach().reshape(-1)[0])
        models.append(model)
        noise.append(np.sqrt(var) * scale)
        notes.append(
            f"{10**s:.3g} params: GP on its {int(rows.sum())} runs, noise {noise[-1]:.4f} on "
            "log loss" + "".join(f"; fit: {n}" for n in model.fit_notes_)
        )
    expand, domains = group_expansion(log, groups)
    if groups is not None:
        notes.append(
            f"{len(groups)} groups: " + "; ".join(f"{g}={'+'.join(m)}" for g, m in groups.items())
        )
    notes.insert(0, f"one GP per RegMix size on {target}, log loss interpolated in log10 size")
    return PerSizeOracle(
        name=f"regmix-per-size-{len(domains)}:{target}",
        domains=domains,
        model=models[-1],
        log_noise_std=float(noise[-1]),
        expand=expand,
        notes=notes,
        log_sizes=log_sizes,
        size_models=models,
        size_noise=np.array(noise),
    )


def rank_agreement(target: str = "mean") -> list[dict]:
    """How well each RegMix size ranks mixtures as the 1B runs do: Spearman of losses on the
    same mixtures. 1M and 60M share their 256 test mixtures (logged losses, both sides); the
    1B mixtures are logged at 1B only, so a smaller size's loss there is its GP's prediction
    (fitted on that size's runs) against the 1B runs' logged losses."""
    log = regmix_all_scales()
    y = log.Y.mean(axis=1) if target == MEAN_OBJECTIVE else log.loss(target)
    sizes = fidelity_features(log)[:, 0]
    top = sizes.max()
    at_top = np.isclose(sizes, top)
    rows = []
    for s in np.unique(sizes)[:-1]:
        mine = np.isclose(sizes, s)
        model = GPPredictor(log_target=True, seed=0).fit(log.W[mine], y[mine])
        rho = spearmanr(model.predict(log.W[at_top]), y[at_top]).statistic
        rows.append({"size": format_size(10**s), "vs": format_size(10**top), "mixtures":
                     int(at_top.sum()), "spearman": float(rho), "how": "GP of the size at the "
                     "target's mixtures vs the target's logged losses"})  # fmt: skip
    keys = [tuple(np.round(w, 6)) for w in log.W]
    small = np.unique(sizes)[:-1]
    for a, b in zip(small[:-1], small[1:], strict=True):
        la = {k: v for k, v, m in zip(keys, y, np.isclose(sizes, a), strict=True) if m}
        lb = {k: v for k, v, m in zip(keys, y, np.isclose(sizes, b), strict=True) if m}
        common = sorted(set(la) & set(lb))
        rho = spearmanr([la[k] for k in common], [lb[k] for k in common]).statistic
        rows.append({"size": format_size(10**a), "vs": format_size(10**b), "mixtures": len(common),
                     "spearman": float(rho), "how": "logged losses on shared mixtures"})  # fmt: skip
    return rows
