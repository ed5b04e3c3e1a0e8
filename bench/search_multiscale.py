"""Closed-loop multi-scale search on the RegMix multi-scale oracle: multi-fidelity vs target-only.

The oracle (``search.multiscale_oracle``) is the multi-fidelity GP fitted on all 1088 public
RegMix runs (1M and 60M models on 1B tokens, 1B models on 25B tokens), over 5 domain groups;
a run observes its loss with the fitted relative noise. Target fidelity 1B:25B (1.5e20 FLOPs
a run at 6 N D); menu 1M:1B (6e15), 60M:1B (3.6e17) and the target itself.

- multi-fidelity: K + 1 = 6 Sobol runs at 1M, then ``propose_multifidelity`` (mfgp, augmented
  EI at the target per unit cost^alpha), q = 2 runs a step, recommendation at the target;
- single-fidelity: 6 Sobol runs at the target, then the same loop with the target alone on the
  menu (augmented EI reduces to EI there), q = 1.

Regret: the oracle's true target-scale loss of the recommended mixture minus the target-scale
optimum (dense search). Noise floor: the oracle's observation noise std at the target. For
each seed: FLOPs spent when the regret first reaches the noise floor and stays there until the
end of that run. Writes bench/results/search_multiscale.{md,json,png}.

    python bench/search_multiscale.py --out bench/results            # the committed results
    python bench/search_multiscale.py --seeds 2 --steps 6            # quick look, temp folder
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
import torch

from mixsurrogate.fidelity import CostModel, FidelityMenu
from mixsurrogate.metrics import json_safe
from mixsurrogate.search.multifidelity import propose_multifidelity
from mixsurrogate.search.multiscale_oracle import REGMIX_SCALES, regmix_multiscale_oracle
from mixsurrogate.simplex import Bounds


def run_loop(oracle, menu, start, q, steps, budget, alpha, seed, cost):
    """One closed loop; returns per-step records (FLOPs so far, regret of the recommendation)."""
    rng = np.random.default_rng(1000 + seed)
    k = len(oracle.domains)
    W = Bounds.unbounded(k).sample(k + 1, seed=seed)  # noqa: N806
    F = np.tile(start.features(), (len(W), 1))  # noqa: N806
    y = oracle.observe(W, start, rng)
    flops = cost.flops(start) * len(W)
    counts = {str(start): len(W)}
    records = []
    for step in range(steps + 1):
        proposal = propose_multifidelity(
            W, F, y, oracle.domains, menu, q=q, cost=cost, alpha=alpha, n_initial=0, seed=seed
        )
        truth = float(oracle.mean(proposal.recommended, menu.target)[0])
        records.append({"step": step, "flops": flops, "truth": truth, **dict(counts)})
        if step == steps or flops >= budget:
            break
        for w, f in zip(proposal.mixtures, proposal.fidelities, strict=True):
            W = np.vstack([W, w])  # noqa: N806
            F = np.vstack([F, f.features()])  # noqa: N806
            y = np.append(y, oracle.observe(w[None], f, rng))
            flops += cost.flops(f)
            counts[str(f)] = counts.get(str(f), 0) + 1
    return records


def flops_to_floor(records: list[dict], optimum: float, floor: float) -> float:
    """FLOPs at the first step from which the regret stays within ``floor`` (inf: never)."""
    regrets = np.array([r["truth"] - optimum for r in records])
    within = regrets <= floor
    for i in range(len(records)):
        if within[i:].all():
            return records[i]["flops"]
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20, help="steps of the multi-fidelity loop")
    parser.add_argument("--target-steps", type=int, default=14, help="steps at the target only")
    parser.add_argument("--objective", default="mean", help="mean (of the 13 sets) or a set")
    parser.add_argument("--alpha", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # small GPs: thread hand-offs cost more than they save
    out = args.out or Path(tempfile.mkdtemp(prefix="search-multiscale-"))
    out.mkdir(parents=True, exist_ok=True)
    cost = CostModel()
    start_time = time.perf_counter()
    oracle = regmix_multiscale_oracle(args.objective)
    target = REGMIX_SCALES["1B"]
    menu = FidelityMenu.build([REGMIX_SCALES["1M"], REGMIX_SCALES["60M"]], target)
    target_only = FidelityMenu.build([], target)
    best_w, optimum = oracle.optimum(target)
    floor = oracle.noise_std(target)
    oracle_seconds = time.perf_counter() - start_time
    budget = cost.flops(target) * (len(oracle.domains) + 1 + args.target_steps)
    rows, summary = [], []
    for seed in range(args.seeds):
        for method, m, start, q, steps in (
            ("multi-fidelity", menu, REGMIX_SCALES["1M"], 2, args.steps),
            ("target only", target_only, target, 1, args.target_steps),
        ):
            t = time.perf_counter()
            records = run_loop(oracle, m, start, q, steps, budget, args.alpha, seed, cost)
            for r in records:
                rows.append({"method": method, "seed": seed, "regret": r["truth"] - optimum, **r})
            summary.append(
                {
                    "method": method, "seed": seed,
                    "flops_to_floor": flops_to_floor(records, optimum, floor),
                    "final_regret": records[-1]["truth"] - optimum,
                    "final_flops": records[-1]["flops"],
                    "seconds": time.perf_counter() - t,
                }
            )  # fmt: skip
            print(summary[-1], flush=True)
    write_results(out, pd.DataFrame(rows), pd.DataFrame(summary), oracle, optimum, best_w, floor,
                  budget, args, oracle_seconds)  # fmt: skip
    print(f"results in {out}")


def write_results(out, rows, summary, oracle, optimum, best_w, floor, budget, args, oracle_s):
    per_method = {}
    for method, cells in summary.groupby("method", sort=False):
        reached = cells["flops_to_floor"].replace(np.inf, np.nan)
        per_method[method] = {
            "seeds": int(len(cells)),
            "reached_floor": int(reached.notna().sum()),
            "median_flops_to_floor": float(np.median(cells["flops_to_floor"])),
            "median_final_regret": float(cells["final_regret"].median()),
            "max_final_regret": float(cells["final_regret"].max()),
            "median_final_flops": float(cells["final_flops"].median()),
            "median_seconds": float(cells["seconds"].median()),
        }
    mf, sf = per_method["multi-fidelity"], per_method["target only"]
    ratio = mf["median_flops_to_floor"] / sf["median_flops_to_floor"]
    met = bool(np.isfinite(ratio) and ratio <= 1 / 3)
    table = pd.DataFrame(per_method).T
    runs_at = (
        rows.sort_values("step").groupby(["method", "seed"]).last()[
            [c for c in rows.columns if ":" in c]
        ].groupby("method").median()
    )  # fmt: skip
    lines = [
        "# Closed-loop multi-scale search on the RegMix multi-scale oracle",
        "",
        "Generated by `python bench/search_multiscale.py --out bench/results`. "
        f"Oracle: {oracle.name}; " + "; ".join(oracle.notes) + ".",
        f"Objective: {args.objective}. Target 1B:25B; menu 1M:1B, 60M:1B and the target; cost "
        "6 x params x tokens FLOPs. Multi-fidelity: 6 Sobol runs at 1M, then mfgp + augmented EI "
        f"per cost^{args.alpha:g} (q = 2 a step, {args.steps} steps at most). Target only: 6 "
        f"Sobol runs at 1B:25B, then EI at the target (q = 1, {args.target_steps} steps). "
        f"{args.seeds} seeds each.",
        "",
        f"Target-scale optimum {optimum:.4f} (dense search), noise floor {floor:.4f} nats "
        "(the oracle's observation-noise std at the target).",
        "",
        "## Per method (medians over seeds)",
        table.to_markdown(floatfmt=".4g"),
        "",
        "## Runs trained per fidelity (median over seeds, at the end)",
        runs_at.to_markdown(floatfmt=".0f"),
        "",
        "## Target",
        "",
        f"Reach the target-scale optimum within the noise floor at <= 1/3 of the FLOPs of "
        f"single-fidelity search at the target: median FLOPs multi-fidelity "
        f"{mf['median_flops_to_floor']:.3g} vs target-only {sf['median_flops_to_floor']:.3g} "
        f"(ratio {ratio:.3g}) -> {'met' if met else 'not met'}.",
        "",
        "![regret vs FLOPs](search_multiscale.png)",
    ]
    (out / "search_multiscale.md").write_text("\n".join(lines) + "\n")
    payload = {
        "machine": {"python": platform.python_version(), "processor": platform.processor()},
        "oracle": {
            "name": oracle.name,
            "notes": oracle.notes,
            "optimum": optimum,
            "optimum_mixture": dict(zip(oracle.domains, map(float, best_w), strict=True)),
            "noise_floor": floor,
        },  # fmt: skip
        "settings": vars(args) | {"out": str(args.out), "budget_flops": budget},
        "per_method": per_method,
        "ratio_flops_to_floor": ratio,
        "target_met": met,
        "per_seed": summary.to_dict(orient="records"),
        "steps": rows.to_dict(orient="records"),
        "oracle_seconds": oracle_s,
    }
    (out / "search_multiscale.json").write_text(
        json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n"
    )
    plot(rows, floor, out / "search_multiscale.png")
    print("\n".join(lines))


def plot(rows: pd.DataFrame, floor: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for method, cells in rows.groupby("method", sort=False):
        grid = np.logspace(np.log10(cells["flops"].min()), np.log10(cells["flops"].max()), 60)
        curves = []
        for _, seed_rows in cells.groupby("seed"):
            seed_rows = seed_rows.sort_values("flops")
            idx = np.searchsorted(seed_rows["flops"].to_numpy(), grid, side="right") - 1
            values = seed_rows["regret"].to_numpy()[np.clip(idx, 0, None)]
            curves.append(np.where(idx >= 0, values, np.nan))
        curves = np.array(curves)
        med = np.nanmedian(curves, axis=0)
        lo, hi = np.nanpercentile(curves, [25, 75], axis=0)
        ax.plot(grid, med, label=f"{method} (median)")
        ax.fill_between(grid, lo, hi, alpha=0.2)
    ax.axhline(floor, color="grey", ls="--", lw=1, label="noise floor")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("FLOPs spent (6 N D)")
    ax.set_ylabel("regret at the target scale (nats)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
