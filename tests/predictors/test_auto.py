"""``auto``: chosen by inner CV on its own training runs; no held-out loss reaches any fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixsurrogate import predictors
from mixsurrogate.errors import NotEnoughRunsError
from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.predictors import make_predictor
from mixsurrogate.runs.log import RunsLog
from mixsurrogate.simplex import dirichlet_simplex

from builders import SpyPredictor

SLOPE = np.array([0.8, -0.3, 0.2, -0.5])


def linear_runs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    W = dirichlet_simplex(n, 4, seed=seed)  # noqa: N806
    return W, 3.0 + W @ SLOPE + np.random.default_rng(seed).normal(0, 0.01, n)


def test_auto_picks_the_right_model_and_says_so():
    W, y = linear_runs(40, seed=1)  # noqa: N806
    model = make_predictor("auto", candidates=("mean", "linear")).fit(W, y)
    assert model.chosen_ == "linear" and "chose linear" in model.fit_notes_[0]
    assert set(model.inner_scores_) == {"mean", "linear"}
    lo, hi = model.predict_interval(W[:5])
    assert np.all(lo < hi)
    with pytest.raises(NotEnoughRunsError):
        make_predictor("auto").fit(W[:6], y[:6])


def test_no_held_out_loss_reaches_the_nested_cv(monkeypatch):
    monkeypatch.setitem(predictors.PREDICTORS, "spy", SpyPredictor)
    W, y = linear_runs(40, seed=2)  # noqa: N806
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(4)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(40)])
    frame["loss:a"] = y
    split = evaluate.cv_splits(40, 4)[0]
    held_out = set(np.round(y[split.test], 12).tolist())
    spec = evaluate.PredictorSpec("auto", {"candidates": ("spy", "mean")})
    changed = frame.copy()
    changed.loc[split.test, "loss:a"] += 5.0  # only the held-out rows differ
    outcomes = []
    for f in (frame, changed):
        SpyPredictor.seen = []
        log = RunsLog(f)
        outcomes.append(evaluate.fit_predict(
            spec, log.subset(split.train), log.W[split.test], ["a"], interval_level=0.9
        ))  # fmt: skip
        assert SpyPredictor.seen and not held_out & set(SpyPredictor.seen)
        assert not set(np.round(y[split.test] + 5.0, 12).tolist()) & set(SpyPredictor.seen)
    assert outcomes[0].status["a"][0] == "ok"
    np.testing.assert_array_equal(outcomes[0].pred, outcomes[1].pred)
    np.testing.assert_array_equal(outcomes[0].lower, outcomes[1].lower)
