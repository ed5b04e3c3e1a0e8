"""Tables people read, made from evaluation summaries (``Evaluation.summary``).

Library code, not CLI code: the commands, the demo and the benchmarks print the same tables.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

#: marks a predictor whose set mean covers fewer sets than the others' (a footnote says which)
FEWER_SETS_MARK = "*"


def with_interval(value: float, lo: float, hi: float) -> str:
    """``0.812 [0.701, 0.905]``; '-' where there is no value."""
    if not np.isfinite(value):
        return "-"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{value:.3f}"
    return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"


def headline_table(
    summary: pd.DataFrame, target: str, fewer_sets: Collection[str] = ()
) -> pd.DataFrame:
    """The summary rows of one target, best first; an unscored cell shows its status. The
    predictors in ``fewer_sets`` (a set mean over fewer sets than the others') are marked
    with ``FEWER_SETS_MARK`` beside their name."""
    rows = summary[summary["target"] == target]
    rows = rows.sort_values("spearman", ascending=False, na_position="last")
    names = [f"{p} {FEWER_SETS_MARK}" if p in fewer_sets else p for p in rows["predictor"]]
    table = pd.DataFrame({"predictor": names}, index=rows.index)
    ok = rows["status"] == "ok"
    table["Spearman [95% CI]"] = [
        with_interval(v, lo, hi) if good else status
        for v, lo, hi, good, status in zip(
            rows["spearman"], rows["spearman_lo"], rows["spearman_hi"], ok, rows["status"],
            strict=True,
        )
    ]  # fmt: skip
    table["sd"] = rows["spearman_std"]
    if "spearman_pooled" in rows.columns:
        table["pooled"] = rows["spearman_pooled"]
    table["regret [95% CI]"] = [
        with_interval(v, lo, hi) if good else "-"
        for v, lo, hi, good in zip(
            rows["regret"], rows["regret_lo"], rows["regret_hi"], ok, strict=True
        )
    ]
    table["mse"] = rows["mse"]
    if "coverage" in rows.columns and rows["coverage"].notna().any():
        table["interval coverage"] = rows["coverage"]
        table["interval width"] = rows["width"]
    return table


def problems_table(summary: pd.DataFrame) -> pd.DataFrame:
    bad = summary[summary["status"] != "ok"]
    return bad[["predictor", "target", "status", "reason"]]


def per_set_table(summary: pd.DataFrame, targets: list[str]) -> pd.DataFrame:
    """Spearman per predictor and set; a cell not scored shows its status instead."""
    cells = summary[summary["target"].isin(targets)].copy()
    cells["value"] = [
        f"{s:.3f}" if st == "ok" else st
        for s, st in zip(cells["spearman"], cells["status"], strict=True)
    ]
    table = cells.pivot(index="predictor", columns="target", values="value")
    table = table.reindex(index=list(dict.fromkeys(cells["predictor"])), columns=targets)
    return table.reset_index()


def curve_table(curve_summary: pd.DataFrame, target: str, metric: str = "spearman") -> pd.DataFrame:
    """Predictor x size of a learning curve's mean metric; unscored cells show their status."""
    cells = curve_summary[curve_summary["target"] == target].copy()
    cells["value"] = [
        f"{v:.3f}" if status == "ok" else status
        for v, status in zip(cells[metric], cells["status"], strict=True)
    ]
    pivot = cells.pivot(index="predictor", columns="size", values="value")
    pivot = pivot.reindex(list(dict.fromkeys(cells["predictor"]))).reset_index()
    pivot.columns = [str(c) for c in pivot.columns]
    return pivot
