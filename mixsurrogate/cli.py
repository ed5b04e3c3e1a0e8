"""The ``mixsurrogate`` command line: parse, call the library, print. Nothing else lives here."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd

from .errors import MixsurrogateError
from .runs import RunsLog, load_runs


class _Group(click.Group):
    """Turns library errors into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MixsurrogateError as err:
            raise click.ClickException(str(err)) from err


def _console():
    from rich.console import Console

    return Console(width=max(100, Console().width))


def _format_number(value) -> str:
    if isinstance(value, float | np.floating):
        if not np.isfinite(value):
            return str(value)
        return f"{value:.4f}" if abs(value) < 1e4 else f"{value:.3e}"
    return str(value)


def print_table(frame: pd.DataFrame, title: str = "") -> None:
    """A readable table of a frame (rich), numbers formatted."""
    from rich.table import Table

    table = Table(title=title or None, show_lines=False)
    for col in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col])
        table.add_column(str(col), justify="right" if numeric else "left")
    for _, row in frame.iterrows():
        table.add_row(*[_format_number(v) for v in row.tolist()])
    _console().print(table)


def resolve_log(spec: str) -> RunsLog:
    """A runs-log path, or a built-in log: ``regmix:train-1m`` (also test-1m, test-60m, test-1b)."""
    if spec.startswith("regmix:"):
        from .datasets import regmix_runs

        try:
            return regmix_runs(spec.split(":", 1)[1])
        except KeyError as err:
            raise MixsurrogateError(str(err.args[0])) from err
    return load_runs(spec)


def _feature_fn(scores: str | None, log: RunsLog, kind: str):
    """MDE features for a log's targets from a score store (None without a store)."""
    if not scores:
        return None, None
    from .features import MDEFeatureMap
    from .scores import load_scores

    store = load_scores(scores)
    eval_id = str(log.frame["eval_id"].iloc[0]) if "eval_id" in log.frame.columns else None
    store.check_matches_runs(log.domains, log.targets, eval_id)
    fmap = MDEFeatureMap(store, log.targets, kind=kind)
    return fmap.transform, store


#: MDE features of fit, cv and propose: token-level, sequence-posterior, or both
mde_kind_option = click.option(
    "--mde-kind", type=click.Choice(["token", "bayes", "both"]), default="token", show_default=True
)


def _targets(log: RunsLog, target: tuple[str, ...]) -> list[str]:
    for t in target:
        log.loss(t)  # one clear error for an unknown name
    return list(target) or log.targets


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    from .runs import _atomic_write_text, frame_to_text
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
    _atomic_write_text(path, frame_to_text(frame, path))
    click.echo(f"wrote {len(frame)} mixtures over {len(names)} domains to {out}")


# --- fit / cv / propose -----------------------------------------------------------------------


@main.command()
@click.argument("log")
@click.option("--predictor", "-p", default="linear", show_default=True)
@click.option(
    "--scores",
    type=click.Path(exists=True, file_okay=False),
    help="score store for +mde predictors",
)
@mde_kind_option
@click.option("--target", "-t", multiple=True, help="evaluation set(s) to fit (default: all)")
@click.option(
    "--summary", is_flag=True, help="statsmodels OLS table of per-domain effects (linear)"
)
@click.option("--json", "as_json", is_flag=True)
def fit(log, predictor, scores, mde_kind, target, summary, as_json) -> None:
    """Fit one predictor on a runs log and report its in-sample fit quality.

    In-sample numbers flatter every predictor: compare predictors with `cv`.

    \b
    Examples:
      mixsurrogate fit regmix:train-1m --predictor linear --target pile_cc --summary
      mixsurrogate fit runs.csv --predictor dml --json
    """
    from .evaluate import PredictorSpec, fit_predict, metrics

    runs_log = resolve_log(log)
    targets = _targets(runs_log, target)
    feature_fn, _ = _feature_fn(scores, runs_log, mde_kind)
    spec = PredictorSpec(predictor)
    pred, fitted, skipped = fit_predict(spec, runs_log, runs_log.W, targets, feature_fn)
    rows = []
    for j, t in enumerate(fitted):
        m = metrics(runs_log.loss(t), pred[:, j])
        rows.append(
            {
                "target": t,
                "spearman": m["spearman"],
                "pearson": m["pearson"],
                "rmse": m["mse"] ** 0.5,
            }
        )
    frame = pd.DataFrame(rows)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "predictor": predictor,
                    "n_runs": len(runs_log),
                    "in_sample": rows,
                    "skipped": skipped,
                },
                indent=2,
            )
        )
        return
    print_table(frame, f"{predictor} fitted on {len(runs_log)} runs (in-sample)")
    for t, reason in skipped.items():
        click.echo(f"skipped {t}: {reason}")
    if summary:
        from .predictors.summary import ols_summary

        for t in fitted:
            click.echo(ols_summary(runs_log.W, runs_log.loss(t), runs_log.domains))


