"""What every command module shares: the error-to-one-line group, tables, JSON, log and store
resolution and shared options. It imports no command module, so command modules import it and
``cli.py`` only registers them (no import cycle).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
import numpy as np

from ..errors import MixsurrogateError

if TYPE_CHECKING:  # pandas, scipy (metrics) and the runs log load where used: a fast start-up
    import pandas as pd

    from ..runs.log import RunsLog


class ErrorLineGroup(click.Group):
    """Turns library errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MixsurrogateError as err:
            raise click.ClickException(one_line(str(err))) from err


def one_line(message: str) -> str:
    """A message on one line: a library's text quoted inside it (a parser's report with the
    offending line and a caret under it) may span several."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def console():
    from rich.console import Console

    return Console(width=max(100, Console().width))


def format_number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return "-" if np.isnan(value) else str(value)
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


def print_table(frame: pd.DataFrame, title: str = "", caption: str = "") -> None:
    """A readable table of a frame (rich), numbers formatted, missing values as '-'."""
    import pandas as pd
    from rich.table import Table

    table = Table(title=title or None, caption=caption or None, show_lines=False)
    for col in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        table.add_column(str(col), justify="right" if numeric else "left")
    for _, row in frame.iterrows():
        table.add_row(*[format_number(v) for v in row.tolist()])
    console().print(table)


def echo_json(payload) -> None:
    """Valid JSON on stdout: NaN and infinities become null (``allow_nan=False`` checks it)."""
    from ..evaluation.metrics import json_safe

    click.echo(json.dumps(json_safe(payload), indent=2, allow_nan=False))


def resolve_log(spec: str, missing_domains: str = "refuse") -> RunsLog:
    """A runs-log path, or a built-in log (``runs.builtin.resolve_log``)."""
    from ..runs.builtin import resolve_log as resolve

    return resolve(spec, missing_domains)


def loss_units(spec: str, targets: list[str]) -> tuple[str, dict[str, str]]:
    """What the log's loss columns are in, for a table's caption and for JSON: one label
    (``nats``, ``bpb``, ``mixed: ...``) and each set's units, from the ``.meta.json`` beside
    the log that ``runs import`` writes (a log without one: nats, the contract)."""
    from ..runs.metadata import load_log_metadata

    meta = load_log_metadata(spec)
    label = f"losses in {meta.units_label(targets)}, lower is better"
    if any(meta.targets.get(t, {}).get("source_direction") == "higher" for t in targets):
        label += " (higher-is-better metrics converted on import)"
    return label, {t: meta.units_of(t) for t in targets}


def mde_features(scores: str | None, log: RunsLog, kind: str):
    """MDE features for a log's targets from a score store: (transform, store), or Nones."""
    if not scores:
        return None, None
    from ..mde.features import log_features

    return log_features(scores, log, kind)


def scores_option(help_text: str):
    """``--scores DIR``, a score store (MDE features), with the command's own help."""
    return click.option("--scores", type=click.Path(exists=True, file_okay=False), help=help_text)


#: MDE features of fit, cv and propose: token-level, sequence-posterior, both, budget-matched;
#: ``examples`` (fit and cv: set-level token columns plus each set's example-level ones, for
#: ``mde-ex``)
mde_kind_option = click.option(
    "--mde-kind",
    type=click.Choice(["token", "bayes", "both", "budget", "budget-bayes", "examples"]),
    default="token",
    show_default=True,
    help="budget, budget-bayes: each expert at the budget its domain gets in the mixture "
    "(needs a score store of experts trained with 'experts train --checkpoints'); examples: "
    "example-level MDE columns per set for the mde-ex predictor (fit and cv)",
)


#: commands that read a runs log: empty w:<domain> cells (runs from before a domain was added) as 0
missing_domains_option = click.option(
    "--missing-domains",
    type=click.Choice(["refuse", "zero"]),
    default="refuse",
    show_default=True,
    help="an empty w:<domain> cell: refuse the log, or read it as weight 0 (the run was trained "
    "before that domain was added to the log)",
)


#: the val/task kind of each evaluation set, when no score store says it
kinds_option = click.option(
    "--kinds",
    "kind_specs",
    multiple=True,
    help="KIND=SET,SET (KIND val or task; names or globs, e.g. val='*' or task='arc_*,piqa'), "
    "repeatable: which sets a val/task objective term means",
)


