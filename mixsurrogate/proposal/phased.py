"""``propose --phases P``: the schedule to train (exploit) or the next schedules (explore) of a
schedule log, with the interval of the predicted objective and a cross-fitted optimism report.

The surrogate is fitted on the log's flattened schedules (``runs.inputs``) and minimised over
``schedule.ScheduleProblem``. The robust recommenders of a mixture (``robust.py``) search the
simplex and are not applied to schedules; instead, as they are judged there, the argmin schedule
and the prior (the uniform mixture inside the bounds in every phase, default shares) are
judged by cross-fitting: over :data:`robust.HALVINGS` seeded halvings of the runs, a surrogate
fitted on one half proposes its argmin schedule and one fitted on the other half judges it;
optimism is the full-data prediction minus the judges' mean (below 0: the surrogate promises
more than the judges expect). The recommendation stays the argmin; a prior judged better in
every halving is reported in a note.
"""

from __future__ import annotations

import numpy as np

from ..evaluation.fitting import FeatureFn, PredictorSpec
from ..objective import Objective
from ..runs.log import RunsLog
from .constraints import uniform_in_bounds
from .record import Proposal, nearest_runs, objective_values
from .robust import HALVINGS, MIN_RUNS
from .schedule import ScheduleProblem, best_schedule, explore_schedules
from .surrogate import FittedObjective, conformal_objective_interval


def propose_schedule(
    log: RunsLog,
    spec: PredictorSpec,
    objective: Objective,
    problem: ScheduleProblem,
    feature_fn: FeatureFn | None = None,
    *,
    seed: int = 0,
    explore: bool = False,
    n: int = 1,
    interval_level: float | None = 0.9,
    halvings: int = HALVINGS,
) -> Proposal:
    """The exploit schedule (or ``n`` explore schedules) of ``log`` under ``problem``."""
    done = log.completed()
    space = problem.space
    y = objective_values(done, objective)
    done = done.subset(np.flatnonzero(np.isfinite(y)))
    f = FittedObjective(spec, done, objective, feature_fn, space=space)
    logged = space.schedules(done)
    if explore:
        std = f.std if spec.capabilities.std or spec.capabilities.objective_std else None
        avoid = np.vstack([space.inputs(log)])
        weights, shares, notes = explore_schedules(f, std, problem, n, avoid, seed=seed)
    else:
        best_w, best_s, notes = best_schedule(
            f, problem, (logged.weights, logged.shares), seed=seed, tree=spec.capabilities.tree
        )
        weights, shares = best_w[None], best_s[None]
    X = problem.encode(weights, shares)  # noqa: N806
    losses = f.set_losses(X)
    predicted = objective.combine(losses, f.sets)
    interval = None
    if interval_level:
        lo, hi, how = conformal_objective_interval(
            spec, done, objective, feature_fn, predicted, interval_level, seed=seed, space=space
        )
        interval = (interval_level, lo, hi, how)
    effective = np.einsum("np,npk->nk", shares, weights)
    notes = [*notes, f"surrogate inputs: {space.describe()}; MDE features (if any) of the "
             f"recency-weighted mixture (gamma {space.recency:g}, runs.inputs)"]  # fmt: skip
    recommendation = None
    if not explore:
        recommendation = versus_best_logged(done, objective, f, effective[0], predicted, interval)
        report, more = optimism_report(done, spec, objective, problem, feature_fn, f, weights[0],
                                       shares[0], seed, halvings)  # fmt: skip
        notes += more
        if report is not None:
            recommendation["optimism_report"] = report
    return Proposal(
        mode="explore" if explore else "exploit",
        domains=log.domains,
        mixtures=effective,
        objective=predicted,
        objective_std=f.std(X),
        objective_interval=interval,
        set_losses={s: losses[:, j] for j, s in enumerate(f.sets)},
        nearest_run=nearest_runs(done, effective, objective),
        notes=notes,
        recommendation=recommendation,
        fitted=f,
        phase_weights=weights,
        phase_shares=shares,
    )


