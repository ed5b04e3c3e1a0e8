"""An evaluation set's MDE loss as terms, precomputed once: what the float32 engine sums.

Every MDE kind (see :mod:`mixsurrogate.mde.evaluator`) is a sum of terms
``-(shift_t + log(w.num_t / w.den_t))`` with ``num_t = exp(X_t - max X_t)`` and
``den_t = exp(Y_t - max Y_t)`` built here in float64 (``den = 1`` for ``token``), so each column
holds a 1 and the engine's float32 sums of positive numbers never cancel.

Evidence: ``"counted"`` (default) uses only counted tokens; ``"prefix"`` also uses every
position before a sequence's last counted token, i.e. the prompt of a task item, which is what
a model reading the prompt conditions on. ``"prefix"`` assumes padding sits after the last
counted token (right padding, as causal scoring writes it) and refuses non-finite log-probs at
evidence positions. A bool array (sequences, positions) gives the evidence explicitly.

Subsampling draws sampling units without replacement: counted tokens for token/window, whole
sequences for bayes (a sequence's telescoped terms are not independent); ``unit_moments`` gives
what the ratio estimator's standard error needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MixsurrogateError, ScoreStoreError
from .store import EvalSetScores

EVIDENCE = ("counted", "prefix")
#: log-probs below this (including -inf) are clamped: p is 0 for every float32 purpose
LOGP_FLOOR = -1.0e4
#: positions per block when building posterior terms: the float64 cumulative sums stay small
_SEQ_BLOCK = 1 << 16


@dataclass(frozen=True)
class LossTerms:
    """A set's loss as terms ``-(shift_t + log(w.num_t / w.den_t))`` grouped in sampling units."""

    num: np.ndarray  # (K, n) float32, max over experts = 1 per column
    den: np.ndarray | None  # (K, n) float32 or None (= 1)
    shift: np.ndarray  # (n,) float64
    unit_start: np.ndarray  # (units + 1,) term offsets: unit u owns terms [start[u], start[u+1])
    unit_tokens: np.ndarray  # (units,) counted tokens per unit

    @property
    def n_terms(self) -> int:
        return self.num.shape[1]

    @property
    def n_units(self) -> int:
        return len(self.unit_tokens)

    def select_units(self, units: np.ndarray) -> LossTerms:
        """The terms of the given (sorted) units only, for subsampling."""
        lengths = np.diff(self.unit_start)[units]
        start = np.concatenate([[0], np.cumsum(lengths)])
        cols = np.arange(start[-1]) + np.repeat(self.unit_start[units] - start[:-1], lengths)
        return LossTerms(
            num=np.ascontiguousarray(self.num[:, cols]),
            den=None if self.den is None else np.ascontiguousarray(self.den[:, cols]),
            shift=self.shift[cols],
            unit_start=start,
            unit_tokens=self.unit_tokens[units],
        )


