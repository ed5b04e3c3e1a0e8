"""PNG figures: predicted vs true, learning curves, proposed mixtures (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    curve: pd.DataFrame,
    target: str,
    path: str | Path,
    metric: str = "spearman",
    references: dict[str, float] | None = None,
) -> Path:
    """Mean metric over draws vs number of training runs (log x), one line per predictor.

    ``references`` are drawn as labelled dashed horizontal lines (e.g. a noise ceiling).
    """
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    data = curve[curve["target"] == target]
    for name, group in data.groupby("predictor", sort=False):
        stats = group.groupby("n_train")[metric].agg(["mean", "std"]).reset_index()
        ax.errorbar(
            stats["n_train"],
            stats["mean"],
            yerr=stats["std"].fillna(0),
            marker="o",
            ms=3,
            capsize=2,
            label=name,
        )
    for label, value in (references or {}).items():
        ax.axhline(value, color="black", ls="--", lw=1, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training runs")
    ax.set_ylabel(f"{metric} on held-out runs")
    ax.set_title(f"learning curves, loss:{target}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path)


def mixture_bars(
    domains: list[str], mixtures: dict[str, np.ndarray], path: str | Path, title: str = ""
) -> Path:
    """Grouped bars: the proposed mixture beside references (uniform, best logged run)."""
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(domains) * len(mixtures)), 4.0))
    width = 0.8 / len(mixtures)
    x = np.arange(len(domains))
    for i, (label, w) in enumerate(mixtures.items()):
        ax.bar(x + i * width - 0.4 + width / 2, w, width, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(domains, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("share of training tokens")
    ax.set_title(title)
    ax.legend(fontsize=8)
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
