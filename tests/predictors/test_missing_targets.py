"""Fits on logs with pending runs and missing losses (issue 11): each target is fitted on the runs
that have it, and pending runs reach no fit."""

from __future__ import annotations

import numpy as np

from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.predictors import make_predictor
from mixsurrogate.predictors.multitarget import MultiTargetPredictor

from builders import partial_log


def test_each_target_is_fitted_on_the_runs_that_have_it():
    log = partial_log()
    done = log.completed()
    model = MultiTargetPredictor("linear").fit(done.W, done.Y, done.targets, done.domains)
    assert model.n_runs_ == {"x": 28, "y": 16}
    assert model.notes_["y"] == ["fitted on the 16 of 28 runs evaluated on it"]
    assert model.notes_["x"] == []
    grid = np.random.default_rng(1).dirichlet(np.ones(3), 5)
    for j, target in enumerate(done.targets):
        have = done.has_loss(target)
        alone = make_predictor("linear").fit(done.W[have], done.loss(target)[have])
        np.testing.assert_allclose(model.predict(grid)[:, j], alone.predict(grid))


def test_gp_targets_on_different_runs_are_tuned_on_their_own_runs():
    log = partial_log(20, pending=0, missing_y=6)
    model = MultiTargetPredictor("gp").fit(log.W, log.Y, log.targets, log.domains)
    assert model.fitted_targets_ == ["x", "y"] and model.n_runs_ == {"x": 20, "y": 14}
    assert np.isfinite(model.predict(log.W)).all()


def test_a_target_no_run_has_is_skipped_with_the_reason():
    log = partial_log(10, pending=0, missing_y=10)
    model = MultiTargetPredictor("linear").fit(log.W, log.Y, log.targets, log.domains)
    assert model.reasons() == {"y": ("skipped", "no run has this loss")}


def test_pending_runs_are_left_out_of_every_fit():
    log = partial_log()
    spec = evaluate.PredictorSpec("linear")
    with_pending = evaluate.fit_predict(spec, log, log.W, log.targets)
    without = evaluate.fit_predict(spec, log.completed(), log.W, log.targets)
    np.testing.assert_array_equal(with_pending.pred, without.pred)
    assert with_pending.n_runs == {"x": 28, "y": 16}
    assert with_pending.notes["y"] == ["fitted on the 16 of 28 runs evaluated on it"]
