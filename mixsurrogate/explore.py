"""Explore: which runs to train next (batch Bayesian optimisation on the simplex).

While the log is small (fewer than ~2(K+1) runs) a GP cannot learn K lengthscales, so the
next runs are space-filling Sobol points. After that: a GP on the blended objective (with MDE
features when a score store is given) and batch qLogNoisyExpectedImprovement, maximised over a
large Sobol candidate set inside the bounds (greedy sequential selection of the q points).
Candidates are scored through the GP's own input map, so MDE features and the simplex
embedding need no special optimiser; candidates already logged are removed first.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.optim import optimize_acqf_discrete

from .evaluate import FeatureFn
from .objective import Objective
from .predictors import make_predictor
from .propose import Proposal, nearest_runs, objective_values
from .runs import RunsLog
from .simplex import Bounds

DEDUP_DISTANCE = 1e-3


def sobol_phase_size(n_domains: int) -> int:
    """Runs to log before the GP takes over: about two per GP input dimension."""
    return 2 * (n_domains + 1)


def dedupe(
    candidates: np.ndarray, logged: np.ndarray, radius: float = DEDUP_DISTANCE
) -> np.ndarray:
    """Candidates farther than ``radius`` from every logged mixture."""
    if len(logged) == 0:
        return candidates
    dist = np.linalg.norm(candidates[:, None, :] - logged[None, :, :], axis=2).min(axis=1)
    return candidates[dist > radius]


def propose_explore(
    log: RunsLog,
    objective: Objective,
    q: int = 4,
    bounds: Bounds | None = None,
    feature_fn: FeatureFn | None = None,
    n_candidates: int = 4096,
    seed: int = 0,
) -> Proposal:
    """The next ``q`` mixtures to train."""
    k = len(log.domains)
    bounds = bounds or Bounds.unbounded(k)
    candidates = dedupe(bounds.sample(n_candidates + len(log) + q, seed=seed + len(log)), log.W)
    if len(log) < sobol_phase_size(k):
        chosen = candidates[:q]
        return Proposal(
            mode="explore",
            domains=log.domains,
            mixtures=chosen,
            objective=np.full(len(chosen), np.nan),
            nearest_run=nearest_runs(log, chosen, objective),
            notes=[
                f"{len(log)} runs < {sobol_phase_size(k)} = 2(K+1): space-filling Sobol points, "
                "not yet Bayesian optimisation"
            ],
        )
    y = objective_values(log, objective)
    use_features = feature_fn is not None
    gp = make_predictor("gp+mde" if use_features else "gp")
    features = feature_fn(log.W) if use_features else None
    gp.fit(log.W, -y, features=features)  # BoTorch maximises
    cand_features = feature_fn(candidates) if use_features else None
    X_train = torch.as_tensor(gp.design_matrix(log.W, features), dtype=torch.float64)  # noqa: N806
    X_cand = torch.as_tensor(gp.design_matrix(candidates, cand_features), dtype=torch.float64)  # noqa: N806
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acqf = qLogNoisyExpectedImprovement(gp.model_, X_baseline=X_train, prune_baseline=True)
        chosen_x, acq_values = optimize_acqf_discrete(acqf, q=q, choices=X_cand, unique=True)
    index = [int(torch.cdist(x[None], X_cand).argmin()) for x in chosen_x]
    chosen = candidates[index]
    chosen_features = cand_features[index] if use_features else None
    mean = -gp.predict(chosen, features=chosen_features)
    std = gp.predict_std(chosen, features=chosen_features)
    return Proposal(
        mode="explore",
        domains=log.domains,
        mixtures=chosen,
        objective=mean,
        objective_std=std,
        nearest_run=nearest_runs(log, chosen, objective),
        notes=[
            f"batch qLogNEI over {len(candidates)} Sobol candidates on a GP of the objective"
            + (" with MDE features" if use_features else ""),
            f"log acquisition values: {', '.join(f'{v:.3f}' for v in acq_values.detach().numpy().ravel())}",
        ],
    )