def resolve_kinds(
    kind_specs: tuple[str, ...], log_spec: str | None, sets: list[str], store
) -> tuple[dict[str, str] | None, str]:
    """Each set's kind and where it came from: --kinds, then the score store, then a built-in
    log's metadata (RegMix's sets are all validation sets); None when nothing says."""
    from ..objective import resolve_kinds as resolve

    return resolve(kind_specs, log_spec, sets, store)


def select_targets(log: RunsLog, target: tuple[str, ...]) -> list[str]:
    """The named evaluation sets, default all: each ``-t`` a comma list of names and globs
    (``-t 'arc_*,piqa' -t hellaswag``), one clear error for a name or glob matching none."""
    from ..objective import expand_names

    return expand_names(target, log.targets) or log.targets


def show_excess(result, i: int) -> None:
    """Mixture ``i``'s --no-worse-than rows (excess over the reference, whether each holds) and
    its worst-case excess, when the proposal has them."""
    import pandas as pd

    if getattr(result, "constraints", None) is not None:
        rows = result.constraint_report()[i]
        frame = pd.DataFrame(
            {
                "set": [r["set"] for r in rows],
                "reference": [r["reference"] for r in rows],
                "reference loss": [r["reference_loss"] for r in rows],
                "excess": [r["excess"] for r in rows],
                "allowed": [r["tolerance"] for r in rows],
                "holds": ["yes" if r["holds"] else "NO" for r in rows],
            }
        )
        held = sum(r["holds"] for r in rows)
        print_table(frame, f"--no-worse-than: {held} of {len(rows)} hold (predicted, nats)")
    if getattr(result, "worst_case", None) is not None:
        worst = result.worst_case_report()[i]
        click.echo(
            f"worst-case excess over {worst['reference']}: {worst['excess']:+.4f} nats "
            f"({worst['set']}), predicted"
        )


exposure_option = click.option(
    "--exposure-corpus",
    "exposure_corpus",
    type=click.Path(exists=True, file_okay=False),
    help="add per-domain exposure features (epochs = effective weight x the run's tokens / "
    "the domain's unique training tokens in this corpus's manifest); needs the log's tokens",
)


def input_space(runs_log, exposure_corpus: str | None):
    """The predictors' inputs of ``runs_log`` (``runs.inputs.InputSpace``): schedules for a
    schedule log, with exposure features from ``--exposure-corpus``."""
    from ..proposal.run import train_tokens
    from ..runs.inputs import InputSpace

    tokens = None if exposure_corpus is None else train_tokens(exposure_corpus)
    return InputSpace.of(runs_log, tokens)


def schedule_predictors(names: list[str]) -> list[str]:
    """``names`` without the predictors that cannot take schedules, said on stderr."""
    from ..predictors import predictor_class

    dropped = [n for n in names if not predictor_class(n).capabilities.schedules]
    if dropped:
        click.echo(
            f"note: a schedule log: {', '.join(dropped)} (laws of the mixture) left out", err=True
        )
    return [n for n in names if n not in dropped]


def show_schedule(result, i: int) -> None:
    """Proposal ``i``'s schedule: each phase's mixture (a column) and its share of the tokens;
    the table above is the effective mixture."""
    import pandas as pd

    weights, shares = result.phase_weights[i], result.phase_shares[i]
    frame = pd.DataFrame({"domain": list(result.domains)})
    for p, (w, s) in enumerate(zip(weights, shares, strict=True), start=1):
        frame[f"phase {p} (share {s:.3g})"] = w
    print_table(frame, "its schedule (phase mixtures; the table above is the effective mixture)")


def show_recommendation(rec: dict) -> None:
    """The mixture to train at full scale now, beside the (optimistic) best observed run."""
    import pandas as pd

    interval = rec["interval"]
    if rec.get("same_as_proposal"):
        click.echo("recommended: train the proposal above at full scale now")
    else:
        shares = sorted(rec["mixture"].items(), key=lambda kv: -kv[1])
        frame = pd.DataFrame({"domain": [d for d, _ in shares], "share": [v for _, v in shares]})
        print_table(frame, "recommended: train at full scale now")
        click.echo(
            f"recommended mixture's predicted objective {rec['predicted_objective']:.4f}"
            + (
                ""
                if interval is None
                else f" ({interval['level']:.0%} interval of a new run "
                f"{interval['lower']:.4f} - {interval['upper']:.4f})"
            )
        )
    best = rec["best_observed_run"]
    click.echo(
        f"best observed run {best['run_id']}: observed {best['observed']:.4f}, "
        f"the model's mean there {best['posterior_mean']:.4f}"
    )
    for note in rec["notes"]:
        click.echo(f"note: {note}")


