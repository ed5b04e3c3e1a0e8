"""Compare every predictor, with and without MDE features, on the real-text benchmark runs.

Reads a runs log, its seed-repeat log and the experts' score store (written by
``bench/realtext/generate.py``) and reports, as the MDE paper does, three objectives: SP (mean
of the validation domains), ET (mean of the end-task sets) and ET+SP (``val=0.5,task=0.5``).

Protocol (every predictor on the same splits, so comparisons are paired):
- the single-domain vertex runs are the data experts themselves (MDE is exact there), so they
  are fitted on but never scored: every number is about the mixing runs;
- repeated k-fold CV (``--folds`` x ``--repeats``) and learning curves (``--sizes`` mixing runs
  drawn ``--draws`` times, plus the vertex runs, scored on the mixing runs not drawn);
- per split: Spearman, top-1 regret (also in units of the seed-noise floor); tables give the
  mean with a 95% bootstrap interval over splits; GP rows also the spread over ``--gp-seeds``;
- the seed-noise floor (pooled std over the repeated mixtures) with its chi-square interval,
  and the noise ceiling on Spearman at the floor and at both ends of its interval;
- in CV, the held-out coverage of every predictor's 90% prediction interval (per set);
- ``mtgp+mde[token]`` (a multi-task GP over the 11 sets) paired with ``gp+mde[token]`` on
  all three objectives, as issue 12 asks;
- with ``--examples`` (issue 21; off by default, so the committed results do not change):
  ``mde-ex`` on ``--mde-kind examples`` features (each set's example-level MDE columns), one row
  per variant (``bench/realtext/examples.py`` runs these with the set-level baselines alone);
- one pre-registered paired comparison, fixed from the earlier version of this benchmark
  before these data existed: ``mde-cal[token]`` (its best predictor then) against ``gp`` (the
  best rates-only predictor on RegMix); all other pairings are labelled as chosen on these data.

    python bench/realtext/compare.py --quick                  # minutes; results to a temp dir
    python bench/realtext/compare.py --out bench/results      # the committed results
    python bench/realtext/compare.py --data bench/data/realtext-4x --name realtext4x --out bench/results

``--name`` is the prefix of every file written (``NAME.md``, ``NAME.json``, ``NAME_*.png``, ...), so
a second data set's results sit beside the first's. Learning-curve sizes the data cannot draw
(a size needs 3 mixing runs left to score) are skipped and listed in the report.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.evaluation import plots
from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.evaluation.metrics import bootstrap_mean_ci, json_safe
from mixsurrogate.evaluation.noise import NoiseFloor, noise_ceiling, noise_floor, repeated_groups
from mixsurrogate.evaluation.report import with_interval
from mixsurrogate.mde.examples import ExampleFeatureMap
from mixsurrogate.mde.features import MDEFeatureMap
from mixsurrogate.mde.store import load_scores
from mixsurrogate.objective import Objective
from mixsurrogate.runs.log import RunsLog, load_runs

HERE = Path(__file__).parent
DEFAULT_DATA = HERE.parent.parent / "mixsurrogate" / "data" / "realtext"
OBJECTIVES = {"SP": "val=1", "ET": "task=1", "ET+SP": "val=0.5,task=0.5"}
RATES = ("mean", "linear", "loglinear", "lgbm", "gp", "dml")
MDE = ("mde", "mde-cal", "linear+mde", "lgbm+mde", "gp+mde")
MDE_KINDS = ("token", "bayes")
GP_NAMES = ("gp", "gp+mde")
#: fitted on every set at once (issue 12 asks for it beside gp+mde, whatever it scores)
MULTI_TASK = (("mtgp+mde", "token"),)
MULTI_TASK_PAIR = ("mtgp+mde[token]", "gp+mde[token]")
#: example-level MDE (issue 21, ``--examples``): mde-ex's variants on the examples feature map
EXAMPLES = tuple(
    ("mde-ex", "examples", v) for v in ("set", "clusters", "quantiles", "power", "auto")
)
PRIMARY = ("mde-cal[token]", "gp")  # pre-registered, see the module docstring
VERTEX = "vertex-*"
INTERVAL_LEVEL = 0.9  # prediction intervals scored in CV (coverage of held-out runs)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # --name: a plain file prefix, no folders


@dataclass(frozen=True)
class Task:
    """One predictor to evaluate: registry name, MDE kind (or None), GP seed, whether curves,
    and ``mde-ex``'s variant (None: the predictor's default)."""

    name: str
    kind: str | None
    seed: int = 0
    curves: bool = True
    variant: str | None = None

    @property
    def label(self) -> str:
        name = self.name if self.variant is None else f"{self.name}:{self.variant}"
        base = name if self.kind is None else f"{name}[{self.kind}]"
        return base if self.seed == 0 else f"{base}#seed{self.seed}"

    @property
    def params(self) -> dict | None:
        params = ({"seed": self.seed} if self.seed else {}) | (
            {"variant": self.variant} if self.variant else {}
        )
        return params or None


def feature_map(store, targets: list[str], kind: str):
    """The MDE feature map of a kind (``examples``: set-level and example-level columns)."""
    if kind == ExampleFeatureMap.kind:
        return ExampleFeatureMap(store, targets)
    return MDEFeatureMap(store, targets, kind=kind)


def load_benchmark(data: Path) -> tuple[RunsLog, RunsLog, object, dict[str, Objective]]:
    log = load_runs(data / "runs.csv")
    seeds = load_runs(data / "seeds.csv")
    store = load_scores(data / "scores").reordered(log.domains)
    store.check_matches_runs(log.domains, log.targets)
    objectives = {k: Objective.parse(v, log.targets, store.kinds) for k, v in OBJECTIVES.items()}
    return log, seeds, store, objectives


def check_benchmark(data: Path) -> str | None:
    """Why these data cannot be compared (None if they can): checked before anything is written."""
    for name in ("runs.csv", "seeds.csv", "scores"):
        if not (data / name).exists():
            return f"{data / name} does not exist (--data must be a folder from generate.py)"
    try:
        log, seeds, _, _ = load_benchmark(data)
        repeated_groups(seeds)  # raises when no mixture has 2 or more seeds: no noise floor
    except MixsurrogateError as error:
        return f"{data}: {error}"
    if int(evaluate.scoring_mask(log, exclude=[VERTEX]).sum()) < 5:
        return f"{data / 'runs.csv'} has fewer than 5 mixing runs: too few to cross-validate"
    return None


def evaluate_task(data: Path, task: Task, args: dict) -> tuple:
    """CV (and learning-curve) evaluation of one predictor; splits depend only on the seed."""
    start = time.perf_counter()
    log, _, store, _ = load_benchmark(data)
    scored = evaluate.scoring_mask(log, exclude=[VERTEX])
    feature_fn = feature_map(store, log.targets, task.kind) if task.kind else None
    spec = evaluate.PredictorSpec(task.name, task.params, task.label)
    cv = evaluate.cross_validate(
        evaluate.EvaluationContext(
            [spec],
            targets=log.targets,
            feature_fn=feature_fn,
            scored=scored,
            seed=args["seed"],
            interval_level=INTERVAL_LEVEL if task.seed == 0 else None,
            progress=False,
        ),
        log,
        folds=args["folds"],
        repeats=args["repeats"],
    )
    curve = None
    if task.curves:
        curve = evaluate.learning_curve(
            evaluate.EvaluationContext(
                [spec],
                targets=log.targets,
                feature_fn=feature_fn,
                scored=scored,
                seed=args["seed"],
                progress=False,
            ),
            log,
            None,
            args["sizes"],
            draws=args["draws"],
        )
    return task.label, cv, curve, time.perf_counter() - start


def evaluate_all(data: Path, tasks: list[Task], args: dict, jobs: int):
    """Every task in ``jobs`` processes (GP algebra runs on one thread per process)."""
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the workers: no oversubscription
    results, seconds = {}, {}
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(evaluate_task, data, task, args) for task in tasks]
        for future in tqdm(as_completed(futures), total=len(futures), desc="predictors"):
            label, cv, curve, took = future.result()
            tqdm.write(f"{label}: {took:.0f} s")
            results[label], seconds[label] = (cv, curve), round(took, 1)
    order = [t.label for t in tasks]
    cv = evaluate.merge([results[label][0] for label in order])
    curve = evaluate.merge([results[t.label][1] for t in tasks if t.curves])
    return cv, curve, seconds


def floors_and_ceilings(log: RunsLog, seeds: RunsLog, objectives: dict, scored: np.ndarray):
    """Noise floor (with interval) and the Spearman ceiling at its value and interval ends."""
    mixing = log.subset(np.flatnonzero(scored))
    floors, ceilings = {}, {}
    for name, objective in objectives.items():
        floor = noise_floor(seeds, objective)[evaluate.OBJECTIVE_TARGET]
        floors[name] = floor
        ceilings[name] = {
            which: noise_ceiling(mixing, {evaluate.OBJECTIVE_TARGET: s}, objective)[
                evaluate.OBJECTIVE_TARGET
            ]
            for which, s in (
                ("at floor", floor.std),
                ("floor lo", floor.lo),
                ("floor hi", floor.hi),
            )
        }
    per_set = noise_floor(seeds)
    set_ceilings = noise_ceiling(mixing, {t: f.std for t, f in per_set.items()})
    return floors, ceilings, per_set, set_ceilings


def regret_in_floors(scores: pd.DataFrame, floors: dict[str, NoiseFloor]) -> pd.DataFrame:
    """Per-split regret divided by the objective's noise floor, and whether it is below it."""
    out = scores[scores["target"].isin(floors) & (scores["status"] == "ok")].copy()
    out["floor"] = out["target"].map(lambda t: floors[t].std)
    out["regret_floors"] = out["regret"] / out["floor"]
    out["below_floor"] = out["regret"] <= out["floor"]
    return out


