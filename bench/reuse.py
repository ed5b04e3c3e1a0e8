"""Adding a domain without starting over (issue 21, item 4), on the shipped real-text runs.

The real-text log (``mixsurrogate/data/realtext``) has every run trained on all 6 domains, so a
world in which domain ``d`` arrives late has to be emulated. Protocol, for every left-out
domain ``d`` and several seeded draws:

- **old runs** (the 5-domain world): the vertex runs (= experts) of the other 5 domains and the
  mixing runs with ``w_d <= 0.05``. They did train with a little of ``d`` (the emulation's
  bias, reported: count, mean and largest ``w_d``); they are read as a user's old rows are
  with ``--missing-domains zero``: ``w_d`` set to 0 and the rest renormalised, and they have no
  loss on ``d``'s own validation set (never evaluated on it). Two more arms: ``(re-evaluated)``
  keeps that loss (the old checkpoints evaluated on the new set afterwards), ``(true w_d)``
  also keeps their true small ``w_d`` (an exact log), to measure the emulation's bias.
- **pool**: the mixing runs with ``w_d > 0.05``; per draw, ``TEST`` of them are held out for
  scoring (never trained on, by any arm), the rest are candidates for new runs.
- **reuse, k new runs**: old runs + the new expert (the vertex run of ``d``; MDE gets its scores
  from the store) + ``k`` runs drawn from the pool's non-test runs (k = 0, 2, 4, 6; nested).
- **start over**: the 6 vertex runs + 24 mixing runs drawn from every mixing run not held out
  (the learning-curve protocol of ``bench/realtext/compare.py``), scored on the same test runs.

Predictors: the best MDE predictor and the best rates-only predictor on CV ET+SP in
``bench/results/realtext.json`` (``mde-cal[token]`` and ``dml`` when last run). Per split:
Spearman of the predicted against the logged objective over the test runs (ET+SP, SP, ET);
tables give the mean over splits with a 95% bootstrap interval (``scipy.stats.bootstrap`` via
``bootstrap_mean_ci``) and the paired difference reuse - start over on the same splits.

    nice -n 15 python bench/reuse.py                       # writes bench/results/reuse.*
    nice -n 15 python bench/reuse.py --draws 2 --out /tmp  # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mixsurrogate.evaluation.fitting import PredictorSpec, fit_predict  # noqa: E402
from mixsurrogate.evaluation.metrics import bootstrap_mean_ci, json_safe, metrics  # noqa: E402
from mixsurrogate.evaluation.noise import OBJECTIVE_TARGET, noise_ceiling, noise_floor  # noqa: E402
from mixsurrogate.mde.features import MDEFeatureMap  # noqa: E402
from mixsurrogate.runs.log import LOSS_PREFIX, WEIGHT_PREFIX, RunsLog, validate_frame  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent / "realtext"))
from compare import DEFAULT_DATA, OBJECTIVES, load_benchmark  # noqa: E402

HERE = Path(__file__).parent
THRESHOLD = 0.05  # an old run "lacks" d when w_d <= this
K_NEW = (0, 2, 4, 6)
START_OVER = 24
TEST = 12  # held-out pool runs per split
TARGET_K = 6  # the issue: one new expert + <= 6 new runs


def best_predictors(results: Path) -> tuple[str, str]:
    """(best MDE label, best rates-only label) on CV ET+SP, as compare.py ranks them."""
    data = json.loads(results.read_text())
    cv = pd.DataFrame(data["cv"])
    cv = cv[(cv["target"] == "ET+SP") & (cv["status"] == "ok") & ~cv["predictor"].str.contains("#")]
    mde = cv[cv["predictor"].str.contains(r"\[")].sort_values("spearman", ascending=False)
    return str(mde.iloc[0]["predictor"]), str(data["best_rates_only"])


def parse_label(label: str) -> tuple[str, str | None]:
    """``mde-cal[token]`` -> (``mde-cal``, ``token``); ``dml`` -> (``dml``, None)."""
    if "[" in label:
        name, kind = label.rstrip("]").split("[")
        return name, kind
    return label, None


def zeroed(log: RunsLog, rows: np.ndarray, domain: str, keep_loss: bool) -> RunsLog:
    """The runs ``rows`` as old rows: ``w_domain`` read as 0 (``--missing-domains zero``), the
    rest renormalised, and (unless ``keep_loss``) no loss on the domain's own validation set,
    on which they were never evaluated."""
    frame = log.frame.iloc[list(rows)].copy()
    frame[WEIGHT_PREFIX + domain] = 0.0
    cols = [WEIGHT_PREFIX + d for d in log.domains]
    frame[cols] = frame[cols].div(frame[cols].sum(axis=1), axis=0)
    if not keep_loss and domain in log.targets:
        frame[LOSS_PREFIX + domain] = np.nan
    return RunsLog(validate_frame(frame.reset_index(drop=True)))


def concat(*logs: RunsLog) -> RunsLog:
    return RunsLog(validate_frame(pd.concat([x.frame for x in logs], ignore_index=True)))


def splits(log: RunsLog, draws: int, seed: int):
    """Every (domain, draw): old rows, new-expert row, pool candidates (in draw order), test
    rows, and the start-over mixing rows; all index arrays into ``log``."""
    ids = np.array(log.run_ids)
    vertex = np.array([r.startswith("vertex-") for r in ids])
    mixing = np.flatnonzero(~vertex)
    for j, d in enumerate(log.domains):
        w = log.W[:, j]
        expert = int(np.flatnonzero(ids == f"vertex-{d}")[0])
        other_vertices = np.flatnonzero(vertex & (ids != f"vertex-{d}"))
        old_mixing = mixing[w[mixing] <= THRESHOLD]
        pool = mixing[w[mixing] > THRESHOLD]
        for draw in range(draws):
            rng = np.random.default_rng([seed, j, draw])
            order = rng.permutation(pool)
            test, candidates = np.sort(order[:TEST]), order[TEST:]
            rest = np.setdiff1d(mixing, test)
            start_over = rng.choice(rest, size=min(START_OVER, len(rest)), replace=False)
            yield {
                "domain": d, "draw": draw, "old": np.concatenate([other_vertices, old_mixing]),
                "old_mixing": old_mixing, "expert": expert, "candidates": candidates,
                "test": test, "start_over": np.concatenate([np.flatnonzero(vertex), start_over]),
            }  # fmt: skip


def objective_spearman(pred: np.ndarray, truth: np.ndarray, objectives, targets) -> dict:
    """Spearman per objective over its own sets only (a set it weighs 0 that the predictor
    could not fit must not turn it into NaN); NaN when a set it needs was not fitted."""
    out = {}
    for name, obj in objectives.items():
        cols = [targets.index(t) for t in obj.sets]
        p, t = obj.combine(pred[:, cols], obj.sets), obj.combine(truth[:, cols], obj.sets)
        out[name] = metrics(t, p)["spearman"] if np.isfinite(p).all() else np.nan
    return out


def run(args) -> tuple[pd.DataFrame, dict]:
    log, seeds, store, objectives = load_benchmark(args.data)
    mde_label, rates_label = best_predictors(args.results / "realtext.json")
    labels = [mde_label, rates_label]
    features = {}
    for label in labels:
        _, kind = parse_label(label)
        features[label] = MDEFeatureMap(store, log.targets, kind=kind) if kind else None
    rows, worlds = [], {}
    for s in splits(log, args.draws, args.seed):
        d, test = s["domain"], s["test"]
        w_old = log.W[s["old_mixing"], log.domains.index(d)]
        worlds[d] = {
            "old_runs": len(s["old"]), "old_mixing_runs": len(s["old_mixing"]),
            "old_w_mean": float(w_old.mean()) if len(w_old) else 0.0,
            "old_w_max": float(w_old.max()) if len(w_old) else 0.0,
            "pool": len(s["candidates"]) + len(test),
        }  # fmt: skip
        old = {"": zeroed(log, s["old"], d, keep_loss=False),
               " (re-evaluated)": zeroed(log, s["old"], d, keep_loss=True),
               " (true w_d)": log.subset(s["old"])}  # fmt: skip
        arms = {"start over (24 runs)": log.subset(s["start_over"])}
        for suffix, old_rows in old.items():
            for k in K_NEW:
                new = log.subset([s["expert"], *s["candidates"][:k]])
                arms[f"reuse +{k}{suffix}"] = concat(old_rows, new)
        truth = log.Y[test]
        for label in labels:
            name, _ = parse_label(label)
            for arm, train in arms.items():
                out = fit_predict(PredictorSpec(name), train, log.W[test], log.targets,
                                  features[label])  # fmt: skip
                rho = objective_spearman(out.pred, truth, objectives, log.targets)
                bad = [t for t, (status, _) in out.status.items() if status != "ok"]
                rows += [
                    {"domain": d, "draw": s["draw"], "predictor": label, "arm": arm,
                     "train_runs": len(train), "objective": o, "spearman": v,
                     "failed_sets": ",".join(bad)}
                    for o, v in rho.items()
                ]  # fmt: skip
        print(f"{d} draw {s['draw']}: done", flush=True)
    floors = {o: noise_floor(seeds, obj)[OBJECTIVE_TARGET] for o, obj in objectives.items()}
    ceilings = {}
    for o, obj in objectives.items():
        per_domain = []
        for j, _ in enumerate(log.domains):
            pool = [i for i, r in enumerate(log.run_ids)
                    if not r.startswith("vertex-") and log.W[i, j] > THRESHOLD]  # fmt: skip
            ceiling = noise_ceiling(log.subset(pool), {OBJECTIVE_TARGET: floors[o].std}, obj)
            per_domain.append(ceiling[OBJECTIVE_TARGET])
        ceilings[o] = float(np.mean(per_domain))
    meta = {"labels": labels, "worlds": worlds, "ceilings": ceilings,
            "floors": {o: vars(f) for o, f in floors.items()}}  # fmt: skip
    return pd.DataFrame(rows), meta


def summarise(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean Spearman [95% CI] per predictor, arm, objective; paired reuse - start over."""
    cells, paired = [], []
    keys = ["domain", "draw"]
    for (label, arm, o), g in scores.groupby(["predictor", "arm", "objective"], sort=False):
        lo, hi = bootstrap_mean_ci(g["spearman"].to_numpy())
        cells.append({"predictor": label, "arm": arm, "objective": o,
                      "spearman": g["spearman"].mean(), "lo": lo, "hi": hi,
                      "splits": int(g["spearman"].notna().sum())})  # fmt: skip
        if arm.startswith("start over"):
            continue
        base = scores[(scores["predictor"] == label) & (scores["objective"] == o)
                      & scores["arm"].str.startswith("start over")]  # fmt: skip
        both = g.merge(base, on=keys, suffixes=("", "_base"))
        diff = (both["spearman"] - both["spearman_base"]).to_numpy()
        diff = diff[np.isfinite(diff)]
        lo, hi = bootstrap_mean_ci(diff)
        paired.append({"predictor": label, "arm": arm, "objective": o,
                       "difference": float(np.mean(diff)) if len(diff) else np.nan, "lo": lo, "hi": hi,
                       "reuse better": float(np.mean(diff > 0)), "splits": len(diff)})  # fmt: skip
    return pd.DataFrame(cells), pd.DataFrame(paired)


