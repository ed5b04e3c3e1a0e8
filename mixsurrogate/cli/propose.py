"""``mixsurrogate propose``: the mixture to train next or at scale, and how it is shown."""

from __future__ import annotations

import click

from ..errors import MixsurrogateError
from ..search.defaults import DEFAULT_STRATEGY, STRATEGIES
from .common import (
    kinds_option,
    mde_features,
    mde_kind_option,
    resolve_kinds,
    resolve_log,
    scores_option,
    show_proposal,
)


@click.command()
@click.argument("log", required=False)
@click.option("--predictor", "-p", default="gp", show_default=True)
@scores_option("score store (MDE features, zero-run mode)")
@mde_kind_option
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
    "on the logged runs by cross-fitting halves (see README)",
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
    "shows each one's judged objective and optimism (see README)",
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
    """
    from ..evaluation.protocol import PredictorSpec
    from ..objective import Objective
    from ..proposal import propose as prop
    from ..proposal.kl_prior import parse_kl
    from ..proposal.robust import check_recommender

    lam = parse_kl(kl_text)
    if lam is not None and prior_spec is None:
        raise MixsurrogateError(
            "--kl needs --prior: e.g. --prior natural --corpus DIR --kl auto, "
            "or --prior uniform --kl 0.05"
        )
    if recommender is not None and recommend_method is not None:
        raise MixsurrogateError("--recommend is the earlier name of --recommender: give one")
    recommender = check_recommender(
        recommender or recommend_method or ("kl" if lam is not None else "auto")
    )
    if lam is not None and (explore or log is None or fidelities or target_fidelity):
        raise MixsurrogateError(
            "--prior/--kl regularise the exploit proposal of a runs log: not with --explore, "
            "--fidelities or zero-run mode"
        )
    if explore and log is not None and _not_started(log):
        _explore_empty(log, campaign_domains, objective, bound_specs, q, strategy, initial, seed,
                       as_json, plot_path)  # fmt: skip
        return
    if log is None:
        if not scores:
            raise MixsurrogateError("give a runs log, or --scores for zero-run mode")
        from ..mde.features import MDEFeatureMap
        from ..mde.store import load_scores

        if no_worse_than or worst_case:
            raise MixsurrogateError("--no-worse-than and --worst-case need a runs log")
        store = load_scores(scores)
        obj = Objective.parse(objective, store.names(), store.kinds, "the score store")
        bounds = _bounds(bound_specs, store.experts, max_epochs, corpus_dir, budget_tokens)
        fmap = MDEFeatureMap(store, obj.sets, kind="token")
        result = prop.propose_zero_run(fmap, obj, bounds, seed=seed)
        show_proposal(result, None, obj, as_json, plot_path, bounds)
        return
    runs_log = resolve_log(log)
    feature_fn, store = mde_features(scores, runs_log, mde_kind)
    kinds, source = resolve_kinds(kind_specs, log, runs_log.targets, store)
    obj = Objective.parse(objective, runs_log.targets, kinds, source)
    bounds = _bounds(bound_specs, runs_log.domains, max_epochs, corpus_dir, budget_tokens)
    from ..proposal.constraints import parse_no_worse_than, parse_worst_case

    constraints = [parse_no_worse_than(t, runs_log, obj, bounds) for t in no_worse_than]
    worst = None if worst_case is None else parse_worst_case(worst_case, runs_log, obj, bounds)
    if (fidelities or target_fidelity) and (constraints or worst is not None):
        raise MixsurrogateError(
            "--no-worse-than and --worst-case apply to exploit and --explore, not --fidelities"
        )
    if explore and worst is not None:
        raise MixsurrogateError(
            "--worst-case is an exploit objective; with --explore use --no-worse-than"
        )
    kl = prior = None
    if prior_spec is not None:
        from ..proposal.kl_prior import KLSetting, resolve_prior

        prior = resolve_prior(prior_spec, runs_log.domains, corpus_dir)
    if lam is not None:
        if worst is not None:
            raise MixsurrogateError(
                "--kl pulls the blended objective to a prior; not with --worst-case"
            )
        kl = KLSetting(prior, lam)
    if fidelities or target_fidelity:
        _multifidelity(runs_log, obj, q, bounds, fidelities, target_fidelity, cost_alpha,
                       cost_factor, explore, seed, as_json)  # fmt: skip
        return
    if explore:
        from ..search.campaign import CampaignData, propose_next_runs

        feasibility, constraint_notes = None, []
        if constraints:
            from ..search.campaign import constraint_feasibility

            feasibility, constraint_notes = constraint_feasibility(runs_log, constraints, seed)
        # robust_explore takes the step's recommendation as its argmin recommender (and
        # computes top-k and the others itself), so the step recommends the argmin here
        result, _ = propose_next_runs(
            CampaignData.from_log(runs_log, obj), obj, q, bounds, strategy, initial, feature_fn,
            seed, log_feasibility=feasibility, log=runs_log, recommend_method="argmin",
        )  # fmt: skip
        result.notes += constraint_notes
        from ..proposal.modes import robust_explore

        result = robust_explore(
            result, CampaignData.from_log(runs_log, obj), bounds, feature_fn, seed, recommender,
            prior,
        )  # fmt: skip
    else:
        result = prop.propose_exploit(
            runs_log,
            PredictorSpec(predictor),
            obj,
            bounds,
            feature_fn,
            seed=seed,
            constraints=constraints,
            worst_case=worst,
            kl=kl,
        )
        from ..proposal.modes import robust_exploit

        result = robust_exploit(
            result, runs_log, PredictorSpec(predictor), obj, bounds, feature_fn, seed,
            recommender, prior,
        )  # fmt: skip
    from ..proposal.ledger import append_entries, entries_for, keeps_ledger, ledger_path

    if not no_ledger and keeps_ledger(log):
        append_entries(ledger_path(log), entries_for(result, runs_log, log, obj, predictor))
    show_proposal(result, runs_log, obj, as_json, plot_path, bounds)


def _not_started(log: str) -> bool:
    """A log path with no file yet, or only a header: the campaign has not started."""
    from pathlib import Path

    if log.startswith("regmix:"):
        return False
    path = Path(log)
    if not path.exists() or path.stat().st_size == 0:
        return True
    from ..runs.log import read_frame

    return len(read_frame(path)) == 0


def _explore_empty(log, campaign_domains, objective, bound_specs, q, strategy, initial, seed,
                   as_json, plot_path) -> None:  # fmt: skip
    """--explore before any run: the first points of the campaign's space-filling design."""
    from pathlib import Path

    from ..objective import Objective
    from ..runs.log import WEIGHT_PREFIX, read_frame
    from ..search.campaign import CampaignData, propose_next_runs

    path = Path(log)
    header = read_frame(path).columns if path.exists() and path.stat().st_size else []
    domains = [c[len(WEIGHT_PREFIX) :] for c in header if str(c).startswith(WEIGHT_PREFIX)]
    if not domains and campaign_domains:
        domains = [d.strip() for d in campaign_domains.split(",") if d.strip()]
    if not domains:
        raise MixsurrogateError(
            f"{log} has no runs yet: give the campaign's domains, e.g. --domains code,wiki,books"
        )
    sets = [c.removeprefix("loss:") for c in header if str(c).startswith("loss:")]
    from ..objective import parse_terms

    terms = [n for t in parse_terms(objective) for n in t.patterns]
    if not sets and any(t.kind in ("glob", "family") for t in parse_terms(objective)):
        raise MixsurrogateError(
            f"{log} has no runs and no loss columns yet: globs and families need the set names; "
            "name the sets in --objective (e.g. code=1,books=1)"
        )
    obj = Objective.parse(objective, sets or terms, {t: "val" for t in sets or terms})
    bounds = _bounds(bound_specs, domains, None, None, None)
    result, _ = propose_next_runs(
        CampaignData.from_log(None, obj, domains), obj, q, bounds, strategy, initial, seed=seed
    )
    show_proposal(result, None, obj, as_json, plot_path, bounds)


