"""Zero-run mode: with no run logged, minimise the experts' MDE objective directly."""

from __future__ import annotations

import numpy as np

from ..objective import Objective
from ..simplex import Bounds
from .optimiser import minimise_on_simplex
from .record import Proposal


def propose_zero_run(
    feature_map,
    objective: Objective,
    bounds: Bounds | None = None,
    n_candidates: int = 2048,
    n_starts: int = 4,
    seed: int = 0,
) -> Proposal:
    """With no run logged: minimise the experts' MDE objective directly.

    The MDE loss of a mixture is the loss of the ensemble of experts, an approximation of the
    model trained on that mixture; it needs no proxy run, only the score store.
    ``feature_map`` is an ``MDEFeatureMap`` over the objective's sets (token or budget kind:
    its first columns are the sets' losses, and it has ``loss_and_grad``).
    """
    sets = list(feature_map.eval_sets)
    weights = objective.vector(sets)
    bounds = bounds or Bounds.unbounded(len(feature_map.store.experts))

    def f(W: np.ndarray) -> np.ndarray:  # noqa: N803
        return feature_map.transform(W)[:, : len(sets)] @ weights

    def grad(w: np.ndarray) -> np.ndarray:
        _, jac = feature_map.loss_and_grad(w[None])
        return np.einsum("s,sk->k", weights, np.asarray(jac)[0] if np.ndim(jac) == 3 else jac)

    candidates = bounds.sample(n_candidates, seed=seed)
    starts = candidates[np.argsort(f(candidates))[:n_starts]]
    best = minimise_on_simplex(f, bounds, starts, grad=grad)[None]
    losses = feature_map.transform(best)[:, : len(sets)]
    return Proposal(
        mode="zero-run",
        domains=list(feature_map.store.experts),
        mixtures=best,
        objective=losses @ weights,
        set_losses={s: losses[:, j] for j, s in enumerate(sets)},
        notes=[
            "zero-run mode: no runs logged, minimised the MDE (ensemble-of-experts) objective directly; "
            "its values are ensemble losses, not trained-model losses"
        ],
    )