def fmt(v: float, lo: float, hi: float) -> str:
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]"


def verdicts(cells: pd.DataFrame, paired: pd.DataFrame, labels: list[str]) -> list[str]:
    """The issue's target per predictor and objective, stated plainly: **met** when one new
    expert + 6 new runs reaches, on average over the paired splits, the Spearman of starting
    over with 24 runs; otherwise missed, saying whether the paired interval still includes 0."""
    lines = []
    for label in labels:
        for o in OBJECTIVES:
            mine = paired[(paired["predictor"] == label) & (paired["objective"] == o)]
            p = mine[mine["arm"] == f"reuse +{TARGET_K}"].iloc[0]
            zero_read = mine[~mine["arm"].str.contains("true")].dropna(subset="difference")
            zero_read = zero_read.sort_values("difference")
            best = zero_read.iloc[-1]
            if not np.isfinite(p["difference"]):
                lines.append(
                    f"- {label}, {o}: reuse +{TARGET_K}: not scored on any split (a set the "
                    "objective needs had too few runs for the predictor): **missed**"
                )
                continue
            if p["difference"] >= 0:
                verdict = "met"
            elif p["hi"] >= 0:
                verdict = "missed (by less than the noise: the paired interval includes 0)"
            else:
                verdict = "missed (the paired interval is below 0)"
            lines.append(
                f"- {label}, {o}: reuse +{TARGET_K} - start over = "
                f"{fmt(p['difference'], p['lo'], p['hi'])}; reuse better on "
                f"{p['reuse better']:.0%} of {p['splits']} scored splits; best arm {best['arm']} "
                f"({best['difference']:+.3f}): **{verdict}**"
            )
    return lines


