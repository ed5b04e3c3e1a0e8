"""The ``mixsurrogate`` command line: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import MixsurrogateError
from ..runs.formats import FORMATS
from .common import ErrorLineGroup


@click.group(cls=ErrorLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mixsurrogate")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    envvar="MIXSURROGATE_JOBS",
    help="at most this many CPU threads (torch, OpenMP, BLAS, tokenizers)  [default: the CPUs "
    "this process may use (affinity mask, container quota); env: MIXSURROGATE_JOBS]",
)
def main(jobs: int | None) -> None:
    """Choose a language-model data mixture from few proxy runs and cheap data experts.

    \b
    Quick start (built-in data, no training):
      mixsurrogate demo      # real-text runs + data experts: CV, learning curve, proposal
      mixsurrogate cv regmix:train-1m --test regmix:test-1m -p linear -p lgbm -p gp
      mixsurrogate propose regmix:train-1m --predictor gp --objective pile_cc=1
      mixsurrogate --jobs 4 runs train corpus/ mixtures.csv runs.csv   # 4 cores of a shared node

    CPU threads: every command keeps its thread pools (torch, OpenMP, BLAS, tokenizers) within
    the CPUs it may use; on a shared or busy machine give fewer with --jobs N, before the
    command (mixsurrogate --jobs 2 demo).
    """
    from ..cpu import cap_cpu_threads, default_jobs

    cap_cpu_threads(default_jobs() if jobs is None else jobs)


# --- runs -------------------------------------------------------------------------------------


@main.group()
def runs() -> None:
    """Runs logs: design mixtures to train, import foreign logs, train proxy runs."""


@runs.command("import")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="regmix",
    show_default=True,
    help="the source: RegMix's pair of files, Olmix's ratios + metrics, a W&B runs-table "
    "export, or any CSV",
)
@click.option(
    "--weights",
    "weight_patterns",
    multiple=True,
    metavar="PATTERN",
    help="weight columns, a glob whose * is the domain name (repeatable; wandb, csv; olmix: "
    "default every column but the id and name)",
)
@click.option(
    "--losses",
    "loss_patterns",
    multiple=True,
    metavar="PATTERN",
    help="loss/metric columns, a glob whose * is the set name (repeatable; as --weights)",
)
@click.option(
    "--run-id",
    "run_id",
    metavar="COLUMN",
    help="the run-id column (default: the first of run_id, run, ID, id, Name, name; "
    "wandb: run_id, run, Name, name, ID, id; olmix: run or run_id)",
)
@click.option(
    "--rename", "renames", multiple=True, metavar="OLD=NEW", help="rename a domain or set"
)
@click.option(
    "--units",
    type=click.Choice(["nats", "bpb"]),
    default=None,
    help="units of the source's losses, kept in the log's metadata  [default: nats; olmix: bpb]",
)
@click.option(
    "--higher-is-better",
    "higher_is_better",
    multiple=True,
    metavar="PATTERN",
    help="metrics (source column or set name glob) where higher is better: imported as "
    "1 - value (values in [0, 1]) or 1 - value/100 (percentages)",
)
@click.option(
    "--normalize-weights",
    "normalize_weights",
    is_flag=True,
    help="the weights are raw amounts (token counts): divide each run's by their sum (olmix, "
    "wandb, csv); without it a run whose weights do not sum to 1 is refused",
)
@click.option("--force", is_flag=True, help="replace OUT (and its metadata) if it exists")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
def runs_import(
    fmt, weight_patterns, loss_patterns, run_id, renames, units, higher_is_better,
    normalize_weights, force, as_json, sources, out,
) -> None:  # fmt: skip
    """Convert foreign runs logs into mixsurrogate's format (CSV or JSONL by OUT's suffix).

    Units and direction go to OUT.meta.json beside the log. Empty or NaN cells stay missing
    (not evaluated). Each run's weights must sum to 1 (round-off aside); token counts need
    --normalize-weights. An existing OUT is replaced only with --force.

    \b
    Examples:
      mixsurrogate runs import --format regmix train_mixture_1m.csv train_pile_loss_1m.csv runs.csv
      mixsurrogate runs import --format olmix ratios.csv metrics.csv runs.csv
      mixsurrogate runs import --format wandb wandb_export.csv runs.csv \\
          --weights 'config.mix.*' --losses 'summary.eval/*/loss' --normalize-weights
      mixsurrogate runs import --format wandb wandb_export.csv runs.csv \\
          --weights 'config.mix.*' --losses 'summary.eval/*' --higher-is-better '*/acc'
      mixsurrogate runs import --format csv sweep.csv runs.jsonl \\
          --weights 'mix_*' --losses 'val_*' --run-id job --rename cc=pile_cc
    """
    from ..runs.importers import check_out, import_runs, write_import
    from ..runs.log import LOSS_PREFIX
    from .common import echo_json

    if any(Path(s).resolve() == Path(out).resolve() for s in sources):
        raise MixsurrogateError(f"OUT {out} is one of the source files; write the log elsewhere")
    check_out(out, force)
    imported = import_runs(
        fmt,
        sources,
        weights=weight_patterns,
        losses=loss_patterns,
        run_id=run_id,
        renames=renames,
        units=units,
        higher_is_better=higher_is_better,
        normalize_weights=normalize_weights,
    )
    write_import(imported, out, force=force)
    summary = imported.summary(out)
    if as_json:
        echo_json(summary)
        return
    targets = summary["targets"]
    click.echo(
        f"wrote {summary['runs']} runs, {len(summary['domains'])} domains, {len(targets)} "
        f"evaluation sets to {out} (units and direction: {summary['metadata']})"
    )
    name_width = max(len(LOSS_PREFIX + t) for t in targets)
    count_width = len(str(summary["runs"]))
    for target, info in targets.items():
        click.echo(
            f"  {LOSS_PREFIX + target:<{name_width}}  {info['runs']:>{count_width}}/{summary['runs']}"
            f" runs  {info['units']}"
        )
    for note in summary["notes"]:
        click.echo(f"note: {note}")


@runs.command("design")
@click.option("--domains", help="comma-separated domain names")
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(exists=True, file_okay=False),
    help="take the domains from a corpus",
)
@click.option(
    "-n", "n", type=int, default=16, show_default=True, help="number of designed mixtures"
)
@click.option(
    "--method", type=click.Choice(["sobol", "dirichlet"]), default="sobol", show_default=True
)
@click.option(
    "--alpha",
    type=float,
    default=1.0,
    show_default=True,
    help="Dirichlet concentration (small = sparse)",
)
@click.option(
    "--vertices/--no-vertices",
    default=False,
    help="also add the K pure-domain mixtures and uniform",
)
@click.option(
    "--bounds", "bound_specs", multiple=True, help="DOMAIN=LO:HI share limits, repeatable"
)
@click.option(
    "--phases",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="phases per run: >= 2 designs schedules (a mixture per phase)",
)
@click.option(
    "--share",
    "last_share",
    type=float,
    help="the last phase's share of the tokens (default: shares designed too, >= 0.05 each)",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--prefix", default="run", show_default=True, help="run_id prefix")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary")
@click.argument("out", type=click.Path(dir_okay=False))
def runs_design(
    domains, corpus_dir, n, method, alpha, vertices, bound_specs, phases, last_share, seed,
    prefix, as_json, out,
) -> None:  # fmt: skip
    """Write mixtures to train (run_id and w:<domain> columns) as CSV or JSONL.

    With --phases P >= 2 each row is a schedule: w@<p>:<domain> phase mixtures, share@<p>
    token shares and w:<domain> the effective (token-weighted) mixture, Sobol points over the
    product of the phase simplices. --share S fixes the last phase's share (the earlier phases
    split the rest equally); without it the shares are designed too.

    \b
    Examples:
      mixsurrogate runs design --domains code,wiki,books -n 16 --vertices mixtures.csv
      mixsurrogate runs design --domains code,wiki,books -n 16 --phases 2 --share 0.2 sched.csv
    """
    from ..files import atomic_write_text
    from ..runs.design import design_frame, schedule_design_frame
    from ..runs.log import frame_to_text
    from ..simplex import Bounds

    if corpus_dir:
        from ..corpus.store import Corpus

        names = Corpus.load(corpus_dir).domains
    elif domains:
        names = [d.strip() for d in domains.split(",") if d.strip()]
    else:
        raise MixsurrogateError("give --domains a,b,c or --corpus DIR")
    if len(set(names)) != len(names) or len(names) < 2:
        raise MixsurrogateError("need at least two distinct domains")
    bounds = Bounds.parse(list(bound_specs), names)
    if phases == 1 and last_share is not None:
        raise MixsurrogateError("--share is the last phase's share: it needs --phases >= 2")
    if phases > 1:
        if method != "sobol":
            raise MixsurrogateError("--phases >= 2 designs Sobol schedules: drop --method")
        frame = schedule_design_frame(
            names, n, phases, last_share=last_share, vertices=vertices, bounds=bounds,
            seed=seed, prefix=prefix,
        )  # fmt: skip
    else:
        frame = design_frame(
            names, n, method=method, alpha=alpha, vertices=vertices, bounds=bounds, seed=seed,
            prefix=prefix,
        )  # fmt: skip
    path = Path(out)
    atomic_write_text(path, frame_to_text(frame, path))
    if as_json:
        from .common import echo_json

        # the keys of `runs import --json`: mixtures to train have no evaluation set yet
        echo_json(
            {
                "out": out,
                "runs": len(frame),
                "domains": names,
                "targets": {},
                "units": None,
                "method": method,
                "phases": phases,
                "seed": seed,
                "notes": [],
            }
        )
        return
    what = "mixtures" if phases == 1 else f"{phases}-phase schedules"
    click.echo(f"wrote {len(frame)} {what} over {len(names)} domains to {out}")


def _register_commands() -> None:
    """Commands kept in their own modules: propose, demo, and the training side (torch)."""
    from .audit import audit
    from .corpus import corpus
    from .demo import demo
    from .evaluate import cv
    from .experts import experts, runs_train
    from .fit import fit
    from .noise import noise
    from .propose import propose

    for command in (fit, cv, propose, audit, demo, corpus, experts, noise):
        main.add_command(command)
    runs.add_command(runs_train, name="train")


_register_commands()


def run() -> None:  # pragma: no cover - console entry point
    main(prog_name="mixsurrogate")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
