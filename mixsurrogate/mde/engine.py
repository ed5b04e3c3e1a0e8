"""The float32 engine under :class:`mixsurrogate.mde.evaluator.MDEEvaluator`: tiled, folded, threaded.

Every MDE loss is a sum of terms ``-(shift + log(w.Q_t / w.R_t))`` with
``Q_t = exp(X_t - max X_t)``, ``R_t = exp(Y_t - max Y_t)`` precomputed in float64 (``R = 1``
for ``token``; :mod:`.mde_terms`), so per call there is one float32 GEMM per operand and the
log of positive sums: no cancellation, relative error ~K ulp (the logs of a tile column are
summed in float32 by one GEMV, a few ulp more; tiles add up in float64). After the GEMM the log is
the costly step (without a SIMD log, as on older numpy builds, it dominates); it is amortised by
multiplying up to 16 ratios before one log. That is exact in real arithmetic and safe in float32
because each ratio lies in ``[w_min, 1/w_min]`` (the max-shifted column holds a 1), so the fold
depth is chosen per block of mixtures so the product stays within ``[1e-36, 1e36]``.

Work is cut into (terms x mixtures) tiles, folded in place from the GEMM to the sum, and split
over threads (numpy releases the GIL inside each call; BLAS is held to one thread in each).
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np
from threadpoolctl import ThreadpoolController

from .terms import LossTerms

#: most ratios multiplied before one log (``MDEEvaluator(max_fold=...)`` may lower it)
FOLD_MAX = 16
_LOG_PRODUCT_LIMIT = math.log(1e-36)
#: default elements per (terms x mixtures) tile (``MDEEvaluator(tile=...)``): 4 MB of float32,
#: past L2 but few, long numpy calls. Workers hand the GIL over at every call, and with calls of
#: a few us two threads ran no faster than one (measured on 2 cores: 2^17 elements 0.18-0.24
#: ns/element, 2^20 0.13; one thread 0.25-0.27 at either size)
TILE = 1 << 20
#: rows of logs summed in float32 before float64 takes over (error ~ a few ulp of such a sum)
SUM_ROWS = 64
#: mixtures per block: rows sorted by smallest weight, each block folds as deep as it allows
_ROWS = 128
#: below this many mixture x term elements one thread is used: starting workers costs more
PARALLEL_MIN = 1 << 21


class _Workspace:
    """Preallocated flat buffers for one worker, and cached views of them for each tile shape.

    A call repeats a few tile shapes thousands of times, so the views a fold needs are built
    once: per tile only the GEMM, the multiplies, the log and the sum reach numpy.
    """

    def __init__(self, size: int) -> None:
        self.products = np.empty(size, dtype=np.float32)  # the GEMM's tile (numerators)
        self.denominators = np.empty(size, dtype=np.float32)
        self.folded = np.empty(size // 2, dtype=np.float32)  # a fold that keeps its input
        self._plans: dict[tuple, tuple] = {}

    def plan(self, which: str, w: int, m: int, fold: int, keep: bool) -> tuple:
        """``(tile, steps, final, logs, groups)`` for a (w, m) tile at the start of ``which``.

        ``steps``: (a, b, out) multiplies of contiguous halves, in place unless ``keep``;
        ``final``: the 1/fold products, ``logs``: the same viewed as (w/fold, m); ``groups``:
        ``(ones, view)`` to sum ``logs`` in float32 over runs of at most ``SUM_ROWS`` rows with
        one (batched) GEMV, or None where the rows do not split evenly (float64 sum).
        """
        key = (which, w, m, fold, keep)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) > 256:  # many batch sizes: start over rather than grow
                self._plans.clear()
            n, flat = w * m, getattr(self, which)
            tile, steps = flat[:n].reshape(w, m), []
            for level in range(fold.bit_length() - 1):
                n //= 2
                out = self.folded[:n] if keep and level == 0 else flat[:n]
                steps.append((flat[:n], flat[n : 2 * n], out))
                flat = out
            logs = flat[:n].reshape(-1, m)
            r = logs.shape[0]
            groups = None
            if r <= SUM_ROWS:
                groups = (np.ones(r, dtype=np.float32), logs[None])
            elif r % SUM_ROWS == 0:
                groups = (np.ones(SUM_ROWS, dtype=np.float32), logs.reshape(-1, SUM_ROWS, m))
            plan = self._plans[key] = (tile, steps, flat[:n], logs, groups)
        return plan


def fold_depth(u_min: float, max_fold: int = FOLD_MAX) -> int:
    """Largest power-of-two fold whose product of ratios in [u_min, 1/u_min] stays normal."""
    f = max_fold
    while f > 1 and f * math.log(max(u_min, 1e-300)) < _LOG_PRODUCT_LIMIT:
        f //= 2
    return f


def _fold_log_sum(plan: tuple, keep: bool) -> np.ndarray:
    """Per column of a tile: the sum of the logs of its entries, ``1/fold`` of them logged.

    Rows are multiplied pairwise ``log2(fold)`` times first (the buffer's contiguous halves,
    in place so the tile stays in cache). ``keep`` leaves the tile untouched and sums in
    float64: the gradient path subtracts numerator and denominator sums. The loss path sums
    runs of ``SUM_ROWS`` rows with a float32 GEMV (its vector lanes keep the error at a few ulp
    of a run's sum), the runs in float64: a float64 reduction across all rows costs as much as
    all the logs the fold leaves.
    """
    _, steps, final, logs, groups = plan
    for a, b, out in steps:
        np.multiply(a, b, out=out)
    if keep and not steps:
        return np.log(logs).sum(axis=0, dtype=np.float64)  # unfolded: the tile itself
    np.log(final, out=final)
    if keep or groups is None:
        return logs.sum(axis=0, dtype=np.float64)
    ones, view = groups
    return (ones @ view).sum(axis=0, dtype=np.float64)


def _log_ratio_tile(
    U: np.ndarray, t: LossTerms, j0: int, j1: int, ws: _Workspace, fold: int
) -> np.ndarray:
    """Per mixture, the sum over terms [j0, j1) of ``log(U@num / U@den)``.

    The tile is laid out terms x mixtures, so halving the terms to multiply ratios pairwise is
    one contiguous multiply of the buffer's two halves (no per-row loop).
    """
    m, w = U.shape[0], j1 - j0
    plan = ws.plan("products", w, m, fold if w % fold == 0 else 1, keep=False)
    np.matmul(t.num[:, j0:j1].T, U.T, out=plan[0])
    if t.den is not None:
        gd = ws.plan("denominators", w, m, 1, keep=True)[0]
        np.matmul(t.den[:, j0:j1].T, U.T, out=gd)
        np.divide(plan[0], gd, out=plan[0])
    return _fold_log_sum(plan, keep=False)


def _grad_tile(
    U: np.ndarray, t: LossTerms, j0: int, j1: int, ws: _Workspace, fold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per mixture, the sums over terms [j0, j1) of the log ratio and of its gradient."""
    m, w = U.shape[0], j1 - j0
    fold = fold if w % fold == 0 else 1
    num = t.num[:, j0:j1]
    plan = ws.plan("products", w, m, fold, keep=True)
    g = plan[0]
    np.matmul(num.T, U.T, out=g)
    # numerator and denominator are folded apart: each product stays in [u_min^fold, 1]
    logsum = _fold_log_sum(plan, keep=True)
    np.reciprocal(g, out=g)
    grad = -(num @ g)
    if t.den is not None:
        den = t.den[:, j0:j1]
        plan = ws.plan("denominators", w, m, fold, keep=True)
        gd = plan[0]
        np.matmul(den.T, U.T, out=gd)
        logsum -= _fold_log_sum(plan, keep=True)
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


def blas_single_thread():
    """Our own threads split the work; a multi-threaded BLAS inside each would oversubscribe."""
    global _BLAS
    if _BLAS is None:
        _BLAS = ThreadpoolController()
    return _BLAS.limit(limits=1, user_api="blas")


def _chunks(n: int, m_rows: int, tile: int) -> list[tuple[int, int]]:
    """Term ranges of a width that keeps a (width x rows) tile in cache."""
    width = max(FOLD_MAX, (tile // max(m_rows, 1)) // FOLD_MAX * FOLD_MAX)
    main = n // FOLD_MAX * FOLD_MAX
    edges = list(range(0, main, width)) + [main]
    out = [(a, b) for a, b in pairwise(edges) if b > a]
    if n > main:
        out.append((main, n))  # a tail that no fold divides: unfolded
    return out


def sum_log_ratios(
    terms: LossTerms, U: np.ndarray, grad: bool, threads: int, max_fold: int, tile: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per mixture (float32 rows of U): ``sum_t log(U.num_t / U.den_t)``, and with ``grad`` its
    gradient ``sum_t num_t / U.num_t - den_t / U.den_t`` (M, K), both in float64.

    Tiles of about ``tile`` elements, split over ``threads`` workers (one when the work is
    under ``PARALLEL_MIN`` elements), at most ``max_fold`` ratios multiplied per log.
    """
    M = U.shape[0]
    # rows sorted by their smallest weight, so each block folds as deep as its rows allow
    order = np.argsort(U.min(axis=1), kind="stable")[::-1]
    U = np.ascontiguousarray(U[order])
    rows = min(M, _ROWS)
    blocks = [(r, min(r + rows, M)) for r in range(0, M, rows)]
    folds = [fold_depth(float(U[a:b].min()), max_fold) for a, b in blocks]
    chunks = _chunks(terms.n_terms, rows, tile)
    threads = threads if M * terms.n_terms >= PARALLEL_MIN else 1
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
                    ls, gs = _grad_tile(U[a:b], terms, j0, j1, ws, folds[bi])
                    gacc[a:b] += gs
                else:
                    ls = _log_ratio_tile(U[a:b], terms, j0, j1, ws, folds[bi])
                acc[a:b] += ls
        return acc, gacc

    wss = _take_workspaces(len(parts), tile)
    try:
        with blas_single_thread():
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
