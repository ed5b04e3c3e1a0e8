"""MDE losses of every evaluation set as predictor features, one column per set and kind.

The MDE paper feeds a target's predictor the MDE losses of *all* evaluation sets, so a column
is a fixed, cheap function of the mixture. The expensive part (reading the store, shifting and
exponentiating the log-probs) happens once in the constructor; ``transform`` is then a GEMM and
a few folded logs per set, fast enough for optimiser loops and cross-validation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import MixsurrogateError, ScoreStoreError
from .budget import BudgetMDEEvaluator
from .evaluator import DEFAULT_EPS, MDEEvaluator
from .examples import ExampleFeatureMap
from .store import ScoreStore, load_scores

FEATURE_KINDS = ("token", "bayes", "window", "both", "budget", "budget-bayes")
#: budget-matched kinds (:mod:`.budget`): the store must hold budget snapshots
BUDGET_KINDS = {"budget": "token", "budget-bayes": "bayes"}


class MDEFeatureMap:
    """Columns ordered as ``eval_sets``, then (``kind='both'``) the same sets' posterior kind.

    ``kind``: ``token``, ``bayes``, ``window`` (needs ``window``) or ``both`` = token columns
    followed by bayes columns (windowed ones when ``window`` is given); ``budget`` and
    ``budget-bayes`` are the budget-matched token and bayes losses (:mod:`.budget`: each expert
    at the budget its domain gets, ``run_fraction`` of the experts' full budget; the store must
    hold budget snapshots). ``names`` are ``mde_<kind>:<set>`` (``mde_window<h>:<set>`` for
    windows), so ``eval_sets.index(target)`` is the column of a target's own first-kind MDE.
    """

    def __init__(
        self,
        store: ScoreStore,
        eval_sets: Sequence[str],
        kind: str = "token",
        window: int | None = None,
        *,
        evidence: str = "counted",
        subsample: int | float | None = None,
        seed: int = 0,
        eps: float = DEFAULT_EPS,
        run_fraction: float = 1.0,
    ) -> None:
        if kind not in FEATURE_KINDS:
            raise MixsurrogateError(
                f"unknown MDE feature kind {kind!r}; choose one of {', '.join(FEATURE_KINDS)}"
            )
        eval_sets = store.require_sets(eval_sets)
        if kind in BUDGET_KINDS:
            budgets = store.require_budgets()
            if subsample is not None:
                raise MixsurrogateError("budget-matched MDE features do not subsample")
        if kind == "both":
            kinds = [("token", None), ("window", window) if window is not None else ("bayes", None)]
        elif kind == "window":
            kinds = [("window", window)]
        else:
            kinds = [(kind, window)]
        self.store, self.eval_sets, self.kind, self.window = store, eval_sets, kind, window
        self.experts = list(store.experts)
        self.names: list[str] = []
        self._evaluators: list[MDEEvaluator | BudgetMDEEvaluator] = []
        for k, h in kinds:
            label = k if k != "window" else f"window{h}"
            for name in eval_sets:
                if kind in BUDGET_KINDS:
                    self._evaluators.append(
                        BudgetMDEEvaluator(
                            store.eval_sets[name],
                            budgets,
                            BUDGET_KINDS[kind],
                            evidence=evidence,
                            run_fraction=run_fraction,
                            eps=eps,
                        )
                    )
                    self.names.append(f"mde_{kind}:{name}")
                    continue
                self._evaluators.append(
                    MDEEvaluator(
                        store.eval_sets[name],
                        k,
                        h,
                        evidence=evidence,
                        subsample=subsample,
                        seed=seed,
                        eps=eps,
                    )
                )
                self.names.append(f"mde_{label}:{name}")

    @property
    def n_features(self) -> int:
        return len(self.names)

    def transform(self, W) -> np.ndarray:  # noqa: N803
        """(M, F) MDE losses (nats per token) of mixtures W (M, experts in store order)."""
        return np.column_stack([ev.loss(W) for ev in self._evaluators])

    def __call__(self, W) -> np.ndarray:  # noqa: N803
        return self.transform(W)

    def loss_and_grad(self, W) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """(M, F) losses and (M, F, K) gradients w.r.t. the weights, for zero-run proposals."""
        pairs = [ev.loss_and_grad(W) for ev in self._evaluators]
        return np.column_stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs], axis=1)

    def stderr(self, W) -> np.ndarray:  # noqa: N803
        """(M, F) standard errors of subsampled columns (zeros without subsampling)."""
        return np.column_stack([ev.stderr(W) for ev in self._evaluators])


def log_features(scores: str | None, log, kind: str):
    """MDE features for a runs log's targets from a score store: (feature map, store), or
    (None, None) without a store (``kind='examples'``: an ``ExampleFeatureMap``). The map
    itself is the transform (callable), so fits can read its ``eval_sets`` (each target's own
    column)."""
    if not scores:
        return None, None
    store = load_scores(scores).reordered(log.domains)  # same domains, another order: fine
    store.check_matches_runs(log.domains, log.targets)
    check_eval_ids(store, log)
    if kind == ExampleFeatureMap.kind:  # set-level token columns, then example-level ones
        return ExampleFeatureMap(store, log.targets), store
    return MDEFeatureMap(store, log.targets, kind=kind), store


def check_eval_ids(store: ScoreStore, log) -> None:
    """Every run's ``eval_id`` (where given) must be the store's, not only the first run's: a
    log grown over a change of evaluation suite (a domain added) mixes them."""
    if "eval_id" not in log.frame.columns or not store.eval_id:
        return
    ids = log.frame["eval_id"]
    given = ids.notna() & (ids.astype(str).str.strip() != "")
    other = given & (ids.astype(str) != store.eval_id)
    if other.any():
        first = int(other.to_numpy().argmax())
        raise ScoreStoreError(
            f"{int(other.sum())} run(s) of the runs log (first: {log.run_ids[first]}) were "
            f"evaluated on other sequences or tokenizer (eval_id {ids.iloc[first]}) than the "
            f"score store ({store.eval_id}); re-evaluate them on this store's suite, or empty "
            "their eval_id cells if their sets' sequences are unchanged (e.g. runs from before "
            "a domain was added, same tokenizer)"
        )
