"""``mixsurrogate cv``: compare several predictors honestly (CV, test logs, learning curves)."""

from __future__ import annotations

import click

from ..errors import MixsurrogateError
from .common import (
    echo_json,
    exposure_option,
    input_space,
    kinds_option,
    loss_units,
    mde_features,
    mde_kind_option,
    missing_domains_option,
    resolve_kinds,
    resolve_log,
    schedule_predictors,
    scores_option,
    select_targets,
)
from .cv_output import print_curve, print_report, write_plots


def _parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise MixsurrogateError(f"--curve {text!r}: give sizes like 16,32,64") from err
    if not sizes:
        raise MixsurrogateError("--curve needs at least one size")
    return sizes


def _parse_compare(pairs: tuple[str, ...], names: list[str]) -> list[tuple[str, str]]:
    out = []
    for text in pairs:
        a, sep, b = text.partition(",")
        if not sep or not a.strip() or not b.strip():
            raise MixsurrogateError(f"--compare {text!r}: give two predictors as A,B")
        for name in (a.strip(), b.strip()):
            if name not in names:
                raise MixsurrogateError(f"--compare: {name!r} is not among the predictors")
        out.append((a.strip(), b.strip()))
    return out


@click.command()
@click.argument("log")
@click.option(
    "--predictor",
    "-p",
    "predictors",
    multiple=True,
    help="repeatable; default: every rates predictor (+mde ones with --scores) except the slow "
    "mtgp, mtgp+mde (multi-task GP over sets) and auto (chosen by inner CV), which -p names",
)
@scores_option("score store: adds MDE predictors")
@mde_kind_option
@missing_domains_option
@click.option("--folds", type=int, default=5, show_default=True)
@click.option(
    "--repeats", type=int, default=1, show_default=True, help="repeated k-fold (small logs)"
)
@click.option("--test", "test_log", help="explicit test log instead of k-fold CV")
@click.option(
    "--train-where",
    help="fit on the runs matching this condition, e.g. 'params<1e8' (with --test-where)",
)
@click.option(
    "--test-where",
    help="score on the runs matching this condition, e.g. 'params>=1e9 and tokens>=20B'",
)
@click.option(
    "--fidelity",
    "fidelity_columns",
    default="params,tokens",
    show_default=True,
    help="runs-log columns the multi-fidelity predictor (mfgp) takes as inputs",
)
@click.option(
    "--target",
    "-t",
    multiple=True,
    help="evaluation set(s): names and globs, comma lists, repeatable: -t 'arc_*,piqa' -t hellaswag (default: all)",
)
@click.option(
    "--objective",
    "objective_spec",
    help="also score a blended objective, e.g. val=0.5,task=0.5, \"qa='*arc*,*piqa*'=1\" "
    "(a family of globs) or @objective.toml (docs: how-to/objective)",
)
@kinds_option
@click.option(
    "--score-only",
    "score_only",
    multiple=True,
    help="score only runs whose id matches this glob (others still fitted); repeatable",
)
@click.option(
    "--exclude-scoring",
    "exclude_scoring",
    multiple=True,
    help="do not score runs whose id matches this glob, e.g. 'vertex-*'; repeatable",
)
@click.option(
    "--compare",
    "compare_pairs",
    multiple=True,
    help="A,B: paired difference of Spearman on the same splits, with its interval",
)
@click.option(
    "--coverage",
    "interval_level",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="also score prediction intervals at this level (e.g. 0.9): held-out coverage and width",
)
@click.option("--curve", "curve_sizes", help="learning curve sizes, e.g. 16,32,64 (with --draws)")
@click.option(
    "--curve-only",
    is_flag=True,
    help="with --curve: only the learning curve, without the full evaluation before it",
)
@click.option("--draws", type=int, default=5, show_default=True)
@click.option(
    "--resamples",
    type=click.IntRange(min=100),
    help="bootstrap resamples of every interval (default: 2000; fewer: faster, rougher)",
)
@exposure_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), help="write PNGs here")
@click.option("--json", "as_json", is_flag=True)
def cv(
    log,
    predictors,
    scores,
    mde_kind,
    missing_domains,
    folds,
    repeats,
    test_log,
    train_where,
    test_where,
    fidelity_columns,
    target,
    objective_spec,
    kind_specs,
    score_only,
    exclude_scoring,
    compare_pairs,
    interval_level,
    curve_sizes,
    curve_only,
    draws,
    resamples,
    exposure_corpus,
    seed,
    plot_dir,
    as_json,
) -> None:
    """Compare predictors honestly: repeated k-fold CV, or train on LOG and test on --test.

    Every predictor is fitted on the same splits. Per split: Spearman, Pearson, MSE, MAE and
    top-1 regret (true loss of the predicted-best held-out mixture minus the best held-out
    loss); tables show the mean over splits with a 95% bootstrap interval (over splits, or
    over test runs with --test) and the pooled out-of-fold Spearman as a secondary column.
    A predictor that cannot be fitted to a set shows as a skipped or failed cell with its
    reason; the exit status is 1 only if nothing could be scored. --coverage 0.9 also scores
    90% prediction intervals (GPs: posterior predictive; others: split conformal on CV
    residuals of each fit's own training runs, so it refits each predictor 5 more times).

    \b
    Examples:
      mixsurrogate cv runs.csv --folds 5 --repeats 4 -p linear -p gp --compare gp,linear
      mixsurrogate cv runs.csv --scores scores/ --objective val=0.5,task=0.5 --exclude-scoring 'vertex-*'
      mixsurrogate cv regmix:train-1m --test regmix:test-1b -t pile_cc --coverage 0.9 --json
      mixsurrogate cv regmix:train-1m --test regmix:test-1m -t pile_cc --curve 16,32,64 --plot out/
      mixsurrogate cv runs.csv --train-where 'params<1e8' --test-where 'params>=1e9' -p gp -p mfgp

    --train-where/--test-where answer "do my small runs predict large ones?": conditions are
    COLUMN OP NUMBER clauses joined by 'and' (OP: < <= > >= == !=; numbers may read 100M, 1.2B).
    mfgp models the loss over (mixture, log params, log tokens), so it can fit small and a few
    larger runs together; the other predictors see the mixture only.
    """
    import pandas as pd

    from ..evaluation import protocol as evaluate
    from ..evaluation.metrics import BOOTSTRAP_RESAMPLES
    from ..objective import Objective
    from ..predictors import MDE_PREDICTORS, OPT_IN_PREDICTORS, RATE_PREDICTORS
    from ..runs.fidelity import final_runs

    resamples = resamples or BOOTSTRAP_RESAMPLES

    runs_log = resolve_log(log, missing_domains)
    targets = select_targets(runs_log, target)
    feature_fn, store = mde_features(scores, runs_log, mde_kind)
    obj = None
    if objective_spec:
        kinds, source = resolve_kinds(kind_specs, log, targets, store)
        obj = Objective.parse(objective_spec, targets, kinds, source)
    names = list(predictors) or [
        n
        for n in list(RATE_PREDICTORS) + (list(MDE_PREDICTORS) if scores else [])
        if n not in OPT_IN_PREDICTORS
    ]
    space = input_space(runs_log, exposure_corpus)
    if not predictors and space.is_schedule:  # the mixing laws cannot take schedules
        names = schedule_predictors(names)
    specs = [_spec(evaluate.PredictorSpec(n), fidelity_columns) for n in names]
    test = resolve_log(test_log, missing_domains) if test_log else None
    log_notes = []
    if not any(spec.uses_fidelity for spec in specs):  # mfgp takes checkpoints at their tokens
        runs_log, checkpoint_note = final_runs(runs_log)
        log_notes = [checkpoint_note] if checkpoint_note else []
        if test is not None:  # scored as finished runs, they would be as wrong as fitted ones
            test, test_note = final_runs(test)
            log_notes += [f"--test: {test_note}"] if test_note else []
    evaluate.check_specs(specs, feature_fn, space, runs_log)
    pairs = _parse_compare(compare_pairs, names)
    where = _check_where(train_where, test_where, test_log, curve_sizes)
    scored_log = test if test is not None else runs_log
    scored = evaluate.scoring_mask(scored_log, score_only, exclude_scoring)
    if curve_only and not curve_sizes:
        raise MixsurrogateError("--curve-only needs --curve SIZES")
    units = loss_units(log, targets)
    result = summary = None
    means: list = []
    if not curve_only:
        result, mode = _evaluate(
            evaluate, specs, runs_log, test, scored, where, train_where, test_where, folds,
            repeats, targets, feature_fn, obj, seed, interval_level, space.unique_tokens_map(),
        )  # fmt: skip
        result.resamples = resamples
        means = evaluate.add_set_means(result, units[1])
        summary = result.summary()
    comparisons = pd.concat(
        [
            evaluate.compare(result, a, b, t)
            for a, b in (pairs if result is not None else [])
            for t in _compare_targets(obj, means)
        ]
        or [pd.DataFrame()],
        ignore_index=True,
    )
    curve = curve_summary = None
    curve_means: list = []
    if curve_sizes:
        curve = evaluate.learning_curve(
            evaluate.EvaluationContext(
                specs,
                targets=targets,
                feature_fn=feature_fn,
                objective=obj,
                scored=None if test is not None else scored,
                seed=seed,
                interval_level=interval_level,
                unique_tokens=space.unique_tokens_map(),
            ),
            runs_log,
            test,
            _parse_sizes(curve_sizes),
            draws=draws,
        )
        curve.resamples = resamples
        curve_means = _curve_means(evaluate, curve, means, units[1])
        curve_summary = curve.summary(["size"])
    scored_any = (
        (summary["status"] == "ok").any()
        if summary is not None
        else (curve_summary["status"] == "ok").any()
    )
    if as_json:
        out = {
            "mode": mode if result is not None else "learning curve only",
            "targets": targets,
            "objective": objective_spec,
            "set_means": [m.to_dict() for m in means or curve_means],
            "units": units[1],
            "resamples": resamples,
            "log_notes": log_notes,
        }
        if result is not None:
            out["results"] = summary.to_dict(orient="records")
            out["per_split"] = result.scores.to_dict(orient="records")
        if pairs and result is not None:
            out["comparisons"] = comparisons.to_dict(orient="records")
        if curve_summary is not None:
            out["learning_curve"] = curve_summary.to_dict(orient="records")
            out["learning_curve_dropped"] = curve.dropped
        echo_json(out)
    else:
        if result is not None:
            print_report(mode, summary, targets, means, obj, comparisons)
        click.echo(f"{units[0]} (mse, regret and widths are in these units)")
        if curve_summary is not None:
            print_curve(curve_summary, curve, obj, curve_means, draws)
        for note in log_notes:
            click.echo(f"note: {note}")
    if plot_dir:
        write_plots(plot_dir, runs_log, targets, result, curve, obj)
    if not scored_any:
        raise MixsurrogateError("no predictor could be scored on any set (reasons above)")


