"""Benchmark every rates predictor on RegMix's public runs (The Pile, 17 domains).

Train on the 512 1M-parameter runs; test on the 256 other 1M runs, the same 256 mixtures at
60M, and the 64 1B runs. Report Spearman on Pile-CC and the mean over the 13 loss columns,
learning curves on Pile-CC (n = 16 .. 512, several random draws each), and the time of
``propose`` on 512 runs. Writes bench/results/regmix.{md,json} and PNGs.

    python bench/regmix.py            # full benchmark (< 10 min on 2 cores)
    python bench/regmix.py --quick    # fewer sizes and draws, for a smoke test
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mixsurrogate import evaluate, plots
from mixsurrogate.datasets import regmix_runs
from mixsurrogate.objective import Objective
from mixsurrogate.predictors import RATE_PREDICTORS
from mixsurrogate.propose import propose_exploit

RESULTS = Path(__file__).parent / "results"
TEST_SETS = {"1M (256)": "test-1m", "60M (256)": "test-60m", "1B (64)": "test-1b"}
TARGET = "pile_cc"
# RegMix's published / re-run figures on Pile-CC, 1M test, for the README comparison
PUBLISHED = {"lgbm": {32: 0.916, 64: 0.963, 512: 0.990}, "linear": {512: 0.90}}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--predictors", default=",".join(RATE_PREDICTORS))
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    names = args.predictors.split(",")
    specs = [evaluate.PredictorSpec(n) for n in names]
    train = regmix_runs("train-1m")
    tests = {label: regmix_runs(split) for label, split in TEST_SETS.items()}
    timings: dict[str, float] = {}

    # 1. train on all 512, test on each held-out set
    start = time.perf_counter()
    full = evaluate.train_test(specs, train, tests)
    timings["fit on 512 runs, predict 3 test sets (13 targets)"] = time.perf_counter() - start

    # 2. learning curves on Pile-CC, 1M test set
    sizes = [16, 32, 64, 128, 256, 512] if not args.quick else [16, 64, 512]
    draws = args.draws if not args.quick else 2
    start = time.perf_counter()
    curve = evaluate.learning_curve(specs, train, tests["1M (256)"], sizes, draws, [TARGET], seed=0)
    timings["learning_curve"] = time.perf_counter() - start

    # 3. proposal time on 512 runs
    objective = Objective.parse(f"{TARGET}=1", train.targets)
    propose_times = {}
    for name in ("linear", "gp", "lgbm"):
        if name in names:
            start = time.perf_counter()
            proposal = propose_exploit(train, evaluate.PredictorSpec(name), objective)
            propose_times[name] = {
                "seconds": time.perf_counter() - start,
                "predicted": float(proposal.objective[0]),
            }

    write_results(args.out, full, curve, timings, propose_times, names, sizes, draws)


def _pivot(full: pd.DataFrame, names: list[str], target: str | None) -> pd.DataFrame:
    data = full if target is None else full[full["target"] == target]
    table = data.groupby(["predictor", "test"])["spearman"].mean().unstack("test")
    return table.reindex(index=[n for n in names if n in table.index], columns=list(TEST_SETS))


def write_results(out: Path, full, curve, timings, propose_times, names, sizes, draws) -> None:
    curve_mean = (
        curve.groupby(["predictor", "n_train"])["spearman"].agg(["mean", "std"]).reset_index()
    )
    pile = _pivot(full, names, TARGET)
    mean13 = _pivot(full, names, None)
    lc = curve_mean.pivot(index="predictor", columns="n_train", values="mean").reindex(
        [n for n in names if n in set(curve_mean["predictor"])]
    )
    lc_std = curve_mean.pivot(index="predictor", columns="n_train", values="std").reindex(lc.index)
    payload = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        },
        "protocol": "train on RegMix's 512 1M runs; test on 256 1M, 256 60M, 64 1B runs; no tuning on any test set",
        "spearman_pile_cc": pile.round(4).to_dict(orient="index"),
        "spearman_mean_13_targets": mean13.round(4).to_dict(orient="index"),
        "learning_curve_pile_cc_1m": {
            "sizes": sizes,
            "draws": draws,
            "mean": lc.round(4).to_dict(orient="index"),
            "std": lc_std.round(4).to_dict(orient="index"),
        },
        "all_metrics": full.to_dict(orient="records"),
        "published_regmix": PUBLISHED,
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "propose_512_runs": propose_times,
    }
    (out / "regmix.json").write_text(json.dumps(payload, indent=2, default=float))
    plots.learning_curves(curve, TARGET, out / "regmix_learning_curve.png")

    def md(frame: pd.DataFrame) -> str:
        frame = frame.copy()
        frame.columns = [str(c) for c in frame.columns]
        return frame.to_markdown(floatfmt=".4f")

    lines = [
        "# RegMix public runs: predictor comparison",
        "",
        "Generated by `python bench/regmix.py`. Train on the 512 1M-parameter runs, test on held-out runs;",
        "every predictor tunes (if at all) inside its training data only.",
        "",
        "## Spearman, Pile-CC validation loss",
        md(pile),
        "",
        "## Spearman, mean over the 13 loss columns",
        md(mean13),
        "",
        f"## Learning curve: Spearman on Pile-CC (1M test), mean over {draws} random draws of n training runs",
        md(lc),
        "",
        "Standard deviation over draws:",
        md(lc_std),
        "",
        "RegMix's published / re-run LightGBM on Pile-CC (1M test): 0.916 at 32 runs, 0.963 at 64, 0.990 at 512; linear ~0.90 at 512.",
        "",
        "## Time",
        *[f"- {k}: {v:.1f} s" for k, v in timings.items()],
        *[
            f"- propose on 512 runs with {k}: {v['seconds']:.1f} s"
            for k, v in propose_times.items()
        ],
        "",
        "![learning curve](regmix_learning_curve.png)",
    ]
    (out / "regmix.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
