"""Issue 22's benchmark: two-phase schedules, schedule surrogates and repetition-matched proxies.

Reads the logs written by ``bench/schedules/generate.py`` (``runs.csv``: 20 single-phase Sobol
mixtures ``sobol-*`` and 20 two-phase schedules ``sched-*``; ``seeds.csv``: seed repeats;
``proxy-unmatched.csv`` / ``proxy-matched.csv``: the first 8 mixtures at 1/4 of the tokens) and
answers, on the end-task objective ET (``task=1``) and ET+SP (``val=0.5,task=0.5``):

(a) Does the best two-phase schedule beat the best single-phase mixture? Observed: the best of
    each family, their difference with a 95% bootstrap interval (runs resampled within each
    family) and in units of the seed-noise floor (a difference of two single-seed runs has noise
    floor x sqrt 2). Predicted: one surrogate per predictor fitted on all 40 runs (single-phase
    rows are constant schedules), minimised over constant schedules and over two-phase
    schedules with the benchmark's last-phase share; its predictions beside the best observed.
(b) Do surrogates over schedules rank held-out schedules as well as single-phase surrogates rank
    mixtures? Repeated k-fold CV (the protocol of ``bench/realtext/compare.py``) of gp, lgbm and
    linear on the 20 schedules (flattened inputs) and on the 20 mixtures (mixture inputs), the
    difference of mean CV Spearman with a 95% two-sample bootstrap interval over splits; and
    pooled: each family's held-out folds scored with the other family always in training (same
    folds, so paired with the family alone), plus CV over all 40 runs.
(c) Does a repetition-matched proxy (1/4 of the tokens) pick a better mixture for the full
    budget than an unmatched proxy of the same cost? Per proxy family: the Spearman of its 8
    runs against their full-budget truth (their rows in ``runs.csv``), its pick and that pick's
    full-budget regret; paired bootstrap over the 8 mixtures (the same resample for both).

Every bootstrap is ``scipy.stats.bootstrap`` (percentile, fixed seeds). Set kinds (validation
domain or end task) come from the corpus manifest beside the logs.

    python bench/schedules/compare.py --quick           # a couple of minutes; to a temp dir
    python bench/schedules/compare.py --out bench/results
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from compare_report import write_report  # bench/schedules/compare_report.py, beside this script
from scipy import stats

from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.evaluation.metrics import json_safe
from mixsurrogate.evaluation.noise import noise_ceiling, noise_floor
from mixsurrogate.objective import Objective
from mixsurrogate.proposal.optimiser import best_mixture
from mixsurrogate.proposal.schedule import ScheduleProblem, best_schedule
from mixsurrogate.proposal.surrogate import FittedObjective
from mixsurrogate.runs.inputs import InputSpace
from mixsurrogate.runs.log import RunsLog, load_runs
from mixsurrogate.runs.schedule import is_phase_column
from mixsurrogate.simplex import Bounds

HERE = Path(__file__).parent
DEFAULT_DATA = HERE.parent.parent / "mixsurrogate" / "data" / "schedules"
OBJECTIVES = {"ET": "task=1", "ET+SP": "val=0.5,task=0.5"}
PREDICTORS = ("gp", "lgbm", "linear")
TREES = {"lgbm"}
TARGET_GAP = 0.05  # issue 22: schedule surrogates within 0.05 CV Spearman of mixture ones
RESAMPLES = 9999
SINGLE, SCHED = "sobol-", "sched-"


def set_kinds(data: Path, targets: list[str]) -> dict[str, str]:
    """Each set's kind: an end task if the corpus manifest lists it under ``tasks``."""
    tasks = set(json.loads((data / "corpus.json").read_text())["tasks"])
    return {t: "task" if t in tasks else "val" for t in targets}


def family_rows(log: RunsLog, prefix: str) -> np.ndarray:
    return np.array([r.startswith(prefix) for r in log.run_ids])