def _evaluate(
    evaluate, specs, runs_log, test, scored, where, train_where, test_where, folds, repeats,
    targets, feature_fn, obj, seed, interval_level, unique_tokens=None,
):  # fmt: skip
    """The evaluation ``cv`` asked for (where-split, test log or k-fold) and its one-line mode."""
    left_out = int((~scored).sum())
    context = evaluate.EvaluationContext(
        specs,
        targets=targets,
        feature_fn=feature_fn,
        objective=obj,
        scored=scored,
        seed=seed,
        interval_level=interval_level,
        unique_tokens=unique_tokens,
    )
    if where:
        result = evaluate.train_test_where(
            context,
            runs_log,
            train_where,
            test_where,
        )
        split = result.split_rows
        n_test = len(next(iter(split.values())))
        n_train = int(result.scores["n_train"].iloc[0])
        mode = f"train {n_train} runs ({train_where}) -> test {n_test} runs ({test_where})"
        left_out = 0
    elif test is not None:
        result = evaluate.train_test(
            context,
            runs_log,
            test,
        )
        mode = f"train {len(runs_log)} runs -> test {int(scored.sum())} runs"
    else:
        result = evaluate.cross_validate(
            context,
            runs_log,
            folds=folds,
            repeats=repeats,
        )
        times = f" x {repeats} repeats" if repeats > 1 else ""
        mode = f"{folds}-fold CV{times} on {len(runs_log)} runs"
    if left_out:
        mode += f" ({left_out} run(s) fitted on, never scored)"
    pending = int(runs_log.pending_mask.sum())
    if pending:  # in flight: no loss to fit or score yet
        mode += f" ({pending} pending run(s) not used)"
    return result, mode


