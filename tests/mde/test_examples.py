"""Example-level MDE features against float64 references written from the definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import log_softmax, logsumexp

from mixsurrogate.errors import ScoreStoreError
from mixsurrogate.mde.evaluator import DEFAULT_EPS
from mixsurrogate.mde.examples import (
    ExampleFeatureMap,
    ExampleLayout,
    cluster_examples,
    example_bounds,
    example_losses,
)
from mixsurrogate.mde.features import MDEFeatureMap, log_features
from mixsurrogate.mde.store import EvalSetScores, ScoreStore, write_scores
from mixsurrogate.mde.terms import token_terms

from builders import random_log

K, S, T, V = 3, 40, 20, 30
EXPERTS = ["code", "web", "books"]


def make_set(seed: int, name: str, task: bool = False) -> EvalSetScores:
    """Log-softmax log-probs of random logits; examples lean on different experts; right
    padding holds NaN; task items count only their answer (one answer split in two runs)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(K, S, T, V))
    tokens = rng.integers(0, V, size=(S, T))
    favoured = rng.integers(0, K, size=S)  # each example is some expert's domain
    logp = np.take_along_axis(log_softmax(logits, axis=-1), tokens[None, ..., None], -1)[..., 0]
    logp[favoured, np.arange(S), :] = np.log(rng.uniform(0.2, 0.6, size=(S, T)))
    lengths = rng.integers(T // 2, T + 1, size=S)
    real = np.arange(T)[None, :] < lengths[:, None]
    mask = real.copy()
    if task:
        prompt = rng.integers(2, T // 2 - 2, size=S)
        mask &= np.arange(T)[None, :] >= prompt[:, None]
        mask[0, prompt[0] + 2] = False
        mask[3] = False  # an item with nothing counted: not an example
    logp = np.where(real[None], logp, np.nan).astype(np.float32)
    return EvalSetScores(name, "task" if task else "val", logp, mask)


def make_store() -> ScoreStore:
    sets = {"val_a": make_set(1, "val_a"), "task_b": make_set(2, "task_b", task=True)}
    return ScoreStore(None, EXPERTS, sets, T, "0" * 64, "e" * 64)


def unit_weights(W) -> np.ndarray:
    V_ = np.maximum(np.atleast_2d(np.asarray(W, dtype=float)), DEFAULT_EPS)
    return V_ / V_.sum(axis=1, keepdims=True)


def ref_token_nats(s: EvalSetScores, W) -> list[np.ndarray]:
    """Per mixture, per sequence: the nats of every counted token, in float64."""
    lp = s.logp.astype(np.float64)
    out = []
    for u in unit_weights(W):
        mix = logsumexp(np.where(s.mask[None], lp, 0.0) + np.log(u)[:, None, None], axis=0)
        out.append([-mix[q, s.mask[q]] for q in range(s.mask.shape[0])])
    return out


def ref_example_losses(s, W) -> np.ndarray:
    return np.array([[x.mean() for x in seqs if len(x)] for seqs in ref_token_nats(s, W)])


def ref_rows_loss(s, W, rows) -> np.ndarray:
    return np.array(
        [np.concatenate([seqs[q] for q in rows]).mean() for seqs in ref_token_nats(s, W)]
    )


def mixtures(n: int = 9, seed: int = 3) -> np.ndarray:
    W = np.random.default_rng(seed).dirichlet(np.full(K, 0.6), size=n)  # noqa: N806
    W[0] = [1.0, 0.0, 0.0]  # a vertex: zero weights go through the clip
    return W


@pytest.mark.parametrize("tile", [16, 1 << 20])
def test_per_example_losses_match_float64(tile):
    s, W = make_set(2, "t", task=True), mixtures()  # noqa: N806
    _, start, tokens = example_bounds(s.mask)
    got = example_losses(token_terms(s), start, tokens, unit_weights(W).astype(np.float32), tile)
    np.testing.assert_allclose(got, ref_example_losses(s, W), rtol=2e-6)


def test_feature_columns_match_float64_references():
    store, W = make_store(), mixtures()  # noqa: N806
    fmap = ExampleFeatureMap(store, ["val_a", "task_b"])
    F = fmap(W)  # noqa: N806
    layout = fmap.layout
    assert F.shape == (len(W), 2 * layout.size) == (len(W), fmap.n_features)
    # the first columns are exactly the token map's: every set-level predictor works unchanged
    np.testing.assert_array_equal(F[:, :2], MDEFeatureMap(store, ["val_a", "task_b"])(W))
    for name in ("val_a", "task_b"):
        s = store.eval_sets[name]
        cols = layout.split(fmap.columns_of(name))
        rows, _, _ = example_bounds(s.mask)
        labels = cluster_examples(s, layout.clusters)
        for c, col in enumerate(cols["clusters"]):
            np.testing.assert_allclose(F[:, col], ref_rows_loss(s, W, rows[labels == c]), rtol=2e-6)
        per = ref_example_losses(s, W)
        want = np.quantile(per, layout.quantiles, axis=1).T
        np.testing.assert_allclose(F[:, cols["quantiles"]], want, rtol=2e-6)
        for a, col in zip(layout.powers, cols["powers"], strict=True):
            Wa = W**a / (W**a).sum(axis=1, keepdims=True)  # noqa: N806
            np.testing.assert_allclose(F[:, col], ref_rows_loss(s, Wa, rows), rtol=2e-6)
        # the set's loss is the token-weighted mean of its clusters' losses
        shares = np.array([s.mask[rows[labels == c]].sum() for c in range(layout.clusters)])
        mean = F[:, cols["clusters"]] @ shares / shares.sum()
        np.testing.assert_allclose(mean, F[:, cols["set"][0]], rtol=2e-6)


def test_clusters_come_from_the_store_alone_and_are_deterministic():
    s = make_set(1, "val_a")
    first, again = cluster_examples(s, 4), cluster_examples(s, 4)
    np.testing.assert_array_equal(first, again)
    sizes = np.bincount(first, minlength=4)
    assert list(sizes) == sorted(sizes, reverse=True) and sizes.min() > 0
    assert len(first) == S


def test_names_and_column_sets_follow_the_layout():
    store = make_store()
    fmap = ExampleFeatureMap(store, ["task_b", "val_a"], ExampleLayout(2, (0.5,), (2.0,)))
    assert fmap.column_sets == ["task_b", "val_a"] + ["task_b"] * 4 + ["val_a"] * 4
    assert fmap.names[:2] == ["mde_token:task_b", "mde_token:val_a"]
    assert fmap.names[2:6] == [
        f"mde_{r}:task_b" for r in ("cluster0", "cluster1", "q0.5", "power2")
    ]
    assert fmap.columns_of("val_a") == [1, 6, 7, 8, 9]


def test_fewer_examples_than_clusters_is_one_clear_error():
    s = make_set(1, "tiny")
    s = EvalSetScores("tiny", "val", s.logp[:, :3], s.mask[:3])
    store = ScoreStore(None, EXPERTS, {"tiny": s}, T, "0" * 64, "e" * 64)
    with pytest.raises(ScoreStoreError) as err:
        ExampleFeatureMap(store, ["tiny"])
    assert "'tiny' has 3 distinct examples, fewer than the 4 example clusters" in str(err.value)
    assert "\n" not in str(err.value)


def test_log_features_builds_the_examples_map(tmp_path):
    store = make_store()
    path = write_scores(tmp_path / "scores", EXPERTS, store.eval_sets, T, "0" * 64, "e" * 64)
    log = random_log(EXPERTS, ["val_a", "task_b"], n=6)
    fmap, _ = log_features(str(path), log, "examples")
    assert isinstance(fmap, ExampleFeatureMap) and fmap.eval_sets == log.targets
    np.testing.assert_allclose(fmap(log.W), ExampleFeatureMap(store, log.targets)(log.W), rtol=1e-6)
