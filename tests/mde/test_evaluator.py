"""MDE losses against brute-force float64 references written straight from the definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax, logsumexp

from mixsurrogate.errors import MixsurrogateError, ScoreStoreError
from mixsurrogate.mde import engine as mde_engine
from mixsurrogate.mde import evaluator as mde
from mixsurrogate.mde.evaluator import (
    MDEEvaluator,
    sequence_mde_loss,
    token_mde_loss,
    windowed_mde_loss,
)
from mixsurrogate.mde.features import MDEFeatureMap
from mixsurrogate.mde.store import EvalSetScores, load_scores, write_scores

K, S, T, V = 3, 7, 24, 40


def make_set(seed: int = 0, name: str = "val_a", task: bool = False, extreme: bool = False):
    """Realistic log-probs (log-softmax of random logits, gathered); right padding holds NaN."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(K, S, T, V)) + rng.normal(size=(K, 1, 1, V))
    tokens = rng.integers(0, V, size=(S, T))
    logp = np.take_along_axis(log_softmax(logits, axis=-1), tokens[None, ..., None], -1)[..., 0]
    lengths = rng.integers(T // 2, T + 1, size=S)
    real = np.arange(T)[None, :] < lengths[:, None]
    mask = real.copy()
    if task:  # prompt tokens do not count; one item has its answer split in two runs
        prompt = rng.integers(2, T // 2 - 2, size=S)
        mask &= np.arange(T)[None, :] >= prompt[:, None]
        mask[0, prompt[0] + 2] = False
    if extreme:
        logp[rng.random(logp.shape) < 0.15] = -80.0
        logp[0, 1, :] = -80.0
    logp = np.where(real[None], logp, np.nan).astype(np.float32)
    return EvalSetScores(name, "task" if task else "val", logp, mask)


def unit_weights(W, eps=mde.DEFAULT_EPS):
    V_ = np.maximum(np.atleast_2d(np.asarray(W, dtype=float)), eps)
    return V_ / V_.sum(axis=1, keepdims=True)


def ref_token(s: EvalSetScores, W) -> np.ndarray:
    lp = s.logp[:, s.mask].astype(np.float64)
    return np.array([-logsumexp(lp + np.log(u)[:, None], axis=0).mean() for u in unit_weights(W)])


def ref_posterior(s: EvalSetScores, W, window=None, evidence=None) -> np.ndarray:
    """Per counted token: experts weighted by their posterior on the evidence in the window."""
    ev = s.mask if evidence is None else evidence
    lp = s.logp.astype(np.float64)
    logu = np.log(unit_weights(W))  # (M, K)
    nats = np.zeros(len(logu))
    for q in range(s.mask.shape[0]):
        for t in np.nonzero(s.mask[q])[0]:
            lo = 0 if window is None else max(t - window, 0)
            used = [tau for tau in range(lo, t) if ev[q, tau]]
            a = logu + lp[:, q, used].sum(axis=1)
            nats -= logsumexp(a + lp[:, q, t], axis=1) - logsumexp(a, axis=1)
    return nats / s.mask.sum()


def ref_bayes_counted(s: EvalSetScores, W) -> np.ndarray:
    """The telescoped form: -log sum_i u_i exp(sum_t logp_i) per sequence, over total tokens."""
    lp = np.where(s.mask[None], s.logp.astype(np.float64), 0.0).sum(axis=2)  # (K, S)
    keep = s.mask.any(axis=1)
    return np.array(
        [
            -logsumexp(lp[:, keep] + np.log(u)[:, None], axis=0).sum() / s.mask.sum()
            for u in unit_weights(W)
        ]
    )


def prefix_evidence(s: EvalSetScores) -> np.ndarray:
    last = np.array([np.nonzero(r)[0].max() if r.any() else -1 for r in s.mask])
    return np.arange(s.mask.shape[1])[None, :] <= last[:, None]


@pytest.fixture(scope="module")
def mixtures():
    rng = np.random.default_rng(1)
    W = rng.dirichlet(np.ones(K) * 0.7, size=20)
    W[0] = [1.0, 0.0, 0.0]  # a vertex
    W[1] = [0.0, 0.3, 0.7]  # a face
    W[2] = [1e-9, 0.5, 0.5 - 1e-9]  # below the clip
    return W


@pytest.mark.parametrize("task", [False, True])
@pytest.mark.parametrize("extreme", [False, True])
def test_all_kinds_match_float64_references(task, extreme, mixtures):
    s = make_set(3, task=task, extreme=extreme)
    np.testing.assert_allclose(token_mde_loss(s, mixtures), ref_token(s, mixtures), atol=1e-5)
    bayes = sequence_mde_loss(s, mixtures)
    np.testing.assert_allclose(bayes, ref_bayes_counted(s, mixtures), atol=1e-5)
    np.testing.assert_allclose(bayes, ref_posterior(s, mixtures), atol=1e-5)
    win = windowed_mde_loss(s, mixtures, 3)
    np.testing.assert_allclose(win, ref_posterior(s, mixtures, window=3), atol=1e-5)
    assert np.isfinite(bayes).all() and np.isfinite(win).all()


def test_prefix_evidence_uses_prompt_tokens(mixtures):
    s = make_set(4, task=True)
    ev = prefix_evidence(s)
    got = sequence_mde_loss(s, mixtures, evidence="prefix")
    np.testing.assert_allclose(got, ref_posterior(s, mixtures, evidence=ev), atol=1e-5)
    got = windowed_mde_loss(s, mixtures, 5, evidence="prefix")
    np.testing.assert_allclose(got, ref_posterior(s, mixtures, 5, evidence=ev), atol=1e-5)
    # the prompt is real evidence: it moves the loss
    assert np.abs(got - windowed_mde_loss(s, mixtures, 5)).max() > 1e-3


def test_window_limits(mixtures):
    s = make_set(5, task=True)
    np.testing.assert_allclose(
        windowed_mde_loss(s, mixtures, 0), token_mde_loss(s, mixtures), atol=1e-6
    )
    for ev in ("counted", "prefix"):
        np.testing.assert_allclose(
            windowed_mde_loss(s, mixtures, T, evidence=ev),
            sequence_mde_loss(s, mixtures, evidence=ev),
            atol=1e-5,
        )


def test_vertex_is_the_experts_own_nll():
    s = make_set(6)
    own = -s.token_logp().astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(token_mde_loss(s, np.eye(K)), own, atol=1e-5)
    # and a sharper mixture never loses to the average of its experts (Jensen)
    u = np.full(K, 1 / K)
    assert token_mde_loss(s, u)[0] <= own.mean() + 1e-6


def test_folding_and_threads_keep_float64_accuracy(monkeypatch):
    """Many tiles, deep folds, unfolded tails and two threads: still within 1e-5 nats."""
    rng = np.random.default_rng(7)
    shape = (8, 131)  # 1048 tokens: not a multiple of the fold
    logp = np.log(rng.dirichlet(np.ones(K) * 0.3, size=shape).transpose(2, 0, 1) + 1e-30)
    s = EvalSetScores("big", "val", logp.astype(np.float32), np.ones(shape, bool))
    W = np.vstack([rng.dirichlet(np.ones(K), size=300), np.eye(K)])
    monkeypatch.setattr(mde_engine, "PARALLEL_MIN", 1)
    tiny = 1 << 12
    got = MDEEvaluator(s, threads=2, tile=tiny).loss(W)
    np.testing.assert_allclose(got, ref_token(s, W), atol=1e-5)
    ev = MDEEvaluator(s, "window", 3, threads=2, tile=tiny)
    loss, grad = ev.loss_and_grad(W)
    np.testing.assert_allclose(loss, ref_posterior(s, W, window=3), atol=1e-5)
    np.testing.assert_allclose(ev.loss(W), loss, atol=1e-6)
    plain = MDEEvaluator(s, "window", 3, threads=1, max_fold=1, tile=tiny)
    np.testing.assert_allclose(plain.loss_and_grad(W)[1], grad, atol=1e-5, rtol=1e-5)
    assert mde_engine.fold_depth(0.2) == 16 and mde_engine.fold_depth(1e-12) == 2


def test_long_set_few_mixtures_keeps_float64_accuracy():
    """Default tiles over 2^18 tokens and 2 mixtures: long tile columns, summed in short runs."""
    rng = np.random.default_rng(3)
    shape = (256, 1024)
    logp = np.log(rng.dirichlet(np.ones(K), size=shape).transpose(2, 0, 1))
    s = EvalSetScores("long", "val", logp.astype(np.float32), np.ones(shape, bool))
    W = rng.dirichlet(np.ones(K), size=2)
    np.testing.assert_allclose(MDEEvaluator(s, threads=1).loss(W), ref_token(s, W), atol=1e-7)


@pytest.mark.parametrize(("kind", "window"), [("token", None), ("bayes", None), ("window", 4)])
def test_gradient_matches_finite_differences(kind, window):
    s = make_set(8, task=True, extreme=True)
    rng = np.random.default_rng(9)
    W = rng.dirichlet(np.ones(K), size=4)
    ev = MDEEvaluator(s, kind, window)
    loss, grad = ev.loss_and_grad(W)
    np.testing.assert_allclose(loss, ev.loss(W), atol=1e-6)
    assert grad.shape == W.shape
    np.testing.assert_allclose((W * grad).sum(axis=1), 0.0, atol=1e-6)  # scale invariance

    def ref(Wx):
        return ref_token(s, Wx) if kind == "token" else ref_posterior(s, Wx, window)

    h = 1e-6
    fd = np.empty_like(W)
    for j in range(K):
        E = np.zeros_like(W)
        E[:, j] = h
        fd[:, j] = (ref(W + E) - ref(W - E)) / (2 * h)
    np.testing.assert_allclose(grad, fd, atol=2e-5, rtol=1e-4)
    # our own float32 loss agrees with its gradient too (coarser step: float32 noise)
    d = rng.normal(size=W.shape) * 3e-4
    slope = (ev.loss(W + d) - ev.loss(W - d)) / 2
    np.testing.assert_allclose(slope, (grad * d).sum(axis=1), atol=1e-6, rtol=2e-3)


def test_gradient_at_a_face_points_inward():
    s = make_set(10)
    _, g = MDEEvaluator(s).loss_and_grad([0.0, 0.5, 0.5])
    assert np.isfinite(g).all() and abs(g[0, 0]) > 0  # not the clip's zero derivative


@pytest.mark.parametrize(("kind", "window"), [("token", None), ("bayes", None), ("window", 2)])
def test_subsample_estimate_and_stderr(kind, window):
    rng = np.random.default_rng(11)
    s = EvalSetScores(
        "sub",
        "val",
        np.log(rng.dirichlet(np.ones(K), size=(60, 30)).transpose(2, 0, 1)).astype(np.float32),
        rng.random((60, 30)) < 0.9,
    )
    W = rng.dirichlet(np.ones(K), size=3)
    full = MDEEvaluator(s, kind, window).loss(W)
    assert (MDEEvaluator(s, kind, window).stderr(W) == 0).all()
    frac = 0.3
    est, se = [], []
    for seed in range(30):
        ev = MDEEvaluator(s, kind, window, subsample=frac, seed=seed)
        est.append(ev.loss(W))
        se.append(ev.stderr(W))
    est, se = np.array(est), np.array(se)
    assert (se > 0).all()
    assert (np.abs(est - full) < 4 * se).mean() > 0.95
    # the stderr is calibrated: close to the spread of estimates over seeds
    ratio = est.std(axis=0) / se.mean(axis=0)
    assert ((ratio > 0.6) & (ratio < 1.6)).all(), ratio


def test_bad_input_is_one_clear_error():
    s = make_set(12)
    with pytest.raises(MixsurrogateError, match="expected \\(mixtures, 3\\)"):
        token_mde_loss(s, np.ones((2, 4)) / 4)
    with pytest.raises(MixsurrogateError, match="weight 0 is negative"):
        token_mde_loss(s, [-0.5, 1.0, 0.5])
    with pytest.raises(MixsurrogateError, match="window"):
        MDEEvaluator(s, "window")
    with pytest.raises(MixsurrogateError, match="unknown MDE kind"):
        MDEEvaluator(s, "tokens")
    with pytest.raises(MixsurrogateError, match="tile must be an integer >= 16"):
        MDEEvaluator(s, tile=8)
    bad = EvalSetScores("bad", "val", s.logp.copy(), s.mask)
    bad.logp[1, 0, 0] = np.nan
    with pytest.raises(ScoreStoreError, match="NaN"):
        token_mde_loss(bad, [1 / 3] * 3)
    empty = EvalSetScores("empty", "val", s.logp, np.zeros_like(s.mask))
    with pytest.raises(ScoreStoreError, match="no counted tokens"):
        MDEEvaluator(empty)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    sets = {"val_a": make_set(13), "arc": make_set(14, name="arc", task=True)}
    path = tmp_path_factory.mktemp("scores") / "store"
    write_scores(path, ["code", "web", "books"], sets, T, "sha", "eval1")
    return load_scores(path)


@pytest.mark.parametrize("kind", ["token", "bayes", "both"])
def test_feature_map_shapes_and_order(store, kind, mixtures):
    sets = ["arc", "val_a"]
    fmap = MDEFeatureMap(store, sets, kind=kind)
    X = fmap.transform(mixtures)
    F = 2 * len(sets) if kind == "both" else len(sets)
    assert X.shape == (len(mixtures), F) and len(fmap.names) == F
    first = "bayes" if kind == "bayes" else "token"
    for j, name in enumerate(sets):
        assert fmap.names[j] == f"mde_{first}:{name}"
        ref = ref_token if first == "token" else ref_bayes_counted
        np.testing.assert_allclose(X[:, j], ref(store.eval_sets[name], mixtures), atol=1e-5)
    if kind == "both":
        assert fmap.names[len(sets) :] == [f"mde_bayes:{n}" for n in sets]
    L, G = fmap.loss_and_grad(mixtures[:4])
    np.testing.assert_allclose(L, X[:4], atol=1e-6)
    assert G.shape == (4, F, K)


def test_feature_map_rejects_unknown_sets(store):
    with pytest.raises(ScoreStoreError, match="val_a"):
        MDEFeatureMap(store, ["nope"])


def test_feature_map_window_columns(store, mixtures):
    fmap = MDEFeatureMap(store, ["val_a"], kind="both", window=4, evidence="prefix")
    assert fmap.names == ["mde_token:val_a", "mde_window4:val_a"]
    s = store.eval_sets["val_a"]
    X = fmap.transform(mixtures[:5])
    np.testing.assert_allclose(
        X[:, 1], ref_posterior(s, mixtures[:5], 4, prefix_evidence(s)), atol=1e-5
    )
