"""Mixture-of-data-experts (MDE) losses and their gradient, from cached expert log-probs.

For mixture weights ``w`` on the simplex and one evaluation set, three approximations of the
loss of a model trained on the mixture (nats per counted token):

* ``token``  (Belenki et al. 2025): ``-mean_t log sum_i w_i p_i(x_t | x_<t)``.
* ``bayes``: expert ``i`` weighted at position ``t`` by its posterior
  ``w_i p_i(evidence before t) / sum_j w_j p_j(evidence before t)``. Over a run of consecutive
  counted tokens ``[a, b)`` the per-token terms telescope to
  ``-log sum_i w_i exp(E_i(b)) + log sum_i w_i exp(E_i(a))`` (``E_i(t)``: expert ``i``'s summed
  log-prob of the evidence before ``t``); with counted-only evidence a whole sequence collapses
  to ``-log sum_i w_i exp(sum_t logp_i)``. The set's loss is total nats / total counted tokens
  (a token-weighted mean over sequences, so it is comparable with a proxy run's mean token
  cross-entropy; a per-sequence mean would over-weight short answers).
* ``window`` ``h``: the posterior at ``t`` uses only the evidence at positions ``t-h .. t-1``
  (``h = 0`` is ``token``, ``h >= T`` is ``bayes``), from float64 cumulative sums along positions.

Evidence (``"counted"``, ``"prefix"`` or a bool mask) and subsampling: :mod:`.mde_terms`.

Exactness in float32: every loss is a sum of terms ``-(shift + log(w.Q_t / w.R_t))`` with
``Q_t = exp(X_t - max X_t)``, ``R_t = exp(Y_t - max Y_t)`` precomputed in float64 (``R = 1``
for ``token``; :mod:`.mde_terms`), so per call there is one float32 GEMM per operand and the
log of positive sums: no cancellation, relative error ~K ulp. After the K-deep GEMM the log is
the costly step (without a SIMD log, as on older numpy builds, it dominates); it is amortised by
multiplying up to 16 ratios before one log. That is exact in real arithmetic and safe in float32
because each ratio lies in ``[w_min, 1/w_min]`` (the max-shifted column holds a 1), so the fold
depth is chosen per block of mixtures so the product stays within ``[1e-36, 1e36]``.

Weights: rows are clipped at ``eps`` (default 1e-12) and renormalised, so the loss is always that
of a point of the simplex and never ``log(0)``. The gradient is that of the scale-invariant
extension ``w -> L(w / sum(w))`` with the clip ignored: exact wherever every ``w_j > eps``,
and at a zero weight it still says whether moving mass onto that expert helps (a clip-aware
zero gradient would pin optimisers to faces of the simplex). Its inner product with ``w`` is 0.
"""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np

from .errors import MixsurrogateError, ScoreStoreError
from .mde_terms import (  # EVIDENCE, LOGP_FLOOR: re-exported, mde's names before the split
    EVIDENCE,  # noqa: F401
    LOGP_FLOOR,  # noqa: F401
    LossTerms,
    draw_units,
    posterior_terms,
    ratio_stderr,
    token_terms,
)
from .scores import EvalSetScores

KINDS = ("token", "bayes", "window")
DEFAULT_EPS = 1e-12
#: most ratios multiplied before one log (``MDEEvaluator(max_fold=...)`` may lower it)
FOLD_MAX = 16
_LOG_PRODUCT_LIMIT = math.log(1e-36)
#: default elements per (terms x mixtures) tile: 0.5 MB of float32 stays in a core's L2 cache
#: while the GEMM writes it and the fold reads it back (``MDEEvaluator(tile=...)``)
TILE = 1 << 17
#: mixtures per block: rows sorted by smallest weight, each block folds as deep as it allows
_ROWS = 128
#: below this many mixture x term elements one thread is used: starting workers costs more
PARALLEL_MIN = 1 << 21


