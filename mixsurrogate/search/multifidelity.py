"""Multi-fidelity search: which (mixture, model size, tokens) to train next, and the mixture to
recommend at the target scale.

Model: the multi-fidelity GP (``predictors.mfgp``) on every logged run at its own fidelity.
Acquisition: augmented expected improvement (Huang et al. 2006, the multi-fidelity EI of
sequential kriging optimisation) with a cost exponent as in Yen et al. (2025):

    a(w, l) = EI_T(w) * corr(y_l(w), f_T(w)) * (1 - s_l / sqrt(var_l(w) + s_l^2))
              * (cost_T / cost_l) ** alpha

EI_T is the expected improvement of the *target* fidelity's latent loss at mixture w over the
best target-fidelity prediction among the logged mixtures; the correlation says how much a run
at fidelity l tells about the target there (1 at the target itself); the second factor discounts
runs whose outcome would be mostly noise (s_l: observation noise); the last trades information
for FLOPs (``alpha`` = 1: full cost-awareness; 0: ignore cost). Everything is computed from the
GP's joint posterior of the pair (w at l, w at T), so a fidelity never logged (the target) is
handled by the kernel's extrapolation. BoTorch's ``qMultiFidelityKnowledgeGradient`` is the
heavier alternative (a nested optimisation per candidate); on a discrete candidate set the
augmented EI costs one batched posterior call per fidelity.

Candidates are Sobol points inside the bounds plus the neighbourhoods of the logged mixtures
that are best at the target (by the model's target-fidelity objective there); the q
proposals are the best (mixture, fidelity) pairs, greedily, at least ``min_distance`` apart. The
recommendation is the mixture minimising the posterior mean at the target fidelity.

Two-phase search (``switch_flops``): multi-fidelity exploration at the cheap fidelities until the
logged runs below the target have cost ``switch_flops``, then a confirmation phase at the target
alone (EI at the target from the mfgp fitted on every run), so that the recommendation is backed
by target-scale runs and not only by the kernel's extrapolation. The caller fixes the length of
the confirmation phase (``bench/search_multiscale.py``: a fixed number of target runs).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import norm

from ..errors import MixsurrogateError
from ..predictors.mfgp import MFGPPredictor
from ..runs.fidelity import CostModel, Fidelity, FidelityMenu, format_size
from ..simplex import Bounds

#: posterior pairs per batched call
CHUNK = 512
#: the multi-fidelity search's own random stream, apart from the single-fidelity strategies'
MULTIFIDELITY_SALT = 17


@dataclass
class MultiFidelityProposal:
    """Runs to train next (mixture and fidelity each) and the recommendation at the target."""

    domains: list[str]
    mixtures: np.ndarray  # (q, K)
    fidelities: list[Fidelity]
    flops: np.ndarray  # (q,)
    acquisition: np.ndarray  # (q,) augmented EI per unit cost (nan in the space-filling phase)
    target: Fidelity
    recommended: np.ndarray  # (K,) mixture minimising the predicted loss at the target
    recommended_loss: float  # predicted objective there (nan in the space-filling phase)
    recommended_std: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        def mix(w: np.ndarray) -> dict[str, float]:
            return dict(zip(self.domains, map(float, w), strict=True))

        return {
            "mode": "explore (multi-fidelity)",
            "target": str(self.target),
            "proposals": [
                {
                    "mixture": mix(w),
                    "params": f.params,
                    "tokens": f.tokens,
                    "fidelity": str(f),
                    "flops": float(c),
                    "acquisition": None if not np.isfinite(a) else float(a),
                }
                for w, f, c, a in zip(
                    self.mixtures, self.fidelities, self.flops, self.acquisition, strict=True
                )
            ],
            "recommendation": {
                "mixture": mix(self.recommended),
                "fidelity": str(self.target),
                "predicted": None
                if not np.isfinite(self.recommended_loss)
                else self.recommended_loss,
                "std": None if not np.isfinite(self.recommended_std) else self.recommended_std,
            },
            "notes": self.notes,
        }


def fit_multifidelity_model(
    W: np.ndarray,  # noqa: N803
    fidelity: np.ndarray,
    y: np.ndarray,
    seed: int = 0,
) -> MFGPPredictor:
    """The mfgp surrogate of the objective on runs at fidelities ``fidelity`` (log10 params,
    log10 tokens per row)."""
    return MFGPPredictor(seed=seed).fit(W, y, fidelity)


def _inputs(model: MFGPPredictor, W: np.ndarray, fidelity: Fidelity) -> torch.Tensor:  # noqa: N803
    features = np.tile(fidelity.features(), (len(W), 1))
    return torch.as_tensor(model.design_matrix(W, features), dtype=torch.float64)


def _noise_variance(model: MFGPPredictor) -> float:
    """Observation-noise variance in the model's target units (log loss by default)."""
    gp = model.model_
    noise = float(gp.likelihood.noise.detach().reshape(-1)[0])
    return noise * float(gp.outcome_transform.stdvs.detach().reshape(-1)[0]) ** 2


