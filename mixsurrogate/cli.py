"""The ``mixsurrogate`` command line: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cli_common import ErrorLineGroup
from .errors import MixsurrogateError


@click.group(cls=ErrorLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mixsurrogate")
def main() -> None:
    """Choose a language-model data mixture from few proxy runs and cheap data experts.

    \b
    Quick start (built-in data, no training):
      mixsurrogate demo      # real-text runs + data experts: CV, learning curve, proposal
      mixsurrogate cv regmix:train-1m --test regmix:test-1m -p linear -p lgbm -p gp
      mixsurrogate propose regmix:train-1m --predictor gp --objective pile_cc=1
    """


# --- runs -------------------------------------------------------------------------------------


@main.group()
def runs() -> None:
    """Runs logs: design mixtures to train, import foreign logs, train proxy runs."""


@runs.command("import")
@click.option("--format", "fmt", type=click.Choice(["regmix"]), default="regmix", show_default=True)
@click.argument("mixture_csv", type=click.Path(exists=True, dir_okay=False))
@click.argument("loss_csv", type=click.Path(exists=True, dir_okay=False))
@click.argument("out", type=click.Path(dir_okay=False))
def runs_import(fmt: str, mixture_csv: str, loss_csv: str, out: str) -> None:
    """Convert a foreign runs log into mixsurrogate's format (CSV or JSONL by OUT's suffix).

    \b
    Example (RegMix's pair of files, joined on `index`):
      mixsurrogate runs import --format regmix train_mixture_1m.csv train_pile_loss_1m.csv runs.csv
    """
    from .runs import import_regmix, save_runs

    log = import_regmix(mixture_csv, loss_csv)
    save_runs(log, out)
    click.echo(
        f"wrote {len(log)} runs, {len(log.domains)} domains, {len(log.targets)} evaluation sets to {out}"
    )


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
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--prefix", default="run", show_default=True, help="run_id prefix")
@click.argument("out", type=click.Path(dir_okay=False))
def runs_design(
    domains, corpus_dir, n, method, alpha, vertices, bound_specs, seed, prefix, out
) -> None:
    """Write mixtures to train (run_id and w:<domain> columns) as CSV or JSONL.

    \b
    Example:
      mixsurrogate runs design --domains code,wiki,books -n 16 --vertices mixtures.csv
    """
    from .design import design_frame
    from .runs import atomic_write_text, frame_to_text
    from .simplex import Bounds

    if corpus_dir:
        from .experts.corpus_store import Corpus

        names = Corpus.load(corpus_dir).domains
    elif domains:
        names = [d.strip() for d in domains.split(",") if d.strip()]
    else:
        raise MixsurrogateError("give --domains a,b,c or --corpus DIR")
    if len(set(names)) != len(names) or len(names) < 2:
        raise MixsurrogateError("need at least two distinct domains")
    bounds = Bounds.parse(list(bound_specs), names)
    frame = design_frame(
        names,
        n,
        method=method,
        alpha=alpha,
        vertices=vertices,
        bounds=bounds,
        seed=seed,
        prefix=prefix,
    )
    path = Path(out)
    atomic_write_text(path, frame_to_text(frame, path))
    click.echo(f"wrote {len(frame)} mixtures over {len(names)} domains to {out}")


def _register_commands() -> None:
    """Commands kept in their own modules: propose, demo, and the training side (torch)."""
    from .cli_corpus import corpus
    from .cli_demo import demo
    from .cli_evaluate import cv, fit
    from .cli_experts import experts, runs_train
    from .cli_propose import propose

    for command in (fit, cv, propose, demo, corpus, experts):
        main.add_command(command)
    runs.add_command(runs_train, name="train")


_register_commands()


def run() -> None:  # pragma: no cover - console entry point
    main(prog_name="mixsurrogate")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
