"""Evaluation on logs with pending runs and missing losses (issue 11): each set is fitted and scored
on its own runs, pending runs are never scored, complete logs keep their folds."""

from __future__ import annotations

import numpy as np
import pytest

from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.objective import Objective

from builders import partial_log


def test_cv_fits_and_scores_each_set_on_its_runs_and_never_scores_pending():
    log = partial_log()
    obj = Objective.parse("x=0.5,y=0.5", log.targets, None, "")
    result = evaluate.cross_validate(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("linear")], objective=obj, seed=0, progress=False
        ),
        log,
        folds=4,
    )
    scores = result.scores.set_index(["target", "fold"])
    pending = set(np.flatnonzero(log.pending_mask))
    assert not pending & set(np.concatenate(list(result.split_rows.values())))
    for fold, rows in enumerate(result.split_rows.values()):
        has_y = int(log.has_loss("y")[rows].sum())
        assert has_y > 0  # folds stratified on which sets each run has
        assert scores.loc[("y", fold), "n_scored"] == has_y
        assert scores.loc[("x", fold), "n_scored"] == len(rows)
        assert scores.loc[("objective", fold), "n_scored"] == has_y
    summary = result.summary().set_index("target")
    assert (summary["status"] == "ok").all()
    assert summary.loc["y", "n_train"] == pytest.approx(16 * 3 / 4)
    assert summary.loc["x", "n_train"] == pytest.approx(28 * 3 / 4)
    assert summary.loc["y", "notes"] == (
        "evaluated on 16 of the log's 28 completed runs, so fitted and scored on those "
        "(n_train, n_scored) [4 of 4 fits]"
    )
    assert summary.loc["x", "notes"] == ""


def test_learning_curve_notes_count_over_the_cells_own_draws():
    """A curve cell's note counts that size's fits (it read "34 of 10", then counted over
    every size, so auto's choice at one size could not be told from another's)."""
    log = partial_log()
    curve = evaluate.learning_curve(
        evaluate.EvaluationContext([evaluate.PredictorSpec("linear")], seed=0, progress=False),
        log,
        None,
        [12, 16],
        draws=3,
    )
    notes = curve.summary(["size"]).set_index(["target", "size"]).loc[("y", 12), "notes"]
    assert notes.endswith("[3 of 3 fits]"), notes


def test_complete_logs_keep_their_folds():
    """Stratification only when losses are partial: a full log's folds are cv_splits'."""
    log = partial_log(20, pending=0, missing_y=0)
    result = evaluate.cross_validate(
        evaluate.EvaluationContext([evaluate.PredictorSpec("mean")], progress=False), log, folds=5
    )
    expected = evaluate.cv_splits(len(log), 5, 1, 0)
    assert [s.test.tolist() for s in expected] == [r.tolist() for r in result.split_rows.values()]


def test_train_test_and_curves_skip_pending_and_missing():
    log = partial_log()
    specs = [evaluate.PredictorSpec("linear")]
    tested = (
        evaluate.train_test(evaluate.EvaluationContext(specs, progress=False), log, log)
        .summary()
        .set_index("target")
    )
    assert tested.loc["x", "n_scored"] == 28 and tested.loc["y", "n_scored"] == 16
    assert tested.loc["y", "n_train"] == 16
    curve = evaluate.learning_curve(
        evaluate.EvaluationContext(specs, seed=0, progress=False), log, None, [10, 20], draws=2
    )
    sizes = curve.summary(["size"])
    assert (sizes["status"] == "ok").all()
    assert (sizes.loc[sizes["target"] == "x", "n_scored"] == [18, 8]).all()
