"""Prediction intervals for every predictor: coverage on a synthetic function, and no held-out
loss in the calibration (issue 12, intervals)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.predictors import make_predictor
from mixsurrogate.predictors.intervals import conformal_quantile
from mixsurrogate.runs.log import RunsLog
from mixsurrogate.simplex import dirichlet_simplex

SLOPE = np.array([0.8, -0.3, 0.2, -0.5])


def noisy_linear(n: int, seed: int, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    W = dirichlet_simplex(n, 4, seed=seed)  # noqa: N806
    y = 3.0 + W @ SLOPE + np.random.default_rng(seed).normal(0, noise, n)
    return W, y


def test_conformal_quantile_is_the_finite_sample_one():
    r = np.arange(1, 11, dtype=float)  # |residuals| 1..10
    assert conformal_quantile(r, 0.8) == 9.0  # ceil(11 * 0.8) = 9th smallest
    assert conformal_quantile(r, 0.95) == np.inf  # ceil(11 * 0.95) = 11 > 10 residuals
    assert conformal_quantile(np.append(r, np.nan), 0.8) == 9.0


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("linear", {}),
        ("lgbm", {}),
        ("dml", {}),
        ("gp", {}),
        pytest.param("gp", {"interval": "posterior"}, marks=pytest.mark.slow),
    ],
)
def test_90_percent_intervals_cover_about_90_percent_of_new_runs(name, params):
    W, y = noisy_linear(80, seed=1)  # noqa: N806
    Wt, yt = noisy_linear(2000, seed=2)  # noqa: N806
    model = make_predictor(name, **params).fit(W, y)
    lo, hi = model.predict_interval(Wt, level=0.9)
    coverage = np.mean((yt >= lo) & (yt <= hi))
    assert np.all(lo < hi)
    assert 0.80 <= coverage <= 0.98, coverage


@pytest.mark.slow
def test_gp_cv_interval_is_the_posterior_scaled_by_a_training_run_quantile():
    """The calibrated interval has the posterior's centre and shape, scaled by one factor that
    comes from standardised CV residuals of the training runs; the same fit gives it again."""
    W, y = noisy_linear(30, seed=4)  # noqa: N806
    Wt, _ = noisy_linear(50, seed=5)  # noqa: N806
    gp = make_predictor("gp").fit(W, y)
    lo, hi = gp.predict_interval(Wt, level=0.9)
    again = make_predictor("gp").fit(W, y).predict_interval(Wt, level=0.9)
    np.testing.assert_array_equal(lo, again[0])
    gp.interval = "posterior"
    plo, phi = gp.predict_interval(Wt, level=0.9)
    np.testing.assert_allclose((lo + hi) / 2, (plo + phi) / 2, atol=1e-12)
    scale = (hi - lo) / (phi - plo)
    np.testing.assert_allclose(scale, scale[0], rtol=1e-9)
    assert scale[0] != 1.0
    gp.interval = "laplace"
    with pytest.raises(MixsurrogateError, match="gp interval 'laplace'"):
        gp.predict_interval(Wt)


@pytest.mark.parametrize("name", ["linear", pytest.param("gp", marks=pytest.mark.slow)])
def test_held_out_losses_never_reach_the_interval_calibration(name):
    W, y = noisy_linear(40, seed=3)  # noqa: N806
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(4)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(40)])
    frame["loss:a"] = y
    changed = frame.copy()
    split = evaluate.cv_splits(40, 4)[0]
    changed.loc[split.test, "loss:a"] += 5.0  # only the held-out rows differ
    outcomes = [
        evaluate.fit_predict(
            evaluate.PredictorSpec(name), RunsLog(f).subset(split.train),
            RunsLog(f).W[split.test], ["a"], interval_level=0.9,
        )
        for f in (frame, changed)
    ]  # fmt: skip
    np.testing.assert_array_equal(outcomes[0].lower, outcomes[1].lower)
    np.testing.assert_array_equal(outcomes[0].upper, outcomes[1].upper)


def test_cv_reports_coverage_and_width_per_cell():
    W, y = noisy_linear(50, seed=4)  # noqa: N806
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(4)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(50)])
    frame["loss:a"] = y
    summary = evaluate.cross_validate(evaluate.EvaluationContext([evaluate.PredictorSpec("linear"), evaluate.PredictorSpec("mean")], interval_level=0.9, progress=False), RunsLog(frame), folds=5).summary().set_index("predictor")  # fmt: skip
    assert 0.75 <= summary.loc["linear", "coverage"] <= 1.0
    assert summary.loc["linear", "width"] < summary.loc["mean", "width"]


def test_proposal_carries_a_conformal_interval_of_its_objective():
    from mixsurrogate.objective import Objective
    from mixsurrogate.proposal.exploit import propose_exploit

    W, y = noisy_linear(40, seed=5)  # noqa: N806
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(4)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(40)])
    frame["loss:a"], frame["loss:b"] = y, y + 1
    log = RunsLog(frame)
    objective = Objective.parse("a=1,b=1", log.targets)
    proposal = propose_exploit(log, evaluate.PredictorSpec("linear"), objective)
    level, lo, hi, how = proposal.objective_interval
    assert level == 0.9 and lo[0] < proposal.objective[0] < hi[0] and "conformal" in how
    payload = proposal.to_dict()["proposals"][0]["interval"]
    assert payload["lower"] == pytest.approx(lo[0]) and payload["level"] == 0.9
    bare = propose_exploit(log, evaluate.PredictorSpec("linear"), objective, interval_level=None)
    assert bare.objective_interval is None


def test_fit_reports_the_interval_half_width():
    import json

    from click.testing import CliRunner

    from mixsurrogate.cli.main import main

    result = CliRunner().invoke(
        main, ["fit", "regmix:test-1b", "-p", "linear", "-t", "pile_cc", "--interval", "0.8",
               "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["in_sample"][0]
    assert row["80% half-width"] > 0