class _Workspace:
    """Preallocated flat buffers for one worker; any (w, m) view of them is contiguous."""

    def __init__(self, size: int) -> None:
        self.products = np.empty(size, dtype=np.float32)  # the GEMM's tile (numerators)
        self.denominators = np.empty(size, dtype=np.float32)
        self.halves = np.empty(size // 2, dtype=np.float32)  # fold levels 1, 3
        self.quarters = np.empty(size // 4, dtype=np.float32)  # fold levels 2, 4

    @staticmethod
    def view(buf: np.ndarray, w: int, m: int) -> np.ndarray:
        return buf[: w * m].reshape(w, m)


def fold_depth(u_min: float, max_fold: int = FOLD_MAX) -> int:
    """Largest power-of-two fold whose product of ratios in [u_min, 1/u_min] stays normal."""
    f = max_fold
    while f > 1 and f * math.log(max(u_min, 1e-300)) < _LOG_PRODUCT_LIMIT:
        f //= 2
    return f


def _fold_log_sum(g: np.ndarray, ws: _Workspace, fold: int, keep: bool) -> np.ndarray:
    """Per column of the (terms x mixtures) tile ``g``: the sum of the logs of its entries.

    Rows are multiplied pairwise ``log2(fold)`` times first (contiguous halves of the buffer),
    so only ``1/fold`` of the entries go through the log. ``keep`` leaves ``g`` untouched.
    """
    w, m = g.shape
    if w % fold:
        fold = 1
    flat, n = g.reshape(-1), w * m
    scratch = (ws.halves, ws.quarters)
    level = 0
    while fold > 1:
        n //= 2
        nxt = scratch[level % 2][:n]
        np.multiply(flat[:n], flat[n : 2 * n], out=nxt)
        flat, fold, level = nxt, fold // 2, level + 1
    logs = np.log(flat) if keep and level == 0 else np.log(flat, out=flat)
    return logs.reshape(-1, m).sum(axis=0, dtype=np.float64)


def _log_ratio_tile(
    U: np.ndarray, t: LossTerms, j0: int, j1: int, ws: _Workspace, fold: int
) -> np.ndarray:
    """Per mixture, the sum over terms [j0, j1) of ``log(U@num / U@den)``.

    The tile is laid out terms x mixtures, so halving the terms to multiply ratios pairwise is
    one contiguous multiply of the buffer's two halves (no per-row loop).
    """
    m, w = U.shape[0], j1 - j0
    g = ws.view(ws.products, w, m)
    np.matmul(t.num[:, j0:j1].T, U.T, out=g)
    if t.den is not None:
        gd = ws.view(ws.denominators, w, m)
        np.matmul(t.den[:, j0:j1].T, U.T, out=gd)
        np.divide(g, gd, out=g)
    return _fold_log_sum(g, ws, fold, keep=False)


def _grad_tile(
    U: np.ndarray, t: LossTerms, j0: int, j1: int, ws: _Workspace, fold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per mixture, the sums over terms [j0, j1) of the log ratio and of its gradient."""
    m, w = U.shape[0], j1 - j0
    num = t.num[:, j0:j1]
    g = ws.view(ws.products, w, m)
    np.matmul(num.T, U.T, out=g)
    # numerator and denominator are folded apart: each product stays in [u_min^fold, 1]
    logsum = _fold_log_sum(g, ws, fold, keep=True)
    np.reciprocal(g, out=g)
    grad = -(num @ g)
    if t.den is not None:
        den = t.den[:, j0:j1]
        gd = ws.view(ws.denominators, w, m)
        np.matmul(den.T, U.T, out=gd)
        logsum -= _fold_log_sum(gd, ws, fold, keep=True)
        np.reciprocal(gd, out=gd)
        grad += den @ gd
    return logsum, grad.T.astype(np.float64)


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_FREE_WORKSPACES: list[_Workspace] = []
_BLAS = None


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL._max_workers < threads:
            _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mde")
        return _POOL


def _take_workspaces(k: int, tile: int) -> list[_Workspace]:
    """Buffers shared by all evaluators (one set per concurrent worker), not one per set."""
    size = tile + FOLD_MAX * _ROWS
    with _POOL_LOCK:
        free = [ws for ws in _FREE_WORKSPACES if ws.products.size == size]
        taken = free[:k]
        _FREE_WORKSPACES[:] = free[k:]
    return taken + [_Workspace(size) for _ in range(k - len(taken))]


def _give_workspaces(wss: list[_Workspace]) -> None:
    with _POOL_LOCK:
        _FREE_WORKSPACES.extend(wss)


def _blas_single_thread():
    """Our own threads split the work; a multi-threaded BLAS inside each would oversubscribe."""
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def default_threads() -> int:
    """CPUs this process may use (the affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_weights(W, n_experts: int, eps: float = DEFAULT_EPS) -> tuple[np.ndarray, np.ndarray]:
    """Validated mixtures as (M, K): the clipped, renormalised float64 rows and their sums."""
    W = np.asarray(W, dtype=np.float64)
    if W.ndim == 1:
        W = W[None, :]
    if W.ndim != 2 or W.shape[1] != n_experts:
        raise MixsurrogateError(
            f"mixtures have shape {W.shape}; expected (mixtures, {n_experts}) weights, "
            "one per expert in the score store's order"
        )
    if not np.isfinite(W).all():
        raise MixsurrogateError("mixture weights contain NaN or inf")
    if (W < -1e-6).any():
        raise MixsurrogateError(f"mixture weights must be >= 0 (got {W.min():.3g})")
    V = np.maximum(W, eps)
    s = V.sum(axis=1)
    return V / s[:, None], s


class MDEEvaluator:
    """One evaluation set's MDE loss for batches of mixtures: precompute once, evaluate often.

    ``kind``: ``token``, ``bayes`` or ``window`` (needs ``window`` = h >= 0 positions).
    ``subsample``: None (all), an int (that many units) or a fraction in (0, 1]; units are counted
    tokens for token/window and sequences for bayes (a sequence's terms are not independent).
    ``threads``: workers (default: the CPUs this process may use). ``max_fold``: most ratios
    multiplied before one log (1 = one log per term; only for benchmarking the fold).
    ``tile``: elements per (terms x mixtures) tile; the default ``TILE`` suits a 512 KB+ L2
    cache, and a small tile forces many tiles (tests of the tiling, benchmarks).
    Thread-safe: buffers come from a shared pool, one set per concurrent worker.
    """

    def __init__(
        self,
        scores: EvalSetScores,
        kind: str = "token",
        window: int | None = None,
        *,
        evidence: str | np.ndarray = "counted",
        subsample: int | float | None = None,
        seed: int = 0,
        eps: float = DEFAULT_EPS,
        threads: int | None = None,
        max_fold: int = FOLD_MAX,
        tile: int = TILE,
    ) -> None:
        if kind not in KINDS:
            raise MixsurrogateError(f"unknown MDE kind {kind!r}; choose one of {', '.join(KINDS)}")
        if kind == "window":
            if window is None or int(window) != window or window < 0:
                raise MixsurrogateError(f"MDE kind 'window' needs window >= 0, got {window!r}")
            window = int(window)
        elif window is not None:
            raise MixsurrogateError(f"window={window} is only used with kind='window'")
        if not 1e-30 <= eps <= 1e-3:
            # below 1e-30 a weight could fall under the float32 underflow of exp(logp - max)
            raise MixsurrogateError(f"eps must be in [1e-30, 1e-3], got {eps}")
        if int(np.asarray(scores.mask).sum()) == 0:
            raise ScoreStoreError(f"evaluation set {scores.name!r} has no counted tokens")
        if max_fold not in (1, 2, 4, 8, FOLD_MAX):
            raise MixsurrogateError(f"max_fold must be a power of two <= {FOLD_MAX}")
        if int(tile) != tile or tile < FOLD_MAX:
            raise MixsurrogateError(f"tile must be an integer >= {FOLD_MAX}, got {tile!r}")
        self.name, self.kind, self.window, self.eps = scores.name, kind, window, eps
        self.max_fold, self.tile = max_fold, int(tile)
        self.n_experts = int(scores.logp.shape[0])
        self.threads = default_threads() if threads is None else max(1, int(threads))
        if kind == "token":
            terms = token_terms(scores)
        else:
            terms = posterior_terms(scores, None if kind == "bayes" else window, evidence)
        self.n_units_total = terms.n_units
        self.subsampled = subsample is not None
        if subsample is not None:
            terms = terms.select_units(draw_units(terms.n_units, subsample, seed))
        self._t = terms
        self.n_units = terms.n_units
        self.n_tokens = int(terms.unit_tokens.sum())
        self._shift_total = float(terms.shift.sum())

    # --- public ---------------------------------------------------------------------------

    def loss(self, W) -> np.ndarray:
        """(M,) MDE loss in nats per counted token (an estimate when subsampled)."""
        U, _ = check_weights(W, self.n_experts, self.eps)
        logsum = self._run(U.astype(np.float32), grad=False)[0]
        return -(self._shift_total + logsum) / self.n_tokens

    def loss_and_grad(self, W) -> tuple[np.ndarray, np.ndarray]:
        """(M,) losses and (M, K) gradients w.r.t. the weights (see the module docstring)."""
        U, s = check_weights(W, self.n_experts, self.eps)
        logsum, gsum = self._run(U.astype(np.float32), grad=True)
        loss = -(self._shift_total + logsum) / self.n_tokens
        g = gsum / self.n_tokens
        g = (g - (U * g).sum(axis=1, keepdims=True)) / s[:, None]
        return loss, g

    def stderr(self, W) -> np.ndarray:
        """(M,) standard error of a subsampled loss (0 when every unit is used).

        Linearised ratio-estimator error with the finite population correction
        (:func:`.mde_terms.ratio_stderr`); costs a full unfolded pass over the sample.
        """
        U, _ = check_weights(W, self.n_experts, self.eps)
        n = self.n_units
        if not self.subsampled or n == self.n_units_total or n < 2:
            return np.zeros(len(U))
        return ratio_stderr(self._t, U.astype(np.float32), self.n_units_total, self.tile)

    # --- engine ---------------------------------------------------------------------------

    def _chunks(self, m_rows: int) -> list[tuple[int, int]]:
        """Term ranges of a width that keeps a (rows x width) tile in cache."""
        n = self._t.n_terms
        width = max(FOLD_MAX, (self.tile // max(m_rows, 1)) // FOLD_MAX * FOLD_MAX)
        main = n // FOLD_MAX * FOLD_MAX
        edges = list(range(0, main, width)) + [main]
        out = [(a, b) for a, b in pairwise(edges) if b > a]
        if n > main:
            out.append((main, n))  # a tail that no fold divides: unfolded
        return out

    def _run(self, U: np.ndarray, grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        M = U.shape[0]
        # rows sorted by their smallest weight, so each block folds as deep as its rows allow
        order = np.argsort(U.min(axis=1), kind="stable")[::-1]
        U = np.ascontiguousarray(U[order])
        rows = min(M, _ROWS)
        blocks = [(r, min(r + rows, M)) for r in range(0, M, rows)]
        folds = [fold_depth(float(U[a:b].min()), self.max_fold) for a, b in blocks]
        chunks = self._chunks(rows)
        threads = self.threads if M * self._t.n_terms >= PARALLEL_MIN else 1
        # split along terms when there are enough of them, else along mixtures
        if len(chunks) >= threads:
            parts = [
                (
                    [*range(len(blocks))],
                    chunks[i * len(chunks) // threads : (i + 1) * len(chunks) // threads],
                )
                for i in range(threads)
            ]
        else:
            parts = [([*range(len(blocks))][i::threads], chunks) for i in range(threads)]
        parts = [p for p in parts if p[0] and p[1]]

        def work(part, ws: _Workspace):
            acc = np.zeros(M)
            gacc = np.zeros((M, U.shape[1])) if grad else None
            block_ids, my_chunks = part
            for j0, j1 in my_chunks:
                for bi in block_ids:
                    a, b = blocks[bi]
                    if grad:
                        ls, gs = _grad_tile(U[a:b], self._t, j0, j1, ws, folds[bi])
                        gacc[a:b] += gs
                    else:
                        ls = _log_ratio_tile(U[a:b], self._t, j0, j1, ws, folds[bi])
                    acc[a:b] += ls
            return acc, gacc

        wss = _take_workspaces(len(parts), self.tile)
        try:
            with _blas_single_thread():
                if len(parts) == 1:
                    results = [work(parts[0], wss[0])]
                else:
                    pool = _pool(len(parts))
                    futures = [pool.submit(work, p, ws) for p, ws in zip(parts, wss, strict=True)]
                    results = [f.result() for f in futures]
        finally:
            _give_workspaces(wss)
        acc, gacc = np.empty(M), np.empty((M, U.shape[1])) if grad else None
        acc[order] = sum(r[0] for r in results)
        if grad:
            gacc[order] = sum(r[1] for r in results)
        return acc, gacc


def token_mde_loss(scores: EvalSetScores, W, *, eps: float = DEFAULT_EPS) -> np.ndarray:
    """(M,) token-level MDE loss of each mixture (rows of W, experts in store order)."""
    return MDEEvaluator(scores, "token", eps=eps).loss(W)


def sequence_mde_loss(
    scores: EvalSetScores, W, *, evidence: str | np.ndarray = "counted", eps: float = DEFAULT_EPS
) -> np.ndarray:
    """(M,) sequence-posterior ("bayes") MDE loss: total nats over total counted tokens."""
    return MDEEvaluator(scores, "bayes", evidence=evidence, eps=eps).loss(W)


def windowed_mde_loss(
    scores: EvalSetScores,
    W,
    window: int,
    *,
    evidence: str | np.ndarray = "counted",
    eps: float = DEFAULT_EPS,
) -> np.ndarray:
    """(M,) MDE loss with the expert posterior from the last ``window`` positions."""
    return MDEEvaluator(scores, "window", window, evidence=evidence, eps=eps).loss(W)