def target_posterior(
    model: MFGPPredictor,
    W: np.ndarray,  # noqa: N803
    target: Fidelity,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and std of the latent (model-space) objective at the target fidelity."""
    X = _inputs(model, W, target)  # noqa: N806
    means, stds = [], []
    with torch.no_grad():
        for chunk in torch.split(X, CHUNK):
            post = model.model_.posterior(chunk)
            means.append(post.mean.reshape(-1))
            stds.append(post.variance.clamp_min(1e-18).sqrt().reshape(-1))
    return torch.cat(means).numpy(), torch.cat(stds).numpy()


def augmented_ei(
    model: MFGPPredictor,
    W: np.ndarray,  # noqa: N803
    menu: FidelityMenu,
    cost: CostModel,
    alpha: float = 1.0,
    best: float | None = None,
) -> np.ndarray:
    """Acquisition value of each (candidate, menu fidelity) pair, shape (candidates, menu)."""
    noise = _noise_variance(model)
    costs = menu.costs(cost)
    target_cost = cost.flops(menu.target)
    XT = _inputs(model, W, menu.target)  # noqa: N806
    values = np.zeros((len(W), len(menu.items)))
    for j, fid in enumerate(menu.items):
        XL = _inputs(model, W, fid)  # noqa: N806
        pairs = torch.stack([XL, XT], dim=1)  # (n, 2, d): (w at l, w at T)
        mean_t, var_t, var_l, cov = [], [], [], []
        with torch.no_grad():
            for chunk in torch.split(pairs, CHUNK):
                post = model.model_.posterior(chunk)
                m = post.mean[..., 0]
                c = post.mvn.covariance_matrix
                mean_t.append(m[:, 1])
                var_t.append(c[:, 1, 1])
                var_l.append(c[:, 0, 0])
                cov.append(c[:, 0, 1])
        mean_t = torch.cat(mean_t).numpy()
        var_t = np.clip(torch.cat(var_t).numpy(), 1e-18, None)
        var_l = np.clip(torch.cat(var_l).numpy(), 1e-18, None)
        cov = torch.cat(cov).numpy()
        sd_t = np.sqrt(var_t)
        incumbent = float(np.min(mean_t)) if best is None else best
        z = (incumbent - mean_t) / sd_t
        ei = (incumbent - mean_t) * norm.cdf(z) + sd_t * norm.pdf(z)
        corr = np.clip(cov / np.sqrt(var_l * var_t), 0.0, 1.0)
        informative = 1.0 - np.sqrt(noise) / np.sqrt(var_l + noise)
        values[:, j] = ei * corr * informative * (target_cost / costs[j]) ** alpha
    return values


def propose_multifidelity(
    W: np.ndarray,  # noqa: N803
    fidelity: np.ndarray,
    y: np.ndarray,
    domains: list[str],
    menu: FidelityMenu,
    q: int = 1,
    cost: CostModel | None = None,
    alpha: float = 1.0,
    bounds: Bounds | None = None,
    n_candidates: int = 2048,
    n_initial: int | None = None,
    min_distance: float = 0.05,
    seed: int = 0,
    model: MFGPPredictor | None = None,
    switch_flops: float | None = None,
    switch_runs: int | None = None,
    pending: tuple[np.ndarray, np.ndarray] | None = None,
    free: np.ndarray | None = None,
) -> MultiFidelityProposal:
    """The next ``q`` (mixture, fidelity) runs and the recommendation at ``menu.target``.

    ``W``, ``fidelity`` (log10 params, log10 tokens) and ``y`` are the logged runs (objective
    values, lower is better). With fewer than ``n_initial`` runs (default K + 1) the proposals
    are Sobol mixtures at the cheapest menu fidelity (a space-filling start). A fitted
    ``model`` may be passed to skip the fit.

    ``switch_flops`` is the phase switch of a two-phase search: once the logged runs at
    fidelities other than the target have cost at least this many FLOPs (``cost`` on their
    fidelity columns), every proposal is at ``menu.target`` (EI at the target from the model of
    all runs; a note says so). ``None`` (the default): never switch. ``switch_runs`` is the
    same switch counted in runs: once at least this many runs are logged below the target.
    Either reached switches.

    ``pending`` (mixtures, fidelity features) are runs in flight: the model is conditioned on
    them at their fidelity with its own predicted outcome (the kriging believer, the pending
    points of a non-MC acquisition): the mean is unchanged, the uncertainty there shrinks, so
    the acquisition does not buy the same information twice. They count as runs below the
    target for ``switch_runs`` and ``switch_flops`` (they are paid for).

    ``free`` (bool per logged row) marks observations that cost nothing: intermediate
    checkpoints of a logged run (``runs train --eval-every``), at their own tokens. The model
    is fitted on them like on any run, but they are not runs: they count neither towards
    ``n_initial`` nor towards either switch, and the space-filling start continues the design
    after the paid runs only.
    """
    cost = cost or CostModel()
    if q < 1:
        raise MixsurrogateError(f"-n must be >= 1, got {q}")
    if not alpha >= 0:
        raise MixsurrogateError(f"--cost-alpha must be >= 0, got {alpha}")
    if switch_flops is not None and not switch_flops >= 0:
        raise MixsurrogateError(f"switch_flops must be >= 0, got {switch_flops}")
    if switch_runs is not None and not switch_runs >= 0:
        raise MixsurrogateError(f"--switch-after must be >= 0, got {switch_runs}")
    W = np.atleast_2d(np.asarray(W, dtype=float)).reshape(-1, len(domains))  # noqa: N806
    y = np.asarray(y, dtype=float).ravel()
    free = np.zeros(len(W), dtype=bool) if free is None else np.asarray(free, dtype=bool)
    if free.shape != (len(W),):
        raise ValueError(f"free marks {free.shape} rows, {len(W)} runs are logged")
    runs = int((~free).sum())  # paid runs (a run's checkpoints are part of its one cost)
    k = len(domains)
    bounds = bounds or Bounds.unbounded(k)
    n_initial = k + 1 if n_initial is None else n_initial
    costs = menu.costs(cost)
    cheapest = menu.items[int(np.argmin(costs))]
    # one stream per (seed, logged runs): seed s with n runs and seed s+1 with n-1 runs share
    # no draws (``seed + len(W)`` made them identical), as in ``strategies.SearchState.rng``
    rng = np.random.default_rng([seed, len(W), MULTIFIDELITY_SALT])
    free_note = (
        [
            f"{int(free.sum())} intermediate checkpoint row(s) used as free observations at "
            "their own tokens (not counted as runs or FLOPs)"
        ]
        if free.any()
        else []
    )
    if runs < n_initial:
        # the design's next points after the logged and the in-flight ones
        done = runs + (0 if pending is None else len(pending[0]))
        mixtures = bounds.sample(done + q, seed=seed)[done:]
        note = (
            f"space-filling start: {runs} of {n_initial} runs logged, Sobol mixtures at the "
            f"cheapest fidelity {cheapest}"
        )
        return MultiFidelityProposal(
            domains, mixtures, [cheapest] * q, np.full(q, cost.flops(cheapest)),
            np.full(q, np.nan), menu.target, bounds.sample(1, seed=seed)[0], np.nan, np.nan,
            [note, *free_note],
        )  # fmt: skip
    model = model or fit_multifidelity_model(W, fidelity, y, seed=seed)
    phase_notes = list(free_note)
    paid = np.atleast_2d(np.asarray(fidelity, dtype=float)).reshape(-1, 2)[~free]
    if pending is not None and len(pending[0]):
        model = with_pending(model, pending[0], pending[1])
        paid = np.vstack([paid, np.asarray(pending[1], dtype=float).reshape(-1, 2)])
        phase_notes.append(
            f"{len(pending[0])} run(s) in flight: pending in the acquisition (the model "
            "conditioned on its own prediction there)"
        )
    spent = exploration_flops(paid, menu.target, cost)
    below = exploration_runs(paid, menu.target)
    if switch_flops is not None and spent >= switch_flops:
        phase_notes.append(
            f"confirmation phase: {spent:.3g} FLOPs spent below the target >= switch "
            f"{switch_flops:.3g}; proposals at the target {menu.target} only"
        )
    elif switch_runs is not None and below >= switch_runs:
        phase_notes.append(
            f"confirmation phase: {below} runs below the target >= switch {switch_runs}; "
            f"proposals at the target {menu.target} only"
        )
    if any(n.startswith("confirmation phase") for n in phase_notes):
        menu = FidelityMenu.build([], menu.target)
    # the logged mixtures as judged at the target: the model's target-fidelity objective there,
    # not their raw losses (those are lowest at the largest size, whatever the mixture)
    at_target, _ = target_posterior(model, W, menu.target)
    candidates = np.vstack(
        [
            bounds.sample(n_candidates, seed=int(rng.integers(2**31))),
            local_candidates(W, at_target, bounds, rng),
        ]
    )
    # the incumbent: the best target-fidelity mean among the logged mixtures (a noisy-EI
    # incumbent: no run need have been trained at the target)
    values = augmented_ei(model, candidates, menu, cost, alpha, best=float(at_target.min()))
    chosen_w, chosen_f, chosen_v = [], [], []
    flat = np.argsort(-values, axis=None)
    for index in flat:
        i, j = np.unravel_index(index, values.shape)
        w = candidates[i]
        if any(np.linalg.norm(w - c) < min_distance for c in chosen_w):
            continue
        chosen_w.append(w)
        chosen_f.append(menu.items[j])
        chosen_v.append(values[i, j])
        if len(chosen_w) == q:
            break
    rec, rec_mean, rec_std = recommend(model, np.vstack([candidates, W]), menu.target)
    notes = phase_notes + [f"fit: {n}" for n in model.fit_notes_]
    return MultiFidelityProposal(
        domains, np.array(chosen_w), chosen_f, np.array([cost.flops(f) for f in chosen_f]),
        np.array(chosen_v) / np.array([cost.flops(f) for f in chosen_f]) * cost.flops(menu.target),
        menu.target, rec, rec_mean, rec_std, notes,
    )  # fmt: skip


def exploration_flops(
    fidelity: np.ndarray,
    target: Fidelity,
    cost: CostModel | None = None,
) -> float:
    """FLOPs of the logged runs (log10 params, log10 tokens per row) not at the target."""
    cost = cost or CostModel()
    F = np.atleast_2d(np.asarray(fidelity, dtype=float)).reshape(-1, 2)  # noqa: N806
    off_target = ~np.all(np.isclose(F, target.features(), rtol=0, atol=1e-9), axis=1)
    params, tokens = 10 ** F[off_target, 0], 10 ** F[off_target, 1]
    return float(np.sum(cost.factor * params * tokens + cost.overhead))


def with_pending(
    model: MFGPPredictor,
    W: np.ndarray,  # noqa: N803
    fidelity: np.ndarray,
) -> MFGPPredictor:
    """A copy of ``model`` conditioned on runs in flight (mixtures ``W`` at ``fidelity``, log10
    params and tokens per row) with its posterior mean as their outcome."""
    W = np.atleast_2d(np.asarray(W, dtype=float))  # noqa: N806
    F = np.asarray(fidelity, dtype=float).reshape(len(W), -1)  # noqa: N806
    X = torch.as_tensor(model.design_matrix(W, F), dtype=torch.float64)  # noqa: N806
    with torch.no_grad():
        believed = model.model_.posterior(X).mean
    conditioned = copy.copy(model)
    conditioned.model_ = model.model_.condition_on_observations(X, believed)
    return conditioned


def exploration_runs(fidelity: np.ndarray, target: Fidelity) -> int:
    """How many logged runs (log10 params, log10 tokens per row) are not at the target."""
    F = np.atleast_2d(np.asarray(fidelity, dtype=float)).reshape(-1, 2)  # noqa: N806
    return int((~np.all(np.isclose(F, target.features(), rtol=0, atol=1e-9), axis=1)).sum())


def local_candidates(
    W: np.ndarray,  # noqa: N803
    at_target: np.ndarray,
    bounds: Bounds,
    rng: np.random.Generator,
    n: int = 256,
    n_centres: int = 8,
) -> np.ndarray:
    """Candidates near the best logged mixtures by ``at_target`` (their predicted objective at
    the target fidelity; a mixture logged at several sizes counts once), as Dirichlet
    perturbations inside the bounds."""
    order = np.argsort(at_target, kind="stable")
    centres: list[np.ndarray] = []
    for i in order:
        if not any(np.allclose(W[i], c, rtol=0, atol=1e-9) for c in centres):
            centres.append(W[i])
        if len(centres) == n_centres:
            break
    best = np.array(centres)
    picked = best[rng.integers(0, len(best), n)]
    noisy = np.array([rng.dirichlet(50 * c + 0.05) for c in picked])
    return bounds.repair(noisy)


def recommend(
    model: MFGPPredictor,
    W: np.ndarray,  # noqa: N803
    target: Fidelity,
) -> tuple[np.ndarray, float, float]:
    """The mixture of ``W`` minimising the posterior mean at the target: (mixture, predicted
    objective, its std), in the objective's units."""
    mean, std = target_posterior(model, W, target)
    i = int(np.argmin(mean))
    if model.log_target:  # model space is log loss
        return W[i], float(np.exp(mean[i])), float(np.exp(mean[i]) * std[i])
    return W[i], float(mean[i]), float(std[i])


def describe(proposal: MultiFidelityProposal) -> list[str]:
    """Readable lines: each proposed run, then the recommendation."""
    lines = []
    for i, (w, f, c) in enumerate(
        zip(proposal.mixtures, proposal.fidelities, proposal.flops, strict=True)
    ):
        top = np.argsort(-w)[:5]
        shares = ", ".join(f"{proposal.domains[j]} {w[j]:.3f}" for j in top)
        lines.append(f"run {i + 1}: {f} ({c:.3g} FLOPs): {shares}")
    rec = proposal.recommended
    top = np.argsort(-rec)[:5]
    value = (
        f"predicted {proposal.recommended_loss:.4f} +- {proposal.recommended_std:.4f}"
        if np.isfinite(proposal.recommended_loss)
        else "not predicted yet"
    )
    lines.append(
        f"recommendation at the target {proposal.target} ({value}): "
        + ", ".join(f"{proposal.domains[j]} {rec[j]:.3f}" for j in top)
    )
    return lines


__all__ = [
    "MultiFidelityProposal",
    "augmented_ei",
    "describe",
    "exploration_flops",
    "exploration_runs",
    "fit_multifidelity_model",
    "format_size",
    "local_candidates",
    "propose_multifidelity",
    "recommend",
    "target_posterior",
    "with_pending",
]
