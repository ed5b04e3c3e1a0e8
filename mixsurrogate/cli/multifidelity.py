"""``propose --explore --fidelities M --target T``: the multi-fidelity part of ``propose``.

Kept apart from ``cli/propose.py`` (which only declares the options and calls ``run``) so that
the multi-fidelity search's options, defaults and refusals live in one place.

Default schedule: two-phase. Multi-fidelity exploration (augmented EI per unit cost) until
``--switch-after`` runs are logged below the target (default ``SWITCH_RUNS_PER_DIM`` x (K + 1)),
then every proposal is at the target. With the cost exponent 1 alone the search never pays for
a target run and stalls at what the cheapest proxy suggests (bench/results/
search_multiscale.md); the switch is what makes the recommendation rest on target-scale runs.
"""

from __future__ import annotations

import click
from click.core import ParameterSource

from ..errors import MixsurrogateError
from .common import echo_json

#: default switch: this many runs below the target per (K + 1) (chosen on
#: bench/results/search_multiscale_*.md, see there)
SWITCH_RUNS_PER_DIM = 4
#: ``propose`` options that single-fidelity search reads and multi-fidelity search does not
SINGLE_FIDELITY_ONLY = {
    "strategy": "--strategy",
    "recommender": "--recommender",
    "recommend_method": "--recommend",
}


def multifidelity_options(command):
    """The two-phase schedule's options (``--switch-after``, ``--switch-flops``)."""
    command = click.option(
        "--switch-flops",
        type=click.FloatRange(min=0),
        help="--fidelities: switch to the target once the runs below it have cost this many "
        "FLOPs (either switch reached switches)",
    )(command)
    return click.option(
        "--switch-after",
        metavar="N|never",
        help="--fidelities: explore the menu until N runs are logged (or in flight) below the "
        f"target, then propose at the target only [default: {SWITCH_RUNS_PER_DIM} x (K+1); "
        "never: multi-fidelity throughout]",
    )(command)


def parse_switch_after(text: str | None, n_domains: int) -> int | None:
    """``--switch-after``: a count, ``never`` (None) or the default for ``n_domains``."""
    if text is None:
        return SWITCH_RUNS_PER_DIM * (n_domains + 1)
    if text.strip().lower() == "never":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise MixsurrogateError(
            f"--switch-after must be a whole number >= 0 or never, got {text!r}"
        )
    return value


def refuse_single_fidelity_options() -> None:
    """One line naming an option given that multi-fidelity search would ignore."""
    ctx = click.get_current_context()
    for name, flag in SINGLE_FIDELITY_ONLY.items():
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
            raise MixsurrogateError(
                f"{flag} applies to single-fidelity search, not --fidelities (multi-fidelity "
                "proposes by augmented EI and recommends the posterior-mean minimiser at the target)"
            )


def run(log, obj, q, bounds, menu_text, target_text, alpha, factor, explore, seed, as_json,
        initial=None, switch_after=None, switch_flops=None) -> None:  # fmt: skip
    """The next (mixture, size, tokens) runs and the recommendation at the target
    (``search.multifidelity``); runs in flight are pending inputs."""
    import numpy as np

    from ..proposal.propose import objective_values
    from ..runs.fidelity import CostModel, FidelityMenu, fidelity_features
    from ..search.multifidelity import describe, propose_multifidelity

    if not (menu_text and target_text):
        raise MixsurrogateError("--fidelities and --target go together: give both")
    if not explore:
        raise MixsurrogateError("--fidelities/--target choose runs to train: add --explore")
    refuse_single_fidelity_options()
    menu = FidelityMenu.parse(menu_text, target_text)
    switch_runs = parse_switch_after(switch_after, len(log.domains))
    done = log.completed()
    features = fidelity_features(done)
    y = objective_values(done, obj)
    keep = np.isfinite(y)  # runs not evaluated on every set of the objective cannot count
    # in flight (no loss yet) or not evaluated on every objective set: pending, as in
    # single-fidelity search
    in_flight = log.pending()
    pending = (
        np.vstack([in_flight.W, done.W[~keep]]),
        np.vstack([fidelity_features(in_flight), features[~keep]]),
    )
    result = propose_multifidelity(
        done.W[keep], features[keep], y[keep], done.domains, menu, q=q,
        cost=CostModel(factor=factor), alpha=alpha, bounds=bounds, seed=seed,
        n_initial=initial, switch_flops=switch_flops, switch_runs=switch_runs, pending=pending,
    )  # fmt: skip
    if as_json:
        echo_json(result.to_dict())
        return
    for line in describe(result):
        click.echo(line)
    for note in result.notes:
        click.echo(f"note: {note}")
