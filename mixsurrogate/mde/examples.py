"""Example-level, target-specific MDE features: what the set-level MDE loss averages away.

A set-level MDE column is one number per mixture: the mean over every counted token of
``-log sum_i w_i p_i``. Examples (task items, validation windows) differ in which expert
explains them, and a model trained on a mixture need not weight them as the ensemble does, so
each evaluation set also gets a few columns a regressor can weight (target-specific: each set's
own columns, see :class:`ExampleLayout`):

* ``cluster<c>``: the MDE loss (token-weighted, like the set's) of the examples in cluster
  ``c``. Examples are clustered once, from the score store alone (never from runs), by
  k-means with a fixed seed on their *centred* expert loss profile (each expert's mean nats
  on the example minus the example's mean over experts: which expert explains it, not how
  hard it is). The set-level loss is the token-weighted mean of its clusters' losses.
* ``q<level>``: quantiles over examples of the per-example MDE loss (nats per token of each
  example), exact per example: one float32 GEMM per chunk of examples, float64 logs.
* ``power<a>``: the set's MDE loss at the tempered mixture ``w^a / sum_j w_j^a`` (``a < 1``
  flattens the mixture, ``a > 1`` sharpens it); which ``a`` fits is left to the predictor,
  chosen on its training runs.

Column order: the ``token`` MDE loss of every set first (as ``MDEFeatureMap(kind='token')``,
so every set-level predictor and ``target_feature`` work unchanged), then each set's example
columns in ``ExampleLayout.roles()`` order. ``column_sets`` names each column's set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from ..errors import MixsurrogateError, ScoreStoreError
from .engine import TILE, blas_single_thread
from .evaluator import DEFAULT_EPS, MDEEvaluator, check_weights
from .store import EvalSetScores, ScoreStore
from .terms import LossTerms, token_terms

#: pre-registered defaults (fixed before any benchmark ran)
CLUSTERS = 4
QUANTILES = (0.1, 0.5, 0.9)
POWERS = (0.5, 0.75, 1.5, 2.0)
CLUSTER_SEED = 0


@dataclass(frozen=True)
class ExampleLayout:
    """A set's own columns: its set-level token MDE loss, then clusters, quantiles, powers."""

    clusters: int = CLUSTERS
    quantiles: tuple[float, ...] = QUANTILES
    powers: tuple[float, ...] = POWERS

    def roles(self) -> list[str]:
        """Names of a set's columns after its set-level one, in column order."""
        return (
            [f"cluster{c}" for c in range(self.clusters)]
            + [f"q{q:g}" for q in self.quantiles]
            + [f"power{a:g}" for a in self.powers]
        )

    @property
    def size(self) -> int:
        """Columns per set, the set-level one included."""
        return 1 + len(self.roles())

    def split(self, columns: Sequence[int]) -> dict[str, list[int]]:
        """A set's columns (set-level first) by role: ``set``, ``clusters``, ``quantiles``,
        ``powers``; a wrong count is one clear error (the features are not this layout's)."""
        columns = list(columns)
        if len(columns) != self.size:
            raise MixsurrogateError(
                f"example-level MDE needs {self.size} feature columns per evaluation set "
                f"(--mde-kind examples), got {len(columns)}"
            )
        m, q = self.clusters, len(self.quantiles)
        return {
            "set": columns[:1],
            "clusters": columns[1 : 1 + m],
            "quantiles": columns[1 + m : 1 + m + q],
            "powers": columns[1 + m + q :],
        }