def realised_share(log: RunsLog) -> float:
    """The last-phase share the schedules were trained with (the plan's 0.2 in whole steps)."""
    shares = InputSpace.of(log).schedules(log).shares[family_rows(log, SCHED), -1]
    if np.ptp(shares) > 1e-6:
        raise SystemExit(f"the schedules' last-phase shares differ: {sorted(set(shares))}")
    return float(shares[0])


def without_phases(log: RunsLog) -> RunsLog:
    """A single-phase log (its mixtures as inputs): the phase columns dropped."""
    return RunsLog(log.frame[[c for c in log.frame.columns if not is_phase_column(c)]])


def boot(data: tuple, statistic, seed: int, paired: bool = False) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``statistic`` (NaN with fewer than 2 values)."""
    if min(len(d) for d in data) < 2:
        return np.nan, np.nan
    res = stats.bootstrap(
        data, statistic, paired=paired, vectorized=False, n_resamples=RESAMPLES,
        confidence_level=0.95, method="percentile", rng=np.random.default_rng(seed),
    )  # fmt: skip
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# --- (a) best schedule vs best mixture --------------------------------------------------------


class ConstantSchedule:
    """A schedule surrogate seen as a function of mixtures: each mixture as the constant
    schedule that the log's single-phase rows are (equal shares)."""

    def __init__(self, f: FittedObjective):
        self.f, self.objective, self.sets = f, f.objective, f.sets
        self.n_phases = f.space.n_phases

    def encode(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        W = np.atleast_2d(W)  # noqa: N806
        weights = np.repeat(W[:, None, :], self.n_phases, axis=1)
        return self.f.space.encode(weights, np.full((len(W), self.n_phases), 1 / self.n_phases))

    def __call__(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.f(self.encode(W))

    def set_losses(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.f.set_losses(self.encode(W))


def best_of_families(log: RunsLog, objective: Objective, floor: float, seed: int) -> dict:
    """Observed best of each family, their difference, its interval, and in noise floors."""
    y = objective.combine(log.Y, log.targets)
    single, sched = y[family_rows(log, SINGLE)], y[family_rows(log, SCHED)]
    diff = float(sched.min() - single.min())
    lo, hi = boot((sched, single), lambda a, b: np.min(a) - np.min(b), seed)
    ids = np.array(log.run_ids)
    return {
        "best_single": {"run_id": str(ids[family_rows(log, SINGLE)][single.argmin()]),
                        "observed": float(single.min())},
        "best_schedule": {"run_id": str(ids[family_rows(log, SCHED)][sched.argmin()]),
                          "observed": float(sched.min())},
        "difference": diff, "lo": lo, "hi": hi,
        "in_floors": diff / (floor * np.sqrt(2)),
        "single_mean": float(single.mean()), "schedule_mean": float(sched.mean()),
        "mean_difference": float(sched.mean() - single.mean()),
        "mean_lo_hi": boot((sched, single), lambda a, b: np.mean(a) - np.mean(b), seed + 1),
    }  # fmt: skip


def predicted_bests(log: RunsLog, objective: Objective, share: float, seed: int) -> list[dict]:
    """Per predictor, fitted on every run: its best constant and best two-phase schedule."""
    space = InputSpace.of(log)
    y = objective.combine(log.Y, log.targets)
    single, sched = family_rows(log, SINGLE), family_rows(log, SCHED)
    problem = ScheduleProblem(space, Bounds.unbounded(len(log.domains)), share=share)
    logged = space.schedules(log.subset(np.flatnonzero(sched)))
    rows = []
    for name in PREDICTORS:
        spec = evaluate.PredictorSpec(name)
        f = FittedObjective(spec, log, objective, None, space=space)
        const = ConstantSchedule(f)
        w1, _ = best_mixture(const, problem.bounds, log.W[single], tree=name in TREES, seed=seed)
        w2, s2, _ = best_schedule(f, problem, (logged.weights, logged.shares), seed=seed,
                                  tree=name in TREES)  # fmt: skip
        x1, x2 = const.encode(w1[None]), problem.encode(w2[None], s2[None])
        p1, p2 = float(f(x1)[0]), float(f(x2)[0])
        sd = [f.std(x) for x in (x1, x2)]
        at_best = [float(f(space.inputs(log.subset([int(np.flatnonzero(m)[y[m].argmin()])])))[0])
                   for m in (single, sched)]  # fmt: skip
        rows.append({
            "predictor": name,
            "single": {"mixture": w1.tolist(), "predicted": p1,
                       "std": None if sd[0] is None else float(sd[0][0]),
                       "best_observed": float(y[single].min()),
                       "predicted_at_best_observed": at_best[0]},
            "schedule": {"phases": w2.tolist(), "shares": s2.tolist(), "predicted": p2,
                         "std": None if sd[1] is None else float(sd[1][0]),
                         "best_observed": float(y[sched].min()),
                         "predicted_at_best_observed": at_best[1]},
            "predicted_difference": p2 - p1,
        })  # fmt: skip
    return rows


# --- (b) CV Spearman --------------------------------------------------------------------------


def cv_cells(log: RunsLog, scored, objectives: dict, args, label: str) -> pd.DataFrame:
    """Per-split Spearman of each predictor on each objective (one row per split)."""
    specs = [evaluate.PredictorSpec(n) for n in PREDICTORS]
    cv = evaluate.cross_validate(
        evaluate.EvaluationContext(specs, scored=scored, seed=args.seed, progress=False),
        log, folds=args.folds, repeats=args.repeats,
    )  # fmt: skip
    for name, objective in objectives.items():
        evaluate.add_objective(cv, objective, name)
    scores = cv.scores[cv.scores["target"].isin(list(objectives))].copy()
    scores["setting"] = label
    return scores[["setting", "predictor", "target", "repeat", "fold", "status", "spearman",
                   "regret"]]  # fmt: skip


SETTINGS = (
    "schedules alone", "mixtures alone", "schedules, pooled", "mixtures, pooled", "all 40",
    "schedules as effective mixtures",
)  # fmt: skip


def setting(log: RunsLog, label: str) -> tuple[RunsLog, np.ndarray | None]:
    """The log and scored rows of one CV setting (see the module docstring)."""
    single, sched = family_rows(log, SINGLE), family_rows(log, SCHED)
    return {
        "schedules alone": (log.subset(np.flatnonzero(sched)), None),
        "mixtures alone": (without_phases(log.subset(np.flatnonzero(single))), None),
        "schedules, pooled": (log, sched),
        "mixtures, pooled": (log, single),
        "all 40": (log, None),
        # a diagnostic: the schedules seen only through their token-weighted mixture
        "schedules as effective mixtures": (without_phases(log.subset(np.flatnonzero(sched))),
                                            None),
    }[label]  # fmt: skip


def cv_setting(data: Path, label: str, args: argparse.Namespace) -> tuple[pd.DataFrame, list]:
    """One setting's CV cells and the warnings raised (a worker process: reads the data)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        log = load_runs(data / "runs.csv")
        kinds = set_kinds(data, log.targets)
        objectives = {k: Objective.parse(v, log.targets, kinds) for k, v in OBJECTIVES.items()}
        rows, scored = setting(log, label)
        frame = cv_cells(rows, scored, objectives, args, label)
    return frame, [warning_text(w) for w in caught]


def warning_text(w: warnings.WarningMessage) -> str:
    return f"{w.category.__name__}: {w.message}"


def cv_study(data: Path, args: argparse.Namespace) -> tuple[pd.DataFrame, list[str]]:
    """Every setting's CV cells, in ``args.jobs`` processes (one thread each), and warnings."""
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the workers: no oversubscription
    n = len(SETTINGS)
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        done = list(pool.map(cv_setting, [data] * n, SETTINGS, [args] * n))
    return pd.concat([f for f, _ in done], ignore_index=True), [w for _, ws in done for w in ws]


def mean_ci(values: np.ndarray, seed: int) -> tuple[float, float, float]:
    values = values[np.isfinite(values)]
    if len(values) < 2 or np.ptp(values) == 0:  # too few splits scored for an interval
        m = float(values.mean()) if len(values) else np.nan
        return (m, m, m)
    return (float(values.mean()), *boot((values,), np.mean, seed))


def cv_tables(cells: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(mean CV Spearman [CI] per setting, the schedule - mixture and pooled - alone gaps)."""
    summary, gaps = [], []
    for (setting, pred, target), g in cells.groupby(["setting", "predictor", "target"], sort=False):
        m, lo, hi = mean_ci(g["spearman"].to_numpy(float), seed)
        summary.append({"setting": setting, "predictor": pred, "target": target, "spearman": m,
                        "lo": lo, "hi": hi, "splits": int(g["spearman"].notna().sum())})  # fmt: skip
    key = ["repeat", "fold"]
    for pred in PREDICTORS:
        for target in cells["target"].unique():
            pick = cells[(cells["predictor"] == pred) & (cells["target"] == target)]
            by = {s: g.set_index(key)["spearman"] for s, g in pick.groupby("setting")}
            a = by["schedules alone"].dropna().to_numpy()
            b = by["mixtures alone"].dropna().to_numpy()
            lo, hi = boot((a, b), lambda x, y: np.mean(x) - np.mean(y), seed)
            gaps.append({"comparison": "schedules alone - mixtures alone", "predictor": pred,
                         "target": target, "difference": a.mean() - b.mean(), "lo": lo, "hi": hi,
                         "paired": False})  # fmt: skip
            pairs = [(f"{fam}, pooled", f"{fam} alone", f"{fam}: pooled - alone")
                     for fam in ("schedules", "mixtures")]  # fmt: skip
            pairs.append(("schedules as effective mixtures", "schedules alone",
                          "schedules: effective mixture - flattened schedule"))  # fmt: skip
            for first, second, label in pairs:
                joined = pd.concat([by[first], by[second]], axis=1).dropna()
                d = (joined.iloc[:, 0] - joined.iloc[:, 1]).to_numpy()
                mean, lo, hi = mean_ci(d, seed)
                gaps.append({"comparison": label, "predictor": pred,
                             "target": target, "difference": mean, "lo": lo, "hi": hi,
                             "paired": True})  # fmt: skip
    return pd.DataFrame(summary), pd.DataFrame(gaps)


# --- (c) proxies ------------------------------------------------------------------------------


def regret(proxy: np.ndarray, truth: np.ndarray) -> float:
    """Full-budget regret of the proxy's pick among these mixtures."""
    return float(truth[int(np.argmin(proxy))] - truth.min())


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.spearmanr(a, b).statistic) if np.ptp(a) > 0 and np.ptp(b) > 0 else 0.0


def proxy_study(data: Path, log: RunsLog, objective: Objective, floor: float, seed: int) -> dict:
    """Each proxy family's pick, its regret and Spearman against the truth; paired bootstrap."""
    truth_by_id = dict(zip(log.run_ids, objective.combine(log.Y, log.targets), strict=True))
    values, out = {}, {}
    for fam in ("unmatched", "matched"):
        proxy = load_runs(data / f"proxy-{fam}.csv").with_domain_order(log.domains)
        values[fam] = dict(zip(proxy.run_ids, objective.combine(proxy.Y, proxy.targets),
                               strict=True))  # fmt: skip
    ids = [r for r in values["unmatched"] if r in values["matched"] and r in truth_by_id]
    u = np.array([values["unmatched"][r] for r in ids])
    m = np.array([values["matched"][r] for r in ids])
    t = np.array([truth_by_id[r] for r in ids])
    for fam, p in (("unmatched", u), ("matched", m)):
        sp_lo, sp_hi = boot((p, t), spearman, seed, paired=True)
        out[fam] = {"pick": ids[int(np.argmin(p))], "regret": regret(p, t),
                    "regret_floors": regret(p, t) / floor, "spearman": spearman(p, t),
                    "spearman_lo": sp_lo, "spearman_hi": sp_hi,
                    "proxy_values": p.tolist()}  # fmt: skip
    d_regret = boot((u, m, t), lambda a, b, c: regret(a, c) - regret(b, c), seed, paired=True)
    d_spear = boot((u, m, t), lambda a, b, c: spearman(b, c) - spearman(a, c), seed, paired=True)
    return {
        "mixtures": ids, "truth": t.tolist(), "best_truth": ids[int(np.argmin(t))],
        **out,
        "regret_unmatched_minus_matched": regret(u, t) - regret(m, t),
        "regret_diff_lo": d_regret[0], "regret_diff_hi": d_regret[1],
        "spearman_matched_minus_unmatched": out["matched"]["spearman"]
        - out["unmatched"]["spearman"],
        "spearman_diff_lo": d_spear[0], "spearman_diff_hi": d_spear[1],
        "proxies_agree": spearman(u, m),
    }  # fmt: skip


# --- main -------------------------------------------------------------------------------------


def analyse(args: argparse.Namespace) -> tuple[dict, RunsLog, dict[str, Objective]]:
    """(a) and (c) on every objective, with the noise floor and ceilings."""
    start = time.perf_counter()
    log, seeds = load_runs(args.data / "runs.csv"), load_runs(args.data / "seeds.csv")
    seeds = seeds.with_domain_order(log.domains)
    kinds = set_kinds(args.data, log.targets)
    objectives = {k: Objective.parse(v, log.targets, kinds) for k, v in OBJECTIVES.items()}
    # the realised last-phase share (whole steps: 102 of 512), so logged schedules are candidates
    share = realised_share(log)
    results: dict = {"protocol": {"folds": args.folds, "repeats": args.repeats, "seed": args.seed,
                                  "resamples": RESAMPLES, "predictors": list(PREDICTORS)},
                     "objectives": OBJECTIVES, "runs": {"single": int(family_rows(log, SINGLE).sum()),
                     "schedules": int(family_rows(log, SCHED).sum())}, "share": share}  # fmt: skip
    for name, objective in objectives.items():
        fl = noise_floor(seeds, objective)[evaluate.OBJECTIVE_TARGET]
        ceilings = {
            fam: noise_ceiling(log.subset(np.flatnonzero(family_rows(log, p))),
                               {evaluate.OBJECTIVE_TARGET: fl.std}, objective)[
                evaluate.OBJECTIVE_TARGET]
            for fam, p in (("single", SINGLE), ("schedules", SCHED))
        }  # fmt: skip
        y = objective.combine(log.Y, log.targets)
        spread = {fam: float(np.std(y[family_rows(log, p)], ddof=1))
                  for fam, p in (("single", SINGLE), ("schedules", SCHED))}  # fmt: skip
        results.setdefault("noise", {})[name] = {"floor": vars(fl), "ceiling": ceilings,
                                                 "spread": spread}  # fmt: skip
        results.setdefault("best", {})[name] = best_of_families(log, objective, fl.std, args.seed)
        results.setdefault("predicted", {})[name] = predicted_bests(log, objective, share,
                                                                    args.seed)  # fmt: skip
        results.setdefault("proxies", {})[name] = proxy_study(args.data, log, objective, fl.std,
                                                              args.seed)  # fmt: skip
        print(f"{name}: (a) and (c) done ({time.perf_counter() - start:.0f} s)", flush=True)
    return results, log, objectives


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, help="results folder (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true", help="1 CV repeat")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (CV settings)")
    args = parser.parse_args()
    if args.quick:
        args.repeats = 1
    out = args.out or Path(tempfile.mkdtemp(prefix="schedules-compare-"))
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # counted and reported, never silenced
        results, log, objectives = analyse(args)
        cells, worker_warnings = cv_study(args.data, args)
        cells.to_csv(out / "schedules_splits.csv", index=False)
        summary, gaps = cv_tables(cells, args.seed)
    counts = Counter([warning_text(w) for w in caught] + worker_warnings)
    results["warnings"] = dict(counts)
    for text, count in counts.items():
        print(f"warning x{count}: {text}")
    results["cv"] = summary.to_dict(orient="records")
    results["cv_gaps"] = gaps.to_dict(orient="records")
    results["seconds"] = round(time.perf_counter() - start, 1)
    (out / "schedules.json").write_text(json.dumps(json_safe(results), indent=1) + "\n")
    write_report(results, summary, gaps, log, objectives, out)
    print(f"results in {out} ({results['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
