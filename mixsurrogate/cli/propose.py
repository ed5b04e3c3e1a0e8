"""``mixsurrogate propose``: the mixture to train next or at scale, and how it is shown."""

from __future__ import annotations

import click
from click.core import ParameterSource

from ..search.defaults import DEFAULT_STRATEGY, STRATEGIES
from .common import (
    kinds_option,
    mde_kind_option,
    missing_domains_option,
    scores_option,
    show_proposal,
)
from .multifidelity import multifidelity_options


@click.command()
@click.argument("log", required=False)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    help='a TOML request: keys are these options\' long names (e.g. predictor = "gp", '
    'bounds = ["github=:0.1"], explore = true); flags given here override its values',
)
@click.option("--predictor", "-p", default="gp", show_default=True)
@scores_option("score store (MDE features, zero-run mode)")
@mde_kind_option
@missing_domains_option
@click.option(
    "--objective",
    default="val=1",
    show_default=True,
    help="e.g. val=0.5,task=0.5, code=1,arc_easy=2, \"'*arc*'=0.5,pile_cc=0.5\" (a glob), "
    "\"code='*humaneval*,*mbpp*'=0.4,qa='*arc*,*piqa*'=0.6\" (families: the weight split "
    "over the sets matched), or @objective.toml (a file of [sets] and [families.NAME])",
)
@kinds_option
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
    help="corpus whose training token counts --max-epochs and --prior natural use",
)
@click.option("--budget-tokens", type=int, help="training tokens of the run the mixture is for")
@click.option(
    "--prior",
    "prior_spec",
    metavar="natural|uniform|FILE",
    help="with --kl: the mixture the proposal is pulled towards (natural: --corpus's token "
    "shares; FILE: CSV domain,weight or JSON {domain: weight})",
)
@click.option(
    "--kl",
    "kl_text",
    metavar="LAMBDA|auto",
    help="minimise predicted objective + LAMBDA x KL(w || --prior) (Olmix); auto: LAMBDA chosen "
    "on the logged runs by cross-fitting halves (docs: concepts/proposals)",
)
@click.option(
    "--no-worse-than",
    "no_worse_than",
    multiple=True,
    metavar="REF:T[@SET,..]",
    help="no set predicted worse than at REF by more than T nats (REF: uniform inside the "
    "bounds, or a run id; sets: the objective's, or those after @); REF's losses are the "
    "surrogate's predictions at its mixture, so both sides share the model's bias. Repeatable",
)
@click.option(
    "--worst-case",
    "worst_case",
    metavar="REF[@SET,..]",
    help="minimise the worst excess max_s L_s(w) - L_s(REF) over the objective's sets (or "
    "those after @) instead of the blended objective (REF: uniform or a run id; predicted, as "
    "for --no-worse-than)",
)
@click.option(
    "-n",
    "q",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="number of mixtures to propose (explore)",
)
@click.option(
    "--explore", is_flag=True, help="propose the next runs to train (Bayesian optimisation)"
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    default=DEFAULT_STRATEGY,
    show_default=True,
    help="--explore: turbo (qLogNEI in a trust region around the incumbent), qlognei (batch "
    "noisy EI over global, sparse and local candidates; the default before), exploit, sobol / "
    "uniform (the design alone), qlognei-v1 (the earlier explore: 2(K+1) Sobol start, Sobol "
    "candidates); bench/search.py compares them (results/search_defaults.md: the default)",
)
@click.option(
    "--recommender",
    "recommender",
    metavar="auto|argmin|top-k|pessimistic|kl|trust-region",
    help="the mixture to train at full scale (exploit and --explore): auto (default; with --kl: "
    "kl) chooses among the recommenders by cross-fitting halves of the logged runs; the table "
    "shows each one's judged objective and optimism (docs: concepts/proposals)",
)
@click.option(
    "--recommend",
    "recommend_method",
    type=click.Choice(["argmin", "top-k"]),
    help="the earlier name of --recommender argmin|top-k",
)
@click.option(
    "--no-ledger",
    is_flag=True,
    help="do not record the prediction in <LOG>.ledger.jsonl (read by mixsurrogate audit)",
)
@click.option(
    "--initial",
    type=click.IntRange(min=1),
    help="--explore: space-filling runs before the model takes over [default: K+1]",
)
@click.option(
    "--domains",
    "campaign_domains",
    help="--explore on a log that does not exist yet: its domains, comma-separated",
)
@click.option(
    "--fidelities",
    help="--explore at several scales: the menu of SIZE:TOKENS fidelities to train at, e.g. "
    "20M:0.4B,60M:1.2B,150M:3B (needs --target and params/tokens columns in the log)",
)
@click.option(
    "--target",
    "target_fidelity",
    help="the fidelity the mixture is for, e.g. 1B:20B: may exceed every menu item; no menu "
    "item may exceed it (in size or tokens). Proposals are (mixture, size, tokens) runs; the "
    "recommendation is at the target",
)
@click.option(
    "--cost-alpha",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="--fidelities: value per unit cost^alpha (1: fully cost-aware; 0: ignore cost)",
)
@click.option(
    "--cost-factor",
    type=click.FloatRange(min=0, min_open=True),
    default=6.0,
    show_default=True,
    help="--fidelities: FLOPs per parameter per token of a run (cost = factor x params x tokens)",
)
@multifidelity_options
@click.option(
    "--phases",
    type=click.IntRange(min=2),
    help="propose a schedule of this many phases (a schedule log's count; its default): each "
    "phase's mixture within --bounds, --max-epochs on the effective mixture",
)
@click.option(
    "--phase-share",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="with --phases: fix the last phase's share of the tokens (the others split the rest "
    "equally); default: every share free, at least 0.05",
)
@click.option(
    "--exposure",
    is_flag=True,
    help="schedules: add per-domain exposure (epochs) inputs from --corpus's unique training "
    "tokens (needs --budget-tokens and the log's tokens column)",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--plot", "plot_path", type=click.Path(dir_okay=False), help="PNG bar chart of the proposal"
)
@click.option("--json", "as_json", is_flag=True)
def propose(
    log,
    config,
    predictor,
    scores,
    mde_kind,
    missing_domains,
    objective,
    kind_specs,
    bound_specs,
    max_epochs,
    corpus_dir,
    budget_tokens,
    prior_spec,
    kl_text,
    no_worse_than,
    worst_case,
    q,
    explore,
    strategy,
    recommender,
    recommend_method,
    no_ledger,
    initial,
    campaign_domains,
    fidelities,
    target_fidelity,
    cost_alpha,
    cost_factor,
    switch_after,
    switch_flops,
    phases,
    phase_share,
    exposure,
    seed,
    plot_path,
    as_json,
) -> None:
    """Propose a mixture minimising the predicted objective (or the next runs with --explore).

    \b
    Examples:
      mixsurrogate propose regmix:train-1m -p gp --objective pile_cc=1 --bounds github=:0.1
      mixsurrogate propose runs.csv --scores scores/ -p linear+mde --objective val=0.5,task=0.5
      mixsurrogate propose runs.csv --explore -n 4 --objective val=1 --kinds val=code,wiki,books
      mixsurrogate propose regmix:train-1m --explore --strategy turbo -n 4 --objective pile_cc=1
      mixsurrogate propose new.csv --explore -n 8 --domains code,wiki,books --objective val=1
                                   (a log not started yet: the campaign's Sobol design)
      mixsurrogate propose runs.csv --explore -n 4 --objective val=1 --no-worse-than uniform:0.02
                                   (outcome constraints in the acquisition)
      mixsurrogate propose runs.csv --explore -n 4 --objective val=1 \\
          --fidelities 20M:0.4B,60M:1.2B --target 1B:20B     (mixture, size, tokens) triples
      mixsurrogate propose regmix:train-1m -p gp --objective val=1 --no-worse-than uniform:0.02
      mixsurrogate propose regmix:train-1m -p gp --objective val=1 --worst-case uniform
      mixsurrogate propose regmix:train-1m -p gp --objective pile_cc=1 \\
          --no-worse-than uniform:0@github,arxiv --no-worse-than train-1m-69:0.05
      mixsurrogate propose --scores scores/ --objective val=0.5,task=0.5     (zero-run mode)
      mixsurrogate propose regmix:train-1m -p linear --objective pile_cc=1 --prior uniform --kl 0.05
      mixsurrogate propose runs.csv -p gp --objective val=1 --prior natural --corpus corpus/ --kl auto
      mixsurrogate propose schedules.csv -p gp --objective val=1 --phases 2 --phase-share 0.2
                                   (a schedule log: the phase mixtures and shares to train)
    """
    from ..proposal.request import ProposeRequest
    from ..proposal.run import run_proposal

    ctx = click.get_current_context()
    display = {"config", "plot_path", "as_json"}
    values = {k: v for k, v in ctx.params.items() if k not in display}
    if config is None:
        request = ProposeRequest.from_mapping(_fields(values))
    else:  # flags given explicitly override the file's values
        given = {
            k: v
            for k, v in values.items()
            if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT, None)
        }
        request = ProposeRequest.from_toml(config, _fields(given))
    outcome = run_proposal(request)
    if outcome.multifidelity is not None:
        _show_multifidelity(outcome.multifidelity, as_json)
        return
    show_proposal(outcome.proposal, outcome.objective, as_json, plot_path, outcome.bounds,
                  outcome.plot_mixtures)  # fmt: skip


#: the command's parameter names that differ from the request's field names
_RENAMED = {
    "kind_specs": "kinds",
    "bound_specs": "bounds",
    "corpus_dir": "corpus",
    "prior_spec": "prior",
    "kl_text": "kl",
    "q": "n",
    "recommend_method": "recommend",
    "campaign_domains": "domains",
    "target_fidelity": "target",
}


def _fields(values: dict) -> dict:
    return {_RENAMED.get(k, k): v for k, v in values.items()}


def _show_multifidelity(result, as_json: bool) -> None:
    from ..search.multifidelity import describe
    from .common import echo_json

    if as_json:
        echo_json(result.to_dict())
        return
    for line in describe(result):
        click.echo(line)
    for note in result.notes:
        click.echo(f"note: {note}")