def _curve_means(evaluate, curve, means, units: dict[str, str]) -> list:
    """The learning curve's set means: those of the full evaluation (same sets, and the same
    sets per predictor), or, with --curve-only, one per unit over the sets each predictor
    scored at some size (a size it cannot fit then shows as a skipped cell)."""
    if means:
        return [evaluate.add_set_mean(curve, m.sets, m.covered, m.units) for m in means]
    scores = curve.scores
    ok = scores[scores["status"] == "ok"]
    groups: dict[str, list[str]] = {}
    for t in curve.sets:
        groups.setdefault(units.get(t, ""), []).append(t)
    out = []
    for unit, sets in groups.items():
        covered = {
            p: [t for t in sets if ((ok["predictor"] == p) & (ok["target"] == t)).any()]
            for p in dict.fromkeys(scores["predictor"])
        }
        scored = [t for t in sets if any(t in c for c in covered.values())]
        if scored:
            label = unit if len(groups) > 1 else None
            out.append(evaluate.add_set_mean(curve, scored, covered, label or None))
    return out


def _check_where(train_where, test_where, test_log, curve_sizes) -> bool:
    """Whether this is a where-split; both conditions or neither, and not with --test/--curve."""
    if not train_where and not test_where:
        return False
    if not (train_where and test_where):
        raise MixsurrogateError("--train-where and --test-where go together: give both")
    if test_log or curve_sizes:
        raise MixsurrogateError(
            "--train-where/--test-where cannot be combined with --test or --curve"
        )
    return True


def _spec(spec, fidelity_columns: str):
    """A predictor spec with --fidelity passed to a multi-fidelity predictor."""
    if spec.uses_fidelity:
        spec.params = {**(spec.params or {}), "fidelity": fidelity_columns}
    return spec


def _compare_targets(obj, means) -> list[str]:
    """What --compare pairs: the objective, and every set mean that has a set."""
    from ..evaluation.protocol import OBJECTIVE_TARGET

    targets = [OBJECTIVE_TARGET] if obj is not None else []
    return targets + [m.name for m in means if m.sets]
