"""PNG figures: predicted vs true, learning curves, proposed mixtures (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402


def _save(fig, path: str | Path, tight: bool = True) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def predicted_vs_true(
    y_true: np.ndarray, predictions: dict[str, np.ndarray], target: str, path: str | Path
) -> Path:
    """One panel per predictor: out-of-sample predictions against the logged losses."""
    names = [n for n, p in predictions.items() if np.isfinite(p).any()]
    cols = min(4, max(1, len(names)))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    lo, hi = float(np.min(y_true)), float(np.max(y_true))
    for ax, name in zip(axes.flat, names, strict=False):
        pred = predictions[name]
        ax.scatter(y_true, pred, s=8, alpha=0.6)
        ax.plot([lo, hi], [lo, hi], color="grey", lw=1, ls="--")
        ok = np.isfinite(pred)
        rho = pd.Series(y_true[ok]).corr(pd.Series(pred[ok]), method="spearman")
        ax.set_title(f"{name}  (Spearman {rho:.3f})", fontsize=9)
        ax.set_xlabel(f"true loss:{target}", fontsize=8)
        ax.set_ylabel("predicted", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    return _save(fig, path)


def learning_curves(
    summary: pd.DataFrame,
    target: str,
    path: str | Path,
    metric: str = "spearman",
    references: dict[str, float] | None = None,
    title: str | None = None,
) -> Path:
    """Mean metric over draws vs training runs, one line per predictor, 95% intervals shaded.

    ``summary`` is ``Evaluation.summary(["size"])`` of a learning curve. Every size drawn is
    labelled on the x axis; a predictor with no point at some size (skipped or failed there)
    is named in the caption with the reason, and one with no point at all has no legend entry.
    ``references`` are labelled dashed horizontal lines (e.g. a noise ceiling).
    """
    fig, ax = plt.subplots(figsize=(7.0, 4.6))
    data = summary[summary["target"] == target]
    sizes = sorted(int(s) for s in data["size"].unique())
    missing = []
    for name, group in data.groupby("predictor", sort=False):
        ok = group[group["status"] == "ok"].sort_values("size")
        for _, row in group[group["status"] != "ok"].iterrows():
            missing.append(f"{name} at {int(row['size'])}: {row['status']}")
        if ok.empty:
            continue
        (line,) = ax.plot(ok["size"], ok[metric], marker="o", ms=3, label=name)
        if f"{metric}_lo" in ok.columns:
            ax.fill_between(
                ok["size"].astype(float), ok[f"{metric}_lo"], ok[f"{metric}_hi"],
                color=line.get_color(), alpha=0.12, lw=0,
            )  # fmt: skip
    for label, value in (references or {}).items():
        ax.axhline(value, color="black", ls="--", lw=1, label=label)
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(s) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training runs")
    ax.set_ylabel(f"{metric} on held-out runs")
    ax.set_title(title or f"learning curves, {target}")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, ncol=2)
    caption = "mean over draws; shaded: 95% bootstrap interval of the mean"
    if missing:
        caption += "\nno point (see the table for reasons): " + "; ".join(missing[:6])
        caption += " ..." if len(missing) > 6 else ""
    fig.text(0.01, 0.005, caption, fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.06 if missing else 0.035, 1, 1))
    return _save(fig, path, tight=False)


def mixture_bars(
    domains: list[str],
    mixtures: dict[str, np.ndarray],
    path: str | Path,
    title: str = "",
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path:
    """Horizontal grouped bars, one row per domain: the proposal beside references (uniform,
    best logged run), with the share limits drawn as a grey band when there are any.

    Horizontal so that 17+ domain names stay readable; the figure grows with the domains.
    """
    height = max(3.0, 0.32 * len(domains) * max(1, len(mixtures)) ** 0.5 + 1.2)
    fig, ax = plt.subplots(figsize=(7.0, height))
    y = np.arange(len(domains))
    width = 0.8 / len(mixtures)
    if bounds is not None:
        lower, upper = (np.asarray(b, float) for b in bounds)
        limited = (lower > 0) | (upper < 1)
        for i in np.flatnonzero(limited):
            ax.barh(y[i], upper[i] - lower[i], 0.9, left=lower[i], color="0.88", zorder=0)
            ax.plot([lower[i]] * 2, [y[i] - 0.45, y[i] + 0.45], color="0.4", lw=1)
            ax.plot([upper[i]] * 2, [y[i] - 0.45, y[i] + 0.45], color="0.4", lw=1)
    for i, (label, w) in enumerate(mixtures.items()):
        ax.barh(y - 0.4 + width * (i + 0.5), w, width, label=label, zorder=2)
    handles, _ = ax.get_legend_handles_labels()
    if bounds is not None and limited.any():
        handles.append(Patch(facecolor="0.88", edgecolor="0.4", label="allowed share (bounds)"))
    ax.set_yticks(y)
    ax.set_yticklabels(domains, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("share of training tokens")
    ax.set_xlim(0, min(1.0, max(float(np.max(list(mixtures.values()))) * 1.15, 0.05)))
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    return _save(fig, path)


def metric_heatmap(frame: pd.DataFrame, path: str | Path, title: str, fmt: str = ".2f") -> Path:
    """Rows x columns of a metric (e.g. predictor x evaluation set) as an annotated heatmap."""
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * frame.shape[1], 1.0 + 0.38 * frame.shape[0]))
    image = ax.imshow(frame.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(frame.shape[1]))
    ax.set_xticklabels(frame.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(frame.shape[0]))
    ax.set_yticklabels(frame.index, fontsize=8)
    for (i, j), value in np.ndenumerate(frame.to_numpy(dtype=float)):
        if np.isfinite(value):
            ax.text(j, i, format(value, fmt), ha="center", va="center", fontsize=7, color="w")
    fig.colorbar(image, ax=ax, fraction=0.03)
    ax.set_title(title)
    return _save(fig, path)
