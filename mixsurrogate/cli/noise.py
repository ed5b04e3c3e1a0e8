"""``mixsurrogate noise``: which evaluation sets carry signal across mixtures, against seed noise."""

from __future__ import annotations

import click

from ..errors import MixsurrogateError
from .common import echo_json, missing_domains_option, resolve_log


@click.command()
@click.argument("logs", nargs=-1, required=True)
@click.option(
    "--objective",
    help="also report this objective (e.g. val=1, code=1,books=1) as the row 'objective'",
)
@click.option("--seed", type=int, default=0, show_default=True)
@missing_domains_option
@click.option("--json", "as_json", is_flag=True)
def noise(logs, objective, seed, missing_domains, as_json) -> None:
    """Per evaluation set: seed noise, spread across mixtures, their ratio (SNR), and whether
    the noise depends on the mixture. LOGS: runs logs read as one (e.g. runs.csv seeds.csv);
    mixtures trained more than once (same weights, other seeds) give the noise.

    \b
    Example:
      mixsurrogate noise runs.csv seeds.csv --objective val=1
    """
    import pandas as pd

    from ..evaluation.snr import signal_to_noise
    from ..objective import Objective
    from ..runs.fidelity import budget_count, final_runs
    from ..runs.log import RunsLog

    parts = [resolve_log(spec, missing_domains) for spec in logs]
    domains = parts[0].domains
    for spec, part in zip(logs, parts, strict=True):
        if sorted(part.domains) != sorted(domains):
            raise MixsurrogateError(f"{spec}: other domains than {logs[0]} ({', '.join(domains)})")
    frames = [p.with_domain_order(domains).completed().frame for p in parts]
    log, checkpoint_note = final_runs(RunsLog(pd.concat(frames, ignore_index=True)))
    budgets = budget_count(log)
    if budgets > 1:
        raise MixsurrogateError(
            f"the runs have {budgets} different budgets (params, tokens): a mixture trained at "
            "two budgets is not a seed repeat; pass the runs of one budget"
        )
    obj = None
    if objective:
        obj = Objective.parse(objective, log.targets, {t: "val" for t in log.targets})
    rows = signal_to_noise(log, obj, seed)
    if as_json:
        notes = [checkpoint_note] if checkpoint_note else []
        echo_json({"logs": list(logs), "runs": len(log), "sets": rows, "log_notes": notes})
        return
    click.echo(f"{len(log)} runs, {rows[0]['repeated_mixtures']} mixtures trained more than once")
    if checkpoint_note:
        click.echo(f"note: {checkpoint_note}")
    for r in rows:
        varies = (
            f"; noise {r['noise_min']:.4f}-{r['noise_max']:.4f} over the mixtures (noise GP)"
            if r["noise_min"] == r["noise_min"]
            else ""
        )
        click.echo(
            f"{r['set']}: SNR {r['snr']:.2f} (spread {r['spread']:.4f} across {r['mixtures']} "
            f"mixtures, seed noise {r['noise']:.4f} [{r['noise_lo']:.4f}, {r['noise_hi']:.4f}]); "
            f"repeat std per mixture {r['repeat_std_min']:.4f}-{r['repeat_std_max']:.4f} over "
            f"{r['repeat_groups']} repeated mixtures; equal noise across mixtures: Bartlett p = "
            f"{r['bartlett_p']:.3g}{varies}"
        )