def show_robust(choice) -> None:
    """The robust recommendation (``proposal.robust.RobustChoice``): every recommender's
    optimism report, which one won, and the warning line when it is judged worse than the
    prior. Shows the library's numbers; computes none."""
    import pandas as pd

    reports = choice.reports
    level = reports[0].level
    frame = pd.DataFrame(
        {
            "": ["*" if r.name == choice.chosen else "" for r in reports],
            "recommender": [r.name for r in reports],
            "predicted": [r.predicted for r in reports],
            "judged": [r.judged for r in reports],
            "sd": [r.judged_std for r in reports],
            "optimism": [r.optimism for r in reports],
            f"{level:.0%} lo": [r.lower for r in reports],
            f"{level:.0%} hi": [r.upper for r in reports],
            "nearest": [r.nearest_run for r in reports],
            "TV": [r.nearest_distance for r in reports],
            "stab. TV": [r.stability for r in reports],
        }
    )
    print_table(
        frame,
        f"recommenders ({choice.requested}; * = recommended): predicted by the full-data "
        "surrogate, judged by cross-fitting",
        "optimism = predicted - judged (< 0: the surrogate promises more than the judges "
        "expect); TV: total variation to the nearest logged run; stab. TV: mean TV between the "
        "halvings' optima; sd: spread of the judgements",
    )
    if choice.warning:
        click.echo(choice.warning)
    if choice.extrapolation:
        click.echo(choice.extrapolation)
    click.echo(
        f"recommender: {choice.chosen} ({choice.how}; prior: {choice.prior_name}; "
        f"cross-fitting {choice.cross_fit_seconds:.1f} s of {choice.seconds:.1f} s)"
    )
    for note in choice.notes:
        click.echo(f"note: {note}")


def show_proposal(
    result, obj, as_json: bool, plot_path: str | None, bounds=None, plot_mixtures=None
) -> None:
    """A proposal as tables (or JSON), with notes and an optional bar chart of
    ``plot_mixtures`` (label -> mixture, ``proposal.run.plot_mixtures``)."""
    import pandas as pd

    if as_json:
        echo_json(result.to_dict())
    else:
        for i, w in enumerate(result.mixtures):
            order = np.argsort(-w)
            frame = pd.DataFrame({"domain": [result.domains[j] for j in order], "share": w[order]})
            std = "" if result.objective_std is None else f" ± {result.objective_std[i]:.4f}"
            value = (
                f"{result.objective[i]:.4f}{std}"
                if np.isfinite(result.objective[i])
                else "not predicted"
            )
            print_table(frame, f"{result.mode} proposal {i + 1}: predicted objective {value}")
            if getattr(result, "phase_weights", None) is not None:
                show_schedule(result, i)
            if result.objective_interval is not None:
                level, lo, hi, how = result.objective_interval
                click.echo(
                    f"{level:.0%} interval of the objective: {lo[i]:.4f} - {hi[i]:.4f} ({how})"
                )
            if result.set_losses:
                losses = pd.DataFrame(
                    {
                        "set": list(result.set_losses),
                        "predicted loss": [v[i] for v in result.set_losses.values()],
                    }
                )
                print_table(losses)
            show_excess(result, i)
            if result.nearest_run:
                rid, dist, val = result.nearest_run[i]
                click.echo(
                    f"nearest logged run: {rid} (distance {dist:.3f}, its objective {val:.4f})"
                )
        if getattr(result, "recommendation", None):
            show_recommendation(result.recommendation)
        if getattr(result, "robust", None) is not None:
            show_robust(result.robust)
        for note in result.notes:
            click.echo(f"note: {note}")
        if getattr(result, "kl", None) is not None:
            for line in result.kl.lines():
                click.echo(line)
        for line in getattr(obj, "describe_matches", lambda: [])():
            click.echo(f"objective term {line}")
        if obj.kinds_source:
            click.echo(f"set kinds (val/task) from {obj.kinds_source}")
    if plot_path and plot_mixtures:
        from ..evaluation import plots

        click.echo(
            "wrote "
            + str(
                plots.mixture_bars(
                    result.domains,
                    plot_mixtures,
                    plot_path,
                    f"objective {obj.spec}",
                    None if bounds is None else (bounds.lower, bounds.upper),
                )
            ),
            err=True,
        )
