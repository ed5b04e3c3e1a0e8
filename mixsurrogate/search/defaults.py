"""The defaults of a search step (``propose --explore``): the strategy and the recommendation.

Kept apart from the strategies so the CLI can show them without importing numpy or torch.

**turbo + top-k** (qLogNEI in a trust region around the incumbent; recommend the mean of the
100 candidates with the lowest GP posterior mean) was chosen *after seeing results*: the
posthoc suite (bench/results/search_posthoc.md, seeds 10-19) found it the best at 17 domains
(0.053 regret at 64 runs vs 0.061 for Sobol + LightGBM top-k, RegMix's recipe). It was then
scored on fresh seeds from 20 on (``bench/search.py --suite defaults``,
bench/results/search_defaults.md), against RegMix's recipe and the uniform mixture. The
default before was qlognei + argmin, which lost to turbo at 17 domains in both earlier suites.
"""

from __future__ import annotations

from ..errors import MixsurrogateError

#: the strategies ``make_strategy`` builds, the default first
STRATEGIES = ("turbo", "qlognei", "exploit", "sobol", "uniform", "qlognei-v1")
DEFAULT_STRATEGY = "turbo"
#: the base recommendations of ``recommend``: the posterior mean's minimiser, or the mean of
#: the top-k candidates by posterior mean
RECOMMEND_METHODS = ("top-k", "argmin")
DEFAULT_RECOMMEND = "top-k"

#: default two-phase switch: this many runs below the target per (K + 1) domains, then every
#: proposal is at the target (chosen on bench/results/search_multiscale_*.md, after seeing
#: results, on 3 seeds: see there)
SWITCH_RUNS_PER_DIM = 4


def parse_switch_after(text: str | None, n_domains: int) -> int | None:
    """``--switch-after``: a count, ``never`` (None: multi-fidelity throughout) or the default
    for ``n_domains`` (:data:`SWITCH_RUNS_PER_DIM` x (K + 1))."""
    if text is None:
        return SWITCH_RUNS_PER_DIM * (n_domains + 1)
    if str(text).strip().lower() == "never":
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
