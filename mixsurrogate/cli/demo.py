"""``mixsurrogate demo``: the whole method on built-in data (or built from scratch)."""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import click

from .common import echo_json, print_table, show_proposal

#: the demo's plots go to a fresh temporary folder by default, not into the current folder
#: (where they would land in a checkout's working tree)
DEMO_DIR_PREFIX = "mixsurrogate-demo-"


@contextmanager
def demo_output_dir(out_dir: str | None) -> Iterator[Path]:
    """``--out`` if given, else a new temporary folder that says what it holds. The temporary
    folder is removed when the demo fails or is interrupted (nothing half-written is left
    behind); a finished demo keeps it, since its output names the plots in it."""
    if out_dir:
        yield Path(out_dir)
        return
    folder = Path(tempfile.mkdtemp(prefix=DEMO_DIR_PREFIX))
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def realtext_run_count() -> int:
    """Runs in the shipped real-text log, for the help text (csv: no pandas at start-up)."""
    path = resources.files("mixsurrogate") / "data" / "realtext" / "runs.csv"
    with path.open(newline="") as handle:
        return sum(1 for _ in csv.DictReader(handle))


@click.command()
@click.option(
    "--data",
    type=click.Choice(["realtext", "regmix", "schedules"]),
    default="realtext",
    show_default=True,
    help=f"realtext: the committed real-text benchmark ({realtext_run_count()} runs, data "
    "experts' scores, MDE features); regmix: RegMix's public runs (rates only); schedules: "
    "single-phase and two-phase runs (schedules:runs), a two-phase proposal",
)
@click.option(
    "--from-scratch",
    "scratch_dir",
    type=click.Path(file_okay=False),
    help="first build a pypi corpus, train experts and runs in this folder (resumable; about 20 minutes on 2 CPU cores)",
)
@click.option(
    "--preset",
    "preset_name",
    default="bench-cpu",
    show_default=True,
    help="model preset for --from-scratch (experts and proxy runs)",
)
@click.option(
    "--vocab-size",
    type=click.IntRange(min=256),
    default=1024,
    show_default=True,
    help="tokenizer vocabulary of the corpus --from-scratch builds (bench-cpu expects 1024)",
)
@click.option(
    "--runs",
    "n_sobol",
    type=int,
    default=8,
    show_default=True,
    help="Sobol runs for --from-scratch (plus K vertices and uniform)",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help=f"where the PNGs go [default: a new temporary folder {DEMO_DIR_PREFIX}*]",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="print the comparison, learning curve and proposal as one JSON object",
)
def demo(
    data: str,
    scratch_dir: str | None,
    preset_name: str,
    vocab_size: int,
    n_sobol: int,
    out_dir: str | None,
    as_json: bool,
) -> None:
    """The whole method on built-in data, no training (about 40 s on 2 idle cores).

    Compares predictors with and without MDE features by 5-fold CV on the blended objective
    val=0.5,task=0.5, draws a learning curve, and proposes the mixture for that objective with
    the best predictor fitted to the runs, with its predicted loss on every evaluation set.

    \b
    Examples:
      mixsurrogate demo                       # committed real-text runs and data experts (MDE)
      mixsurrogate demo --data regmix         # RegMix's public runs (rates only, Pile-CC)
      mixsurrogate demo --data schedules      # two-phase schedules: CV, propose --phases 2
      mixsurrogate demo --from-scratch work/  # build corpus, experts and runs first
      mixsurrogate demo --json | jq .proposal # the proposal and its predictor
    """
    from .. import demo as demos

    with demo_output_dir(out_dir) as plots_dir:
        if scratch_dir:
            from ..experts.pipeline import build_from_scratch

            runs_path, scores_path = build_from_scratch(
                scratch_dir,
                preset_name,
                n_sobol,
                say=lambda m: click.echo(m, err=True),
                vocab_size=vocab_size,
            )
            result = demos.mde_demo(runs_path, scores_path, plots_dir)
        elif data == "realtext":
            runs_path, scores_path = demos.realtext_paths()
            result = demos.mde_demo(runs_path, scores_path, plots_dir)
        elif data == "schedules":
            result = demos.schedules_demo(plots_dir)
        else:
            result = demos.regmix_demo(plots_dir)
        _show(result, plots_dir, as_json)


def _show(result, plots_dir: Path, as_json: bool) -> None:
    """The demo's tables, proposal and figure paths (or all of it as one JSON object)."""
    from ..evaluation.report import curve_table, headline_table
    from ..objective import Objective

    headline = headline_table(result.comparison, result.target)
    curve = curve_table(result.curve, result.target)
    if as_json:
        echo_json({
            "description": result.description, "target": result.target,
            "comparison": headline.reset_index().to_dict(orient="records"),
            "learning_curve": curve.reset_index().to_dict(orient="records"),
            "proposal": {"predictor": result.predictor, **result.proposal.to_dict()},
            "figures": [str(f) for f in result.figures], "plots_dir": str(plots_dir),
        })  # fmt: skip
        return
    click.echo(result.description)
    print_table(
        headline,
        f"held-out accuracy of each predictor on {result.target}",
        "mean over splits [95% bootstrap interval]",
    )
    print_table(
        curve,
        "learning curve: Spearman vs number of training runs (mean over draws)",
    )
    objective = Objective(dict.fromkeys(result.proposal.set_losses, 1.0), "")
    click.echo(
        f"proposal by {result.predictor}: the fitted predictor with the best mean Spearman "
        "above, refitted on every run"
    )
    show_proposal(result.proposal, objective, False, None)
    for path in result.figures:
        click.echo(f"wrote {path}")
    click.echo(f"plots in {plots_dir}")
