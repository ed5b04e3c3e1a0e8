"""The whole method on built-in logged runs, no training: compare, plot, propose."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .evaluation import plots
from .evaluation import protocol as evaluate
from .evaluation.noise import noise_ceiling, noise_floor
from .mde.features import MDEFeatureMap
from .mde.store import load_scores
from .objective import Objective
from .proposal.exploit import propose_exploit
from .proposal.phased import propose_schedule
from .proposal.record import Proposal
from .proposal.schedule import ScheduleProblem
from .runs.builtin import regmix_runs, schedule_kinds, schedule_runs, schedules_folder
from .runs.inputs import InputSpace
from .runs.log import load_runs
from .simplex import Bounds

DEMO_PREDICTORS = ("mean", "linear", "loglinear", "lgbm", "gp", "dml", "bimix")
DEMO_TARGET = "pile_cc"


@dataclass
class DemoResult:
    comparison: pd.DataFrame  # Evaluation.summary(): predictor x target cells, held-out runs
    curve: pd.DataFrame  # Evaluation.summary(["size"]) of the learning curve
    target: str  # what the tables and plots show: an evaluation set or "objective"
    proposal: Proposal
    figures: list[Path]
    description: str
    predictor: str  # the predictor the proposal came from (best fitted one by mean Spearman)


def regmix_demo(out_dir: str | Path, n_train: int = 64, progress: bool = True) -> DemoResult:
    """RegMix's runs: fit every predictor on ``n_train`` 1M runs, test on the 256 held-out 1M
    runs, draw learning curves, and propose the mixture minimising Pile-CC loss.

    Few training runs is the realistic regime (each proxy run costs GPU hours), so the demo
    trains on a random subset rather than on all 512.
    """
    out_dir = Path(out_dir)
    train_all, test = regmix_runs("train-1m"), regmix_runs("test-1m")
    train = train_all.subset(
        sorted(pd.Series(range(len(train_all))).sample(n_train, random_state=0))
    )
    specs = [evaluate.PredictorSpec(n) for n in DEMO_PREDICTORS]
    comparison = evaluate.train_test(
        evaluate.EvaluationContext(specs, targets=[DEMO_TARGET], progress=progress), train, test
    ).summary()
    curve_specs = [s for s in specs if s.name in ("linear", "lgbm", "gp", "dml")]
    curve = evaluate.learning_curve(
        evaluate.EvaluationContext(curve_specs, targets=[DEMO_TARGET], progress=progress),
        train_all,
        test,
        [16, 32, 64, 128],
        draws=3,
    ).summary(["size"])
    best = _best_fitted(comparison, DEMO_TARGET)
    objective = Objective.parse(f"{DEMO_TARGET}=1", train.targets)
    proposal = propose_exploit(train, evaluate.PredictorSpec(best), objective)
    figures = [plots.learning_curves(curve, DEMO_TARGET, out_dir / "learning_curve.png")]
    values = train.loss(DEMO_TARGET)
    figures.append(
        plots.mixture_bars(
            train.domains,
            {
                f"proposed ({best})": proposal.mixtures[0],
                f"best of the {n_train} runs": train.W[int(values.argmin())],
            },
            out_dir / "proposal.png",
            f"mixture minimising predicted {DEMO_TARGET} loss",
        )
    )
    description = (
        f"RegMix's public runs (The Pile, 17 domains, 1M-parameter models): {n_train} training runs, "
        f"tested on 256 held-out runs, target loss:{DEMO_TARGET}"
    )
    return DemoResult(comparison, curve, DEMO_TARGET, proposal, figures, description, best)


def _best_fitted(summary: pd.DataFrame, target: str) -> str:
    """The best-ranking predictor that is fitted to the runs (raw MDE is the experts' scale,
    the mean says nothing), by mean Spearman on ``target``."""
    cells = summary[(summary["target"] == target) & (summary["status"] == "ok")]
    fitted = cells[~cells["predictor"].isin(["mde", "mean"])]
    pick = fitted if len(fitted) else cells
    return str(pick.sort_values("spearman", ascending=False).iloc[0]["predictor"])


MDE_DEMO_PREDICTORS = (
    "mean",
    "linear",
    "loglinear",
    "lgbm",
    "gp",
    "dml",
    "mde",
    "mde-cal",
    "linear+mde",
    "lgbm+mde",
    "gp+mde",
)
MDE_CURVE_PREDICTORS = ("linear", "gp", "mde-cal", "linear+mde", "gp+mde")
MDE_DEMO_OBJECTIVE = "val=0.5,task=0.5"


def realtext_paths() -> tuple[Path, Path]:
    """The committed real-text benchmark: runs log and score store shipped with the package
    (the folder also holds ``seeds.csv``, repeated seeds of two mixtures)."""
    folder = Path(str(resources.files("mixsurrogate") / "data" / "realtext"))
    return folder / "runs.csv", folder / "scores"


def mde_demo(
    runs_path: str | Path,
    scores_path: str | Path,
    out_dir: str | Path,
    progress: bool = True,
    predictors: tuple[str, ...] = MDE_DEMO_PREDICTORS,
    curve_predictors: tuple[str, ...] = MDE_CURVE_PREDICTORS,
    draws: int = 3,
) -> DemoResult:
    """Runs log + score store: 5-fold CV of rates-only and MDE predictors on the blended
    objective, a learning curve, and the proposed mixture for ``val=0.5,task=0.5``.

    A ``seeds.csv`` beside the runs log (repeated seeds of some mixtures) adds the seed-noise
    floor and the noise ceiling on Spearman to the description and the plot.
    """
    out_dir = Path(out_dir)
    log = load_runs(runs_path)
    store = load_scores(scores_path).reordered(log.domains)
    eval_id = str(log.frame["eval_id"].iloc[0]) if "eval_id" in log.frame.columns else None
    store.check_matches_runs(log.domains, log.targets, eval_id)
    objective = Objective.parse(MDE_DEMO_OBJECTIVE, log.targets, store.kinds)
    feature_fn = MDEFeatureMap(store, log.targets, kind="token")
    specs = [evaluate.PredictorSpec(n) for n in predictors]
    # single-domain runs are what the data experts are: MDE is exact there, so they are fitted
    # on but never scored (a from-scratch log too small for that scores everything)
    vertices = np.array([rid.startswith("vertex-") for rid in log.run_ids])
    scored = ~vertices if (~vertices).sum() >= 10 else None
    comparison = evaluate.cross_validate(
        evaluate.EvaluationContext(
            specs,
            targets=None,
            feature_fn=feature_fn,
            objective=objective,
            scored=scored,
            progress=progress,
        ),
        log,
        folds=5,
    ).summary()
    curve_specs = [evaluate.PredictorSpec(n) for n in curve_predictors]
    # a few runs are always left out to score on; tiny from-scratch logs get one small size
    pool = int(len(log) if scored is None else scored.sum())
    sizes = [n for n in (8, 16, 24, 32) if n <= pool - 4] or [max(3, pool - 3)]
    curve = evaluate.learning_curve(evaluate.EvaluationContext(curve_specs, targets=None, feature_fn=feature_fn, objective=objective, scored=scored, progress=progress), log, None, sizes, draws=draws).summary(["size"])  # fmt: skip
    noise_note, references = "", {}
    seeds_path = Path(runs_path).with_name("seeds.csv")
    if seeds_path.is_file():
        floor = noise_floor(load_runs(seeds_path), objective)[evaluate.OBJECTIVE_TARGET]
        scored_log = log if scored is None else log.subset(np.flatnonzero(scored))
        ceiling = noise_ceiling(scored_log, {evaluate.OBJECTIVE_TARGET: floor.std}, objective)
        references["noise ceiling"] = ceiling[evaluate.OBJECTIVE_TARGET]
        noise_note = (
            f"; seed-noise floor of the objective {floor.std:.3f} nats [95% CI {floor.lo:.3f}, "
            f"{floor.hi:.3f}], so even the exact expected losses would reach only Spearman "
            f"~{references['noise ceiling']:.2f} against these single-seed "
            + ("runs" if scored is None else "mixing runs (the vertex runs are not scored)")
        )
    best = _best_fitted(comparison, evaluate.OBJECTIVE_TARGET)
    proposal = propose_exploit(log, evaluate.PredictorSpec(best), objective, feature_fn=feature_fn)
    values = objective.combine(log.Y, log.targets)
    figures = [
        plots.learning_curves(
            curve, evaluate.OBJECTIVE_TARGET, out_dir / "learning_curve.png", references=references
        ),
        plots.mixture_bars(
            log.domains,
            {
                f"proposed ({best})": proposal.mixtures[0],
                "uniform": np.full(len(log.domains), 1 / len(log.domains)),
                f"best logged ({log.run_ids[int(values.argmin())]})": log.W[int(values.argmin())],
            },
            out_dir / "proposal.png",
            f"mixture minimising predicted {MDE_DEMO_OBJECTIVE}",
        ),
    ]
    description = (
        f"{len(log)} proxy runs over {len(log.domains)} real-text domains ({', '.join(log.domains)}) "
        f"with data experts' scores; objective {MDE_DEMO_OBJECTIVE} "
        f"(validation sets: {', '.join(store.names('val'))}; end tasks: {', '.join(store.names('task'))})"
        f"{noise_note}"
    )
    return DemoResult(
        comparison, curve, evaluate.OBJECTIVE_TARGET, proposal, figures, description, best
    )


SCHEDULE_PREDICTORS = ("mean", "linear", "lgbm", "gp")
SCHEDULE_CURVE_PREDICTORS = ("linear", "lgbm")


def schedules_demo(
    out_dir: str | Path,
    progress: bool = True,
    predictors: tuple[str, ...] = SCHEDULE_PREDICTORS,
    curve_predictors: tuple[str, ...] = SCHEDULE_CURVE_PREDICTORS,
    draws: int = 2,
) -> DemoResult:
    """The built-in schedule log (``schedules:runs``: 20 single-phase runs as constant
    schedules, 20 two-phase schedules): 5-fold CV of schedule surrogates (flattened inputs) on
    ``val=0.5,task=0.5``, a learning curve, and ``propose --phases 2`` (last-phase share 0.2)
    with the best of them, with its cross-fitted optimism report."""
    out_dir = Path(out_dir)
    log = schedule_runs("runs")
    objective = Objective.parse(MDE_DEMO_OBJECTIVE, log.targets, schedule_kinds(log.targets))
    context = evaluate.EvaluationContext(
        [evaluate.PredictorSpec(n) for n in predictors], objective=objective, progress=progress
    )
    comparison = evaluate.cross_validate(context, log, folds=5).summary()
    curve_context = evaluate.EvaluationContext(
        [evaluate.PredictorSpec(n) for n in curve_predictors], objective=objective,
        progress=progress,
    )  # fmt: skip
    sizes = [n for n in (16, 24, 32) if n <= len(log) - 4] or [max(3, len(log) - 4)]
    curve = evaluate.learning_curve(curve_context, log, None, sizes, draws=draws).summary(["size"])
    floor = noise_floor(load_runs(schedules_folder() / "seeds.csv"), objective)
    best = _best_fitted(comparison, evaluate.OBJECTIVE_TARGET)
    space = InputSpace.of(log)
    # the share the schedules were trained with (0.2 of 512 steps in whole steps: 0.1992), so
    # that the logged schedules are candidates of the proposal too
    shares = space.schedules(log).shares[:, -1]
    share = float(np.median(shares[[r.startswith("sched-") for r in log.run_ids]]))
    problem = ScheduleProblem(space, Bounds.unbounded(len(log.domains)), share=share)
    proposal = propose_schedule(log, evaluate.PredictorSpec(best), objective, problem)
    values = objective.combine(log.Y, log.targets)
    phases = {
        f"phase {p + 1} ({s:.0%} of tokens)": w
        for p, (w, s) in enumerate(zip(proposal.phase_weights[0], proposal.phase_shares[0],
                                           strict=True))
    }  # fmt: skip
    best_run = int(values.argmin())
    figures = [
        plots.learning_curves(curve, evaluate.OBJECTIVE_TARGET, out_dir / "learning_curve.png"),
        plots.mixture_bars(
            log.domains,
            {**phases, f"best logged ({log.run_ids[best_run]}, effective)": log.W[best_run]},
            out_dir / "proposal.png",
            f"two-phase schedule minimising predicted {MDE_DEMO_OBJECTIVE}",
        ),
    ]
    fl = floor[evaluate.OBJECTIVE_TARGET]
    n_sched = int(sum(r.startswith("sched-") for r in log.run_ids))
    description = (
        f"{len(log)} proxy runs over {len(log.domains)} real-text domains, {len(log) - n_sched} "
        f"single-phase and {n_sched} two-phase schedules (last phase {share:.0%} of the "
        f"tokens; books capped to 60k unique tokens, so it repeats); surrogates over flattened "
        f"schedules; objective {MDE_DEMO_OBJECTIVE}; seed-noise floor {fl.std:.3f} nats "
        f"[95% CI {fl.lo:.3f}, {fl.hi:.3f}]"
    )
    return DemoResult(
        comparison, curve, evaluate.OBJECTIVE_TARGET, proposal, figures, description, best
    )