def _bounds(bound_specs, domains: list[str], max_epochs, corpus_dir, budget_tokens):
    """--bounds over ``domains``, tightened by --max-epochs with the corpus's training token
    counts (which needs --corpus and --budget-tokens)."""
    from ..simplex import Bounds

    bounds = Bounds.parse(list(bound_specs), domains)
    if max_epochs is None:
        return bounds
    if not corpus_dir or not budget_tokens:
        raise MixsurrogateError("--max-epochs needs --corpus DIR and --budget-tokens N")
    from ..corpus.store import Corpus

    corpus = Corpus.load(corpus_dir)
    available = {d: int(corpus.manifest["domains"][d]["tokens"]["train"]) for d in corpus.domains}
    return bounds.with_max_epochs(domains, available, budget_tokens, max_epochs)


def _multifidelity(log, obj, q, bounds, menu_text, target_text, alpha, factor, explore, seed,
                   as_json) -> None:  # fmt: skip
    """``propose --explore --fidelities M --target T``: the next (mixture, size, tokens) runs
    and the recommendation at the target (``search.multifidelity``)."""
    import numpy as np

    from ..proposal.propose import objective_values
    from ..runs.fidelity import CostModel, FidelityMenu, fidelity_features
    from ..search.multifidelity import describe, propose_multifidelity
    from .common import echo_json

    if not (menu_text and target_text):
        raise MixsurrogateError("--fidelities and --target go together: give both")
    if not explore:
        raise MixsurrogateError("--fidelities/--target choose runs to train: add --explore")
    menu = FidelityMenu.parse(menu_text, target_text)
    done = log.completed() if hasattr(log, "completed") else log
    features = fidelity_features(done)
    y = objective_values(done, obj)
    keep = np.isfinite(y)  # runs not evaluated on every set of the objective cannot count
    result = propose_multifidelity(
        done.W[keep], features[keep], y[keep], done.domains, menu, q=q,
        cost=CostModel(factor=factor), alpha=alpha, bounds=bounds, seed=seed,
    )  # fmt: skip
    if as_json:
        echo_json(result.to_dict())
        return
    for line in describe(result):
        click.echo(line)
    for note in result.notes:
        click.echo(f"note: {note}")
