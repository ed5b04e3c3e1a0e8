"""``run_proposal(request)``: from a :class:`~.request.ProposeRequest` to what ``propose`` shows,
every mode in one place (the command line only builds the request and prints the outcome)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..corpus.store import Corpus
from ..errors import MixsurrogateError
from ..evaluation.protocol import FeatureFn, PredictorSpec
from ..mde.features import BUDGET_KINDS, MDEFeatureMap, log_features
from ..mde.store import load_scores
from ..objective import Objective, parse_terms, resolve_kinds
from ..runs.builtin import resolve_log
from ..runs.fidelity import (
    CostModel,
    FidelityMenu,
    checkpoint_mask,
    fidelity_features,
    final_runs,
    has_fidelity,
)
from ..runs.inputs import InputSpace
from ..runs.log import LOSS_PREFIX, WEIGHT_PREFIX, RunsLog, read_frame
from ..search.campaign import CampaignData, constraint_feasibility, propose_next_runs
from ..search.defaults import parse_switch_after
from ..search.multifidelity import (
    MultiFidelityProposal,
    propose_multifidelity,
)
from ..simplex import Bounds
from .constraints import parse_no_worse_than, parse_worst_case
from .exploit import propose_exploit
from .kl_prior import KLSetting, resolve_prior
from .ledger import append_entries, entries_for, keeps_ledger, ledger_path
from .modes import robust_exploit, robust_explore
from .phased import propose_schedule
from .record import Proposal, objective_values
from .request import ProposeRequest
from .schedule import ScheduleProblem
from .zero_run import propose_zero_run


@dataclass
class ProposalOutcome:
    """What a request produced: a proposal (or a multi-fidelity one), the objective and bounds
    it was for, and the mixtures a bar chart compares it with."""

    request: ProposeRequest
    objective: Objective
    bounds: Bounds
    proposal: Proposal | None = None
    multifidelity: MultiFidelityProposal | None = None
    #: label -> mixture: the proposal, uniform, and the best logged run when there is a log
    plot_mixtures: dict[str, np.ndarray] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return (self.proposal or self.multifidelity).to_dict()


def run_proposal(request: ProposeRequest) -> ProposalOutcome:
    """Propose as ``request`` asks (its ``mode``), record an exploit or explore proposal in
    the log's ledger unless ``no_ledger``, and return the outcome."""
    if request.log is None:
        return _zero_run(request)
    if request.explore and not_started(request.log):
        if request.multi_fidelity:
            raise MixsurrogateError(
                f"{request.log} has no runs yet: --fidelities needs a log with runs (and "
                "params/tokens columns); start with Sobol runs at the cheapest menu fidelity"
            )
        return _campaign_start(request)
    runs_log = resolve_log(request.log, request.missing_domains)
    checkpoint_note = None
    if not request.multi_fidelity:  # one budget: fitted on the final losses only
        runs_log, checkpoint_note = final_runs(runs_log)
    feature_fn, store = log_features(request.scores, runs_log, request.mde_kind)
    kinds, source = resolve_kinds(request.kinds, request.log, runs_log.targets, store)
    obj = parse_objective(request, runs_log.targets, kinds, source)
    space = request_space(request, runs_log)
    if space.is_schedule:
        return _schedule(
            replace(request, phases=space.n_phases), runs_log, obj, feature_fn, space,
            checkpoint_note,
        )  # fmt: skip
    if space.has_exposure:
        raise MixsurrogateError(
            "--exposure applies to schedule logs (w@<p>: columns); a mixture's exposure is a "
            "fixed rescaling of the mixture"
        )
    bounds = request_bounds(request, runs_log.domains)
    if request.multi_fidelity:
        result = _multifidelity(request, runs_log, obj, bounds)
        return ProposalOutcome(request, obj, bounds, multifidelity=result)
    constraints = [parse_no_worse_than(t, runs_log, obj, bounds) for t in request.no_worse_than]
    worst = (
        None
        if request.worst_case is None
        else parse_worst_case(request.worst_case, runs_log, obj, bounds)
    )
    prior = (
        None
        if request.prior is None
        else resolve_prior(request.prior, runs_log.domains, request.corpus)
    )
    if request.explore:
        result = _explore(request, runs_log, obj, bounds, feature_fn, constraints, prior)
    else:
        spec = PredictorSpec(request.predictor)
        kl = None if request.lam is None else KLSetting(prior, request.lam)
        result = propose_exploit(
            runs_log, spec, obj, bounds, feature_fn, seed=request.seed,
            constraints=constraints, worst_case=worst, kl=kl,
        )  # fmt: skip
        result = robust_exploit(
            result, runs_log, spec, obj, bounds, feature_fn, request.seed,
            request.chosen_recommender, prior,
        )  # fmt: skip
    result = with_note(result, checkpoint_note)
    if not request.no_ledger and keeps_ledger(request.log):
        entries = entries_for(result, runs_log, request.log, obj, request.predictor)
        append_entries(ledger_path(request.log), entries)
    return ProposalOutcome(
        request, obj, bounds, proposal=result, plot_mixtures=plot_mixtures(result, runs_log, obj)
    )


