"""Repetition-aware proxies: subsample each domain's unique training data.

A proxy run of ``P`` tokens sees domain ``d`` (weight ``w_d``, ``U_d`` unique tokens) for
``w_d P / U_d`` epochs; the target run of ``T`` tokens it stands for sees it ``w_d T / U_d``
times. When ``T`` repeats a small domain and ``P`` does not, the proxy ranks mixtures on data
that never repeats and misses the cost of repetition. Matching keeps the first
``U_d * P / T`` unique tokens of every domain, so the proxy repeats each domain exactly as often
as the target would, for every mixture (the ratio does not depend on the weights).

Which tokens: a contiguous prefix of the domain's training stream, exactly
``floor(U_d * P / T)`` tokens (deterministic, no seed). The last document kept may be cut short:
cutting back to a whole document would miss the ratio by up to a document's length (11% for
the long documents of a 60k-token ``books`` cap at P / T = 1/4), and a training window does not
care where a document ends. ``caps`` bound a domain's unique tokens the same way for
every run (a benchmark that must repeat a domain); matching then scales the capped counts. The
counts kept are recorded in the run's ``unique:<domain>`` log cells and notes, so exposure
features (:mod:`mixsurrogate.runs.exposure`) count epochs on what the run could draw from.
"""

from __future__ import annotations

from ..corpus.store import Corpus
from ..errors import MixsurrogateError


def parse_unique_caps(specs: list[str] | tuple[str, ...]) -> dict[str, int]:
    """``DOMAIN=TOKENS`` strings (``--unique-tokens books=60000``) as a dict (the domain names
    are checked against the runs' by :func:`unique_limits`)."""
    caps: dict[str, int] = {}
    for spec in specs:
        name, sep, value = str(spec).partition("=")
        name, value = name.strip(), value.strip().replace("_", "")
        if not sep or not value.isdigit() or int(value) < 1:
            raise MixsurrogateError(
                f"--unique-tokens {spec!r}: expected DOMAIN=TOKENS with a positive whole number"
            )
        if name in caps:
            raise MixsurrogateError(f"--unique-tokens {spec!r}: domain {name!r} given twice")
        caps[name] = int(value)
    return caps


def unique_limits(
    corpus: Corpus,
    domains: list[str],
    run_tokens: int,
    caps: dict[str, int] | None = None,
    match_tokens: int | None = None,
) -> dict[str, int] | None:
    """The unique training tokens each domain keeps, or None to train on the full data.

    ``caps`` bound some domains; ``match_tokens`` (the target run's budget ``T``) scales every
    domain's count by ``run_tokens / T``. A proxy larger than its target is refused (a subsample
    cannot hold more data than the corpus).
    """
    caps = caps or {}
    if not caps and match_tokens is None:
        return None
    if match_tokens is not None and match_tokens < run_tokens:
        raise MixsurrogateError(
            f"--match-repetition {match_tokens:,}: the target run must train at least the "
            f"proxy's {run_tokens:,} tokens (matching subsamples, it cannot add data)"
        )
    unknown = sorted(set(caps) - set(domains))
    if unknown:
        raise MixsurrogateError(
            f"--unique-tokens {unknown[0]}=...: no such domain among the runs' "
            f"({', '.join(domains)})"
        )
    limits = {}
    for d in domains:
        size = len(corpus.tokens(d, "train"))
        base = min(caps[d], size) if d in caps else size
        limits[d] = base if match_tokens is None else max(1, base * run_tokens // match_tokens)
    return limits


def subsample_note(limits: dict[str, int] | None, match_tokens: int | None) -> str:
    """The notes' words for a subsample: what it matches and the unique tokens kept."""
    if not limits:
        return ""
    kept = ", ".join(f"{d}={n:,}" for d, n in limits.items())
    why = f"repetition matched to {match_tokens:,} tokens" if match_tokens else "capped data"
    return f"; {why}: unique training tokens (stream prefixes) {kept}"