def example_bounds(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Examples = sequences with a counted token: (their rows, term offsets into the set's
    counted tokens in row-major order, counted tokens each)."""
    counts = np.asarray(mask, dtype=bool).sum(axis=1)
    rows = np.flatnonzero(counts)
    tokens = counts[rows].astype(np.int64)
    return rows, np.concatenate([[0], np.cumsum(tokens)]), tokens


def expert_profiles(scores: EvalSetScores) -> np.ndarray:
    """(examples, experts) float64: each expert's mean nats per counted token of each example."""
    mask = np.asarray(scores.mask, dtype=bool)
    rows, start, tokens = example_bounds(mask)
    nats = -np.asarray(scores.logp[:, mask], dtype=np.float64)  # (K, counted), row-major
    return (np.add.reduceat(nats, start[:-1], axis=1) / tokens).T


def cluster_examples(
    scores: EvalSetScores, n_clusters: int, seed: int = CLUSTER_SEED
) -> np.ndarray:
    """Cluster label of each example (``example_bounds`` order), from the experts alone.

    k-means (``n_init=10``, fixed seed) on the centred profiles; labels renumbered by cluster
    size (largest first, ties by first example) so the columns do not depend on k-means' own
    numbering.
    """
    profiles = expert_profiles(scores)
    if not np.isfinite(profiles).all():
        raise ScoreStoreError(f"evaluation set {scores.name!r}: non-finite counted log-probs")
    centred = profiles - profiles.mean(axis=1, keepdims=True)
    distinct = len(np.unique(np.round(centred, 12), axis=0))
    if distinct < n_clusters:
        raise ScoreStoreError(
            f"evaluation set {scores.name!r} has {distinct} distinct examples, "
            f"fewer than the {n_clusters} example clusters asked for"
        )
    labels = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(centred)
    sizes = np.bincount(labels, minlength=n_clusters)
    first = np.array([np.flatnonzero(labels == c)[0] for c in range(n_clusters)])
    order = np.lexsort((first, -sizes))
    return np.argsort(order)[labels]


def subset_scores(scores: EvalSetScores, rows: np.ndarray, label: str) -> EvalSetScores:
    """The same set restricted to some sequences (its own MDE loss is exact on them)."""
    return EvalSetScores(
        f"{scores.name}[{label}]", scores.kind, scores.logp[:, rows], scores.mask[rows]
    )


def example_losses(
    terms: LossTerms, start: np.ndarray, tokens: np.ndarray, U: np.ndarray, tile: int = TILE
) -> np.ndarray:
    """(M, examples) token-level MDE loss of each example (nats per counted token).

    ``terms``: the set's token terms (one per counted token, row-major), ``start``: example
    term offsets, ``U``: (M, K) float32 mixtures. Chunks of whole examples of about ``tile``
    elements: one float32 GEMM (positive sums, no cancellation), float64 logs.
    """
    M, E = U.shape[0], len(tokens)
    out = np.empty((M, E))
    step = max(1, tile // max(M, 1))
    e0 = 0
    with blas_single_thread():  # small GEMMs: a threaded BLAS waking up costs more
        while e0 < E:
            e1 = int(np.searchsorted(start, start[e0] + step, side="right")) - 1
            e1 = min(max(e1, e0 + 1), E)
            j0, j1 = int(start[e0]), int(start[e1])
            g = np.log((U @ terms.num[:, j0:j1]).astype(np.float64))
            nats = -(g + terms.shift[j0:j1])
            out[:, e0:e1] = np.add.reduceat(nats, start[e0:e1] - j0, axis=1) / tokens[e0:e1]
            e0 = e1
    return out


def tempered(W, power: float) -> np.ndarray:  # noqa: N803
    """Rows ``w^a / sum_j w_j^a`` (zero weights stay zero; the evaluator clips them)."""
    V = np.maximum(np.asarray(W, dtype=float), 0.0) ** power  # noqa: N806
    return V / V.sum(axis=1, keepdims=True)


class SetExamples:
    """One evaluation set's example-level columns (``ExampleLayout.roles()`` order)."""

    def __init__(self, scores: EvalSetScores, layout: ExampleLayout, seed: int, eps: float):
        self.name, self.layout, self.eps = scores.name, layout, eps
        self.n_experts = int(scores.logp.shape[0])
        mask = np.asarray(scores.mask, dtype=bool)
        rows, self.start, self.tokens = example_bounds(mask)
        self.token = MDEEvaluator(scores, "token", eps=eps)
        self.terms = token_terms(scores)
        self.clusters: list[MDEEvaluator] = []
        self.labels = np.zeros(0, dtype=int)
        if layout.clusters:
            self.labels = cluster_examples(scores, layout.clusters, seed)
            self.clusters = [
                MDEEvaluator(subset_scores(scores, rows[self.labels == c], f"cluster{c}"), eps=eps)
                for c in range(layout.clusters)
            ]

    def transform(self, W) -> np.ndarray:  # noqa: N803
        """(M, len(roles)) columns for mixtures W."""
        cols = [ev.loss(W) for ev in self.clusters]
        if self.layout.quantiles:
            U, _ = check_weights(W, self.n_experts, self.eps)
            per = example_losses(self.terms, self.start, self.tokens, U.astype(np.float32))
            cols += list(np.quantile(per, self.layout.quantiles, axis=1))
        cols += [self.token.loss(tempered(W, a)) for a in self.layout.powers]
        return np.column_stack(cols) if cols else np.empty((len(np.atleast_2d(W)), 0))


class ExampleFeatureMap:
    """Set-level token MDE of every set, then each set's example-level columns.

    ``eval_sets`` and the first ``len(eval_sets)`` columns are those of
    ``MDEFeatureMap(kind='token')``; ``column_sets`` names every column's set, so a
    multi-target fit hands each target all its own columns (``target_columns``).
    """

    kind = "examples"

    def __init__(
        self,
        store: ScoreStore,
        eval_sets: Sequence[str],
        layout: ExampleLayout | None = None,
        *,
        seed: int = CLUSTER_SEED,
        eps: float = DEFAULT_EPS,
    ) -> None:
        eval_sets = store.require_sets(eval_sets)
        self.store, self.eval_sets = store, eval_sets
        self.layout = layout or ExampleLayout()
        self.experts = list(store.experts)
        self._sets = [SetExamples(store.eval_sets[n], self.layout, seed, eps) for n in eval_sets]
        roles = self.layout.roles()
        self.names = [f"mde_token:{n}" for n in eval_sets]
        self.names += [f"mde_{r}:{n}" for n in eval_sets for r in roles]
        self.column_sets = eval_sets + [n for n in eval_sets for _ in roles]

    @property
    def n_features(self) -> int:
        return len(self.names)

    def columns_of(self, name: str) -> list[int]:
        """The columns of one set, its set-level one first (``ExampleLayout.split`` order)."""
        return [c for c, s in enumerate(self.column_sets) if s == name]

    def transform(self, W) -> np.ndarray:  # noqa: N803
        """(M, F) features of mixtures W (M, experts in store order)."""
        own = [s.token.loss(W) for s in self._sets]
        return np.column_stack(own + [s.transform(W) for s in self._sets])

    def __call__(self, W) -> np.ndarray:  # noqa: N803
        return self.transform(W)