def parse_objective(
    request: ProposeRequest, names: list[str], kinds: dict[str, str] | None, source: str = ""
) -> Objective:
    """``--objective`` over the sets there are (the log's, the store's or the campaign's)."""
    return Objective.parse(request.objective, names, kinds, source)


def request_bounds(request: ProposeRequest, domains: list[str]) -> Bounds:
    """--bounds over ``domains``, tightened by --max-epochs with the corpus's training token
    counts (the request checked that --corpus and --budget-tokens came with it)."""
    bounds = Bounds.parse(list(request.bounds), domains)
    if request.max_epochs is None:
        return bounds
    available = train_tokens(request.corpus)
    return bounds.with_max_epochs(domains, available, request.budget_tokens, request.max_epochs)


def train_tokens(corpus_dir: str) -> dict[str, int]:
    """Each domain's unique training tokens (the corpus manifest's ``tokens.train``)."""
    corpus = Corpus.load(corpus_dir)
    return {d: int(corpus.manifest["domains"][d]["tokens"]["train"]) for d in corpus.domains}


def request_space(request: ProposeRequest, runs_log: RunsLog) -> InputSpace:
    """The surrogate's inputs: the log's schedules or mixtures (``--phases`` must match a
    schedule log's phases), with exposure features under ``--exposure``."""
    space = InputSpace.of(runs_log, train_tokens(request.corpus) if request.exposure else None)
    if request.phases is not None and request.phases != space.n_phases:
        has = f"{space.n_phases}-phase schedules" if space.is_schedule else "single-phase runs"
        raise MixsurrogateError(
            f"--phases {request.phases}: {request.log} has {has}; a schedule surrogate is "
            "fitted on schedule runs (w@<p>:<domain>, share@<p> columns) with that many phases"
        )
    return space


def schedule_problem(request: ProposeRequest, space: InputSpace) -> ScheduleProblem:
    """--bounds on every phase, --max-epochs on the effective mixture, --phase-share."""
    domains = list(space.domains)
    bounds = Bounds.parse(list(request.bounds), domains)
    caps = None
    if request.max_epochs is not None:
        unbounded = Bounds.unbounded(len(domains))
        caps = unbounded.with_max_epochs(
            domains, train_tokens(request.corpus), request.budget_tokens, request.max_epochs
        ).upper
    tokens = None if request.budget_tokens is None else float(request.budget_tokens)
    return ScheduleProblem(space, bounds, caps, request.phase_share, tokens)


