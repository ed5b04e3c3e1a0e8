"""``mde-ex``: example-level MDE columns weighted on the training runs only."""

from __future__ import annotations

import numpy as np
import pytest

from mixsurrogate.mde.examples import ExampleLayout
from mixsurrogate.predictors import make_predictor
from mixsurrogate.predictors.mde_examples import penalised_fit
from mixsurrogate.predictors.multitarget import MultiTargetPredictor

LAYOUT = ExampleLayout()
TARGETS = ["a", "b"]
SETS = TARGETS + [t for t in TARGETS for _ in LAYOUT.roles()]


def world(n: int, seed: int = 0):
    """Features laid out as an ``ExampleFeatureMap`` over two sets; set ``a``'s loss follows
    its first cluster column (what the set-level loss averages away), ``b``'s its own MDE."""
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(3), size=n)  # noqa: N806
    F = rng.normal(size=(n, len(SETS)))  # noqa: N806
    a_cols = LAYOUT.split([c for c, s in enumerate(SETS) if s == "a"])
    F[:, 0] = F[:, a_cols["clusters"]].mean(axis=1)  # the set-level loss: the clusters' mean
    y_a = 2.0 + 1.5 * F[:, a_cols["clusters"][0]] + 0.01 * rng.normal(size=n)
    y_b = 1.0 + 0.8 * F[:, 1] + 0.01 * rng.normal(size=n)
    return W, np.column_stack([y_a, y_b]), F


def fit(variant: str, n: int = 40, name: str = "mde-ex"):
    W, Y, F = world(n)  # noqa: N806
    params = {"variant": variant} if name == "mde-ex" else {}
    model = MultiTargetPredictor(name, params).fit(W, Y, TARGETS, ["x", "y", "z"], F, SETS)
    return model


def test_each_target_gets_its_own_columns():
    model = fit("auto")
    assert model.members_["a"].target_feature == 0
    assert model.members_["a"].target_columns == [c for c, s in enumerate(SETS) if s == "a"]
    assert model.members_["b"].target_columns[0] == 1


def test_set_variant_is_mde_cal():
    W, _, F = world(30, seed=1)  # noqa: N806
    got = fit("set").predict(W, F)
    want = fit("set", name="mde-cal").predict(W, F)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_auto_finds_the_cluster_signal_and_keeps_plain_mde_where_it_suffices():
    model = fit("auto")
    assert model.members_["a"].choice_.label.startswith("clusters")
    assert model.notes_["a"][-1] == "chose clusters"
    W, Y, F = world(60, seed=5)  # noqa: N806 - new runs: held out from the fit
    err_ex = np.abs(model.predict(W, F)[:, 0] - Y[:, 0]).mean()
    err_cal = np.abs(fit("set").predict(W, F)[:, 0] - Y[:, 0]).mean()
    assert err_ex < 0.2 * err_cal


def test_leave_one_out_error_matches_refits():
    rng = np.random.default_rng(2)
    X = np.column_stack([np.ones(12), rng.normal(size=(12, 3))])  # noqa: N806
    y = X @ [1.0, 2.0, -1.0, 0.5] + rng.normal(size=12)
    _, loo = penalised_fit(X, y, 2, 0.3)
    ridge = np.diag([0, 0, 0.3 * 12, 0.3 * 12])  # LOO of the full fit's penalty matrix
    errors = []
    for i in range(12):
        keep = np.arange(12) != i
        coef = np.linalg.solve(X[keep].T @ X[keep] + ridge, X[keep].T @ y[keep])
        errors.append(y[i] - X[i] @ coef)
    assert loo == pytest.approx(np.mean(np.square(errors)), rel=1e-10)


def test_without_example_columns_each_target_is_skipped_with_the_reason():
    W, Y, F = world(20)  # noqa: N806
    model = MultiTargetPredictor("mde-ex").fit(W, Y, TARGETS, ["x", "y", "z"], F[:, :2], TARGETS)
    assert set(model.skipped_) == {"a", "b"}
    assert "example-level MDE needs 12 feature columns per evaluation set" in model.skipped_["a"]


def test_unknown_variant_is_refused():
    W, Y, F = world(20)  # noqa: N806
    model = make_predictor("mde-ex", target_feature=0, target_columns=list(range(12)), variant="x")
    with pytest.raises(Exception, match="variant 'x': choose one of set, clusters"):
        model.fit(W, Y[:, 0], F[:, :12])
