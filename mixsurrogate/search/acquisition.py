"""Batch acquisition over a candidate set: sequential greedy qLogNoisyExpectedImprovement.

Scoring thousands of candidates with Monte-Carlo qLogNEI costs seconds (each evaluation is a
joint posterior with the baseline runs), so candidates are first ranked by analytic LogEI
against the best posterior mean of the logged runs (cheap, closed form), and only the best
``SHORTLIST`` go through the batch qLogNEI selection.

Greedy selection is what ``optimize_acqf_discrete`` does; it is written out here so that a
per-candidate log-probability of satisfying outcome constraints can be added to the
acquisition (constrained EI: EI x P(feasible)), and so that pending runs (in flight, no loss
yet) enter as ``X_pending`` and are never proposed again. The MC sampler is seeded and the
whole selection runs on a forked, seeded torch generator: same inputs, same batch.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import torch
from botorch.acquisition.analytic import LogExpectedImprovement
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.sampling import SobolQMCNormalSampler

from ..predictors.gp_common import one_thread_if_small
from .model import ObjectiveModel

MC_SAMPLES = 128
CHUNK = 1024
SHORTLIST = 192


def acquisition_function(
    model: ObjectiveModel,
    pending: np.ndarray | None,
    seed: int,
    incumbents: np.ndarray | None = None,
) -> qLogNoisyExpectedImprovement:
    """qLogNEI over the ``incumbents`` (default: every training run), with pending mixtures
    as ``X_pending``."""
    x_pending = None if pending is None or len(pending) == 0 else model.design(pending)
    return qLogNoisyExpectedImprovement(
        model.botorch_model,
        X_baseline=model.design(model.W if incumbents is None else incumbents),
        sampler=SobolQMCNormalSampler(torch.Size([MC_SAMPLES]), seed=seed),
        prune_baseline=True,
        X_pending=x_pending,
    )


def _values(acqf, X: torch.Tensor) -> np.ndarray:  # noqa: N803
    """Acquisition values of each row of ``X``; on one torch thread for a small model, as the
    GP's own fit and posterior run (two threads made a 64-run step 7-13x slower on 2 cores)."""
    n_train = len(acqf.model.train_targets)
    with torch.no_grad(), one_thread_if_small(n_train):
        return torch.cat([acqf(chunk.unsqueeze(1)) for chunk in torch.split(X, CHUNK)]).numpy()


def analytic_log_ei(
    model: ObjectiveModel, candidates: np.ndarray, incumbents: np.ndarray | None = None
) -> np.ndarray:
    """Closed-form LogEI over the best posterior mean of the ``incumbents`` (default: the
    logged runs; a noise-robust incumbent, the observed best would be optimistic)."""
    rows = model.W if incumbents is None else incumbents
    incumbent = float(-model.mean(rows).min())  # the GP models the negated objective
    return _values(
        LogExpectedImprovement(model.botorch_model, best_f=incumbent), model.design(candidates)
    )


def select_batch(
    model: ObjectiveModel,
    candidates: np.ndarray,
    q: int,
    pending: np.ndarray | None = None,
    log_feasibility: np.ndarray | None = None,
    seed: int = 0,
    incumbents: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The ``q`` candidates chosen greedily by log-EI (+ log P(feasible)), and their values.

    Each pick joins the pending set before the next, so the batch spreads out (the joint
    qLogNEI of the batch grows least by repeating a point). Also returns the warnings the
    acquisition raised (such as Cholesky jitter), counted. With outcome constraints, the
    ``incumbents`` are the logged runs that satisfy them: improving on an infeasible run is
    no improvement (constrained EI, Gardner et al. 2014).
    """
    penalty = np.zeros(len(candidates)) if log_feasibility is None else log_feasibility
    if len(candidates) > SHORTLIST:
        keep = np.argsort(-(analytic_log_ei(model, candidates, incumbents) + penalty))[:SHORTLIST]
        candidates, penalty = candidates[keep], penalty[keep]
    X = model.design(candidates)  # noqa: N806
    chosen: list[int] = []
    values: list[float] = []
    held = [] if pending is None else list(np.atleast_2d(pending))
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(seed)
        for _ in range(min(q, len(candidates))):
            acqf = acquisition_function(model, np.array(held) if held else None, seed, incumbents)
            score = _values(acqf, X) + penalty
            score[chosen] = -np.inf
            best = int(np.argmax(score))
            chosen.append(best)
            values.append(float(score[best]))
            held.append(candidates[best])
    return candidates[chosen], np.array(values), count_warnings(caught)


def count_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """Warnings raised during a selection, counted by kind (recorded, never silenced)."""
    counts = Counter(f"{w.category.__name__}: {str(w.message).split(';')[0][:80]}" for w in caught)
    return [f"{n} x {label}" for label, n in counts.items()]


def top_by_acquisition(model: ObjectiveModel, candidates: np.ndarray, m: int) -> np.ndarray:
    """The ``m`` best candidates by analytic LogEI (seeds for local refinement)."""
    return candidates[np.argsort(-analytic_log_ei(model, candidates))[:m]]
