"""Budget-matched MDE (issue 21): the engine against a float64 reference written with loops,
its gradient against finite differences, and stores with and without budgets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixsurrogate.errors import ScoreStoreError
from mixsurrogate.mde.budget import BudgetMDEEvaluator, budget_brackets
from mixsurrogate.mde.evaluator import MDEEvaluator
from mixsurrogate.mde.store import Budget, EvalSetScores

FRACTIONS = (0.125, 0.25, 0.5, 1.0)
BUDGETS = tuple(Budget(f, int(f * 4096)) for f in FRACTIONS)


def budget_scores(K=3, S=5, T=9, seed=0, name="val") -> EvalSetScores:  # noqa: N803
    """Log-probs that improve with the budget (plus noise), one array per budget."""
    rng = np.random.default_rng(seed)
    full = -rng.gamma(2.0, 1.0, size=(K, S, T))
    arrays = [full - (1 - f) * rng.gamma(1.5, 0.6, size=full.shape) for f in FRACTIONS]
    mask = rng.random((S, T)) < 0.8
    mask[:, 0] = True
    return EvalSetScores(
        name,
        "val",
        arrays[-1].astype(np.float32),
        mask,
        tuple(a.astype(np.float32) for a in arrays[:-1]),
    )


def reference_logp(scores: EvalSetScores, u: np.ndarray, run_fraction: float) -> list[np.ndarray]:
    """Per expert, its float64 (S, T) log-probs at budget u_i * run_fraction, by plain loops."""
    out = []
    logs = [math.log(f) for f in FRACTIONS]
    for i, ui in enumerate(u):
        b = math.log(ui * run_fraction)
        snap = [np.asarray(scores.logp_at(k)[i], dtype=np.float64) for k in range(len(FRACTIONS))]
        if b <= logs[0]:
            out.append(snap[0])
            continue
        if b >= logs[-1]:
            out.append(snap[-1])
            continue
        k = max(j for j in range(len(logs) - 1) if logs[j] <= b)
        a = (b - logs[k]) / (logs[k + 1] - logs[k])
        out.append((1 - a) * snap[k] + a * snap[k + 1])
    return out


def reference_loss(scores, w, kind="token", run_fraction=1.0, eps=1e-12) -> float:
    u = np.maximum(np.asarray(w, dtype=np.float64), eps)
    u = u / u.sum()
    lp = reference_logp(scores, u, run_fraction)
    mask = scores.mask
    total, tokens = 0.0, 0
    for s in range(mask.shape[0]):
        if kind == "token":
            for t in range(mask.shape[1]):
                if mask[s, t]:
                    total -= math.log(sum(u[i] * math.exp(lp[i][s, t]) for i in range(len(u))))
                    tokens += 1
        else:  # bayes with counted evidence: runs of counted tokens telescope
            t = 0
            while t < mask.shape[1]:
                if not mask[s, t]:
                    t += 1
                    continue
                a = t
                while t < mask.shape[1] and mask[s, t]:
                    t += 1
                sums = [
                    lp[i][s, a:t].sum() + lp[i][s, :a][mask[s, :a]].sum() for i in range(len(u))
                ]
                before = [lp[i][s, :a][mask[s, :a]].sum() for i in range(len(u))]
                total -= math.log(sum(u[i] * math.exp(sums[i]) for i in range(len(u))))
                total += math.log(sum(u[i] * math.exp(before[i]) for i in range(len(u))))
                tokens += t - a
    return total / tokens


def mixtures(M=12, K=3, seed=1):  # noqa: N803
    """Random mixtures whose log-weights stay clear of the snapshot fractions (the kinks)."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < M:
        w = rng.dirichlet(np.ones(K))
        if min(abs(math.log(x) - math.log(f)) for x in w for f in FRACTIONS) > 1e-3:
            out.append(w)
    return np.array(out)


