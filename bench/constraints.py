"""What "no set worse than uniform" costs on RegMix's 512 1M-parameter runs (17 domains, 13 sets).

One GP per evaluation set is fitted once on the train-1m log; then, for a few objectives, the
exploit mixture is found without constraints, with ``--no-worse-than uniform:T`` on every set
(T = 0.02 and 0) and with the worst-case objective over all 13 sets (``--worst-case
uniform@<every set>``; for ``val=1`` that is ``--worst-case uniform``). Every number is the
surrogate's prediction (no new run is trained): the predicted objective (the weighted mean loss
of its sets), what the constraint costs in it, and how many of the 13 sets are predicted worse
than at the uniform mixture.

    python bench/constraints.py --out bench/results      # about 5 minutes on 2 loaded cores
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from mixsurrogate.evaluation.protocol import PredictorSpec
from mixsurrogate.objective import Objective
from mixsurrogate.proposal.constraints import NoWorseThan, bind, parse_reference
from mixsurrogate.proposal.optimiser import best_mixture
from mixsurrogate.proposal.surrogate import FittedObjective
from mixsurrogate.runs.builtin import regmix_runs
from mixsurrogate.simplex import Bounds

OBJECTIVES = {
    "mean of all 13 sets": "val=1",
    "pile_cc alone": "pile_cc=1",
    "pile_cc, github, arxiv": "pile_cc=1,github=1,arxiv=1",
}
SETTINGS = [
    ("unconstrained", None, None),
    ("--no-worse-than uniform:0.02", 0.02, None),
    ("--no-worse-than uniform:0", 0.0, None),
    ("--worst-case uniform@<all 13 sets>", None, "uniform"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--predictor", default="gp")
    args = parser.parse_args()
    log = regmix_runs("train-1m")
    kinds = dict.fromkeys(log.targets, "val")
    bounds = Bounds.unbounded(len(log.domains))
    start = time.perf_counter()
    everything = Objective.parse("val=1", log.targets, kinds)
    fitted = FittedObjective(PredictorSpec(args.predictor), log, everything, None)
    fit_s = time.perf_counter() - start
    uniform = parse_reference("uniform", log, bounds)
    at_uniform = bind(
        [NoWorseThan(uniform, 0.0, tuple(fitted.sets))], fitted.set_losses, fitted.sets
    )
    rows = []
    for label, spec in OBJECTIVES.items():
        f = copy.copy(fitted)  # the same 13 fitted GPs, another blend of them
        f.objective = Objective.parse(spec, log.targets, kinds)
        base = None
        for setting, tolerance, worst_ref in SETTINGS:
            # constraints and the worst case cover every set, also those outside the objective
            checks = (
                None
                if tolerance is None
                else bind([NoWorseThan(uniform, tolerance, tuple(f.sets))], f.set_losses, f.sets)
            )
            worst = None
            if worst_ref is not None:
                worst = bind([NoWorseThan(uniform, 0.0, tuple(f.sets))], f.set_losses, f.sets)
            t0 = time.perf_counter()
            w, _ = best_mixture(
                f, bounds, log.W, checks, worst, tree=args.predictor in ("lgbm", "lgbm+mde"),
                references=[uniform.mixture],
            )  # fmt: skip
            seconds = time.perf_counter() - t0
            losses = f.set_losses(w[None])
            excess = at_uniform.excess(losses, f.sets)[0]
            # the objective's weights normalised, so a cost reads as nats of weighted mean loss
            value = float(f.objective.combine(losses, f.sets)[0] / f.objective.vector(f.sets).sum())
            base = value if base is None else base
            rows.append(
                {
                    "objective": label,
                    "objective_spec": spec,
                    "setting": setting,
                    "predicted_objective": value,
                    "cost_vs_unconstrained": value - base,
                    "sets_worse_than_uniform": int((excess > 1e-6).sum()),
                    "sets_worse_by_more_than_0.02": int((excess > 0.02 + 1e-6).sum()),
                    "max_excess_over_uniform": float(excess.max()),
                    "worst_set": f.sets[int(excess.argmax())],
                    "mean_excess_over_uniform": float(excess.mean()),
                    "largest_shares": {
                        log.domains[j]: round(float(w[j]), 3) for j in np.argsort(-w)[:4]
                    },
                    "seconds": seconds,
                }
            )
            print(rows[-1], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    payload = {"predictor": args.predictor, "runs": len(log), "fit_seconds": fit_s, "rows": rows}
    (out / "constraints.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Constraints on RegMix train-1m (predicted, no new runs)",
        "",
        f"{args.predictor} per set fitted once on the {len(log)} runs ({fit_s:.0f} s); every "
        "number below is the surrogate's prediction. Excess: a set's predicted loss at the "
        "proposal minus its predicted loss at the uniform mixture, over all 13 sets "
        "(constraints and the worst case also cover the sets outside the objective).",
        "",
        "| objective | setting | predicted objective (weighted mean) | cost | sets worse than uniform | "
        "worse by > 0.02 | max excess (set) | largest shares | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shares = ", ".join(f"{d} {v:.2f}" for d, v in r["largest_shares"].items())
        lines.append(
            f"| {r['objective']} | `{r['setting']}` | {r['predicted_objective']:.4f} | "
            f"{r['cost_vs_unconstrained']:+.4f} | {r['sets_worse_than_uniform']} | "
            f"{r['sets_worse_by_more_than_0.02']} | {r['max_excess_over_uniform']:+.4f} "
            f"({r['worst_set']}) | {shares} | {r['seconds']:.1f} |"
        )
    (out / "constraints.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
