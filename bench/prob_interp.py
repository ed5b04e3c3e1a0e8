"""Budget-matched token MDE that interpolates *probabilities* in log-budget (a bench variant).

The package's budget MDE (:mod:`mixsurrogate.mde.budget`) interpolates log-probs,
``logp_i(b) = (1 - a) logp_i(f_k) + a logp_i(f_k+1)``, so each mixture raises each expert's
probabilities to its own power: one exp per (mixture, expert, token), no precomputed GEMM.
Interpolating the probabilities instead, ``p_i(b) = (1 - a) p_i(f_k) + a p_i(f_k+1)`` (same
``a``, linear in log-budget), makes the mixture's probability of a token linear in a
precomputed matrix::

    p_mix(t) = sum_{k,i} C[k,i] p_i(f_k)_t,   C[lo_i, i] = w_i (1 - a_i),  C[lo_i + 1, i] = w_i a_i

so a batch of mixtures is one GEMM over the (budgets x experts) rows of ``exp(logp - max)``
(float32, shifted by each token's max over budgets and experts) plus one log per element.
It differs from the log interpolation between snapshots (a mean of probabilities is >= their
geometric mean), equal at the snapshots themselves. Used by ``bench/mde_budget_speed.py``
(speed) and ``bench/realtext/budget.py`` (bias and accuracy); not a user-facing kind.
"""

from __future__ import annotations

import numpy as np

from mixsurrogate.mde.budget import budget_brackets
from mixsurrogate.mde.evaluator import DEFAULT_EPS, check_weights
from mixsurrogate.mde.store import Budget, EvalSetScores
from mixsurrogate.mde.terms import token_logs

#: elements of one (tokens x mixtures) GEMM output tile
TILE = 1 << 20


class ProbInterpMDE:
    """One set's token-kind budget MDE with probabilities interpolated in log-budget.

    ``dtype``: float32 (the fast path; the GEMM and the log) or float64 (a reference).
    ``eval_sets``-free on purpose: :class:`ProbInterpFeatures` maps many sets.
    """

    def __init__(
        self,
        scores: EvalSetScores,
        budgets: tuple[Budget, ...],
        *,
        run_fraction: float = 1.0,
        eps: float = DEFAULT_EPS,
        dtype=np.float32,
    ) -> None:
        logs = [token_logs(scores, scores.logp_at(b)) for b in range(len(budgets))]
        c = np.max([x.max(axis=0) for x in logs], axis=0)
        self.P = np.ascontiguousarray(np.concatenate([np.exp(x - c) for x in logs]).astype(dtype))
        self.shift = float(c.sum())
        self.n_tokens = int(c.shape[0])
        self.n_experts = int(scores.logp.shape[0])
        self.fractions = np.array([b.fraction for b in budgets])
        self.run_fraction, self.eps, self.dtype = float(run_fraction), eps, dtype

    def coefficients(self, W) -> np.ndarray:  # noqa: N803
        """(M, budgets x experts) GEMM coefficients of mixtures W (row ``k * K + i``)."""
        U = check_weights(W, self.n_experts, self.eps)[0]  # noqa: N806
        lo, a, _ = budget_brackets(U, self.fractions, self.run_fraction)
        M, K = U.shape  # noqa: N806
        C = np.zeros((M, len(self.fractions), K))  # noqa: N806
        rows, cols = np.arange(M)[:, None], np.arange(K)[None, :]
        C[rows, lo, cols] = U * (1 - a)
        C[rows, lo + 1, cols] += U * a
        return np.ascontiguousarray(C.reshape(M, -1).astype(self.dtype))

    def log_sum(self, C: np.ndarray, tile: int = TILE) -> np.ndarray:  # noqa: N803
        """Per mixture (rows of C): ``sum_t log (C @ P)_t`` in float64, tile by tile."""
        M, n = C.shape[0], self.n_tokens  # noqa: N806
        width = max(16, tile // max(M, 1))
        out = np.empty(width * M, dtype=self.dtype)
        acc = np.zeros(M)
        for j in range(0, n, width):
            w = min(j + width, n) - j
            g = out[: w * M].reshape(w, M)
            np.matmul(self.P[:, j : j + w].T, C.T, out=g)
            np.log(g, out=g)
            acc += g.sum(axis=0, dtype=np.float64)
        return acc

    def loss(self, W) -> np.ndarray:  # noqa: N803
        """(M,) loss in nats per counted token."""
        return -(self.shift + self.log_sum(self.coefficients(W))) / self.n_tokens


class ProbInterpFeatures:
    """MDE feature columns (one per set, as ``MDEFeatureMap``) from :class:`ProbInterpMDE`."""

    def __init__(self, store, eval_sets, *, run_fraction: float = 1.0) -> None:
        budgets = store.require_budgets()
        self.eval_sets = list(eval_sets)
        self.names = [f"mde_budget-prob:{s}" for s in self.eval_sets]
        self._evaluators = [
            ProbInterpMDE(store.eval_sets[s], budgets, run_fraction=run_fraction)
            for s in self.eval_sets
        ]

    @property
    def n_features(self) -> int:
        return len(self.names)

    def transform(self, W) -> np.ndarray:  # noqa: N803
        return np.column_stack([ev.loss(W) for ev in self._evaluators])

    def __call__(self, W) -> np.ndarray:  # noqa: N803
        return self.transform(W)
