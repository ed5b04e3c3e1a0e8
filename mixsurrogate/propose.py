"""Choose mixtures: exploit (minimise the predicted objective), explore (the next runs to train),
and zero-run (minimise the experts' MDE objective when no run is logged yet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from .errors import MixsurrogateError
from .evaluate import FeatureFn, PredictorSpec
from .objective import Objective
from .predictors.multitarget import MultiTargetPredictor
from .runs import RunsLog
from .simplex import Bounds

TREE_PREDICTORS = ("lgbm", "lgbm+mde")


@dataclass
class Proposal:
    """Proposed mixtures with what the surrogate predicts for them."""

    mode: str
    domains: list[str]
    mixtures: np.ndarray  # (q, K)
    objective: np.ndarray  # (q,) predicted objective (nan where not predicted)
    objective_std: np.ndarray | None = None
    #: (level, lower, upper, how) of the predicted objective, when it was computed
    objective_interval: tuple[float, np.ndarray, np.ndarray, str] | None = None
    set_losses: dict[str, np.ndarray] = field(default_factory=dict)  # set -> (q,)
    nearest_run: list[tuple[str, float, float]] = field(
        default_factory=list
    )  # id, L2 distance, its objective
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "proposals": [
                {
                    "mixture": dict(zip(self.domains, map(float, w), strict=True)),
                    "objective": _num(self.objective[i]),
                    "objective_std": None
                    if self.objective_std is None
                    else _num(self.objective_std[i]),
                    "interval": None
                    if self.objective_interval is None
                    else {
                        "level": self.objective_interval[0],
                        "lower": _num(self.objective_interval[1][i]),
                        "upper": _num(self.objective_interval[2][i]),
                        "method": self.objective_interval[3],
                    },
                    "losses": {s: _num(v[i]) for s, v in self.set_losses.items()},
                    "nearest_run": None
                    if not self.nearest_run
                    else {
                        "run_id": self.nearest_run[i][0],
                        "distance": self.nearest_run[i][1],
                        "objective": _num(self.nearest_run[i][2]),
                    },
                }
                for i, w in enumerate(self.mixtures)
            ],
            "notes": self.notes,
        }


def _num(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def nearest_runs(
    log: RunsLog, W: np.ndarray, objective: Objective
) -> list[tuple[str, float, float]]:  # noqa: N803
    """For each mixture, the closest logged run (Euclidean on weights) and its true objective."""
    logged_obj = (
        objective_values(log, objective)
        if set(objective.sets) <= set(log.targets)
        else np.full(len(log), np.nan)
    )
    dist = np.linalg.norm(log.W[None, :, :] - np.atleast_2d(W)[:, None, :], axis=2)
    best = dist.argmin(axis=1)
    return [(log.run_ids[j], float(dist[i, j]), float(logged_obj[j])) for i, j in enumerate(best)]


class FittedObjective:
    """A multi-target surrogate fitted on the objective's sets, seen as f(W) -> objective."""

    def __init__(
        self, spec: PredictorSpec, log: RunsLog, objective: Objective, feature_fn: FeatureFn | None
    ):
        check_objective_sets(log, objective)
        self.spec, self.objective, self.feature_fn = spec, objective, feature_fn
        self.sets = objective.sets
        self.model = MultiTargetPredictor(spec.name, spec.params)
        Y = np.column_stack([log.loss(s) for s in self.sets])  # noqa: N806
        self.model.fit(log.W, Y, self.sets, log.domains, features=self._features(log.W))
        self.model.require_fitted(self.sets)  # a proposal needs every set of the objective

    def _features(self, W: np.ndarray) -> np.ndarray | None:  # noqa: N803
        if not self.spec.uses_features:
            return None
        if self.feature_fn is None:
            raise MixsurrogateError(
                f"predictor {self.spec.name!r} needs MDE features: pass --scores"
            )
        return self.feature_fn(W)

    def set_losses(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        W = np.atleast_2d(W)  # noqa: N806
        return self.model.predict(W, features=self._features(W))

    def __call__(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.objective.combine(self.set_losses(W), self.sets)

    def std(self, W: np.ndarray) -> np.ndarray | None:  # noqa: N803
        if not hasattr(self.model, "predict_std"):
            return None
        try:
            stds = self.model.predict_std(
                np.atleast_2d(W), features=self._features(np.atleast_2d(W))
            )
        except (AttributeError, NotImplementedError):
            return None
        return self.objective.combine_std(stds, self.sets)


def conformal_objective_interval(
    spec: PredictorSpec,
    log: RunsLog,
    objective: Objective,
    feature_fn: FeatureFn | None,
    predicted: np.ndarray,
    level: float = 0.9,
    folds: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, str]:
    """A ``level`` interval of the predicted objective of new runs, by split conformal on the
    objective's cross-validated residuals over the logged runs (refits the predictor ``folds``
    times; the objective's sets are fitted together, so their correlated errors count)."""
    from .evaluate import fit_predict
    from .predictors.intervals import conformal_quantile
    from .splits import cv_splits

    folds = min(folds, len(log))
    truth = objective_values(log, objective)
    residuals = np.full(len(log), np.nan)
    for split in cv_splits(len(log), folds, 1, seed):
        outcome = fit_predict(
            spec, log.subset(split.train), log.W[split.test], objective.sets, feature_fn
        )
        if all(outcome.status[t][0] == "ok" for t in objective.sets):
            est = objective.combine(outcome.pred, objective.sets)
            residuals[split.test] = truth[split.test] - est
    half = conformal_quantile(residuals, level)
    how = f"split conformal over {folds}-fold CV of the {int(np.isfinite(residuals).sum())} logged runs"
    return predicted - half, predicted + half, how


def minimise_on_simplex(
    f: Callable[[np.ndarray], np.ndarray],
    bounds: Bounds,
    starts: np.ndarray,
    grad: Callable[[np.ndarray], np.ndarray] | None = None,
    max_iter: int = 100,
) -> np.ndarray:
    """Multi-start SLSQP on {sum w = 1, lower <= w <= upper}; returns the best point found.

    Without an analytic gradient, forward differences are evaluated as one batch of K+1
    points, which costs one predictor call instead of K+1.
    """
    k = starts.shape[1]
    step = 1e-6

    def value_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        if grad is not None:
            return float(f(w[None])[0]), grad(w)
        batch = np.vstack([w, w + step * np.eye(k)])
        vals = f(batch)
        return float(vals[0]), (vals[1:] - vals[0]) / step

    best_w, best_v = None, np.inf
    for w0 in starts:
        res = minimize(
            value_and_grad,
            w0,
            jac=True,
            method="SLSQP",
            bounds=list(zip(bounds.lower, bounds.upper, strict=True)),
            constraints=[
                {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}
            ],
            options={"maxiter": max_iter, "ftol": 1e-9},
        )
        w = bounds.repair(res.x)[0]
        v = float(f(w[None])[0])
        if v < best_v:
            best_w, best_v = w, v
    return best_w


def propose_exploit(
    log: RunsLog,
    spec: PredictorSpec,
    objective: Objective,
    bounds: Bounds | None = None,
    feature_fn: FeatureFn | None = None,
    n_candidates: int = 8192,
    n_starts: int = 3,
    top_k: int = 100,
    seed: int = 0,
    interval_level: float | None = 0.9,
) -> Proposal:
    """The mixture minimising the predicted objective inside the bounds, with a
    ``interval_level`` interval of its predicted objective (None: no interval).

    Smooth predictors: the best of a Sobol candidate set (plus the logged runs inside the
    bounds) seeds multi-start SLSQP. Trees are piecewise constant, so gradients say nothing:
    as RegMix does, average the top-k candidates instead.
    """
    bounds = bounds or Bounds.unbounded(len(log.domains))
    f = FittedObjective(spec, log, objective, feature_fn)
    logged = log.W[bounds.contains(log.W)]
    candidates = np.vstack([bounds.sample(n_candidates, seed=seed), logged])
    values = np.concatenate(
        [f(chunk) for chunk in np.array_split(candidates, max(1, len(candidates) // 4096))]
    )
    order = np.argsort(values)
    notes = []
    if spec.name in TREE_PREDICTORS:
        best = bounds.repair(candidates[order[:top_k]].mean(axis=0))[0]
        notes.append(
            f"tree predictor: mean of the top {top_k} of {len(candidates)} candidates (as RegMix)"
        )
    else:
        best = minimise_on_simplex(f, bounds, candidates[order[:n_starts]])
        notes.append(f"multi-start SLSQP from the best {n_starts} of {len(candidates)} candidates")
    W = best[None]  # noqa: N806
    losses = f.set_losses(W)
    std = f.std(W)
    predicted = f.objective.combine(losses, f.sets)
    interval = None
    if interval_level:
        lo, hi, how = conformal_objective_interval(
            spec, log, objective, feature_fn, predicted, interval_level, seed=seed
        )
        interval = (interval_level, lo, hi, how)
    return Proposal(
        mode="exploit",
        domains=log.domains,
        mixtures=W,
        objective=predicted,
        objective_std=std,
        objective_interval=interval,
        set_losses={s: losses[:, j] for j, s in enumerate(f.sets)},
        nearest_run=nearest_runs(log, W, objective),
        notes=notes,
    )


def check_objective_sets(log: RunsLog, objective: Objective) -> None:
    """One clear error if the runs log lacks a loss the objective needs."""
    missing = [s for s in objective.sets if s not in log.targets]
    if missing:
        raise MixsurrogateError(
            f"the runs log has no loss for objective set(s): {', '.join(missing)}"
        )


def objective_values(log: RunsLog, objective: Objective) -> np.ndarray:
    """The true objective of every logged run."""
    check_objective_sets(log, objective)
    return objective.combine(np.column_stack([log.loss(s) for s in objective.sets]), objective.sets)


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
    ``feature_map`` is an ``MDEFeatureMap`` over the objective's sets (token kind).
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
