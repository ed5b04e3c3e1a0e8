"""Budget-matched MDE: each expert taken at the training budget its domain gets in the mixture.

A run on mixture ``w`` with ``T`` tokens gives domain ``i`` only ``w_i T`` of them, while its
expert trained on the full expert budget ``B``: plain MDE uses experts that are too good. With
budget snapshots in the score store (fractions ``f_1 < ... < f_m = 1`` of ``B``, written by
``experts train --checkpoints``), expert ``i`` is taken at the fraction ``b_i = w_i r`` with
``r = T / B`` (``run_fraction``, default 1: the run has the experts' budget). Its log-probs are
interpolated linearly in log-budget between the two neighbouring snapshots::

    logp_i(b) = (1 - a) logp_i(f_k) + a logp_i(f_k+1),   a = (log b - log f_k) / (log f_k+1 - log f_k)

Below ``f_1`` the smallest snapshot is used as it is (clamped: no extrapolation), above 1 the
full expert. A weight of 0 contributes nothing (weights are floored at ``eps`` and renormalised
as in :mod:`.evaluator`, so such an expert is its smallest snapshot times ``eps``). Then MDE as
usual: ``token``, ``bayes`` or ``window`` (:mod:`.evaluator`); per-sequence sums of log-probs are
linear in the log-probs, so the posterior kinds interpolate their summed evidence the same way.

Approximation: a snapshot at fraction ``f`` is the expert part-way through its cosine schedule
over the full budget (learning rate not yet decayed), not a model trained with its own schedule
to ``f``; it is somewhat worse than such a model.

Computation: each mixture raises each expert's probabilities to its own power
(``p_lo^(1-a) p_hi^a``), so no precomputed GEMM is exact. Per tile of (mixtures x terms), each
expert's two snapshots are gathered and interpolated, shifted by the column max, exponentiated,
weighted by ``w`` and summed (a batched GEMV), then one log per (mixture, term): float32 with a
column max of exactly 1 (no underflow of the sum), tiles accumulated in float64.

Gradient (of ``w -> L(w / sum w)``, as in :mod:`.evaluator`): ``da_i/dw_i = 1/(w_i D_k)`` with
``D_k = log f_k+1 - log f_k`` inside a bracket (0 where clamped), so
``d(w_i p_i)/dw_i = p_i (1 + (logp_i(f_k+1) - logp_i(f_k)) / D_k)``: the budget term is included.
It jumps where a weight crosses a snapshot's fraction (the interpolation has a kink there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import MixsurrogateError, ScoreStoreError
from .evaluator import DEFAULT_EPS, KINDS, check_weights
from .store import Budget, EvalSetScores
from .terms import posterior_log_blocks, posterior_units, token_logs

#: default elements per (experts x mixtures x terms) tile: a few MB of float32 per buffer
BUDGET_TILE = 1 << 19
_ROWS = 64  # mixtures per tile at most


@dataclass(frozen=True)
class BudgetTerms:
    """A set's loss as terms ``-(shift_t + log sum_i w_i e^{X_i(b_i)} - log sum_i w_i e^{Y_i(b_i)})``.

    ``num`` / ``den``: (budgets, K, terms) float32 log-values shifted by their max over budgets
    and experts (``den`` None: 0, the token kind); ``shift``: the shifts' difference, float64.
    """

    num: np.ndarray
    den: np.ndarray | None
    shift: np.ndarray
    unit_tokens: np.ndarray

    @property
    def n_terms(self) -> int:
        return self.num.shape[2]


def _shifted(logs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """float32 (budgets, K, n) of float64 (K, n) arrays less their column max over both axes."""
    c = np.max([x.max(axis=0) for x in logs], axis=0)
    return np.stack([(x - c).astype(np.float32) for x in logs]), c


def budget_terms(
    scores: EvalSetScores, n_budgets: int, kind: str, window: int | None, evidence
) -> BudgetTerms:
    """The terms of every budget snapshot of ``scores`` (kind ``token``, ``bayes``, ``window``)."""
    arrays = [scores.logp_at(b) for b in range(n_budgets)]
    if kind == "token":
        num, c = _shifted([token_logs(scores, lp) for lp in arrays])
        n = num.shape[2]
        return BudgetTerms(num, None, c, np.ones(n, dtype=np.int64))
    nums, dens, shifts, seqs = [], [], [], []
    blocks = [posterior_log_blocks(scores, window, evidence, lp) for lp in arrays]
    for per_budget in zip(*blocks, strict=True):
        (num, cx), (den, cy) = (
            _shifted([x for x, _, _ in per_budget]),
            _shifted([y for _, y, _ in per_budget]),
        )
        nums.append(num)
        dens.append(den)
        shifts.append(cx - cy)
        seqs.append(per_budget[0][2])
    _, unit_tokens = posterior_units(scores.mask, np.concatenate(seqs), window)
    return BudgetTerms(
        np.ascontiguousarray(np.concatenate(nums, axis=2)),
        np.ascontiguousarray(np.concatenate(dens, axis=2)),
        np.concatenate(shifts),
        unit_tokens,
    )


def budget_brackets(
    U: np.ndarray,  # noqa: N803
    fractions: np.ndarray,
    run_fraction: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(lo, a, slope)`` (M, K): each expert's snapshot bracket ``[lo, lo+1]``, its
    interpolation weight ``a`` on ``lo+1`` and ``w_i da_i/dw_i`` (``1/D_k``; 0 when clamped)."""
    lf = np.log(np.asarray(fractions, dtype=np.float64))
    b = np.log(U * run_fraction)
    lo = np.clip(np.searchsorted(lf, b, side="right") - 1, 0, len(lf) - 2)
    width = lf[lo + 1] - lf[lo]
    a = np.clip((b - lf[lo]) / width, 0.0, 1.0)
    inside = (b > lf[0]) & (b < lf[-1])
    return lo, a, np.where(inside, 1.0 / width, 0.0)