def write(out: Path, scores: pd.DataFrame, meta: dict, args, seconds: float) -> None:
    cells, paired = summarise(scores)
    labels = meta["labels"]
    md = [
        "# Adding a domain without starting over (real-text runs)",
        "",
        "Generated by `bench/reuse.py` (protocol in its docstring). Every one of the 6 domains "
        f"is left out in turn; {args.draws} seeded draws each ({6 * args.draws} splits per "
        f"cell); {TEST} held-out runs with w_d > {THRESHOLD} per split, never trained on. "
        f"Predictors: `{labels[0]}` (best MDE on CV ET+SP in realtext.json) and `{labels[1]}` "
        "(best rates-only). Cells: mean Spearman over splits [95% bootstrap interval].",
        "",
        "## The emulated old worlds",
        "",
        f"Old runs = the other 5 vertex runs + the mixing runs with w_d <= {THRESHOLD}; they "
        "did train on a little of d, which the `reuse` arms read as 0 (as `--missing-domains "
        "zero` would) and the `(true w_d)` arms keep. In the `reuse` arms the old runs have no "
        "loss on d's validation set (never evaluated on it), so that set's predictor learns "
        "from the new expert and the k new runs alone; `(re-evaluated)` arms give the old runs "
        "that loss (their checkpoints evaluated on the new set).",
        "",
        "| left-out domain | old runs | of them mixing | mean w_d of those | largest w_d | pool (w_d > 0.05) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for d, w in meta["worlds"].items():
        md.append(f"| {d} | {w['old_runs']} | {w['old_mixing_runs']} | {w['old_w_mean']:.3f} | "
                  f"{w['old_w_max']:.3f} | {w['pool']} |")  # fmt: skip
    md += ["", "## Target (issue 21): one new expert + <= 6 new runs vs starting over with 24", "",
           *verdicts(cells, paired, labels), ""]  # fmt: skip
    for o in OBJECTIVES:
        table = cells[cells["objective"] == o].copy()
        total = len(scores) // len(scores["arm"].unique()) // len(labels) // len(OBJECTIVES)
        table["cell"] = [
            ("not scored" if n == 0 else fmt(v, lo, hi) + (f" ({n} splits)" if n < total else ""))
            for v, lo, hi, n in table[["spearman", "lo", "hi", "splits"]].to_numpy()
        ]
        wide = table.pivot(index="arm", columns="predictor", values="cell")
        wide = wide.reindex(index=list(dict.fromkeys(table["arm"])), columns=labels)
        md += [f"## Spearman on {o} (noise ceiling on the pools: {meta['ceilings'][o]:.3f})", "",
               wide.reset_index().to_markdown(index=False), ""]  # fmt: skip
    md += ["## Paired differences, reuse - start over (same splits)", ""]
    shown = paired.copy()
    shown["difference [95% CI]"] = [fmt(*r) for r in shown[["difference", "lo", "hi"]].to_numpy()]
    md += [shown[["predictor", "objective", "arm", "difference [95% CI]", "reuse better",
                  "splits"]].to_markdown(index=False, floatfmt=".2f"), ""]  # fmt: skip
    failed = scores[scores["failed_sets"] != ""]
    if len(failed):
        md += ["## Fits that left sets out", ""]
        for (label, arm), g in failed.groupby(["predictor", "arm"]):
            md.append(f"- {label} / {arm}: {len(g) // len(OBJECTIVES)} splits left a set out "
                      "(the left-out domain's own validation set; over all splits: "
                      f"{', '.join(sorted(set(','.join(g['failed_sets']).split(','))))})")  # fmt: skip
        md.append("")
    md += ["![Spearman on ET+SP](reuse.png)", "",
           f"Run time: {seconds:.0f} s (under `nice -n 15`, 2 shared CPU cores).", ""]  # fmt: skip
    (out / "reuse.md").write_text("\n".join(md) + "\n")
    payload = {"protocol": {"threshold": THRESHOLD, "k_new": list(K_NEW), "start_over": START_OVER,
                            "test": TEST, "draws": args.draws, "seed": args.seed},
               **meta, "cells": cells.to_dict(orient="records"),
               "paired": paired.to_dict(orient="records"),
               "splits": scores.to_dict(orient="records"), "seconds": round(seconds, 1)}  # fmt: skip
    (out / "reuse.json").write_text(
        json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n"
    )
    plot(cells, labels, meta, out / "reuse.png")
    print("\n".join(md))


def plot(cells: pd.DataFrame, labels: list[str], meta: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    et = cells[cells["objective"] == "ET+SP"]
    for label, colour in zip(labels, ("tab:blue", "tab:orange"), strict=True):
        for suffix, style in (("", "-o"), (" (re-evaluated)", "--^"), (" (true w_d)", ":s")):
            rows = et[(et["predictor"] == label)
                      & et["arm"].isin([f"reuse +{k}{suffix}" for k in K_NEW])]  # fmt: skip
            ax.errorbar(list(K_NEW), rows["spearman"], yerr=[rows["spearman"] - rows["lo"],
                        rows["hi"] - rows["spearman"]], fmt=style, color=colour, capsize=3,
                        label=f"{label}: reuse{suffix}")  # fmt: skip
        base = et[(et["predictor"] == label) & et["arm"].str.startswith("start over")].iloc[0]
        ax.axhline(base["spearman"], color=colour, ls="--", lw=1,
                   label=f"{label}: start over, 24 runs")  # fmt: skip
    ax.axhline(meta["ceilings"]["ET+SP"], color="grey", lw=1, label="noise ceiling")
    ax.set_xlabel("new runs after adding the domain (+ its expert)")
    ax.set_ylabel("Spearman on ET+SP (held-out runs)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--results", type=Path, default=HERE / "results",
                        help="where realtext.json (the predictor ranking) is")  # fmt: skip
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--draws", type=int, default=4, help="seeded draws per left-out domain")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scores, meta = run(args)
    write(args.out, scores, meta, args, time.perf_counter() - start)


if __name__ == "__main__":
    main()