def _schedule(
    request: ProposeRequest,
    runs_log: RunsLog,
    obj: Objective,
    feature_fn: FeatureFn | None,
    space: InputSpace,
    log_note: str | None = None,
) -> ProposalOutcome:
    """A schedule log: the schedule to train (or --explore's next ones), recorded as others."""
    problem = schedule_problem(request, space)
    result = propose_schedule(
        runs_log, PredictorSpec(request.predictor), obj, problem, feature_fn, seed=request.seed,
        explore=request.explore, n=request.n,
    )  # fmt: skip
    result = with_note(result, log_note)
    if not request.no_ledger and keeps_ledger(request.log):
        entries = entries_for(result, runs_log, request.log, obj, request.predictor)
        append_entries(ledger_path(request.log), entries)
    return ProposalOutcome(request, obj, problem.bounds, proposal=result,
                           plot_mixtures=plot_mixtures(result, runs_log, obj))  # fmt: skip


def plot_mixtures(
    proposal: Proposal, runs_log: RunsLog | None, obj: Objective
) -> dict[str, np.ndarray]:
    """The mixtures a bar chart of the proposal shows: it, uniform, and the best logged run."""
    out = {
        "proposed": proposal.mixtures[0],
        "uniform": np.full(len(proposal.domains), 1 / len(proposal.domains)),
    }
    if runs_log is not None:
        best = int(np.argmin(objective_values(runs_log, obj)))
        out[f"best logged ({runs_log.run_ids[best]})"] = runs_log.W[best]
    return out


def with_note(proposal: Proposal, note: str | None) -> Proposal:
    """The proposal with one more note (a note about the log it was fitted on), if any."""
    return proposal if note is None else replace(proposal, notes=[*proposal.notes, note])


def not_started(log: str) -> bool:
    """A log path with no file yet, or only a header: the campaign has not started."""
    if log.startswith("regmix:"):
        return False
    path = Path(log)
    if not path.exists() or path.stat().st_size == 0:
        return True
    return len(read_frame(path)) == 0


def _zero_run(request: ProposeRequest) -> ProposalOutcome:
    """No runs log: minimise the experts' MDE objective of the score store."""
    store = load_scores(request.scores)
    obj = parse_objective(request, store.names(), store.kinds, "the score store")
    bounds = request_bounds(request, store.experts)
    # budget-matched when asked for (a store without snapshots is refused), else token-level
    kind = request.mde_kind if request.mde_kind in BUDGET_KINDS else "token"
    fmap = MDEFeatureMap(store, obj.sets, kind=kind)
    result = propose_zero_run(fmap, obj, bounds, seed=request.seed)
    return ProposalOutcome(request, obj, bounds, proposal=result,
                           plot_mixtures=plot_mixtures(result, None, obj))  # fmt: skip


def _campaign_start(request: ProposeRequest) -> ProposalOutcome:
    """--explore before any run: the first points of the campaign's space-filling design."""
    path = Path(request.log)
    header = read_frame(path).columns if path.exists() and path.stat().st_size else []
    domains = [c[len(WEIGHT_PREFIX) :] for c in header if str(c).startswith(WEIGHT_PREFIX)]
    if not domains and request.domains:
        domains = [d.strip() for d in request.domains.split(",") if d.strip()]
    if not domains:
        raise MixsurrogateError(
            f"{request.log} has no runs yet: give the campaign's domains, e.g. --domains code,wiki,books"
        )
    sets = [c.removeprefix(LOSS_PREFIX) for c in header if str(c).startswith(LOSS_PREFIX)]
    terms = parse_terms(request.objective)
    if not sets and any(t.kind in ("glob", "family") for t in terms):
        raise MixsurrogateError(
            f"{request.log} has no runs and no loss columns yet: globs and families need the set "
            "names; name the sets in --objective (e.g. code=1,books=1)"
        )
    names = sets or [n for t in terms for n in t.patterns]
    obj = parse_objective(request, names, dict.fromkeys(names, "val"))
    bounds = request_bounds(request, domains)
    if request.phases is not None:
        return _schedule_start(request, obj, domains)
    result, _ = propose_next_runs(
        CampaignData.from_log(None, obj, domains), obj, request.n, bounds, request.strategy,
        request.initial, seed=request.seed,
    )  # fmt: skip
    return ProposalOutcome(request, obj, bounds, proposal=result,
                           plot_mixtures=plot_mixtures(result, None, obj))  # fmt: skip


