"""A multi-scale oracle for closed-loop search: the "true" loss of a mixture at any RegMix scale.

The oracle is the multi-fidelity GP (``mfgp``) fitted on every public RegMix run: the 768 1M
runs, the 256 60M runs (1B tokens) and the 64 1B runs (25B tokens), 1088 in all. Its
posterior mean at (mixture, params, tokens) is the true loss; a run observes it times
exp(noise), with the GP's fitted observation noise (on log loss, so the same relative scatter at
every scale; the scatter of real runs around a smooth surface, mostly seed noise). Only the
three logged fidelities are backed by runs: a search bench should choose among them.

A grouped oracle maps a mixture of a few domain groups onto the 17 domains with fixed
within-group shares (their mean share in RegMix's runs), giving a low-dimensional problem with
the same real structure (as ``search.oracle.grouped_oracle`` does at one scale).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from ..predictors.mfgp import MFGPPredictor
from ..runs.fidelity import Fidelity, fidelity_features, regmix_all_scales
from ..simplex import Bounds
from .oracle import MEAN_OBJECTIVE, REGMIX_GROUPS

#: RegMix's logged fidelities (params, tokens)
REGMIX_SCALES = {
    "1M": Fidelity(1e6, 1e9),
    "60M": Fidelity(6e7, 1e9),
    "1B": Fidelity(1e9, 25e9),
}
#: the same 5 domain groups as the single-scale oracle
GROUPS = REGMIX_GROUPS


@dataclass
class MultiScaleOracle:
    """True loss ``mean(W, fidelity)`` over K-domain mixtures; runs observe it with noise."""

    name: str
    domains: list[str]
    model: MFGPPredictor
    #: observation noise std on log loss (relative scatter of a run)
    log_noise_std: float
    expand: np.ndarray | None = None  # (K, 17): group mixture -> domain mixture
    notes: list[str] = field(default_factory=list)

    def model_weights(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        W = np.atleast_2d(np.asarray(W, dtype=float))  # noqa: N806
        return W if self.expand is None else W @ self.expand

    def mean(self, W: np.ndarray, fidelity: Fidelity) -> np.ndarray:  # noqa: N803
        """The true (noise-free) loss of each mixture at ``fidelity``."""
        W = self.model_weights(W)  # noqa: N806
        features = np.tile(fidelity.features(), (len(W), 1))
        return self.model.predict(W, features)

    def noise_std(self, fidelity: Fidelity, W: np.ndarray | None = None) -> float:  # noqa: N803
        """Observation noise in nats at ``fidelity`` (relative noise times the typical loss)."""
        W = Bounds.unbounded(len(self.domains)).sample(256, seed=0) if W is None else W  # noqa: N806
        return float(self.log_noise_std * np.mean(self.mean(W, fidelity)))

    def observe(self, W: np.ndarray, fidelity: Fidelity, rng: np.random.Generator) -> np.ndarray:  # noqa: N803
        """What a trained run would log: the true loss times exp(noise)."""
        truth = self.mean(W, fidelity)
        return truth * np.exp(self.log_noise_std * rng.standard_normal(len(truth)))

    def optimum(
        self, fidelity: Fidelity, n: int = 32768, seed: int = 0
    ) -> tuple[np.ndarray, float]:
        """The best mixture at ``fidelity`` and its loss: a dense Sobol search, then a local
        refinement (Nelder-Mead on softmax coordinates) from the best few points."""
        k = len(self.domains)
        W = Bounds.unbounded(k).sample(n, seed=seed)  # noqa: N806
        values = self.mean(W, fidelity)
        best_w, best = W[np.argmin(values)], float(values.min())

        def f(z: np.ndarray) -> float:
            w = np.exp(z - z.max())
            return float(self.mean(w / w.sum(), fidelity)[0])

        for start in W[np.argsort(values)[:3]]:
            z0 = np.log(np.clip(start, 1e-6, None))
            res = minimize(f, z0, method="Nelder-Mead", options={"maxiter": 400, "xatol": 1e-4})
            if res.fun < best:
                w = np.exp(res.x - res.x.max())
                best_w, best = w / w.sum(), float(res.fun)
        return best_w, best


def regmix_multiscale_oracle(
    target: str = "pile_cc", groups: dict[str, list[str]] | None = GROUPS, seed: int = 0
) -> MultiScaleOracle:
    """The oracle for ``target`` (a RegMix set, or ``mean`` of the 13), over ``groups`` (None:
    all 17 domains)."""
    log = regmix_all_scales()
    y = log.Y.mean(axis=1) if target == MEAN_OBJECTIVE else log.loss(target)
    model = MFGPPredictor(seed=seed).fit(log.W, y, fidelity_features(log))
    gp = model.model_
    noise_var = float(gp.likelihood.noise.detach().reshape(-1)[0])
    scale = float(gp.outcome_transform.stdvs.detach().reshape(-1)[0])
    log_noise = float(np.sqrt(noise_var) * scale)
    notes = [
        f"mfgp on all {len(log)} RegMix runs (1M, 60M, 1B) of {target}; observation noise "
        f"{log_noise:.4f} on log loss (the GP's fitted noise)"
    ] + [f"fit: {n}" for n in model.fit_notes_]
    expand, domains = group_expansion(log, groups)
    if groups is not None:
        notes.append(
            f"{len(groups)} groups: " + "; ".join(f"{g}={'+'.join(m)}" for g, m in groups.items())
        )
    return MultiScaleOracle(
        name=f"regmix-multiscale-{len(domains)}:{target}",
        domains=domains,
        model=model,
        log_noise_std=log_noise,
        expand=expand,
        notes=notes,
    )


def group_expansion(
    log, groups: dict[str, list[str]] | None
) -> tuple[np.ndarray | None, list[str]]:
    """The (groups, domains) matrix mapping a group mixture onto the log's domains with fixed
    within-group shares (their mean share in the log's runs), and the group names; (None, the
    log's domains) without groups."""
    if groups is None:
        return None, list(log.domains)
    listed = [d for members in groups.values() for d in members]
    if sorted(listed) != sorted(log.domains):
        raise ValueError("the groups must cover every RegMix domain exactly once")
    prior = log.W.mean(axis=0)
    expand = np.zeros((len(groups), len(log.domains)))
    for g, members in enumerate(groups.values()):
        cols = [log.domains.index(d) for d in members]
        share = prior[cols] + 1e-6
        expand[g, cols] = share / share.sum()
    return expand, list(groups)
