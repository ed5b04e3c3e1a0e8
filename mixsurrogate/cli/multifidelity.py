"""``propose --explore --fidelities M --target T``: the two-phase schedule's options.

Default schedule: two-phase. Multi-fidelity exploration (augmented EI per unit cost) until
``--switch-after`` runs are logged below the target (default ``SWITCH_RUNS_PER_DIM`` x (K + 1)),
then every proposal is at the target. With the cost exponent 1 alone the search never pays for
a target run and stalls at what the cheapest proxy suggests (bench/results/
search_multiscale.md); the switch is what makes the recommendation rest on target-scale runs.
"""

from __future__ import annotations

import click

from ..search.defaults import SWITCH_RUNS_PER_DIM


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