def _schedule_start(request: ProposeRequest, obj: Objective, domains: list[str]) -> ProposalOutcome:
    """--explore --phases before any run: Sobol schedules (each phase's mixture inside the
    bounds; shares fixed by --phase-share or drawn), within the --max-epochs caps."""
    problem = schedule_problem(request, InputSpace(tuple(domains), request.phases))
    weights, shares = problem.sample(max(4 * request.n, 64), request.seed)
    ok = np.flatnonzero(problem.violation(weights, shares) == 0)[: request.n]
    effective = np.einsum("np,npk->nk", shares[ok], weights[ok])
    result = Proposal(
        mode="explore", domains=domains, mixtures=effective, objective=np.full(len(ok), np.nan),
        notes=[f"a log with no runs: {len(ok)} Sobol schedule(s) start the campaign"],
        phase_weights=weights[ok], phase_shares=shares[ok],
    )  # fmt: skip
    return ProposalOutcome(request, obj, problem.bounds, proposal=result,
                           plot_mixtures=plot_mixtures(result, None, obj))  # fmt: skip


def _explore(
    request: ProposeRequest,
    runs_log: RunsLog,
    obj: Objective,
    bounds: Bounds,
    feature_fn: FeatureFn | None,
    constraints: list,
    prior,
) -> Proposal:
    """--explore: the next runs by the acquisition, and the robust recommendation beside them."""
    feasibility, constraint_notes = None, []
    if constraints:
        feasibility, constraint_notes = constraint_feasibility(runs_log, constraints, request.seed)
    result, _ = propose_next_runs(
        CampaignData.from_log(runs_log, obj), obj, request.n, bounds, request.strategy,
        request.initial, feature_fn, request.seed, log_feasibility=feasibility, log=runs_log,
        # robust_explore takes the step's recommendation as its argmin recommender (and
        # computes top-k and the others itself), so the step recommends the argmin here
        recommend_method="argmin",
    )  # fmt: skip
    result.notes += constraint_notes
    return robust_explore(
        result, CampaignData.from_log(runs_log, obj), bounds, feature_fn, request.seed,
        request.chosen_recommender, prior,
    )  # fmt: skip


def _multifidelity(
    request: ProposeRequest, runs_log: RunsLog, obj: Objective, bounds: Bounds
) -> MultiFidelityProposal:
    """--explore --fidelities M --target T: the next (mixture, size, tokens) runs and the
    recommendation at the target (``search.multifidelity``)."""
    menu = FidelityMenu.parse(request.fidelities, request.target)
    switch_runs = parse_switch_after(request.switch_after, len(runs_log.domains))
    done = runs_log.completed()
    features = fidelity_features(done)
    y = objective_values(done, obj)
    keep = np.isfinite(y)  # runs not evaluated on every set of the objective cannot count
    # in flight (no loss yet) or not evaluated on every objective set: pending, as in
    # single-fidelity search (paid for, so they count towards the switch)
    in_flight = runs_log.pending()
    # ``runs train`` logs a run's params and tokens when it ends: in flight without them, a
    # run has no fidelity to hold it at (said in a note, not guessed)
    known = has_fidelity(in_flight)
    in_flight = in_flight.subset(np.flatnonzero(known))
    pending = (
        np.vstack([in_flight.W, done.W[~keep]]),
        np.vstack([fidelity_features(in_flight), features[~keep]]),
    )
    # intermediate checkpoints (runs train --eval-every): free observations at their tokens
    free = checkpoint_mask(done)[keep]
    result = propose_multifidelity(
        done.W[keep], features[keep], y[keep], done.domains, menu, q=request.n,
        cost=CostModel(factor=request.cost_factor), alpha=request.cost_alpha, bounds=bounds,
        seed=request.seed, n_initial=request.initial, switch_flops=request.switch_flops,
        switch_runs=switch_runs, pending=pending, free=free,
    )  # fmt: skip
    if not known.all():
        result.notes.append(
            f"{int((~known).sum())} run(s) in flight without params/tokens (runs train logs "
            "them when a run ends): not held as pending, nor counted for the switch"
        )
    return result
