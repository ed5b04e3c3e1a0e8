"""``mixsurrogate audit``: what the proposals predicted against what their runs realised."""

from __future__ import annotations

import click

from .common import echo_json, missing_domains_option, print_table, resolve_log


@click.command()
@click.argument("log")
@click.option(
    "--ledger",
    "ledger_file",
    type=click.Path(dir_okay=False),
    help="the ledger to audit [default: LOG.ledger.jsonl, written by propose]",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=None,
    help="a run realises a proposal when their mixtures are this close (total variation) "
    "[default: 0.001]",
)
@missing_domains_option
@click.option("--json", "as_json", is_flag=True)
def audit(log, ledger_file, tolerance, missing_domains, as_json) -> None:
    """Predicted vs realised objective of every proposed run whose losses have arrived.

    \b
    Examples:
      mixsurrogate propose runs.csv --explore -n 4 --objective val=1   (records its predictions)
      ... train the proposed runs, log their losses in runs.csv ...
      mixsurrogate audit runs.csv
      mixsurrogate audit runs.csv --json
    """
    import pandas as pd

    from ..proposal.ledger import MATCH_TOLERANCE, ledger_path, read_ledger
    from ..proposal.ledger import audit as run_audit

    path = ledger_file or str(ledger_path(log))
    entries = read_ledger(path)
    result = run_audit(
        resolve_log(log, missing_domains),
        entries,
        MATCH_TOLERANCE if tolerance is None else tolerance,
        path,
    )
    if as_json:
        echo_json(result.to_dict())
        return
    rows = result.arrived
    frame = pd.DataFrame(
        {
            "role": [r.entry.role for r in rows],
            "runs": [",".join(r.matched_runs) for r in rows],
            "recommender": [r.entry.recommender or "-" for r in rows],
            "predicted": [r.entry.predicted for r in rows],
            "lower": [r.entry.lower for r in rows],
            "upper": [r.entry.upper for r in rows],
            "realised": [r.realised for r in rows],
            "predicted - realised": [r.error for r in rows],
            "covered": ["-" if r.covered is None else ("yes" if r.covered else "NO") for r in rows],
        }
    )
    print_table(frame, f"{len(rows)} of {len(result.rows)} proposed mixtures realised ({path})")
    coverage = result.coverage
    click.echo(
        "interval coverage: "
        + ("- (no interval to check)" if coverage is None else
           f"{coverage:.0%} of {result.n_intervals} intervals hold the realised objective")
    )  # fmt: skip
    optimism = result.mean_optimism
    click.echo(
        "mean predicted - realised: "
        + ("- (nothing realised yet)" if optimism is None else
           f"{optimism:+.4f} (below 0: the predictions were optimistic)")
    )  # fmt: skip
