"""The whole method on built-in logged runs, no training: compare, plot, propose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import evaluate, plots
from .datasets import regmix_runs
from .objective import Objective
from .propose import Proposal, propose_exploit

DEMO_PREDICTORS = ("mean", "linear", "loglinear", "lgbm", "gp", "dml", "bimix")
DEMO_TARGET = "pile_cc"


@dataclass
class DemoResult:
    comparison: pd.DataFrame  # predictor x metrics on the held-out runs
    curve: pd.DataFrame
    proposal: Proposal
    figures: list[Path]
    description: str


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
    table = evaluate.train_test(specs, train, test, [DEMO_TARGET], progress=progress)
    comparison = table.drop(columns=["target", "n_train"]).sort_values("spearman", ascending=False)
    curve_specs = [s for s in specs if s.name in ("linear", "lgbm", "gp", "dml")]
    curve = evaluate.learning_curve(
        curve_specs, train_all, test, [16, 32, 64, 128], 3, [DEMO_TARGET], progress=progress
    )
    best = comparison.iloc[0]["predictor"]
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
    return DemoResult(comparison, curve, proposal, figures, description)
