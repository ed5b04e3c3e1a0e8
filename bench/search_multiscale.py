"""Closed-loop multi-scale search on the RegMix multi-scale oracle: multi-fidelity vs target-only.

The oracle (``search.multiscale_oracle``) is the multi-fidelity GP fitted on all 1088 public
RegMix runs (1M and 60M models on 1B tokens, 1B models on 25B tokens), over 5 domain groups;
a run observes its loss with the fitted relative noise. Target fidelity 1B:25B (1.5e20 FLOPs
a run at 6 N D); menu 1M:1B (6e15), 60M:1B (3.6e17) and the target itself.

- multi-fidelity: K + 1 = 6 Sobol runs at 1M, then ``propose_multifidelity`` (mfgp, augmented
  EI at the target per unit cost^alpha), q = 2 runs a step, recommendation at the target;
- single-fidelity: 6 Sobol runs at the target, then the same loop with the target alone on the
  menu (augmented EI reduces to EI there), q = 1.

Variants added after seeing the first results (alpha = 1 never trained at the target and
stopped above the noise floor in 7 of 10 seeds), same oracle, seeds and FLOPs accounting:

- multi-fidelity with smaller cost exponents (``--variant-alphas``, 0.5 and 0.25);
- two-phase: the alpha = 1 multi-fidelity loop until the runs below the target have cost
  ``--switch-flops``, then ``--target-runs`` confirmation runs at the target, one a step, by EI
  at the target from the mfgp fitted on every run (``propose_multifidelity(switch_flops=...)``).

Regret: the oracle's true target-scale loss of the recommended mixture minus the target-scale
optimum (dense search). Noise floor: the oracle's observation noise std at the target. For
each seed: FLOPs spent when the regret first reaches the noise floor and stays there until the
end of that run. Writes bench/results/search_multiscale.{md,json,png}.

    python bench/search_multiscale.py --out bench/results            # the committed results
    python bench/search_multiscale.py --seeds 2 --steps 6            # quick look, temp folder

``--methods`` runs a subset; ``--reuse FILE`` (repeatable) takes the per-step records of methods
already in an earlier results JSON instead of re-running them (the loops are deterministic given
the seed: a re-run reproduces them bit for bit), after checking that its settings match.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from mixsurrogate.evaluation.metrics import json_safe
from mixsurrogate.runs.fidelity import CostModel, FidelityMenu
from mixsurrogate.search.multifidelity import (
    exploration_flops,
    exploration_runs,
    propose_multifidelity,
)
from mixsurrogate.search.multiscale_oracle import REGMIX_SCALES, regmix_multiscale_oracle
from mixsurrogate.search.size_oracle import rank_agreement, regmix_per_size_oracle
from mixsurrogate.simplex import Bounds

#: ``--oracle``: the project's mfgp on all RegMix runs, or one GP per RegMix size
ORACLES = {"mfgp": regmix_multiscale_oracle, "per-size": regmix_per_size_oracle}


def run_loop(oracle, menu, start, q, steps, budget, alpha, seed, cost, switch=None, confirm=0,
             switch_runs=None):  # fmt: skip
    """One closed loop; returns per-step records (FLOPs so far, regret of the recommendation).

    With ``switch`` (FLOPs) or ``switch_runs`` (runs), two-phase: ``steps`` bounds the
    exploration; once the runs below the target have cost ``switch`` FLOPs (or number
    ``switch_runs``), ``confirm`` runs at the target, one a step, then stop."""
    two_phase = switch is not None or switch_runs is not None
    rng = np.random.default_rng(1000 + seed)
    k = len(oracle.domains)
    W = Bounds.unbounded(k).sample(k + 1, seed=seed)  # noqa: N806
    F = np.tile(start.features(), (len(W), 1))  # noqa: N806
    y = oracle.observe(W, start, rng)
    flops = cost.flops(start) * len(W)
    counts = {str(start): len(W)}
    records, confirmed, step = [], 0, 0
    while True:
        confirming = (switch is not None and exploration_flops(F, menu.target, cost) >= switch) or (
            switch_runs is not None and exploration_runs(F, menu.target) >= switch_runs
        )
        proposal = propose_multifidelity(
            W, F, y, oracle.domains, menu, q=1 if confirming else q, cost=cost, alpha=alpha,
            n_initial=0, seed=seed, switch_flops=switch, switch_runs=switch_runs,
        )  # fmt: skip
        truth = float(oracle.mean(proposal.recommended, menu.target)[0])
        phase = ("confirm" if confirming else "explore") if two_phase else None
        records.append({"step": step, "flops": flops, "truth": truth, "phase": phase,
                        "target_runs_confirm": confirmed, **dict(counts)})  # fmt: skip
        if (confirmed >= confirm if confirming else step >= steps) or flops >= budget:
            break
        step += 1
        confirmed += int(confirming)
        for w, f in zip(proposal.mixtures, proposal.fidelities, strict=True):
            W = np.vstack([W, w])  # noqa: N806
            F = np.vstack([F, f.features()])  # noqa: N806
            y = np.append(y, oracle.observe(w[None], f, rng))
            flops += cost.flops(f)
            counts[str(f)] = counts.get(str(f), 0) + 1
    return records


def first_within(steps: pd.DataFrame, threshold: float) -> float:
    """FLOPs at the first step from which the regret stays within ``threshold`` (inf: never)."""
    within = (steps["regret"] <= threshold).to_numpy()
    for i in range(len(within)):
        if within[i:].all():
            return float(steps["flops"].iloc[i])
    return float("inf")


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
    parser.add_argument(
        "--variant-alphas",
        default="0.5,0.25",
        help="cost exponents of the multi-fidelity variants (comma list)",
    )
    parser.add_argument(
        "--switch-flops",
        type=float,
        default=1.5e17,
        help="two-phase: exploration FLOPs below the target before confirming",
    )
    parser.add_argument(
        "--target-runs", type=int, default=6, help="two-phase: confirmation runs at the target"
    )
    parser.add_argument("--oracle", choices=sorted(ORACLES), default="mfgp")
    parser.add_argument(
        "--name", default="search_multiscale", help="file stem of the results (md/json/png)"
    )
    parser.add_argument(
        "--switch-runs",
        default="",
        help="two-phase variants switching after N runs below the target (comma list; method "
        "keys tpN)",
    )
    parser.add_argument("--methods", help="comma list of method keys to run (default: all)")
    parser.add_argument(
        "--reuse",
        type=Path,
        action="append",
        default=[],
        help="results JSON whose methods' records to reuse (repeatable)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # small GPs: thread hand-offs cost more than they save
    out = args.out or Path(tempfile.mkdtemp(prefix="search-multiscale-"))
    out.mkdir(parents=True, exist_ok=True)
    cost = CostModel()
    start_time = time.perf_counter()
    oracle = ORACLES[args.oracle](args.objective)
    target = REGMIX_SCALES["1B"]
    menu = FidelityMenu.build([REGMIX_SCALES["1M"], REGMIX_SCALES["60M"]], target)
    target_only = FidelityMenu.build([], target)
    best_w, optimum = oracle.optimum(target)
    floor = oracle.noise_std(target)
    oracle_seconds = time.perf_counter() - start_time
    budget = cost.flops(target) * (len(oracle.domains) + 1 + args.target_steps)
    small = REGMIX_SCALES["1M"]
    # key: (label, menu, start, q, steps, alpha, switch FLOPs, confirmation runs, switch runs,
    # variant)
    methods = {
        "mf": ("multi-fidelity", menu, small, 2, args.steps, args.alpha, None, 0, None, False),
        "target": (
            "target only",
            target_only,
            target,
            1,
            args.target_steps,
            1.0,
            None,
            0,
            None,
            False,
        ),  # fmt: skip
    }
    for a in (float(x) for x in args.variant_alphas.split(",") if x.strip()):
        methods[f"mf-a{a:g}"] = (f"multi-fidelity, alpha {a:g}", menu, small, 2, args.steps, a,
                                 None, 0, None, True)  # fmt: skip
    methods["two-phase"] = (
        f"two-phase (alpha {args.alpha:g}, switch {args.switch_flops:.2g}, "
        f"{args.target_runs} target runs)",
        menu, small, 2, args.steps, args.alpha, args.switch_flops, args.target_runs, None, True,
    )  # fmt: skip
    for n in (int(x) for x in args.switch_runs.split(",") if x.strip()):
        methods[f"tp{n}"] = (
            f"two-phase (switch after {n} runs below the target, {args.target_runs} target runs)",
            menu, small, 2, 10**6, args.alpha, None, args.target_runs, n, True,
        )  # fmt: skip
    selected = args.methods.split(",") if args.methods else list(methods)
    unknown = sorted(set(selected) - set(methods))
    if unknown:
        parser.error(f"unknown method keys {unknown}; known: {sorted(methods)}")
    reused = load_reused(args, budget, optimum)
    rows, summary = [], []
    for key in selected:
        label, m, start, q, steps, alpha, switch, confirm, switch_runs, _ = methods[key]
        if label in reused:
            print(f"{label}: reused from {reused[label][2]}", flush=True)
            rows += reused[label][0]
            summary += reused[label][1]
            continue
        for seed in range(args.seeds):
            t = time.perf_counter()
            records = run_loop(oracle, m, start, q, steps, budget, alpha, seed, cost, switch,
                               confirm, switch_runs)  # fmt: skip
            for r in records:
                rows.append({"method": label, "seed": seed, "regret": r["truth"] - optimum, **r})
            summary.append(
                {
                    "method": label, "seed": seed,
                    "flops_to_floor": flops_to_floor(records, optimum, floor),
                    "final_regret": records[-1]["truth"] - optimum,
                    "final_flops": records[-1]["flops"],
                    "seconds": time.perf_counter() - t,
                }
            )  # fmt: skip
            print(summary[-1], flush=True)
            save_partial(out / f"{args.name}.partial.json", args, budget, optimum, rows, summary)
    variants = [methods[k][0] for k in selected if methods[k][-1]]
    agreement = rank_agreement(args.objective)
    probe = Bounds.unbounded(len(oracle.domains)).sample(1024, seed=12345)
    at_target = oracle.mean(probe, target)
    for size in ("1M", "60M"):
        rho = spearmanr(oracle.mean(probe, REGMIX_SCALES[size]), at_target).statistic
        agreement.append({"size": size, "vs": "1B", "mixtures": len(probe), "spearman": float(rho),
                          "how": f"this oracle's truth ({oracle.name}) on Sobol group mixtures"})  # fmt: skip
    write_results(out, pd.DataFrame(rows), pd.DataFrame(summary), oracle, optimum, best_w, floor,
                  budget, args, oracle_seconds, variants, agreement)  # fmt: skip
    print(f"results in {out}")


def save_partial(path: Path, args, budget: float, optimum: float, rows, summary) -> None:
    """The records so far, after each seed, in the shape ``--reuse`` reads (a long run stopped
    early keeps its finished seeds)."""
    payload = {
        "settings": vars(args) | {"out": str(args.out), "budget_flops": budget,
                                  "reuse": [str(p) for p in args.reuse]},
        "oracle": {"optimum": optimum},
        "per_seed": summary,
        "steps": rows,
    }  # fmt: skip
    path.write_text(json.dumps(json_safe(payload), allow_nan=False) + "\n")


def load_reused(args, budget: float, optimum: float) -> dict[str, tuple[list, list, str]]:
    """Per-step rows and per-seed summaries by method label from ``--reuse`` files, after
    checking that the settings they were run with match these."""
    reused = {}
    for path in args.reuse:
        old = json.loads(path.read_text())
        settings = old["settings"]
        if settings.get("oracle", "mfgp") != args.oracle:
            raise SystemExit(f"{path}: another oracle")
        old["per_seed"] = [c for c in old["per_seed"] if c["seed"] < args.seeds]
        old["steps"] = [r for r in old["steps"] if r["seed"] < args.seeds]
        for name in ("steps", "target_steps", "objective", "alpha"):
            if settings[name] != getattr(args, name):
                raise SystemExit(f"{path}: {name} {settings[name]} != {getattr(args, name)}")
        if settings["budget_flops"] != budget or abs(old["oracle"]["optimum"] - optimum) > 1e-9:
            raise SystemExit(f"{path}: budget or oracle optimum differ")
        for cell in old["per_seed"]:
            if cell["flops_to_floor"] is None:  # json_safe wrote inf as null
                cell["flops_to_floor"] = float("inf")
        for label in {cell["method"] for cell in old["per_seed"]}:
            if label not in reused:
                reused[label] = (
                    [r for r in old["steps"] if r["method"] == label],
                    [c for c in old["per_seed"] if c["method"] == label],
                    str(path),
                )
    return reused


def write_results(out, rows, summary, oracle, optimum, best_w, floor, budget, args, oracle_s,
                  variants=(), agreement=()):  # fmt: skip
    per_method = {}
    for method, cells in summary.groupby("method", sort=False):
        reached = cells["flops_to_floor"].replace(np.inf, np.nan)
        per_method[method] = {
            "seeds": int(len(cells)),
            "reached_floor": int(reached.notna().sum()),
            "median_flops_to_floor": float(np.median(cells["flops_to_floor"])),
            "final_within_floor": int((cells["final_regret"] <= floor).sum()),
            "median_final_regret": float(cells["final_regret"].median()),
            "max_final_regret": float(cells["final_regret"].max()),
            "median_final_flops": float(cells["final_flops"].median()),
            "median_seconds": float(cells["seconds"].median()),
        }
    sf = per_method.get("target only", {"median_flops_to_floor": np.nan, "reached_floor": 0,
                                        "seeds": 0, "final_within_floor": 0,
                                        "median_final_flops": np.nan})  # fmt: skip
    ratios, met_by = {}, {}
    for method, cell in per_method.items():
        if method == "target only":
            continue
        ratios[method] = {
            "flops_to_floor": cell["median_flops_to_floor"] / sf["median_flops_to_floor"],
            "final_flops": cell["median_final_flops"] / sf["median_final_flops"],
        }
        r = ratios[method]["flops_to_floor"]
        met_by[method] = bool(np.isfinite(r) and r <= 1 / 3)
    ratio = ratios.get("multi-fidelity", {}).get("flops_to_floor", float("nan"))
    met = met_by.get("multi-fidelity", False)
    table = pd.DataFrame(per_method).T
    table.insert(0, "added after the first results", ["yes" if m in variants else "no"
                                                      for m in table.index])  # fmt: skip
    runs_at = (
        rows.sort_values("step").groupby(["method", "seed"]).last()[
            [c for c in rows.columns if ":" in c]
        ].groupby("method", sort=False).median()
    )  # fmt: skip
    runs_at = runs_at.reindex([m for m in per_method if m in runs_at.index])
    command = " ".join(["python bench/search_multiscale.py", *sys.argv[1:]])
    lines = [
        f"# Closed-loop multi-scale search on the RegMix multi-scale oracle ({args.oracle})",
        "",
        f"Generated by `{command}`"
        + (
            " (the methods of the --reuse files taken from them, not re-run: the loops are "
            "deterministic given the seed and reproduce bit for bit; from scratch, all methods: "
            "`python bench/search_multiscale.py --out bench/results`)"
            if args.reuse
            else ""
        )
        + f". Oracle: {oracle.name}; "
        + "; ".join(oracle.notes)
        + ".",
        f"Objective: {args.objective}. Target 1B:25B; menu 1M:1B, 60M:1B and the target; cost "
        "6 x params x tokens FLOPs. Multi-fidelity: 6 Sobol runs at 1M, then mfgp + augmented EI "
        f"per cost^{args.alpha:g} (q = 2 a step, {args.steps} steps at most). Target only: 6 "
        f"Sobol runs at 1B:25B, then EI at the target (q = 1, {args.target_steps} steps). "
        f"{args.seeds} seeds each; every loop also stops once it has spent {budget:.3g} FLOPs "
        "(the target-only budget).",
        "",
        f"Target-scale optimum {optimum:.4f} (dense search), noise floor {floor:.4f} nats "
        "(the oracle's observation-noise std at the target).",
        "",
    ]
    if variants:
        lines += [
            "**Variants added after seeing the first results** (the first two rows were the "
            "pre-registered comparison; alpha = 1 never trained at the target): "
            + "; ".join(variants)
            + ". Cost-exponent variants: the same loop with another alpha. Two-phase: the "
            f"alpha = {args.alpha:g} multi-fidelity loop until the runs below the target have "
            "cost the switch FLOPs (or number the switch runs), then the confirmation runs at "
            "the target, one a step, by EI at the target from the mfgp fitted on every run "
            "(`propose_multifidelity(switch_flops=..., switch_runs=...)`; the CLI's default "
            "`--switch-after` is this schedule), recommendation = posterior-mean minimiser at "
            "the target. Same oracle, seeds and FLOPs accounting.",
            "",
        ]
    lines += [
        "## Per method (medians over seeds)",
        "",
        "`reached_floor`: seeds whose regret reaches the noise floor and stays within it to the "
        "end of the loop; `median_flops_to_floor`: FLOPs spent at that point (inf where fewer "
        "than half the seeds reach it); `final_within_floor`: seeds whose final recommendation "
        "is within the floor.",
        "",
        table.to_markdown(floatfmt=".4g"),
        "",
        "## Runs trained per fidelity (median over seeds, at the end)",
        runs_at.to_markdown(floatfmt=".0f"),
        "",
    ]
    confirm = rows[rows["phase"] == "confirm"] if "phase" in rows else rows.iloc[:0]
    if len(confirm):
        by_k = confirm.groupby("target_runs_confirm")
        stages = pd.DataFrame({
            "seeds within floor": by_k["regret"].apply(lambda r: int((r <= floor).sum())),
            "median regret": by_k["regret"].median(),
            "max regret": by_k["regret"].max(),
            "median FLOPs": by_k["flops"].median(),
            "FLOPs / target-only median flops_to_floor":
                by_k["flops"].median() / sf["median_flops_to_floor"],
        })  # fmt: skip
        stages.index.name = "target runs in the confirmation phase"
        lines += [
            "## Two-phase loop: recommendation after k confirmation runs at the target",
            "",
            "k = 0: at the switch (exploration only, no run at the target yet).",
            "",
            stages.to_markdown(floatfmt=".4g"),
            "",
        ]
    thresholds = {"floor": floor, "2 x floor": 2 * floor, "0.02 nats": 0.02}
    reach = {}
    for method, cells in rows.groupby("method", sort=False):
        per_seed = [g.sort_values("step") for _, g in cells.groupby("seed")]
        reach[method] = {
            name: float(np.median([first_within(g, thr) for g in per_seed]))
            for name, thr in thresholds.items()
        }
    reach_table = pd.DataFrame(reach).T
    for name in thresholds:
        reach_table[f"{name} / target only"] = reach_table[name] / reach.get("target only", {}).get(
            name, np.nan
        )
    lines += [
        "## Median FLOPs until the regret stays within a threshold (and the ratio to "
        "target-only's)",
        "",
        f"Thresholds: the noise floor {floor:.4f}, twice it, and 0.02 nats; inf where fewer "
        "than half the seeds get there within their loop.",
        "",
        reach_table.to_markdown(floatfmt=".3g"),
        "",
    ]
    lines += [
        "## Target",
        "",
        "Reach the target-scale optimum within the noise floor at <= 1/3 of the FLOPs of "
        "single-fidelity search at the target: median FLOPs to the floor, each method vs "
        f"target-only {sf['median_flops_to_floor']:.3g}; also the ratio of the FLOPs each loop "
        "spent in all (its fixed stopping rule) to target-only's.",
        "",
    ]
    for method, r in ratios.items():
        cell = per_method[method]
        lines.append(
            f"- {method}{' (variant)' if method in variants else ''}: "
            f"{cell['median_flops_to_floor']:.3g} FLOPs to the floor (ratio "
            f"{r['flops_to_floor']:.3g}; {cell['reached_floor']}/{cell['seeds']} seeds reach it, "
            f"target-only {sf['reached_floor']}/{sf['seeds']}); spent in all "
            f"{cell['median_final_flops']:.3g} (ratio {r['final_flops']:.3g}), final regret "
            f"within the floor in {cell['final_within_floor']}/{cell['seeds']} "
            f"(target-only {sf['final_within_floor']}/{sf['seeds']}) -> "
            f"{'met' if met_by[method] else 'not met'}."
        )
    if agreement:
        lines += [
            "",
            "## How well small runs rank at the target (RegMix's runs, objective "
            f"{args.objective})",
            "",
            pd.DataFrame(list(agreement)).to_markdown(index=False, floatfmt=".3f"),
        ]
    lines += ["", f"![regret vs FLOPs]({args.name}.png)"]
    (out / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    payload = {
        "machine": {"python": platform.python_version(), "processor": platform.processor()},
        "oracle": {
            "name": oracle.name,
            "notes": oracle.notes,
            "optimum": optimum,
            "optimum_mixture": dict(zip(oracle.domains, map(float, best_w), strict=True)),
            "noise_floor": floor,
        },  # fmt: skip
        "settings": vars(args)
        | {
            "out": str(args.out),
            "budget_flops": budget,
            "reuse": [str(p) for p in args.reuse],
        },  # fmt: skip
        "variants_added_after_first_results": list(variants),
        "per_method": per_method,
        "ratio_flops_to_floor": ratio,
        "target_met": met,
        "ratios_vs_target_only": ratios,
        "target_met_by_method": met_by,
        "per_seed": summary.to_dict(orient="records"),
        "steps": rows.to_dict(orient="records"),
        "oracle_seconds": oracle_s,
        "rank_agreement": list(agreement),
        "median_flops_to_threshold": reach,
    }
    (out / f"{args.name}.json").write_text(
        json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n"
    )
    plot(rows, floor, out / f"{args.name}.png", variants)
    print("\n".join(lines))


def plot(rows: pd.DataFrame, floor: float, path: Path, variants=()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
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
        ax.plot(grid, med, ls="--" if method in variants else "-",
                label=f"{method}{' [variant]' if method in variants else ''} (median)")  # fmt: skip
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
