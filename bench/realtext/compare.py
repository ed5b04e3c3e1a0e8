"""Compare every predictor, with and without MDE features, on the real-text benchmark runs.

Reads a runs log, its seed-repeat log and the experts' score store (written by
``bench/realtext/generate.py``), then runs k-fold CV and learning curves (n = 8 .. 40 training
runs, scored on the runs left out) on every evaluation set and on the blended objective, and
compares top-1 regret with the seed-noise floor. Writes bench/results/realtext.{md,json} and PNGs.

    python bench/realtext/compare.py                       # the committed data
    python bench/realtext/compare.py --data DIR --draws 3  # other data, quicker
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from mixsurrogate import evaluate, plots
from mixsurrogate.features import MDEFeatureMap
from mixsurrogate.noise import noise_ceiling, seed_noise
from mixsurrogate.objective import Objective
from mixsurrogate.predictors import MDE_PREDICTORS, RATE_PREDICTORS
from mixsurrogate.runs import RunsLog, load_runs
from mixsurrogate.scores import load_scores

HERE = Path(__file__).parent
DEFAULT_DATA = HERE.parent.parent / "mixsurrogate" / "data" / "realtext"
RESULTS = HERE.parent / "results"
OBJECTIVE = "val=0.5,task=0.5"
MDE_KINDS = ("token", "bayes")


def load_benchmark(data: Path) -> tuple[RunsLog, RunsLog, object, Objective]:
    """Runs log, seeds log, score store and the blended objective of a benchmark folder."""
    log = load_runs(data / "runs.csv")
    seeds = load_runs(data / "seeds.csv")
    store = load_scores(data / "scores")
    store.check_matches_runs(log.domains, log.targets)
    return log, seeds, store, Objective.parse(OBJECTIVE, log.targets, store.kinds)


def evaluate_one(
    data: Path, kind: str | None, name: str, folds: int, sizes, draws: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """CV table and learning curve of one predictor (MDE features of ``kind``, if any).

    Folds and learning-curve subsets depend only on ``seed``, so every predictor is scored on
    the same splits and the comparison is paired.
    """
    start = time.perf_counter()
    log, _, store, objective = load_benchmark(data)
    feature_fn = MDEFeatureMap(store, log.targets, kind=kind).transform if kind else None
    specs = [evaluate.PredictorSpec(name)]
    table, _ = evaluate.cross_validate(
        specs, log, folds, log.targets, feature_fn, seed, progress=False, objective=objective
    )
    curve = evaluate.learning_curve(
        specs, log, None, sizes, draws, log.targets, feature_fn, seed, False, objective
    )
    label = name if kind is None else f"{name}[{kind}]"
    for frame in (table, curve):
        frame["predictor"] = label
    return table, curve, time.perf_counter() - start


def evaluate_all(data: Path, folds: int, sizes, draws: int, seed: int, jobs: int):
    """Every rates-only predictor, and every MDE predictor with each feature kind, in ``jobs``
    processes (each GP fit runs on one thread, so processes use the cores)."""
    tasks = [(None, n) for n in RATE_PREDICTORS]
    tasks += [(kind, n) for kind in MDE_KINDS for n in MDE_PREDICTORS]
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the workers: no oversubscription
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [
            pool.submit(evaluate_one, data, kind, name, folds, sizes, draws, seed)
            for kind, name in tasks
        ]
        results = []
        for future in tqdm(as_completed(futures), total=len(futures), desc="predictors"):
            table, curve, seconds = future.result()
            tqdm.write(f"{table['predictor'].iloc[0]}: {seconds:.0f} s")
            results.append((table, curve))
    order = {f"{n}" if k is None else f"{n}[{k}]": i for i, (k, n) in enumerate(tasks)}
    results.sort(key=lambda r: order[r[0]["predictor"].iloc[0]])
    return (
        pd.concat([r[0] for r in results], ignore_index=True),
        pd.concat([r[1] for r in results], ignore_index=True),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder with runs.csv, seeds.csv, scores/"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sizes", default="8,12,16,24,32,40")
    parser.add_argument("--draws", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    log, seeds, _, objective = load_benchmark(args.data)
    sizes = [int(x) for x in args.sizes.split(",")]
    start = time.perf_counter()
    table, curve = evaluate_all(args.data, args.folds, sizes, args.draws, args.seed, args.jobs)
    noise = seed_noise(seeds, objective)
    ceiling = noise_ceiling(log, noise, objective)
    write_results(
        args.out,
        log,
        objective,
        table,
        curve,
        noise,
        ceiling,
        sizes,
        args.draws,
        args.folds,
        time.perf_counter() - start,
    )


#: predictors drawn in the learning-curve plots (all are in the tables)
PLOTTED = (
    "gp+mde[token]", "gp", "linear+mde[token]", "lgbm+mde[token]", "lgbm", "mde-cal[token]", "dml",
    "linear",
)  # fmt: skip


def write_results(
    out: Path,
    log: RunsLog,
    objective: Objective,
    table,
    curve,
    noise,
    ceiling,
    sizes,
    draws,
    folds,
    seconds,
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    objective_name = evaluate.OBJECTIVE_TARGET
    floor = noise[objective_name]
    obj_rows = table[table["target"] == objective_name].set_index("predictor")
    per_set = table[table["target"] != objective_name].copy()
    per_set["regret / noise"] = per_set["regret"] / per_set["target"].map(noise)
    spearman_sets = per_set.pivot(index="predictor", columns="target", values="spearman")
    regret_sets = per_set.pivot(index="predictor", columns="target", values="regret / noise")
    order = obj_rows["spearman"].sort_values(ascending=False).index
    spearman_sets, regret_sets = spearman_sets.reindex(order), regret_sets.reindex(order)
    headline = obj_rows.loc[order, ["spearman", "mse", "regret"]]
    headline["regret / noise floor"] = headline["regret"] / floor
    values = objective.combine(log.Y, log.targets)
    mixed = log.W.max(axis=1) < 0.999
    spread_all, spread_mixed, n_mixed = values.std(ddof=1), values[mixed].std(ddof=1), mixed.sum()
    lc = curve[curve["target"] == objective_name].copy()
    lc["below floor"] = lc["regret"] < floor
    by_size = lc.groupby(["predictor", "n_train"])

    def per_size(column: str, how: str = "mean") -> pd.DataFrame:
        return by_size[column].agg(how).unstack("n_train").reindex(order)

    lc_mean, lc_std = per_size("spearman"), per_size("spearman", "std")
    lc_regret, lc_below = per_size("regret"), per_size("below floor")
    at = 24 if 24 in sizes else max(n for n in sizes if n <= len(log))
    sets_at = (
        curve[curve["n_train"] == at]
        .groupby(["predictor", "target"])["spearman"]
        .mean()
        .unstack("target")
        .reindex(order)
    )
    ceiling_row = pd.DataFrame([ceiling], index=["noise ceiling"])
    payload = {
        "runs": len(log),
        "domains": log.domains,
        "eval_sets": log.targets,
        "objective": OBJECTIVE,
        "folds": folds,
        "seed_noise_std": noise,
        "spearman_noise_ceiling": ceiling,
        "objective_std_across_runs": {"all": spread_all, f"{n_mixed} mixing runs": spread_mixed},
        "cv_objective": headline.round(5).to_dict(orient="index"),
        "cv_spearman_per_set": spearman_sets.round(4).to_dict(orient="index"),
        "cv_regret_over_noise_per_set": regret_sets.round(4).to_dict(orient="index"),
        "learning_curve_objective_spearman": lc_mean.round(4).to_dict(orient="index"),
        "learning_curve_objective_spearman_std": lc_std.round(4).to_dict(orient="index"),
        "learning_curve_objective_regret": lc_regret.round(5).to_dict(orient="index"),
        "learning_curve_objective_share_regret_below_floor": lc_below.round(3).to_dict(
            orient="index"
        ),
        f"learning_curve_spearman_per_set_at_{at}": sets_at.round(4).to_dict(orient="index"),
        "sizes": sizes,
        "draws": draws,
        "seconds": round(seconds, 1),
        "all_cv": table.to_dict(orient="records"),
        "all_learning_curve": "realtext_learning_curve.csv.gz (every draw, size, set, predictor)",
    }
    (out / "realtext.json").write_text(json.dumps(payload, indent=2, default=float))
    curve.to_csv(out / "realtext_learning_curve.csv.gz", index=False)
    plotted = lc[lc["predictor"].isin(PLOTTED)]
    plots.learning_curves(
        plotted,
        objective_name,
        out / "realtext_learning_curve.png",
        references={"noise ceiling": ceiling[objective_name]},
    )
    plots.learning_curves(
        plotted,
        objective_name,
        out / "realtext_learning_curve_regret.png",
        metric="regret",
        references={"seed-noise floor": floor},
    )
    plots.metric_heatmap(
        pd.concat([spearman_sets.assign(objective=headline["spearman"]), ceiling_row]),
        out / "realtext_cv_spearman.png",
        f"{folds}-fold CV Spearman per evaluation set",
    )

    def md(frame: pd.DataFrame, fmt: str = ".4f") -> str:
        frame = frame.copy()
        frame.columns = [str(c) for c in frame.columns]
        return frame.to_markdown(floatfmt=fmt)

    lines = [
        "# Real-text benchmark: predictors with and without MDE features",
        "",
        f"Generated by `python bench/realtext/compare.py` in {seconds:.0f} s. {len(log)} proxy runs over "
        f"{len(log.domains)} domains ({', '.join(log.domains)}); evaluation sets: {', '.join(log.targets)}.",
        f"Objective `{OBJECTIVE}` (mean validation loss and mean end-task answer loss, weighted equally).",
        "Every predictor models each set separately; the objective combines the predictions.",
        "",
        f"## {folds}-fold CV on the blended objective",
        f"Seed-noise floor (pooled std of the objective across seeds of one mixture): {floor:.5f} nats. "
        f"The objective's std across the runs is {spread_all:.4f} nats, but {spread_mixed:.4f} "
        f"across the {n_mixed} runs that mix domains (the single-domain vertices are far off). "
        f"Noise ceiling on Spearman (Monte Carlo: what even the exact expected losses would score "
        f"against these single-seed observations): {ceiling[objective_name]:.3f}.",
        "",
        md(headline),
        "",
        f"## Learning curve: Spearman on the objective (runs left out), mean of {draws} draws",
        md(lc_mean, ".3f"),
        "",
        "Standard deviation across draws:",
        "",
        md(lc_std, ".3f"),
        "",
        "## Learning curve: top-1 regret on the objective (nats, mean over draws)",
        md(lc_regret, ".4f"),
        "",
        f"Share of draws whose top-1 regret is below the seed-noise floor ({floor:.4f} nats):",
        "",
        md(lc_below, ".2f"),
        "",
        "## CV Spearman per evaluation set (last row: noise ceiling)",
        md(pd.concat([spearman_sets, ceiling_row.drop(columns=[objective_name])]), ".3f"),
        "",
        "## CV top-1 regret per evaluation set, in units of that set's seed noise",
        md(regret_sets, ".2f"),
        "",
        f"## Learning curve at {at} training runs: Spearman per evaluation set (mean of draws)",
        md(sets_at, ".3f"),
        "",
        "## Seed noise (pooled std across seeds, nats) and noise ceiling",
        *[f"- {k}: {v:.5f} (ceiling {ceiling[k]:.3f})" for k, v in noise.items()],
        "",
        "![learning curve](realtext_learning_curve.png)",
        "![regret](realtext_learning_curve_regret.png)",
        "![CV Spearman per set](realtext_cv_spearman.png)",
    ]
    (out / "realtext.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
