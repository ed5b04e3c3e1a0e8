"""What ``mixsurrogate cv`` prints and draws: headline tables per set mean and objective,
per-set Spearman, cells not scored, paired comparisons, learning curves, PNG plots."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from .common import print_table


def print_set_mean(summary, mean, title: str, caption: str) -> None:
    """A set mean's headline table; a predictor whose mean covers fewer sets is marked, and
    a footnote line under the table names the sets it left out and why."""
    from ..evaluation.report import FEWER_SETS_MARK, headline_table

    fewer = [p for p, sets in mean.left_out().items() if len(sets) < len(mean.sets)]
    print_table(headline_table(summary, mean.name, fewer), title, caption)
    for line in mean.footnotes():
        mark = FEWER_SETS_MARK if line.split(":")[0] in fewer else "-"
        click.echo(f"{mark} {mean.name}: {line}")


def print_report(mode, summary, targets, means, obj, comparisons):
    from ..evaluation.protocol import OBJECTIVE_TARGET
    from ..evaluation.report import headline_table, per_set_table, problems_table

    caption = "mean over splits [95% bootstrap interval]; pooled: out-of-fold Spearman"
    if len(means) > 1:
        click.echo(
            "the sets are in different units, so each unit has its own set mean "
            "(sets in different units are never averaged together)"
        )
    for mean in means:
        if mean.sets:
            print_set_mean(summary, mean, f"{mode}: {mean.name}", caption)
        else:
            click.echo(f"{mean.name}: no set was scored by any predictor on every split")
    if obj is not None:
        source = f" (set kinds from {obj.kinds_source})" if obj.kinds_source else ""
        print_table(headline_table(summary, OBJECTIVE_TARGET), f"objective {obj.spec}{source}")
    if len(targets) > 1:
        print_table(per_set_table(summary, targets), "Spearman per evaluation set")
    problems = problems_table(summary)
    if len(problems):
        print_table(problems, "cells not scored")
    if len(comparisons):
        print_table(comparisons, "paired comparisons (same splits; 95% bootstrap interval)")
    for _, row in summary[summary["notes"] != ""].iterrows():
        click.echo(f"note: {row['predictor']} on {row['target']}: {row['notes']}")


def print_curve(curve_summary, curve, obj, curve_means, draws):
    from ..evaluation.protocol import OBJECTIVE_TARGET
    from ..evaluation.report import curve_table

    sets = curve.sets
    if obj is not None:
        shown = [OBJECTIVE_TARGET]
    elif len(sets) == 1:
        shown = sets
    else:
        shown = [m.name for m in curve_means if m.sets]
    for line in curve.dropped:
        click.echo(f"learning curve: left out {line}")
    for target in shown:
        print_table(
            curve_table(curve_summary, target),
            f"learning curve: Spearman on {target}, mean over {draws} draws",
        )
        mean = curve.set_means.get(target)
        for line in mean.footnotes() if mean is not None else []:
            click.echo(f"learning curve: {target}: {line}")
        cells = curve_summary[curve_summary["target"] == target]
        for _, row in cells[cells["status"] != "ok"].iterrows():
            click.echo(f"learning curve: {row['predictor']} at {row['size']}: {row['reason']}")
        # what each size's fits did (auto: the predictor it chose), counted per size
        for _, row in cells[cells["notes"] != ""].iterrows():
            click.echo(f"learning curve: {row['predictor']} at {row['size']}: {row['notes']}")


def write_plots(plot_dir, runs_log, targets, result, curve, obj) -> None:
    from ..evaluation import plots
    from ..evaluation.protocol import OBJECTIVE_TARGET

    first = OBJECTIVE_TARGET if obj is not None else targets[0]
    written = []
    if result is not None and result.protocol == "cv":
        j = result.targets.index(first)
        oof = {}
        for name, by_split in result.predictions.items():
            values = np.full(len(runs_log), np.nan)
            for key, pred in by_split.items():
                if key[1] == 0:  # the first repeat: every scored run predicted once
                    values[result.split_rows[key]] = pred[:, j]
            oof[name] = values
        written.append(
            plots.predicted_vs_true(
                result.truth[:, j], oof, first, Path(plot_dir) / f"cv_{first}.png"
            )
        )
    if curve is not None:
        written.append(
            plots.learning_curves(
                curve.summary(["size"]), first, Path(plot_dir) / f"curve_{first}.png"
            )
        )
    for p in written:
        click.echo(f"wrote {p}", err=True)
