"""Example-level MDE features (issue 21) against set-level MDE, on the real-text benchmark.

The same protocol, splits and noise floor as ``compare.py`` (its functions, its seed), with
only the predictors this question needs: the set-level MDE baselines (``mde[token]``,
``mde-cal[token]``, ``linear+mde[token]``), ``linear+mde[examples]`` (ridge on the rates and
every set's example-level columns) and ``mde-ex``'s variants on ``--mde-kind examples``.

Pre-registered (fixed before any result of this script was seen): the primary comparison is
``mde-ex:auto[examples] - mde-cal[token]`` on ET+SP, SP and ET (CV and every curve size); the
variant is chosen inside each fit by leave-one-out on its training runs only. The other
variants are secondary; ``mde-ex:set`` is a control (it is ``mde-cal``: its difference must
be 0). Feature defaults (4 clusters, quantiles 0.1/0.5/0.9, powers 0.5/0.75/1.5/2) were also
fixed before.

    nice -n 15 python bench/realtext/examples.py --out bench/results
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
import compare  # noqa: E402  (a sibling script, not a package)

from mixsurrogate.evaluation import protocol as evaluate  # noqa: E402
from mixsurrogate.evaluation.metrics import json_safe  # noqa: E402
from mixsurrogate.evaluation.report import with_interval  # noqa: E402

BASELINE = "mde-cal[token]"
PRIMARY = "mde-ex:auto[examples]"
TASKS = [
    compare.Task("mde", "token"),
    compare.Task("mde-cal", "token"),
    compare.Task("linear+mde", "token"),
    compare.Task("linear+mde", "examples"),
    *[compare.Task(n, k, variant=v) for n, k, v in compare.EXAMPLES],
]


def spearman_table(cv_summary, curve_summary, sizes, target: str) -> pd.DataFrame:
    rows = []
    for task in TASKS:
        cell = cv_summary[
            (cv_summary["predictor"] == task.label) & (cv_summary["target"] == target)
        ]
        row = {"predictor": task.label, "CV": compare.cell(cell.iloc[0])}
        for size in sizes:
            c = curve_summary[
                (curve_summary["predictor"] == task.label)
                & (curve_summary["target"] == target)
                & (curve_summary["size"] == size)
            ]
            row[f"{size} runs"] = compare.cell(c.iloc[0])
        rows.append(row)
    return pd.DataFrame(rows)


def paired_table(paired: pd.DataFrame) -> pd.DataFrame:
    table = paired.copy()
    table["where"] = [
        "CV" if p == "cv" else f"{int(s)} runs"
        for p, s in zip(table["protocol"], table["size"], strict=True)
    ]
    table["difference [95% CI]"] = [
        with_interval(d, lo, hi)
        for d, lo, hi in zip(table["difference"], table["lo"], table["hi"], strict=True)
    ]
    return table[["comparison", "target", "where", "difference [95% CI]", "better", "splits"]]


def choices(cv_summary, targets: list[str]) -> pd.DataFrame:
    """What mde-ex:auto chose, per set: its fit notes counted over the CV fits."""
    cells = cv_summary[(cv_summary["predictor"] == PRIMARY) & cv_summary["target"].isin(targets)]
    return cells[["target", "notes"]].rename(columns={"notes": "chosen (fits)"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=compare.DEFAULT_DATA)
    parser.add_argument("--out", type=Path)
    compare.add_protocol_arguments(parser)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="realtext-examples-"))
    out.mkdir(parents=True, exist_ok=True)
    protocol = compare.protocol_of(args)
    start = time.perf_counter()
    cv, curve, seconds = compare.evaluate_all(args.data, TASKS, protocol, args.jobs)
    log, seeds, _, objectives = compare.load_benchmark(args.data)
    for name, objective in objectives.items():
        evaluate.add_objective(cv, objective, name)
        evaluate.add_objective(curve, objective, name)
    scored = evaluate.scoring_mask(log, exclude=[compare.VERTEX])
    floors, ceilings, _, _ = compare.floors_and_ceilings(log, seeds, objectives, scored)
    cv_summary, curve_summary = cv.summary(), curve.summary(["size"])
    others = [t.label for t in TASKS if t.kind == "examples"]
    pairs = [(PRIMARY, BASELINE)] + [(a, BASELINE) for a in others if a != PRIMARY]
    pairs.append((PRIMARY, "mde[token]"))
    paired = compare.comparisons(cv, curve, pairs)
    paired["size"] = paired.get("size")
    md = [
        "# Example-level MDE features vs set-level MDE (real-text benchmark, issue 21)",
        "",
        f"{int(scored.sum())} mixing runs scored ({int((~scored).sum())} vertex runs fitted on, "
        f"never scored). Protocol as `realtext.md` (same seed, so the same splits): "
        f"{args.folds}-fold CV x {args.repeats} repeats; learning curves at {args.sizes} mixing "
        f"runs x {args.draws} draws. Cells: mean Spearman [95% bootstrap interval over splits].",
        "",
        "Features (`--mde-kind examples`, per evaluation set, from the score store alone): the "
        "MDE loss of 4 k-means clusters of the set's examples (clustered once, seed 0, on each "
        "example's centred expert-loss profile), the 0.1/0.5/0.9 quantiles of per-example MDE "
        "loss, and the set's MDE loss at tempered mixtures w^a/sum w^a, a in 0.5/0.75/1.5/2. "
        "`mde-ex` fits `a + b*mde` plus ridge-penalised example columns (clusters or "
        "quantiles), or one tempering a; `auto` chooses among all (and plain `mde-cal`) by "
        "leave-one-out on each fit's training runs only.",
        "",
        f"Pre-registered primary comparison: `{PRIMARY} - {BASELINE}` (all three objectives). "
        "Other variants: secondary. `mde-ex:set[examples]` is a control equal to "
        f"`{BASELINE}`. Noise ceiling (Spearman at the seed-noise floor): "
        + ", ".join(f"{k} {v['at floor']:.3f}" for k, v in ceilings.items())
        + ".",
        "",
    ]
    for target in compare.OBJECTIVES:
        table = spearman_table(cv_summary, curve_summary, protocol["sizes"], target)
        md += [f"## Spearman on {target}", "", compare.markdown(table), ""]
    md += [
        "## Paired differences of Spearman (same splits) [95% CI]; better = share of splits",
        "",
        compare.markdown(paired_table(paired)),
        "",
        f"## What `{PRIMARY}` chose (CV fits, per set)",
        "",
        compare.markdown(choices(cv_summary, log.targets)),
        "",
    ]
    (out / "realtext_examples.md").write_text("\n".join(md) + "\n")
    payload = {
        "protocol": protocol, "objectives": compare.OBJECTIVES, "pre_registered": [PRIMARY, BASELINE],
        "noise_floor": {k: vars(v) for k, v in floors.items()}, "noise_ceiling": ceilings,
        "cv": cv_summary.to_dict(orient="records"),
        "learning_curve": curve_summary.to_dict(orient="records"),
        "paired": paired.to_dict(orient="records"), "seconds": seconds,
        "seconds_total": round(time.perf_counter() - start, 1),
    }  # fmt: skip
    (out / "realtext_examples.json").write_text(
        json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n"
    )
    print("\n".join(md))
    print(f"results in {out}")


if __name__ == "__main__":
    main()
