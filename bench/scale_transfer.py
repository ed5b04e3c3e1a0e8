"""Scale transfer on RegMix's public runs: do small runs predict large ones?

Fit on the 512 1M-parameter training runs plus k in {0, 8, 16, 32} 60M runs (drawn at random
from the 256 60M runs, several draws per k); score Spearman on the 60M runs not drawn and on
the 64 1B runs. Predictors:

- ``mfgp``: the multi-fidelity GP over (mixture, log params, log tokens), fitted on the 1M
  runs and the k 60M runs together, predicting at each test run's own fidelity;
- ``gp``, ``dml`` and ``lgbm`` fitted on the 1M runs only: the scale-invariance assumption
  (RegMix's rank invariance), the same for every k;
- ``gp`` fitted on the k 60M runs only (k >= 8): what the larger runs say alone.

Fidelities (RegMix paper, section 4): 1M and 60M models on 1B tokens, 1B models on 25B tokens.
Writes bench/results/scale_transfer.{md,json,png}.

    python bench/scale_transfer.py --out bench/results      # the committed results
    python bench/scale_transfer.py --quick                   # Pile-CC, 2 draws; temp folder
    python bench/scale_transfer.py --write-log runs.csv      # every RegMix run, with fidelity
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.evaluation.metrics import json_safe
from mixsurrogate.runs.fidelity import REGMIX_FIDELITY, regmix_all_scales
from mixsurrogate.runs.log import save_runs

KS = (0, 8, 16, 32)
TARGET = "pile_cc"
#: dml's 1B figure fitted on the 512 1M runs alone (bench/results/regmix.md): the target
DML_1M_ONLY_1B = 0.986
BOOTSTRAP = 2000
#: label -> (registry name, hyper-parameters, sets it is scored on: None = every set); the
#: loss-target variant of mfgp on Pile-CC only (its 13-set run would double the bench's time)
PREDICTORS = {
    "gp (1M only)": ("gp", None, None),
    "dml (1M only)": ("dml", None, None),
    "lgbm (1M only)": ("lgbm", None, None),
    "mfgp": ("mfgp", None, None),
    "mfgp (loss target)": ("mfgp", {"log_target": False}, (TARGET,)),
    "gp (60M only)": ("gp", None, None),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="results folder (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true", help="Pile-CC only, 2 draws")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--targets", default=None, help="comma-separated sets (default: all 13)")
    parser.add_argument("--write-log", type=Path, help="write every RegMix run with fidelity")
    args = parser.parse_args()
    log = regmix_all_scales()
    if args.write_log:
        save_runs(log, args.write_log)
        print(f"wrote {len(log)} runs to {args.write_log}")
        return
    out = args.out or Path(tempfile.mkdtemp(prefix="scale-transfer-"))
    out.mkdir(parents=True, exist_ok=True)
    targets = [TARGET] if args.quick else (args.targets or ",".join(log.targets)).split(",")
    draws = 2 if args.quick else args.draws
    ids = pd.Series(log.run_ids)
    train_1m = np.flatnonzero(ids.str.startswith("train-1m-"))
    pool_60m = np.flatnonzero(ids.str.startswith("test-60m-"))
    test_1b = np.flatnonzero(ids.str.startswith("test-1b-"))
    truth = np.column_stack([log.loss(t) for t in targets])
    rows: list[dict] = []
    seconds: dict[str, float] = {}

    def score(label, k, draw, train_rows, test_sets, seconds_key):
        name, params, sets = PREDICTORS[label]
        sets = [t for t in targets if sets is None or t in sets]
        spec = evaluate.PredictorSpec(name, params)
        start = time.perf_counter()
        test_rows = np.concatenate(list(test_sets.values()))
        outcome = evaluate.fit_predict(
            spec, log.subset(train_rows), log.W[test_rows], sets,
            test_rows=log.subset(test_rows),
        )  # fmt: skip
        seconds[seconds_key] = seconds.get(seconds_key, 0.0) + time.perf_counter() - start
        at = 0
        for test_name, idx in test_sets.items():
            pred = outcome.pred[at : at + len(idx)]
            at += len(idx)
            for j, target in enumerate(sets):
                status, reason = outcome.status[target]
                rows.append(
                    {
                        "predictor": label, "k": k, "draw": draw, "test": test_name,
                        "target": target, "status": status, "reason": reason,
                        "n_train": len(train_rows), "n_test": len(idx),
                        "spearman": _spearman(truth[idx, targets.index(target)], pred[:, j]),
                        "notes": "; ".join(outcome.notes.get(target, [])),
                        "rows": idx, "pred": pred[:, j],
                    }
                )  # fmt: skip

    # baselines fitted on the 1M runs alone: the same for every k, scored on every 60M run
    for name in ("gp", "dml", "lgbm"):
        label = f"{name} (1M only)"
        score(label, 0, 0, train_1m, {"60M": pool_60m, "1B": test_1b}, label)
        print(f"{label} done", flush=True)
    rng = np.random.default_rng(0)
    for k in KS:
        for draw in range(1 if k == 0 else draws):
            picked = np.sort(rng.choice(pool_60m, k, replace=False)) if k else pool_60m[:0]
            rest = np.setdiff1d(pool_60m, picked)
            tests = {"60M": rest, "1B": test_1b}
            for label in ("mfgp", "mfgp (loss target)"):
                score(label, k, draw, np.concatenate([train_1m, picked]), tests, f"{label} k={k}")
            if k:
                score("gp (60M only)", k, draw, picked, tests, f"gp 60M-only k={k}")
            print(f"k={k} draw={draw} done", flush=True)
    write_results(out, pd.DataFrame(rows), truth, targets, draws, seconds)
    print(f"results in {out}")


def _spearman(y: np.ndarray, pred: np.ndarray) -> float:
    if not np.isfinite(pred).all() or np.ptp(pred) == 0:
        return float("nan")
    return float(spearmanr(y, pred).statistic)


def cell_interval(cells: pd.DataFrame, truth: np.ndarray, targets: list[str], seed: int = 0):
    """Mean Spearman over draws (and over ``targets``) with a 95% percentile interval over
    bootstrap resamples of the test runs (the same resample for every draw and target)."""
    # draws score different 60M runs (those not drawn), all as many: one resample of
    # positions serves every draw
    n = len(cells.iloc[0]["rows"])
    rng = np.random.default_rng(seed)
    stats = []
    cols = [targets.index(t) for t in cells["target"]]
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, n, n)
        vals = [
            _spearman(truth[r["rows"][i], c], r["pred"][i])
            for (_, r), c in zip(cells.iterrows(), cols, strict=True)
        ]
        stats.append(np.nanmean(vals))
    lo, hi = np.nanquantile(stats, [0.025, 0.975])
    return float(cells["spearman"].mean()), float(lo), float(hi)


def write_results(out: Path, frame: pd.DataFrame, truth, targets, draws, seconds) -> None:
    ok = frame[frame["status"] == "ok"]
    labels = list(PREDICTORS)
    summary = []
    for (label, k, test), cells in ok.groupby(["predictor", "k", "test"], sort=False):
        for which, subset in (("pile_cc", cells[cells["target"] == TARGET]), ("mean", cells)):
            if subset.empty or (which == "mean" and subset["target"].nunique() < len(targets)):
                continue
            mean, lo, hi = cell_interval(subset, truth, targets)
            per_draw = subset.groupby("draw")["spearman"].mean()
            summary.append(
                {
                    "predictor": label, "k": int(k), "test": test, "target": which,
                    "spearman": mean, "lo": lo, "hi": hi, "draw_min": float(per_draw.min()),
                    "draw_max": float(per_draw.max()), "draws": int(len(per_draw)),
                    "n_sets": int(subset["target"].nunique()),
                }
            )  # fmt: skip
    summary = pd.DataFrame(summary)
    failed = frame[frame["status"] != "ok"][["predictor", "k", "test", "target", "reason"]]

    def table(target: str, test: str) -> pd.DataFrame:
        data = summary[(summary["target"] == target) & (summary["test"] == test)]
        grid = pd.DataFrame(index=[n for n in labels if n in set(data["predictor"])])
        for k in KS:
            cells = []
            for label in grid.index:
                hit = data[
                    (data["predictor"] == label)
                    & (data["k"].isin([k, 0] if "1M only" in label else [k]))
                ]
                if hit.empty:
                    cells.append("-")
                    continue
                r = hit.iloc[0]
                span = f" (draws {r['draw_min']:.3f}-{r['draw_max']:.3f})" if r["draws"] > 1 else ""
                cells.append(f"{r['spearman']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]{span}")
            grid[f"k={k}"] = cells
        return grid

    def md(grid: pd.DataFrame) -> str:
        return grid.to_markdown()

    verdict = summary[
        (summary["predictor"] == "mfgp") & (summary["test"] == "1B") & (summary["target"] == "pile_cc")
        & (summary["k"] <= 16)
    ]  # fmt: skip
    best = verdict.loc[verdict["spearman"].idxmax()] if len(verdict) else None
    lines = [
        "# Scale transfer on RegMix's public runs",
        "",
        "Generated by `python bench/scale_transfer.py --out bench/results`. Fit on RegMix's 512",
        "1M-parameter training runs plus k 60M runs (random draws from the 256 60M runs; "
        f"{draws} draws per k > 0, draw 0..{draws - 1} of a seeded generator), score Spearman "
        "on the 60M runs not drawn (256 - k) and on the 64 1B runs. `(1M only)`: fitted on the",
        "512 1M runs alone, the scale-invariance assumption (its cells repeat across k). `mfgp`:",
        "the multi-fidelity GP on (mixture, log10 params, log10 tokens), predicting at each test",
        "run's own fidelity. Fidelities as the RegMix paper states them: 1M and 60M models on 1B",
        "tokens, 1B models on 25B tokens. Cells: mean Spearman over draws [95% bootstrap interval",
        "over the test runs] (min-max over draws).",
        "",
        "## Pile-CC, tested on the 64 1B runs",
        md(table("pile_cc", "1B")),
        "",
        "## Pile-CC, tested on the 60M runs not drawn",
        md(table("pile_cc", "60M")),
    ]
    if len(targets) > 1:
        lines += [
            "",
            f"## Mean over the {len(targets)} sets, tested on the 64 1B runs",
            md(table("mean", "1B")),
            "",
            f"## Mean over the {len(targets)} sets, tested on the 60M runs not drawn",
            md(table("mean", "60M")),
        ]
    lines += ["", "## Target", ""]
    if best is not None:
        met = best["spearman"] >= DML_1M_ONLY_1B
        lines.append(
            f"Spearman >= {DML_1M_ONLY_1B} (dml's 1M-only figure) on the 1B runs with 1M + <= 16 "
            f"60M runs: best mfgp cell k={int(best['k'])}: {best['spearman']:.3f} "
            f"[{best['lo']:.3f}, {best['hi']:.3f}] -> {'met' if met else 'not met'}."
        )
    if len(failed):
        lines += ["", "## Cells not scored", "", failed.drop_duplicates().to_markdown(index=False)]
    notes = frame[(frame["notes"] != "") & (frame["target"] == TARGET)]
    if len(notes):
        lines += ["", "## Fit notes (Pile-CC)", ""]
        for (label, k), cell in notes.groupby(["predictor", "k"], sort=False):
            counts = cell.drop_duplicates(["draw"])["notes"].value_counts()
            lines += [f"- {label} k={k}: " + "; ".join(f"{n} [{c}x]" for n, c in counts.items())]
    lines += ["", "## Time (shared 2-core machine; not a speed claim)", ""]
    lines += [f"- {key}: {v:.1f} s" for key, v in seconds.items()]
    lines += ["", "![scale transfer](scale_transfer.png)"]
    (out / "scale_transfer.md").write_text("\n".join(lines) + "\n")
    payload = {
        "machine": {"python": platform.python_version(), "processor": platform.processor()},
        "protocol": "fit on 512 RegMix 1M runs + k 60M runs (random draws); score Spearman on "
        "the other 60M runs and the 64 1B runs; fidelities "
        + ", ".join(f"{s}: params {p:g}, tokens {t:g}" for s, (p, t) in REGMIX_FIDELITY.items()),
        "targets": targets,
        "summary": summary.to_dict(orient="records"),
        "cells": frame.drop(columns=["rows", "pred"]).to_dict(orient="records"),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "target_spearman_1b": DML_1M_ONLY_1B,
    }
    (out / "scale_transfer.json").write_text(
        json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n"
    )
    plot(summary, out / "scale_transfer.png")
    print("\n".join(lines))


def plot(summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    data = summary[summary["target"] == "pile_cc"]
    for ax, test in zip(axes, ("60M", "1B"), strict=True):
        cells = data[data["test"] == test]
        for label, group in cells.groupby("predictor", sort=False):
            if "1M only" in label:
                r = group.iloc[0]
                ax.axhline(r["spearman"], ls="--", lw=1, label=label, color=None)
                continue
            group = group.sort_values("k")
            ax.errorbar(
                group["k"], group["spearman"],
                yerr=[group["spearman"] - group["lo"], group["hi"] - group["spearman"]],
                marker="o", capsize=3, label=label,
            )  # fmt: skip
        ax.axhline(DML_1M_ONLY_1B, color="grey", lw=0.5) if test == "1B" else None
        ax.set_title(f"Pile-CC, tested on {test} runs")
        ax.set_xlabel("60M runs added to the 512 1M runs (k)")
        ax.set_ylabel("Spearman")
        ax.set_xticks(list(KS))
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