def versus_best_logged(
    log: RunsLog,
    objective: Objective,
    f: FittedObjective,
    mixture: np.ndarray,
    predicted: np.ndarray,
    interval: tuple | None,
) -> dict:
    """The argmin schedule as the recommendation, beside the best logged run and what the
    surrogate predicts at that run's own schedule (``exploit.versus_best_observed``'s shape)."""
    values = objective_values(log, objective)
    best = int(np.nanargmin(values))
    there = float(f(f.space.inputs(log.subset([best])))[0])
    return {
        "same_as_proposal": True,
        "recommender": "argmin",
        "mixture": dict(zip(log.domains, map(float, mixture), strict=True)),
        "predicted_objective": float(predicted[0]),
        "interval": None
        if interval is None
        else {"level": interval[0], "lower": float(interval[1][0]), "upper": float(interval[2][0])},
        "best_observed_run": {
            "run_id": log.run_ids[best],
            "observed": float(values[best]),
            "posterior_mean": there,
        },
        "notes": [],
    }


def prior_schedule(problem: ScheduleProblem) -> tuple[np.ndarray, np.ndarray]:
    """The uniform mixture inside the bounds in every phase, with the problem's shares (equal
    when free): the reference every argmin is judged beside (it may break the epoch caps)."""
    p = problem.n_phases
    w = uniform_in_bounds(problem.bounds)
    shares = problem.fixed_shares()
    shares = np.full(p, 1 / p) if shares is None else shares
    return np.tile(w, (p, 1)), shares


def optimism_report(
    log: RunsLog,
    spec: PredictorSpec,
    objective: Objective,
    problem: ScheduleProblem,
    feature_fn: FeatureFn | None,
    f: FittedObjective,
    weights: np.ndarray,
    shares: np.ndarray,
    seed: int,
    halvings: int,
) -> tuple[dict | None, list[str]]:
    """(the argmin's and the prior's cross-fitted judgement, notes); None with a note when the
    log is too small to halve."""
    n = len(log)
    if n < MIN_RUNS:
        return None, [
            f"optimism report not computed: {n} completed run(s) are too few to cross-fit "
            f"(at least {MIN_RUNS}); the recommendation is the surrogate's argmin, unjudged"
        ]
    rng = np.random.default_rng([seed, n, 22])
    prior_w, prior_s = prior_schedule(problem)
    judged, own, prior = [], [], []
    for _ in range(halvings):
        order = rng.permutation(n)
        halves = (np.sort(order[: n // 2]), np.sort(order[n // 2 :]))
        models = [
            FittedObjective(spec, log.subset(rows), objective, feature_fn, space=problem.space)
            for rows in halves
        ]
        for a, b in ((0, 1), (1, 0)):
            w, s, _ = best_schedule(models[a], problem, n_candidates=512, n_starts=1, seed=seed,
                                    tree=spec.capabilities.tree)  # fmt: skip
            X = problem.encode(np.stack([w, prior_w]), np.stack([s, prior_s]))  # noqa: N806
            judge = models[b](X)
            judged.append(float(judge[0]))
            prior.append(float(judge[1]))
            own.append(float(models[a](X[:1])[0]))
    predicted = float(f(problem.encode(weights[None], shares[None]))[0])
    diff = np.asarray(prior) - np.asarray(judged)
    report = {
        "halvings": halvings,
        "argmin": {
            "predicted": predicted,
            "judged": float(np.mean(judged)),
            "judged_std": float(np.std(judged)),
            "in_half_predicted": float(np.mean(own)),
            "optimism": predicted - float(np.mean(judged)),
        },  # fmt: skip
        "prior": {
            "schedule": "uniform inside the bounds in every phase",
            "judged": float(np.mean(prior)),
        },  # fmt: skip
    }
    notes = [
        f"optimism report (cross-fitted over {halvings} halvings, both ways): the argmin "
        f"schedule is predicted {predicted:.4f}, judged {np.mean(judged):.4f} "
        f"(optimism {predicted - np.mean(judged):+.4f}); the prior is judged {np.mean(prior):.4f}"
    ]
    if (diff < 0).all():
        notes.append(
            "warning: the prior schedule was judged better than the argmin in every halving: "
            "the surrogate may be extrapolating; consider more runs before trusting it"
        )
    return report, notes
