"""``mixsurrogate propose``: the mixture to train next or at scale, and how it is shown."""

from __future__ import annotations

import json

import click
import numpy as np
import pandas as pd

from .cli import _feature_fn, mde_kind_option, print_table, resolve_log
from .errors import MixsurrogateError
from .runs import RunsLog


@click.command()
@click.argument("log", required=False)
@click.option("--predictor", "-p", default="gp", show_default=True)
@click.option(
    "--scores",
    type=click.Path(exists=True, file_okay=False),
    help="score store (MDE features, zero-run mode)",
)
@mde_kind_option
@click.option(
    "--objective",
    default="val=1",
    show_default=True,
    help="e.g. val=0.5,task=0.5 or code=1,arc_easy=2",
)
@click.option("--bounds", "bound_specs", multiple=True, help="DOMAIN=LO:HI, repeatable")
@click.option(
    "--max-epochs",
    type=float,
    help="cap shares so no domain repeats more often (needs --corpus, --budget-tokens)",
)
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(exists=True, file_okay=False),
    help="corpus whose training token counts --max-epochs uses",
)
@click.option("--budget-tokens", type=int, help="training tokens of the run the mixture is for")
@click.option(
    "-n",
    "q",
    type=int,
    default=1,
    show_default=True,
    help="number of mixtures to propose (explore)",
)
@click.option(
    "--explore", is_flag=True, help="propose the next runs to train (Bayesian optimisation)"
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False), help="PNG bar chart of the proposal"
)
@click.option("--json", "as_json", is_flag=True)
def propose(
    log,
    predictor,
    scores,
    mde_kind,
    objective,
    bound_specs,
    max_epochs,
    corpus_dir,
    budget_tokens,
    q,
    explore,
    seed,
    plot_path,
    as_json,
) -> None:
    """Propose a mixture minimising the predicted objective (or the next runs with --explore).

    \b
    Examples:
      mixsurrogate propose regmix:train-1m -p gp --objective pile_cc=1 --bounds github=:0.1
      mixsurrogate propose runs.csv --scores scores/ -p linear+mde --objective val=0.5,task=0.5
      mixsurrogate propose runs.csv --explore -n 4 --objective val=1
      mixsurrogate propose --scores scores/ --objective val=0.5,task=0.5     (zero-run mode)
    """
    from . import propose as prop
    from .evaluate import PredictorSpec
    from .objective import Objective

    if log is None:
        if not scores:
            raise MixsurrogateError("give a runs log, or --scores for zero-run mode")
        from .features import MDEFeatureMap
        from .scores import load_scores

        store = load_scores(scores)
        obj = Objective.parse(objective, store.names(), store.kinds)
        bounds = _bounds(bound_specs, store.experts, max_epochs, corpus_dir, budget_tokens)
        fmap = MDEFeatureMap(store, obj.sets, kind="token")
        result = prop.propose_zero_run(fmap, obj, bounds, seed=seed)
        _show_proposal(result, None, obj, as_json, plot_path)
        return
    runs_log = resolve_log(log)
    feature_fn, store = _feature_fn(scores, runs_log, mde_kind)
    obj = Objective.parse(objective, runs_log.targets, store.kinds if store else None)
    bounds = _bounds(bound_specs, runs_log.domains, max_epochs, corpus_dir, budget_tokens)
    if explore:
        from .explore import propose_explore

        result = propose_explore(runs_log, obj, q, bounds, feature_fn, seed=seed)
    else:
        result = prop.propose_exploit(
            runs_log, PredictorSpec(predictor), obj, bounds, feature_fn, seed=seed
        )
    _show_proposal(result, runs_log, obj, as_json, plot_path)


def _bounds(bound_specs, domains: list[str], max_epochs, corpus_dir, budget_tokens):
    """--bounds over ``domains``, tightened by --max-epochs with the corpus's training token
    counts (which needs --corpus and --budget-tokens)."""
    from .simplex import Bounds

    bounds = Bounds.parse(list(bound_specs), domains)
    if max_epochs is None:
        return bounds
    if not corpus_dir or not budget_tokens:
        raise MixsurrogateError("--max-epochs needs --corpus DIR and --budget-tokens N")
    from .experts.corpus_store import Corpus

    corpus = Corpus.load(corpus_dir)
    available = {d: int(corpus.manifest["domains"][d]["tokens"]["train"]) for d in corpus.domains}
    return bounds.with_max_epochs(domains, available, budget_tokens, max_epochs)


def _show_proposal(
    result, runs_log: RunsLog | None, obj, as_json: bool, plot_path: str | None
) -> None:
    from .propose import objective_values

    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
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
            if result.set_losses:
                losses = pd.DataFrame(
                    {
                        "set": list(result.set_losses),
                        "predicted loss": [v[i] for v in result.set_losses.values()],
                    }
                )
                print_table(losses)
            if result.nearest_run:
                rid, dist, val = result.nearest_run[i]
                click.echo(
                    f"nearest logged run: {rid} (distance {dist:.3f}, its objective {val:.4f})"
                )
        for note in result.notes:
            click.echo(f"note: {note}")
    if plot_path:
        from . import plots

        ref = {
            "proposed": result.mixtures[0],
            "uniform": np.full(len(result.domains), 1 / len(result.domains)),
        }
        if runs_log is not None:
            best = int(np.argmin(objective_values(runs_log, obj)))
            ref[f"best logged ({runs_log.run_ids[best]})"] = runs_log.W[best]
        click.echo(
            f"wrote {plots.mixture_bars(result.domains, ref, plot_path, f'objective {obj.spec}')}",
            err=True,
        )