def _log_mix_tile(
    X: np.ndarray,  # noqa: N803
    lo: np.ndarray,
    a: np.ndarray,
    slope: np.ndarray,
    U: np.ndarray,  # noqa: N803
    cols: slice,
    grad: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per mixture: ``sum_t log sum_i U_i exp(X_i(b_i)_t)`` over the terms ``cols``, and its
    gradient w.r.t. ``U`` (float64)."""
    K, m = U.shape[1], U.shape[0]
    w = cols.stop - cols.start
    Z = np.empty((K, m, w), dtype=np.float32)  # noqa: N806
    D = np.empty((K, m, w), dtype=np.float32) if grad else None  # noqa: N806
    for i in range(K):
        xi = X[:, i, cols]
        low = xi[lo[:, i]]
        d = np.subtract(xi[lo[:, i] + 1], low, out=D[i] if grad else None)
        np.multiply(d, a[:, i, None].astype(np.float32), out=Z[i])
        Z[i] += low
    top = Z.max(axis=0)
    Z -= top
    np.exp(Z, out=Z)
    S = Z[0] * U[:, 0, None]  # noqa: N806
    for i in range(1, K):
        S += Z[i] * U[:, i, None]
    logsum = np.log(S).sum(axis=1, dtype=np.float64) + top.sum(axis=1, dtype=np.float64)
    if not grad:
        return logsum, None
    np.reciprocal(S, out=S)
    g = np.empty((m, K))
    for i in range(K):
        Z[i] *= S  # p_i / p_mix per term
        g[:, i] = Z[i].sum(axis=1, dtype=np.float64)
        g[:, i] += slope[:, i] * np.einsum("mt,mt->m", Z[i], D[i], dtype=np.float64)
    return logsum, g


def sum_log_mix(
    X: np.ndarray,  # noqa: N803
    U: np.ndarray,  # noqa: N803
    lo: np.ndarray,
    a: np.ndarray,
    slope: np.ndarray,
    grad: bool,
    tile: int = BUDGET_TILE,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per mixture (rows of U): ``sum_t log sum_i U_i exp(X_i(b_i)_t)`` and its gradient."""
    M, K = U.shape  # noqa: N806
    n = X.shape[2]
    acc = np.zeros(M)
    gacc = np.zeros((M, K)) if grad else None
    U32 = U.astype(np.float32)  # noqa: N806
    for r0 in range(0, M, _ROWS):
        rows = slice(r0, min(r0 + _ROWS, M))
        m = rows.stop - rows.start
        width = max(16, tile // (m * K))
        for j0 in range(0, n, width):
            ls, gs = _log_mix_tile(
                X, lo[rows], a[rows], slope[rows], U32[rows], slice(j0, min(j0 + width, n)), grad
            )
            acc[rows] += ls
            if grad:
                gacc[rows] += gs
    return acc, gacc


class BudgetMDEEvaluator:
    """One evaluation set's budget-matched MDE loss for batches of mixtures.

    ``budgets``: the store's (``ScoreStore.budgets``, the last the full one); ``scores`` must
    carry one ``budget_logp`` array per budget below it. ``run_fraction``: the run's token
    budget over the experts' full budget (default 1). ``kind``, ``window``, ``evidence`` and
    ``eps``: as :class:`.evaluator.MDEEvaluator` (no subsampling).
    """

    def __init__(
        self,
        scores: EvalSetScores,
        budgets: tuple[Budget, ...],
        kind: str = "token",
        window: int | None = None,
        *,
        evidence: str | np.ndarray = "counted",
        run_fraction: float = 1.0,
        eps: float = DEFAULT_EPS,
        tile: int = BUDGET_TILE,
    ) -> None:
        if kind not in KINDS:
            raise MixsurrogateError(f"unknown MDE kind {kind!r}; choose one of {', '.join(KINDS)}")
        if kind == "window" and (window is None or int(window) != window or window < 0):
            raise MixsurrogateError(f"MDE kind 'window' needs window >= 0, got {window!r}")
        if len(budgets) < 2 or len(scores.budget_logp) != len(budgets) - 1:
            raise ScoreStoreError(
                f"evaluation set {scores.name!r} has {len(scores.budget_logp)} budget snapshots "
                f"for {len(budgets)} budgets; budget-matched MDE needs one per budget below the full one"
            )
        if not (np.isfinite(run_fraction) and run_fraction > 0):
            raise MixsurrogateError(f"run_fraction must be positive, got {run_fraction!r}")
        if not 1e-30 <= eps <= 1e-3:
            raise MixsurrogateError(f"eps must be in [1e-30, 1e-3], got {eps}")
        if int(np.asarray(scores.mask).sum()) == 0:
            raise ScoreStoreError(f"evaluation set {scores.name!r} has no counted tokens")
        self.name, self.kind, self.eps, self.tile = scores.name, kind, eps, int(tile)
        self.window = None if kind == "token" else (int(window) if kind == "window" else None)
        self.fractions = np.array([b.fraction for b in budgets])
        self.run_fraction = float(run_fraction)
        self.n_experts = int(scores.logp.shape[0])
        self._t = budget_terms(scores, len(budgets), kind, self.window, evidence)
        self.n_tokens = int(self._t.unit_tokens.sum())
        self._shift_total = float(self._t.shift.sum())

    def _run(self, W, grad: bool):  # noqa: N803
        U, s = check_weights(W, self.n_experts, self.eps)  # noqa: N806
        lo, a, slope = budget_brackets(U, self.fractions, self.run_fraction)
        t = self._t
        logsum, g = sum_log_mix(t.num, U, lo, a, slope, grad, self.tile)
        if t.den is not None:
            den_sum, den_g = sum_log_mix(t.den, U, lo, a, slope, grad, self.tile)
            logsum = logsum - den_sum
            if grad:
                g = g - den_g
        return U, s, logsum, g

    def loss(self, W) -> np.ndarray:  # noqa: N803
        """(M,) budget-matched MDE loss in nats per counted token."""
        logsum = self._run(W, grad=False)[2]
        return -(self._shift_total + logsum) / self.n_tokens

    def loss_and_grad(self, W) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """(M,) losses and (M, K) gradients w.r.t. the weights (budget dependence included)."""
        U, s, logsum, gsum = self._run(W, grad=True)  # noqa: N806
        loss = -(self._shift_total + logsum) / self.n_tokens
        g = -gsum / self.n_tokens
        return loss, (g - (U * g).sum(axis=1, keepdims=True)) / s[:, None]

    def stderr(self, W) -> np.ndarray:  # noqa: N803
        """Zeros: budget-matched MDE uses every unit (no subsampling)."""
        return np.zeros(len(check_weights(W, self.n_experts, self.eps)[0]))
