"""``mixsurrogate fit``: fit one predictor on a runs log and show how well it fits."""

from __future__ import annotations

import click
import numpy as np

from ..errors import MixsurrogateError
from .common import (
    echo_json,
    exposure_option,
    input_space,
    loss_units,
    mde_features,
    mde_kind_option,
    missing_domains_option,
    print_table,
    resolve_log,
    scores_option,
    select_targets,
)


@click.command()
@click.argument("log")
@click.option("--predictor", "-p", default="linear", show_default=True)
@scores_option("score store for +mde predictors")
@mde_kind_option
@missing_domains_option
@click.option(
    "--target",
    "-t",
    multiple=True,
    help="evaluation set(s): names and globs, comma lists, repeatable: -t 'arc_*,piqa' -t hellaswag (default: all)",
)
@click.option(
    "--summary", is_flag=True, help="statsmodels OLS table of per-domain effects (linear)"
)
@click.option(
    "--interval",
    "interval_level",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.9,
    show_default=True,
    help="level of the prediction intervals whose half-width is reported",
)
@exposure_option
@click.option("--json", "as_json", is_flag=True)
def fit(
    log,
    predictor,
    scores,
    mde_kind,
    missing_domains,
    target,
    summary,
    interval_level,
    exposure_corpus,
    as_json,
) -> None:
    """Fit one predictor on a runs log and report its in-sample fit quality.

    In-sample numbers flatter every predictor: compare predictors with `cv`. The interval
    half-width (median over the logged mixtures) says how far a new run's loss may fall from
    the prediction: the GP's posterior predictive, or split conformal on cross-validated
    residuals (`cv --coverage` checks it on held-out runs). Sets the predictor cannot model
    are listed with the reason; the exit status is 1 only if it could model none.

    \b
    Examples:
      mixsurrogate fit regmix:train-1m --predictor linear --target pile_cc --summary
      mixsurrogate fit runs.csv --predictor dml --json
    """
    import pandas as pd

    from ..evaluation.metrics import metrics
    from ..evaluation.protocol import PredictorSpec, check_specs, fit_predict
    from ..runs.fidelity import final_runs

    runs_log, checkpoint_note = final_runs(resolve_log(log, missing_domains))
    targets = select_targets(runs_log, target)
    units_label, units = loss_units(log, targets)
    feature_fn, _ = mde_features(scores, runs_log, mde_kind)
    spec = PredictorSpec(predictor)
    space = input_space(runs_log, exposure_corpus)
    check_specs([spec], feature_fn, space, runs_log)
    X = space.inputs(runs_log)  # noqa: N806 - mixtures, or a schedule log's schedules
    outcome = fit_predict(spec, runs_log, X, targets, feature_fn, interval_level, space=space)
    rows, problems = [], {}
    for j, t in enumerate(targets):
        status, reason = outcome.status[t]
        if status != "ok":
            problems[t] = {"status": status, "reason": reason}
            continue
        have = runs_log.has_loss(t)  # in-sample: the runs evaluated on t (none pending)
        m = metrics(runs_log.loss(t)[have], outcome.pred[have, j])
        rows.append(
            {
                "target": t,
                "runs": outcome.n_runs[t],
                "spearman": m["spearman"],
                "pearson": m["pearson"],
                "rmse": m["mse"] ** 0.5,
                f"{interval_level:.0%} half-width": float(
                    np.median(outcome.upper[:, j] - outcome.lower[:, j]) / 2
                ),
            }
        )
    if as_json:
        echo_json(
            {
                "predictor": predictor,
                "n_runs": len(runs_log.completed()),
                "n_pending": int(runs_log.pending_mask.sum()),
                "units": units,
                "in_sample": rows,
                "not_fitted": problems,
                "notes": outcome.notes,
                "log_notes": [checkpoint_note] if checkpoint_note else [],
            }
        )
    else:
        if rows:
            pending = int(runs_log.pending_mask.sum())
            shown = f" ({pending} pending run(s) not used)" if pending else ""
            title = f"{predictor} fitted on {len(runs_log.completed())} runs{shown} (in-sample)"
            table = pd.DataFrame(rows)
            if (table["runs"] == len(runs_log.completed())).all():
                table = table.drop(columns="runs")  # said once, in the title
            print_table(table, title, f"rmse and half-width: {units_label}")
        for t, p in problems.items():
            click.echo(f"{p['status']} {t}: {p['reason']}")
        for t, notes in outcome.notes.items():
            for note in notes:
                click.echo(f"note ({t}): {note}")
        if checkpoint_note:
            click.echo(f"note: {checkpoint_note}")
    if not rows:
        raise MixsurrogateError(f"{predictor} could not be fitted to any evaluation set")
    if summary:
        from ..predictors.summary import ols_summary

        for t in outcome.fitted:
            have = runs_log.has_loss(t)
            names = runs_log.domains if space.is_mixture else space.names()
            click.echo(ols_summary(X[have], runs_log.loss(t)[have], names))
