"""Evaluation protocol: metrics, cross-validation, curves and train/test on small RegMix slices and
synthetic laws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixsurrogate.demo import realtext_paths
from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.runs.builtin import regmix_runs
from mixsurrogate.runs.log import RunsLog
from mixsurrogate.simplex import sobol_simplex

from builders import two_bowls_log


def test_metrics_regret_and_ranks():
    m = evaluate.metrics(np.array([1.0, 2.0, 3.0]), np.array([2.0, 1.0, 3.0]))
    assert m["regret"] == pytest.approx(1.0)  # predicted best is the run with true loss 2
    assert m["spearman"] == pytest.approx(0.5)
    assert m["mae"] == pytest.approx(2 / 3)


def test_cross_validation_never_sees_the_held_out_fold():
    """A predictor fitted on data containing the held-out rows would predict them perfectly;
    the out-of-fold predictions of a 1-nearest-neighbour-like model must not be exact."""
    log = two_bowls_log()
    result = evaluate.cross_validate(
        evaluate.EvaluationContext([evaluate.PredictorSpec("mean")], progress=False), log, folds=4
    )
    # mean predictor: each fold's prediction is the mean of the OTHER folds
    y = log.loss("a")
    for key, pred in result.predictions["mean"].items():
        held = result.split_rows[key]
        assert np.allclose(pred[:, 0], np.delete(y, held).mean())
    assert set(result.summary()["target"]) == {"a", "b"}


def test_linear_beats_mean_in_cv_and_curves_grow():
    rng = np.random.default_rng(0)
    W = sobol_simplex(60, 4, seed=2)
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(4)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(60)])
    frame["loss:a"] = 3.0 + W @ np.array([-1.0, 0.5, 0.2, 0.3]) + rng.normal(0, 0.01, 60)
    log = RunsLog(frame)
    specs = [evaluate.PredictorSpec("mean"), evaluate.PredictorSpec("linear")]
    table = evaluate.cross_validate(
        evaluate.EvaluationContext(specs, progress=False), log, folds=5
    ).summary()
    mse = table.set_index("predictor")["mse"]
    assert mse["linear"] < 0.05 * mse["mean"]
    curve = evaluate.learning_curve(
        evaluate.EvaluationContext([specs[1]], targets=["a"], progress=False),
        log,
        None,
        [6, 40],
        draws=3,
    )
    by_n = curve.summary(["size"]).set_index("size")["mse"]
    assert by_n[40] < by_n[6]


def test_regmix_train_test_on_a_small_slice():
    train = regmix_runs("train-1m").subset(range(64))
    test = regmix_runs("test-1m").subset(range(64))
    table = evaluate.train_test(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("linear")], targets=["pile_cc"], progress=False
        ),
        train,
        test,
    ).summary()
    assert table.loc[0, "spearman"] > 0.6
    assert table.loc[0, "spearman_lo"] < table.loc[0, "spearman"] < table.loc[0, "spearman_hi"]


def test_laws_refuse_too_few_runs_as_a_skipped_cell():
    log = regmix_runs("test-1b").subset(range(10))
    outcome = evaluate.fit_predict(evaluate.PredictorSpec("dml"), log, log.W, ["pile_cc"])
    status, reason = outcome.status["pile_cc"]
    assert status == "skipped" and "dml needs at least 20 runs" in reason
    assert np.isnan(outcome.pred).all()


def test_mde_predictor_reads_its_own_sets_column_whatever_the_target_order():
    """A target that is not first among the log's sets must read its own MDE column (it read
    column j of the fitted targets, i.e. another set's, before)."""
    from mixsurrogate.cli.common import mde_features
    from mixsurrogate.predictors.multitarget import MultiTargetPredictor
    from mixsurrogate.runs.log import load_runs

    runs, scores = realtext_paths()
    log = load_runs(runs)
    feature_fn, _ = mde_features(str(scores), log, "token")
    target = log.targets[-1]
    alone = MultiTargetPredictor("mde-cal").fit(
        log.W, log.loss(target)[:, None], [target], log.domains,
        features=feature_fn(log.W), feature_sets=evaluate.feature_sets_of(feature_fn),
    )  # fmt: skip
    everything = MultiTargetPredictor("mde-cal").fit(
        log.W, log.Y, log.targets, log.domains, features=feature_fn(log.W)
    )
    W = log.W[:5]  # noqa: N806
    expected = everything.predict(W, features=feature_fn(W))[:, -1]
    assert np.allclose(alone.predict(W, features=feature_fn(W))[:, 0], expected)
    result = evaluate.cross_validate(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("mde-cal")], targets=[target], feature_fn=feature_fn
        ),
        log,
        folds=3,
    )
    full = evaluate.cross_validate(
        evaluate.EvaluationContext([evaluate.PredictorSpec("mde-cal")], feature_fn=feature_fn),
        log,
        folds=3,
    )
    a = result.scores[result.scores.target == target].spearman.to_numpy()
    b = full.scores[full.scores.target == target].spearman.to_numpy()
    assert np.allclose(a, b)