def gp_seed_spread(cv_summary: pd.DataFrame, tasks: list[Task]) -> pd.DataFrame:
    """For each GP predictor and objective: mean and sd of its CV Spearman over seeds."""
    rows = []
    for base in dict.fromkeys(t.label.split("#")[0] for t in tasks if t.name in GP_NAMES):
        labels = [t.label for t in tasks if t.label.split("#")[0] == base]
        for target in OBJECTIVES:
            cells = cv_summary[
                (cv_summary["predictor"].isin(labels)) & (cv_summary["target"] == target)
            ]
            values = cells["spearman"].to_numpy()
            rows.append(
                {"predictor": base, "target": target, "seeds": len(values),
                 "spearman_mean": float(np.mean(values)), "spearman_sd": float(np.std(values, ddof=1))
                 if len(values) > 1 else np.nan}
            )  # fmt: skip
    return pd.DataFrame(rows)


def comparisons(cv, curve, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    frames = []
    for a, b in pairs:
        for target in OBJECTIVES:
            row = evaluate.compare(cv, a, b, target).assign(protocol="cv")
            frames.append(row)
            frames.append(
                evaluate.compare(curve, a, b, target, group=["size"]).assign(protocol="curve")
            )
    return pd.concat(frames, ignore_index=True)


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """The splits every real-text benchmark shares (same defaults, so the same splits)."""
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--sizes", default="8,16,24,32")
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")


def protocol_of(args: argparse.Namespace) -> dict:
    """The protocol record of parsed ``add_protocol_arguments`` options."""
    return {
        "folds": args.folds, "repeats": args.repeats, "seed": args.seed, "draws": args.draws,
        "sizes": [int(x) for x in args.sizes.split(",")],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, help="results folder (default: a new temp folder)")
    parser.add_argument(
        "--name", default="realtext", help="prefix of the result files (NAME.md, NAME.json, ...)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 repeat, 4 draws, 2 sizes, no GP seeds"
    )
    add_protocol_arguments(parser)
    parser.add_argument("--gp-seeds", type=int, default=5, help="seeds per GP predictor (CV)")
    parser.add_argument(
        "--examples", action="store_true", help="also mde-ex's variants (example-level MDE)"
    )
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.draws, args.sizes, args.gp_seeds = 1, 4, "8,24", 1
    if not NAME.fullmatch(args.name):
        parser.error(f"--name {args.name!r} must be a plain file prefix (letters, digits, _ . -)")
    problem = check_benchmark(args.data)
    if problem:
        parser.error(problem)
    out = args.out or Path(tempfile.mkdtemp(prefix=f"{args.name}-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    protocol = protocol_of(args)
    tasks = [Task(n, None) for n in RATES]
    tasks += [Task(n, k) for k in MDE_KINDS for n in MDE]
    tasks += [Task(n, k) for n, k in MULTI_TASK]
    if args.examples:
        tasks += [Task(n, k, variant=v) for n, k, v in EXAMPLES]
    tasks += [
        Task(n, k, s, curves=False)
        for s in range(1, args.gp_seeds)
        for n, k in [("gp", None), ("gp+mde", "token"), ("gp+mde", "bayes")]
    ]
    start = time.perf_counter()
    cv, curve, seconds = evaluate_all(args.data, tasks, protocol, args.jobs)
    protocol["sizes_skipped"] = list(curve.dropped)  # sizes the data cannot draw
    log, seeds, _, objectives = load_benchmark(args.data)
    for name, objective in objectives.items():
        evaluate.add_objective(cv, objective, name)
        evaluate.add_objective(curve, objective, name)
    scored = evaluate.scoring_mask(log, exclude=[VERTEX])
    floors, ceilings, set_floors, set_ceilings = floors_and_ceilings(log, seeds, objectives, scored)
    main_labels = [t.label for t in tasks if t.seed == 0]
    rates_labels = [t.label for t in tasks if t.seed == 0 and t.kind is None]
    cv_summary = cv.summary()
    curve_summary = curve.summary(["size"])
    best_rates = (
        cv_summary[cv_summary["predictor"].isin(rates_labels) & (cv_summary["target"] == "ET+SP")]
        .sort_values("spearman", ascending=False)
        .iloc[0]["predictor"]
    )
    mde_labels = [t.label for t in tasks if t.seed == 0 and t.kind is not None]
    pairs = [PRIMARY] + [(m, best_rates) for m in mde_labels if (m, best_rates) != PRIMARY]
    pairs.append(MULTI_TASK_PAIR)
    paired = comparisons(cv, curve, pairs)
    regrets = {
        "cv": regret_in_floors(cv.scores, floors),
        "curve": regret_in_floors(curve.scores, floors),
    }
    report = Report(
        protocol, tasks, main_labels, cv_summary, curve_summary, gp_seed_spread(cv_summary, tasks),
        paired, best_rates, floors, ceilings, set_floors, set_ceilings, regrets, log, scored,
        name=args.name,
    )  # fmt: skip
    report.write(out, cv, curve)
    timing = {"seconds_total": round(time.perf_counter() - start, 1), "per_predictor": seconds}
    (out / f"{args.name}_timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print(f"results in {out} ({timing['seconds_total']:.0f} s)")


@dataclass
class Report:
    protocol: dict
    tasks: list[Task]
    labels: list[str]
    cv: pd.DataFrame
    curve: pd.DataFrame
    gp_seeds: pd.DataFrame
    paired: pd.DataFrame
    best_rates: str
    floors: dict[str, NoiseFloor]
    ceilings: dict[str, dict[str, float]]
    set_floors: dict[str, NoiseFloor]
    set_ceilings: dict[str, float]
    regrets: dict[str, pd.DataFrame]
    log: RunsLog
    scored: np.ndarray
    name: str = "realtext"  # file prefix

    @property
    def sizes(self) -> list[int]:
        """The learning-curve sizes drawn (the data may not allow every size asked for)."""
        drawn = set(self.curve["size"].astype(int))
        return [s for s in self.protocol["sizes"] if s in drawn]

    def objective_table(self, target: str) -> pd.DataFrame:
        """CV and learning-curve Spearman [95% CI] per predictor for one objective."""
        cv = self.cv[(self.cv["target"] == target) & self.cv["predictor"].isin(self.labels)]
        table = pd.DataFrame({"predictor": cv["predictor"].to_numpy()})
        table["CV"] = [cell(r) for _, r in cv.iterrows()]
        for size in self.sizes:
            rows = self.curve[(self.curve["target"] == target) & (self.curve["size"] == size)]
            by = rows.set_index("predictor")
            table[f"{size} runs"] = [
                cell(by.loc[p]) if p in by.index else "-" for p in table["predictor"]
            ]
        order = cv.set_index("predictor")["spearman"].reindex(table["predictor"]).to_numpy()
        return table.iloc[np.argsort(-np.nan_to_num(order, nan=-9), kind="stable")]

    def regret_table(self, target: str) -> pd.DataFrame:
        floor = self.floors[target].std
        rows = []
        for label in self.labels:
            row = {"predictor": label}
            for protocol, key in (("cv", None), *(("curve", s) for s in self.sizes)):
                frame = self.regrets[protocol]
                frame = frame[(frame["predictor"] == label) & (frame["target"] == target)]
                if key is not None:
                    frame = frame[frame["size"] == key]
                name = "CV" if key is None else f"{key} runs"
                if frame.empty:
                    row[name] = "-"
                    continue
                lo, hi = bootstrap_mean_ci(frame["regret"].to_numpy(), 0)
                row[name] = (
                    f"{frame['regret'].mean():.4f} ({frame['regret'].mean() / floor:.2f} fl; "
                    f"{frame['below_floor'].mean():.0%} <= fl)"
                )
                row[f"{name} CI"] = with_interval(frame["regret"].mean(), lo, hi)
            rows.append(row)
        return pd.DataFrame(rows)

    def targets_check(self) -> list[str]:
        """The issue's targets, checked on the curve sizes <= 24 and stated plainly."""
        lines = []
        small = [s for s in self.sizes if s <= 24]
        mde = [label for label in self.labels if "[" in label]
        for target, goal in (("ET+SP", 0.95), ("SP", 0.97)):
            cells = self.curve[
                (self.curve["target"] == target) & self.curve["predictor"].isin(mde)
                & self.curve["size"].isin(small)
            ]  # fmt: skip
            if cells.empty:
                lines.append(f"- {target}, <= 24 runs: no curve size <= 24 was drawn: not checked")
                continue
            best = cells.sort_values("spearman", ascending=False).iloc[0]
            ceiling = self.ceilings[target]["at floor"]
            met = best["spearman"] >= goal or best["spearman"] >= 0.97 * ceiling
            lines.append(
                f"- {target}, <= 24 runs: best MDE-based cell {best['predictor']} at "
                f"{int(best['size'])} runs, Spearman {cell(best)} (selected among "
                f"{len(cells)} cells, so optimistic); goal {goal} or 0.97 x ceiling "
                f"{ceiling:.3f} = {0.97 * ceiling:.3f}: **{'met' if met else 'not met'}**"
            )
        primary = self.paired[
            (self.paired["comparison"] == f"{PRIMARY[0]} - {PRIMARY[1]}")
            & (self.paired["target"] == "ET+SP")
        ]
        for _, row in primary.iterrows():
            where = "CV" if row["protocol"] == "cv" else f"{int(row['size'])} runs"
            above = row["lo"] > 0
            lines.append(
                f"- pre-registered paired advantage {row['comparison']} on ET+SP, {where}: "
                f"{with_interval(row['difference'], row['lo'], row['hi'])} "
                f"({'interval above 0' if above else 'interval includes 0 or is below'})"
            )
        regrets = self.regrets["curve"]
        for label in (PRIMARY[0],):
            for size in small:
                frame = regrets[(regrets["predictor"] == label) & (regrets["target"] == "ET+SP")
                                & (regrets["size"] == size)]  # fmt: skip
                floor = self.floors["ET+SP"].std
                mean = frame["regret"].mean()
                lines.append(
                    f"- mean top-1 regret of {label} on ET+SP at {size} runs: {mean:.4f} nats vs "
                    f"floor {floor:.4f}: **{'met' if mean <= floor else 'not met'}**"
                )
        return lines

    def write(self, out: Path, cv, curve) -> None:
        skipped = self.protocol.get("sizes_skipped") or []
        md = [
            "# Real-text benchmark: predictors with and without MDE features",
            "",
            f"Runs: {len(self.log)} in the log, {int(self.scored.sum())} mixing runs scored "
            f"({int((~self.scored).sum())} vertex runs are the data experts: fitted on, never "
            "scored, because MDE is exact there). Objectives: "
            + ", ".join(f"{k} = `{v}`" for k, v in OBJECTIVES.items())
            + ".",
            f"Protocol: {self.protocol['folds']}-fold CV x {self.protocol['repeats']} repeats; "
            f"learning curves at {', '.join(map(str, self.sizes))} mixing runs "
            f"(+ the vertex runs) x {self.protocol['draws']} draws, scored on the mixing runs "
            "not drawn. Cells: mean Spearman over splits [95% bootstrap interval]. Every "
            "predictor saw the same splits.",
            *(
                [f"Curve sizes skipped (too few mixing runs): {'; '.join(skipped)}."]
                if skipped
                else []
            ),
            "",
            "## Noise floor and ceiling (mixing runs)",
            "",
            "| objective | seed-noise floor (nats) [95% CI] | dof | ceiling at floor | ceiling at floor's CI ends |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, floor in self.floors.items():
            c = self.ceilings[name]
            md.append(
                f"| {name} | {floor.std:.4f} [{floor.lo:.4f}, {floor.hi:.4f}] | {floor.dof} | "
                f"{c['at floor']:.3f} | {c['floor hi']:.3f} - {c['floor lo']:.3f} |"
            )
        md += ["", "## Targets (issue 9)", "", *self.targets_check(), ""]
        for target in OBJECTIVES:
            md += [f"## Spearman on {target}", "", markdown(self.objective_table(target)), ""]
        md += [
            "## Top-1 regret on ET+SP (nats; in noise floors; share of splits at or below the floor)",
            "",
            markdown(self.regret_table("ET+SP")),
            "",
            "## Paired comparisons (same splits; difference of Spearman [95% CI]; better = share of splits)",
            "",
            f"Pre-registered: `{PRIMARY[0]} - {PRIMARY[1]}`. The others pair each MDE predictor "
            f"with the best rates-only predictor on CV ET+SP (`{self.best_rates}`), chosen on "
            "these data.",
            "",
            markdown(self.paired_table()),
            "",
            f"## Multi-task GP: `{MULTI_TASK_PAIR[0]} - {MULTI_TASK_PAIR[1]}` on every objective",
            "",
            "One model of all 11 sets (a mixture kernel times a learned between-set "
            "covariance) against one GP per set, same MDE features, same splits.",
            "",
            markdown(self.paired_table(MULTI_TASK_PAIR)),
            "",
            "## 90% prediction intervals (CV, per evaluation set: held-out coverage, mean width in nats)",
            "",
            "gp, gp+mde, gp+mde-res: the posterior predictive std times the conformal quantile "
            "of standardised CV residuals of each fit's own training runs; mtgp+mde: posterior "
            "predictive; the others: split conformal on CV residuals of each fit's own "
            "training runs. Blends (SP, ET, ET+SP) have no interval "
            "here: their sets' errors are correlated, and a sum of per-set intervals would "
            "not be one.",
            "",
            markdown(self.coverage_table()),
            "",
            "## GP seeds (CV Spearman: mean and sd over seeds)",
            "",
            markdown(self.gp_seeds.round(4)),
            "",
            "## Per evaluation set (CV Spearman; noise ceiling per set)",
            "",
            markdown(self.per_set_table()),
            "",
            f"![learning curves]({self.name}_learning_curve.png)",
            f"![regret]({self.name}_learning_curve_regret.png)",
            f"![per set]({self.name}_cv_spearman.png)",
            "",
        ]
        notes = self.cv[(self.cv["notes"] != "") & self.cv["predictor"].isin(self.labels)]
        if len(notes):
            md += ["## Fit notes (CV; what fits had to work around)", ""]
            for predictor, group in notes.groupby("predictor", sort=False):
                distinct = sorted({n for text in group["notes"] for n in text.split("; ")})
                md.append(f"- {predictor} ({len(group)} targets): " + "; ".join(distinct))
            md.append("")
        problems = self.cv[self.cv["status"] != "ok"]
        if len(problems):
            md += ["## Cells not scored", ""]
            md += [f"- {r['predictor']} / {r['target']}: {r['status']}: {r['reason']}"
                   for _, r in problems.iterrows()]  # fmt: skip
        (out / f"{self.name}.md").write_text("\n".join(md) + "\n")
        payload = {
            "protocol": self.protocol,
            "objectives": OBJECTIVES,
            "scored_runs": int(self.scored.sum()),
            "noise_floor": {k: vars(v) for k, v in self.floors.items()},
            "noise_ceiling": self.ceilings,
            "noise_floor_per_set": {k: vars(v) for k, v in self.set_floors.items()},
            "noise_ceiling_per_set": self.set_ceilings,
            "cv": self.cv.to_dict(orient="records"),
            "learning_curve": self.curve.to_dict(orient="records"),
            "paired": self.paired.to_dict(orient="records"),
            "gp_seeds": self.gp_seeds.to_dict(orient="records"),
            "best_rates_only": self.best_rates,
            "pre_registered": list(PRIMARY),
        }
        (out / f"{self.name}.json").write_text(
            json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n"
        )
        pd.concat([cv.scores.assign(protocol="cv"), curve.scores.assign(protocol="curve")]).to_csv(
            out / f"{self.name}_splits.csv.gz", index=False
        )
        self.plots(out)
        print("\n".join(md[: md.index("## Spearman on ET+SP") + 3 + len(self.labels)]))

    def paired_table(self, pair: tuple[str, str] | None = None) -> pd.DataFrame:
        """ET+SP rows of every pair but ``MULTI_TASK_PAIR``; with ``pair``, every objective of
        that pair."""
        name = " - ".join(pair or MULTI_TASK_PAIR)
        if pair is None:
            keep = (self.paired["target"] == "ET+SP") & (self.paired["comparison"] != name)
        else:
            keep = self.paired["comparison"] == name
        table = self.paired[keep].copy()
        table["where"] = [
            "CV" if p == "cv" else f"{int(s)} runs"
            for p, s in zip(table["protocol"], table.get("size", np.nan), strict=True)
        ]
        table["difference [95% CI]"] = [
            with_interval(d, lo, hi) for d, lo, hi in zip(table["difference"], table["lo"], table["hi"], strict=True)
        ]  # fmt: skip
        columns = ["comparison", "where", "difference [95% CI]", "better", "splits"]
        return table[(["target"] if pair else []) + columns]

    def coverage_table(self) -> pd.DataFrame:
        """Per predictor: coverage over the sets (mean, min, max) and mean interval width."""
        cells = self.cv[
            self.cv["predictor"].isin(self.labels) & self.cv["target"].isin(self.log.targets)
        ]
        cells = cells[cells["status"] == "ok"]
        grouped = cells.groupby("predictor", sort=False)
        table = pd.DataFrame(
            {
                "coverage (mean over sets)": grouped["coverage"].mean(),
                "lowest set": grouped["coverage"].min(),
                "highest set": grouped["coverage"].max(),
                "mean width": grouped["width"].mean(),
            }
        ).reindex(self.labels)
        return table.round(3).reset_index(names="predictor")

    def per_set_table(self) -> pd.DataFrame:
        cells = self.cv[
            self.cv["predictor"].isin(self.labels) & self.cv["target"].isin(self.log.targets)
        ]
        table = cells.pivot(index="predictor", columns="target", values="spearman")
        table = table.reindex(index=self.labels, columns=self.log.targets)
        ceiling = pd.DataFrame([self.set_ceilings], index=["*noise ceiling*"])[self.log.targets]
        return pd.concat([table, ceiling]).round(3).reset_index(names="predictor")

    def plots(self, out: Path) -> None:
        shown = ["mde-cal[token]", "mde[token]", "gp+mde[token]", "linear+mde[token]",
                 "lgbm+mde[token]", "gp", "lgbm", "loglinear", "dml"]  # fmt: skip
        curve = self.curve[self.curve["predictor"].isin(shown)]
        refs = {"noise ceiling (ET+SP)": self.ceilings["ET+SP"]["at floor"]}
        plots.learning_curves(
            curve, "ET+SP", out / f"{self.name}_learning_curve.png", references=refs,
            title="ET+SP, mixing runs only",
        )  # fmt: skip
        floor = {"noise floor (ET+SP)": self.floors["ET+SP"].std}
        plots.learning_curves(
            curve, "ET+SP", out / f"{self.name}_learning_curve_regret.png", metric="regret",
            references=floor, title="top-1 regret on ET+SP (nats), mixing runs only",
        )  # fmt: skip
        table = self.per_set_table().set_index("predictor")
        plots.metric_heatmap(table, out / f"{self.name}_cv_spearman.png", "CV Spearman per set")


def cell(row: pd.Series) -> str:
    if row["status"] != "ok":
        return str(row["status"])
    return with_interval(row["spearman"], row["spearman_lo"], row["spearman_hi"])


def markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".4g")


if __name__ == "__main__":
    main()