def _shifted_exp(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``exp(x - max_i x)`` in float32 and the float64 shift, per column of (K, n)."""
    c = x.max(axis=0)
    return np.exp(x - c).astype(np.float32), c


def _checked_logp(name: str, logp: np.ndarray, used: np.ndarray, what: str) -> np.ndarray:
    """float64 log-probs clamped at LOGP_FLOOR; NaN or +inf where ``used`` is refused."""
    lp = np.asarray(logp, dtype=np.float64)
    if np.isnan(lp[:, used]).any() or (lp[:, used] == np.inf).any():
        raise ScoreStoreError(
            f"evaluation set {name!r}: NaN or +inf log-probabilities at {what} positions"
        )
    return np.maximum(lp, LOGP_FLOOR)


def token_terms(scores: EvalSetScores) -> LossTerms:
    """One term per counted token, each its own sampling unit (``den = 1``)."""
    num, c = _shifted_exp(token_logs(scores))
    n = num.shape[1]
    return LossTerms(num, None, c, np.arange(n + 1), np.ones(n, dtype=np.int64))


def _evidence_mask(scores: EvalSetScores, evidence: str | np.ndarray) -> np.ndarray:
    mask = np.asarray(scores.mask, dtype=bool)
    if isinstance(evidence, np.ndarray):
        if evidence.shape != mask.shape:
            raise MixsurrogateError(
                f"evidence mask has shape {evidence.shape}, evaluation set {scores.name!r} "
                f"has {mask.shape}"
            )
        return evidence.astype(bool) | mask
    if evidence == "counted":
        return mask
    if evidence == "prefix":
        T = mask.shape[1]
        last = np.where(mask.any(axis=1), T - 1 - np.argmax(mask[:, ::-1], axis=1), -1)
        return np.arange(T)[None, :] <= last[:, None]
    raise MixsurrogateError(f"unknown evidence {evidence!r}; choose one of {', '.join(EVIDENCE)}")


def posterior_log_blocks(
    scores: EvalSetScores, window: int | None, evidence: str | np.ndarray, logp=None
):
    """Per block of sequences, ``(X, Y, seq)``: float64 (K, terms) summed evidence log-probs of
    each term's numerator and denominator, and each term's sequence.

    ``logp`` (default ``scores.logp``) may be another array of the set's shape: a budget
    snapshot's log-probs (:mod:`.budget`).
    """
    mask = np.asarray(scores.mask, dtype=bool)
    logp = scores.logp if logp is None else logp
    ev = _evidence_mask(scores, evidence)
    S, T = mask.shape
    rows = max(1, _SEQ_BLOCK // max(T, 1))
    for s0 in range(0, S, rows):
        m, e = mask[s0 : s0 + rows], ev[s0 : s0 + rows]
        lp = _checked_logp(scores.name, logp[:, s0 : s0 + rows], e, "evidence")
        cum = np.zeros(lp.shape[:2] + (T + 1,))
        np.cumsum(np.where(e, lp, 0.0), axis=2, out=cum[:, :, 1:])
        if window is None:
            # maximal runs of counted positions [a, b): the per-token terms telescope
            edge = np.diff(np.pad(m.astype(np.int8), ((0, 0), (1, 1))), axis=1)
            s_t, a = np.nonzero(edge == 1)
            _, b = np.nonzero(edge == -1)
            X, Y = cum[:, s_t, b], cum[:, s_t, a]
        else:
            s_t, t = np.nonzero(m)
            base = cum[:, s_t, np.maximum(t - window, 0)]
            X, Y = cum[:, s_t, t + 1] - base, cum[:, s_t, t] - base
        yield X, Y, s_t + s0


def posterior_units(
    mask: np.ndarray, seq: np.ndarray, window: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(unit_start, unit_tokens)`` of posterior terms: sequences for bayes, tokens for window."""
    n = len(seq)
    if window is None:
        units, first = np.unique(seq, return_index=True)
        return np.append(first, n), np.asarray(mask, dtype=bool).sum(axis=1)[units].astype(np.int64)
    return np.arange(n + 1), np.ones(n, dtype=np.int64)


def posterior_terms(
    scores: EvalSetScores, window: int | None, evidence: str | np.ndarray
) -> LossTerms:
    """Terms of the bayes (``window=None``) or windowed loss, built by blocks of sequences."""
    nums, dens, shifts, seq = [], [], [], []
    for X, Y, s_t in posterior_log_blocks(scores, window, evidence):
        # float32 per block: the float64 cumulative sums never exist for the whole set at once
        (num, cx), (den, cy) = _shifted_exp(X), _shifted_exp(Y)
        nums.append(num)
        dens.append(den)
        shifts.append(cx - cy)
        seq.append(s_t)
    num = np.ascontiguousarray(np.concatenate(nums, axis=1))
    den = np.ascontiguousarray(np.concatenate(dens, axis=1))
    unit_start, unit_tokens = posterior_units(scores.mask, np.concatenate(seq), window)
    return LossTerms(num, den, np.concatenate(shifts), unit_start, unit_tokens)


def token_logs(scores: EvalSetScores, logp=None) -> np.ndarray:
    """float64 (K, counted tokens) log-probs clamped at ``LOGP_FLOOR`` (``logp``: as above)."""
    logp = scores.logp if logp is None else logp
    lp = logp[:, np.asarray(scores.mask, dtype=bool)]
    return _checked_logp(scores.name, lp, slice(None), "counted")


def draw_units(n_units: int, subsample: int | float, seed: int) -> np.ndarray:
    """Sorted unit indices of a simple random sample without replacement (count or fraction)."""
    if isinstance(subsample, float) and not isinstance(subsample, bool):
        if not 0 < subsample <= 1:
            raise MixsurrogateError(f"subsample fraction must be in (0, 1], got {subsample}")
        size = max(1, int(round(subsample * n_units)))
    elif isinstance(subsample, (int, np.integer)) and subsample >= 1:
        size = min(int(subsample), n_units)
    else:
        raise MixsurrogateError(f"subsample must be a count >= 1 or a fraction, got {subsample!r}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_units, size=size, replace=False))


def ratio_stderr(terms: LossTerms, U: np.ndarray, n_units_total: int, tile: int) -> np.ndarray:
    """(M,) standard error of the loss of a simple random sample of ``terms``' units.

    Units are drawn without replacement and the loss is a ratio (nats over tokens), so the
    variance is the linearised ratio-estimator one with the finite population correction.
    """
    n = terms.n_units
    y, yy, yt = unit_moments(terms, U, tile)
    tok = terms.unit_tokens.astype(np.float64)
    L = y / tok.sum()
    sse = yy - 2 * L * yt + L**2 * (tok**2).sum()
    var_e = np.maximum(sse, 0.0) / (n - 1)
    fpc = 1.0 - n / n_units_total
    return np.sqrt(fpc * var_e / n) / tok.mean()


def unit_moments(
    terms: LossTerms, U: np.ndarray, tile: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per mixture (rows of U): sums of unit nats ``y_u``, of ``y_u^2`` and of ``y_u * tokens_u``.

    Unfolded (one log per term) and in tiles of about ``tile`` elements: per-unit sums need
    every term's own log, and this path runs once per standard error, not per optimiser step.
    """
    M = U.shape[0]
    y, yy, yt = np.zeros(M), np.zeros(M), np.zeros(M)
    tok = terms.unit_tokens.astype(np.float64)
    step = max(1, (tile // max(M, 1)))
    u0 = 0
    while u0 < terms.n_units:
        u1 = int(np.searchsorted(terms.unit_start, terms.unit_start[u0] + step, side="right")) - 1
        u1 = min(max(u1, u0 + 1), terms.n_units)
        j0, j1 = int(terms.unit_start[u0]), int(terms.unit_start[u1])
        g = (U @ terms.num[:, j0:j1]).astype(np.float64)
        if terms.den is not None:
            g /= U @ terms.den[:, j0:j1]
        nats = -(np.log(g) + terms.shift[j0:j1])
        per_unit = np.add.reduceat(nats, terms.unit_start[u0:u1] - j0, axis=1)
        y += per_unit.sum(axis=1)
        yy += (per_unit**2).sum(axis=1)
        yt += per_unit @ tok[u0:u1]
        u0 = u1
    return y, yy, yt