@pytest.mark.parametrize("kind", ["token", "bayes"])
@pytest.mark.parametrize("run_fraction", [1.0, 0.5, 3.0])
def test_budget_mde_matches_float64_reference(kind, run_fraction):
    scores = budget_scores()
    W = mixtures()  # noqa: N806
    W[0] = [1.0, 0.0, 0.0]  # a zero weight (clamped to the smallest snapshot)
    W[1] = [0.01, 0.02, 0.97]  # below the smallest fraction
    ev = BudgetMDEEvaluator(scores, BUDGETS, kind, run_fraction=run_fraction, tile=64)
    expected = [reference_loss(scores, w, kind, run_fraction) for w in W]
    np.testing.assert_allclose(ev.loss(W), expected, rtol=2e-6, atol=0)


@pytest.mark.parametrize("kind", ["token", "bayes"])
def test_budget_mde_gradient_matches_finite_differences(kind):
    """The gradient includes the budget term (the interpolation weight depends on w)."""
    scores = budget_scores(seed=3)
    W = mixtures(M=6, seed=4)  # noqa: N806
    loss, grad = BudgetMDEEvaluator(scores, BUDGETS, kind).loss_and_grad(W)
    h = 1e-6
    for m, w in enumerate(W):
        fd = np.empty(len(w))
        for j in range(len(w)):
            up, down = w.copy(), w.copy()
            up[j] += h
            down[j] -= h
            fd[j] = (reference_loss(scores, up, kind) - reference_loss(scores, down, kind)) / (
                2 * h
            )
        np.testing.assert_allclose(grad[m], fd, rtol=2e-4, atol=2e-6)
        assert abs(grad[m] @ w) < 1e-9  # scale-invariant extension
    # without the budget term the gradient is plainly wrong: the test can tell
    assert np.abs(grad).max() > 1e-3


def test_budget_term_matters_in_gradient():
    """Snapshots that differ make d/dw differ from the gradient at frozen budgets."""
    scores = budget_scores(seed=5)
    w = np.array([[0.35, 0.2, 0.45]])  # every budget inside a bracket
    ev = BudgetMDEEvaluator(scores, BUDGETS)
    _, grad = ev.loss_and_grad(w)
    U = w / w.sum()  # noqa: N806
    lo, a, slope = budget_brackets(U, np.array(FRACTIONS), 1.0)
    assert (slope > 0).all() and ((a > 0) & (a < 1)).all()
    frozen = EvalSetScores(
        "frozen",
        "val",
        np.stack(reference_logp(scores, U[0], 1.0)).astype(np.float32),
        scores.mask,
    )
    _, plain = MDEEvaluator(frozen).loss_and_grad(w)
    assert np.abs(grad - plain).max() > 1e-2
    np.testing.assert_allclose(ev.loss(w), MDEEvaluator(frozen).loss(w), rtol=1e-6)


def test_equal_snapshots_give_plain_mde():
    scores = budget_scores()
    same = EvalSetScores("val", "val", scores.logp, scores.mask, (scores.logp,) * 3)
    W = mixtures()  # noqa: N806
    for kind in ("token", "bayes"):
        b = BudgetMDEEvaluator(same, BUDGETS, kind).loss_and_grad(W)
        p = MDEEvaluator(same, kind).loss_and_grad(W)
        np.testing.assert_allclose(b[0], p[0], rtol=1e-6)
        np.testing.assert_allclose(b[1], p[1], rtol=1e-4, atol=1e-7)


def test_windowed_budget_mde_between_token_and_bayes():
    scores = budget_scores()
    W = mixtures(M=3)  # noqa: N806
    zero = BudgetMDEEvaluator(scores, BUDGETS, "window", 0).loss(W)
    full = BudgetMDEEvaluator(scores, BUDGETS, "window", 99).loss(W)
    np.testing.assert_allclose(zero, BudgetMDEEvaluator(scores, BUDGETS).loss(W), rtol=1e-6)
    np.testing.assert_allclose(
        full, BudgetMDEEvaluator(scores, BUDGETS, "bayes").loss(W), rtol=1e-5
    )


def test_scores_without_snapshots_are_refused():
    scores = budget_scores()
    plain = EvalSetScores("val", "val", scores.logp, scores.mask)
    with pytest.raises(ScoreStoreError, match="0 budget snapshots for 4 budgets"):
        BudgetMDEEvaluator(plain, BUDGETS)
