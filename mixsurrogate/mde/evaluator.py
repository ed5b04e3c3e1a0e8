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

Computation: float32 GEMMs and a log per 16 folded ratios, exact to ~K ulp
(:mod:`.mde_engine`).

Weights: rows are clipped at ``eps`` (default 1e-12) and renormalised, so the loss is always that
of a point of the simplex and never ``log(0)``. The gradient is that of the scale-invariant
extension ``w -> L(w / sum(w))`` with the clip ignored: exact wherever every ``w_j > eps``,
and at a zero weight it still says whether moving mass onto that expert helps (a clip-aware
zero gradient would pin optimisers to faces of the simplex). Its inner product with ``w`` is 0.
"""

from __future__ import annotations

import numpy as np

from ..cpu import thread_cap
from ..errors import MixsurrogateError, ScoreStoreError
from ..simplex import check_mixtures
from .engine import FOLD_MAX, TILE, blas_single_thread, sum_log_ratios
from .store import EvalSetScores
from .terms import (  # EVIDENCE, LOGP_FLOOR: re-exported, mde's names before the split
    EVIDENCE,  # noqa: F401
    LOGP_FLOOR,  # noqa: F401
    draw_units,
    posterior_terms,
    ratio_stderr,
    token_terms,
)

KINDS = ("token", "bayes", "window")
DEFAULT_EPS = 1e-12


def default_threads() -> int:
    """Workers of the MDE engine: the CPU cap of ``--jobs`` (default: the CPUs this process
    may use, ``cpu.available_cpus``), so the engine's pool stays inside it."""
    return thread_cap()


def check_weights(W, n_experts: int, eps: float = DEFAULT_EPS) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    """Validated mixtures as (M, K) (``simplex.check_mixtures``, one weight per expert in the
    score store's order): the rows floored at ``eps`` and renormalised, and their sums (the
    gradient needs them)."""
    W = check_mixtures(W, n_experts, negative_tolerance=1e-6)  # noqa: N806
    V = np.maximum(W, eps)  # noqa: N806
    s = V.sum(axis=1)
    return V / s[:, None], s


class MDEEvaluator:
    """One evaluation set's MDE loss for batches of mixtures: precompute once, evaluate often.

    ``kind``: ``token``, ``bayes`` or ``window`` (needs ``window`` = h >= 0 positions).
    ``subsample``: None (all), an int (that many units) or a fraction in (0, 1]; units are counted
    tokens for token/window and sequences for bayes (a sequence's terms are not independent).
    ``threads``: workers (default: the CPUs this process may use). ``max_fold``: most ratios
    multiplied before one log (1 = one log per term; only for benchmarking the fold).
    ``tile``: elements per (terms x mixtures) tile (default ``TILE``, see :mod:`.mde_engine`);
    a small tile forces many tiles (tests of the tiling, benchmarks).
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
        logsum = self._run(U, grad=False)[0]
        return -(self._shift_total + logsum) / self.n_tokens

    def loss_and_grad(self, W) -> tuple[np.ndarray, np.ndarray]:
        """(M,) losses and (M, K) gradients w.r.t. the weights (see the module docstring)."""
        U, s = check_weights(W, self.n_experts, self.eps)
        logsum, gsum = self._run(U, grad=True)
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
        with blas_single_thread():  # small GEMMs: a threaded BLAS waking up costs 10-50x
            return ratio_stderr(self._t, U.astype(np.float32), self.n_units_total, self.tile)

    def _run(self, U: np.ndarray, grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        U32 = U.astype(np.float32)
        return sum_log_ratios(self._t, U32, grad, self.threads, self.max_fold, self.tile)


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
