"""The robust recommendation applied to an exploit proposal and to an explore step.

Exploit: the proposal *is* the recommendation, so the chosen recommender's mixture replaces
the argmin (with its predicted losses, interval and nearest run). Explore: the next runs stay
what the acquisition chose; the recommendation to train at full scale becomes the chosen
recommender's mixture. Both carry the :class:`~.robust.RobustChoice` for display and JSON.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import MixsurrogateError
from ..evaluation.protocol import FeatureFn, PredictorSpec
from ..objective import Objective
from ..runs.log import RunsLog
from ..search.campaign import CampaignData
from ..search.model import ObjectiveModel
from ..simplex import Bounds
from .constraints import uniform_in_bounds
from .exploit import versus_best_observed
from .kl_prior import Prior, kl_divergence
from .recommenders import PRIOR, FittedSurrogate, RecommenderSettings, default_kl_lambda
from .record import Proposal, nearest_runs, objective_values
from .robust import (
    AUTO,
    HALVINGS,
    MIN_RUNS,
    RobustChoice,
    check_recommender,
    extrapolation_warning,
    robust_recommendation,
)
from .surrogate import TREE_PREDICTORS, FittedObjective


def robust_prior(bounds: Bounds, prior: Prior | None) -> tuple[np.ndarray, str]:
    """The mixture every recommendation is compared with: ``--prior`` (moved inside the bounds
    when it is not) or the uniform mixture inside the bounds."""
    if prior is None:
        return uniform_in_bounds(bounds), "uniform inside the bounds"
    mixture = prior.mixture
    if not bounds.contains(mixture)[0]:
        return bounds.repair(mixture)[0], f"{prior.name}, moved inside the bounds"
    return mixture, prior.name


def too_few_runs(n: int, requested: str) -> str | None:
    """The note for a log too small to cross-fit (auto and argmin then keep the argmin,
    unjudged); any other recommender asked for is an error."""
    if n >= MIN_RUNS:
        return None
    if requested not in (AUTO, "argmin"):
        raise MixsurrogateError(
            f"--recommender {requested} is chosen and judged by cross-fitting halves of the runs "
            f"and needs at least {MIN_RUNS} completed runs; the log has {n}"
        )
    return (
        f"robust recommendation not applied: {n} completed run(s) are too few to cross-fit "
        f"(at least {MIN_RUNS}); the recommendation is the surrogate's argmin, unjudged"
    )


def _note(choice: RobustChoice) -> str:
    judged = "" if choice.chosen == PRIOR else f", judged {choice.chosen_report.judged:.4f}"
    return f"robust recommendation ({choice.chosen}{judged}): {choice.description}; {choice.how}"


def robust_exploit(
    proposal: Proposal,
    log: RunsLog,
    spec: PredictorSpec,
    objective: Objective,
    bounds: Bounds,
    feature_fn: FeatureFn | None = None,
    seed: int = 0,
    requested: str = AUTO,
    prior: Prior | None = None,
    halvings: int = HALVINGS,
) -> Proposal:
    """``proposal`` (from ``propose_exploit``) with its mixture replaced by the robust choice.

    The proposal's own mixture is the ``argmin`` (or, with ``--kl``, the ``kl``) recommender's.
    Not with ``--no-worse-than`` or ``--worst-case`` (the recommenders ignore the constraints):
    the proposal is returned with a note instead."""
    check_recommender(requested)
    if proposal.constraints is not None or proposal.worst_case is not None:
        if requested not in (AUTO, "argmin", "kl" if proposal.kl is not None else AUTO):
            raise MixsurrogateError(
                f"--recommender {requested} ignores --no-worse-than/--worst-case; with them "
                "the proposal is the constrained argmin (--recommender argmin or auto)"
            )
        proposal.notes.append(
            "robust recommendation not applied: the recommenders ignore --no-worse-than and "
            "--worst-case, so the proposal is the constrained argmin"
        )
        return proposal
    f: FittedObjective = proposal.fitted
    done = log.completed()
    y = objective_values(done, objective)
    keep = np.isfinite(y)
    done, y = done.subset(np.flatnonzero(keep)), y[keep]
    few = too_few_runs(len(done), requested)
    if few:
        return replace(proposal, notes=[*proposal.notes, few])
    prior_mixture, prior_name = robust_prior(bounds, prior)
    kl = proposal.kl
    lam = float(kl.lam) if kl is not None else default_kl_lambda(y)
    settings = RecommenderSettings(
        bounds, prior_mixture, lam, smooth=spec.name not in TREE_PREDICTORS
    )
    tree = spec.name in TREE_PREDICTORS  # the proposal of a tree is RegMix's top-k mean
    mine = "kl" if kl is not None and kl.lam > 0 else ("top-k" if tree else "argmin")
    known = {mine: proposal.mixtures[0]}
    interval = None
    if proposal.objective_interval is not None:
        level, lo, _, _ = proposal.objective_interval
        half = float(proposal.objective[0] - lo[0])

        def interval(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
            centre = f(W)
            return centre - half, centre + half

    def fit(rows: np.ndarray) -> FittedSurrogate:
        return FittedSurrogate(FittedObjective(spec, done.subset(rows), objective, feature_fn))

    choice = robust_recommendation(
        FittedSurrogate(f), fit, done.W, done.run_ids, settings, interval,
        proposal.objective_interval[0] if interval else 0.9, requested, prior_name, seed,
        halvings, known, default=mine,
    )  # fmt: skip
    choice = replace(
        choice, extrapolation=extrapolation_warning(choice.chosen_report, float(y.min()))
    )
    notes = [*proposal.notes, _note(choice)]
    if np.array_equal(choice.chosen_report.mixture, proposal.mixtures[0]):
        rec = {**proposal.recommendation, "recommender": choice.chosen}
        return replace(proposal, robust=choice, notes=notes, recommendation=rec)
    notes = [f"{mine}: {n}" for n in proposal.notes] + notes[len(proposal.notes) :]
    W = choice.chosen_report.mixture[None]  # noqa: N806
    losses = f.set_losses(W)
    predicted = f.objective.combine(losses, f.sets)
    new_interval = None
    if interval is not None:
        lo, hi = interval(W)
        new_interval = (proposal.objective_interval[0], lo, hi, proposal.objective_interval[3])
    new_kl = None if kl is None else replace(kl, kl=kl_divergence(W, kl.prior.mixture))
    return replace(
        proposal,
        mixtures=W,
        objective=predicted,
        objective_std=f.std(W),
        objective_interval=new_interval,
        set_losses={s: losses[:, j] for j, s in enumerate(f.sets)},
        nearest_run=nearest_runs(log, W, objective),
        recommendation={
            **versus_best_observed(log, objective, f, W[0], float(predicted[0]), new_interval),
            "recommender": choice.chosen,
        },
        notes=notes,
        kl=new_kl,
        robust=choice,
    )  # fmt: skip


def robust_explore(
    proposal: Proposal,
    data: CampaignData,
    bounds: Bounds,
    feature_fn: FeatureFn | None = None,
    seed: int = 0,
    requested: str = AUTO,
    prior: Prior | None = None,
    level: float = 0.9,
    halvings: int = HALVINGS,
) -> Proposal:
    """An explore step's proposal with the robust recommendation (and each next run's
    ``level`` interval); unchanged while the campaign is still in its space-filling design."""
    check_recommender(requested)
    model: ObjectiveModel | None = proposal.fitted
    if model is None or proposal.recommendation is None:
        return proposal
    few = too_few_runs(len(data.W), requested)
    if few:
        return replace(proposal, notes=[*proposal.notes, few])
    lo, hi = model.interval(proposal.mixtures, level)
    proposal = replace(
        proposal,
        objective_interval=(level, lo, hi, "the GP's posterior predictive, cv-calibrated"),
    )
    prior_mixture, prior_name = robust_prior(bounds, prior)
    settings = RecommenderSettings(bounds, prior_mixture, default_kl_lambda(data.y))
    rec = proposal.recommendation
    known = {"argmin": np.array([rec["mixture"][d] for d in data.domains])}

    hypers = model.hyper_parameters()

    def fit(rows: np.ndarray) -> ObjectiveModel:
        """A half's GP, conditioned with the full-data hyper-parameters (no L-BFGS: cheaper;
        the judge still sees only its half's runs)."""
        return ObjectiveModel(data.W[rows], data.y[rows], feature_fn, seed=seed, hypers=hypers)

    choice = robust_recommendation(
        model, fit, data.W, data.run_ids, settings, lambda W: model.interval(W, level), level,
        requested, prior_name, seed, halvings, known,
    )  # fmt: skip
    choice = replace(
        choice, extrapolation=extrapolation_warning(choice.chosen_report, float(data.y.min()))
    )
    chosen = choice.chosen_report
    note = _note(choice)
    rec = {
        **rec,
        "mixture": dict(zip(data.domains, map(float, chosen.mixture), strict=True)),
        "predicted_objective": chosen.predicted,
        "interval": {"level": level, "lower": chosen.lower, "upper": chosen.upper},
        "recommender": choice.chosen,
        "notes": [note, *rec["notes"][1:]] if choice.chosen != "argmin" else [*rec["notes"], note],
    }
    return replace(proposal, recommendation=rec, robust=choice)