@main.command()
@click.argument("log")
@click.option(
    "--predictor",
    "-p",
    "predictors",
    multiple=True,
    help="repeatable; default: every rates predictor (+mde ones with --scores)",
)
@click.option(
    "--scores",
    type=click.Path(exists=True, file_okay=False),
    help="score store: adds MDE predictors",
)
@mde_kind_option
@click.option("--folds", type=int, default=5, show_default=True)
@click.option("--test", "test_log", help="explicit test log instead of k-fold CV")
@click.option("--target", "-t", multiple=True, help="evaluation set(s) (default: all)")
@click.option(
    "--objective", "objective_spec", help="also score a blended objective, e.g. val=0.5,task=0.5"
)
@click.option("--curve", "curve_sizes", help="learning curve sizes, e.g. 16,32,64 (with --draws)")
@click.option("--draws", type=int, default=5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--plot", "plot_dir", type=click.Path(file_okay=False), help="write PNGs here")
@click.option("--json", "as_json", is_flag=True)
def cv(
    log,
    predictors,
    scores,
    mde_kind,
    folds,
    test_log,
    target,
    objective_spec,
    curve_sizes,
    draws,
    seed,
    plot_dir,
    as_json,
) -> None:
    """Compare predictors honestly: k-fold CV, or train on LOG and test on --test.

    Metrics per evaluation set: Spearman, Pearson, MSE, MAE and top-1 regret (true loss of
    the predicted-best held-out mixture minus the best held-out loss). Tables show the mean
    over the chosen sets.

    \b
    Examples:
      mixsurrogate cv runs.csv --folds 5 -p linear -p gp
      mixsurrogate cv regmix:train-1m --test regmix:test-1b -t pile_cc --json
      mixsurrogate cv regmix:train-1m --test regmix:test-1m -t pile_cc --curve 16,32,64 --plot out/
    """
    from . import evaluate
    from .objective import Objective
    from .predictors import MDE_PREDICTORS, RATE_PREDICTORS

    runs_log = resolve_log(log)
    targets = _targets(runs_log, target)
    feature_fn, store = _feature_fn(scores, runs_log, mde_kind)
    obj = None
    if objective_spec:
        obj = Objective.parse(objective_spec, targets, store.kinds if store else None)
    names = list(predictors) or list(RATE_PREDICTORS) + (list(MDE_PREDICTORS) if scores else [])
    specs = [evaluate.PredictorSpec(n) for n in names]
    for s in specs:
        s.build()
    test = resolve_log(test_log) if test_log else None
    if test is not None:
        table = evaluate.train_test(specs, runs_log, test, targets, feature_fn, objective=obj)
        mode = f"train {len(runs_log)} runs -> test {len(test)} runs"
        oof = None
    else:
        table, oof = evaluate.cross_validate(
            specs, runs_log, folds, targets, feature_fn, seed, objective=obj
        )
        mode = f"{folds}-fold CV on {len(runs_log)} runs"
    curve = None
    if curve_sizes:
        sizes = [int(x) for x in curve_sizes.split(",")]
        curve = evaluate.learning_curve(
            specs, runs_log, test, sizes, draws, targets, feature_fn, seed
        )
    if as_json:
        out = {"mode": mode, "targets": targets, "results": table.to_dict(orient="records")}
        if curve is not None:
            out["learning_curve"] = curve.to_dict(orient="records")
        click.echo(json.dumps(out, indent=2))
    else:
        sets = table[table["target"] != evaluate.OBJECTIVE_TARGET]
        means = sets.groupby("predictor", sort=False)[list(evaluate.METRICS)].mean().reset_index()
        means = means.sort_values("spearman", ascending=False)
        print_table(means, f"{mode}: mean over {len(targets)} evaluation set(s)")
        if obj is not None:
            blend = table[table["target"] == evaluate.OBJECTIVE_TARGET].drop(columns=["target"])
            print_table(
                blend.sort_values("spearman", ascending=False),
                f"blended objective {objective_spec}",
            )
        if curve is not None:
            pivot = (
                curve.groupby(["predictor", "n_train"])["spearman"]
                .mean()
                .unstack("n_train")
                .reset_index()
            )
            pivot.columns = [str(c) for c in pivot.columns]
            print_table(pivot, f"learning curve: Spearman (mean over sets and {draws} draws)")
    if plot_dir:
        from . import plots

        first = targets[0]
        written = []
        if oof is not None:
            col = targets.index(first)
            written.append(
                plots.predicted_vs_true(
                    runs_log.loss(first),
                    {k: v[:, col] for k, v in oof.items()},
                    first,
                    Path(plot_dir) / f"cv_{first}.png",
                )
            )
        if curve is not None:
            written.append(
                plots.learning_curves(curve, first, Path(plot_dir) / f"curve_{first}.png")
            )
        for p in written:
            click.echo(f"wrote {p}", err=True)


def _register_commands() -> None:
    """Commands kept in their own modules: propose, demo, and the training side (torch)."""
    from .cli_corpus import corpus
    from .cli_demo import demo
    from .cli_experts import experts, runs_train
    from .cli_propose import propose

    for command in (propose, demo, corpus, experts):
        main.add_command(command)
    runs.add_command(runs_train, name="train")


_register_commands()


def run() -> None:  # pragma: no cover - console entry point
    main(prog_name="mixsurrogate")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
