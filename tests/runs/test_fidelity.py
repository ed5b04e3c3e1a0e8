"""Fidelity parsing, the cost model and menu, fidelity columns, where-splits, cv --train-where,
and the multi-fidelity GP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.evaluation.splits import parse_where, where_mask, where_split
from mixsurrogate.predictors import RATE_PREDICTORS, make_predictor
from mixsurrogate.predictors.mfgp import stratified_rows
from mixsurrogate.runs.fidelity import (
    CostModel,
    Fidelity,
    FidelityMenu,
    fidelity_features,
    format_size,
    parse_size,
)
from mixsurrogate.runs.log import RunsLog, save_runs


@pytest.mark.parametrize(
    ("text", "value"),
    [("20M", 2e7), ("1.2B", 1.2e9), ("1.2b", 1.2e9), ("3e9", 3e9), ("500K", 5e5), ("2T", 2e12),
     ("1G", 1e9), (" 60M ", 6e7), ("0.4B", 4e8)],
)  # fmt: skip
def test_parse_size(text, value):
    assert parse_size(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["20X", "M", "", "-5M", "0", "0M", "1.2.3B", "abc", "nan", "inf"])
def test_parse_size_refuses_bad_input_with_one_line(text):
    with pytest.raises(MixsurrogateError) as err:
        parse_size(text)
    assert "\n" not in str(err.value)


def test_format_size_round_trips():
    for value in (2e7, 1.2e9, 6e7, 25e9, 5e5):
        assert parse_size(format_size(value)) == pytest.approx(value)


def test_fidelity_parse_and_cost():
    f = Fidelity.parse("60M:1.2B")
    assert (f.params, f.tokens) == (6e7, 1.2e9)
    assert str(f) == "60M:1.2B"
    assert CostModel().flops(f) == pytest.approx(6 * 6e7 * 1.2e9)
    assert CostModel(factor=8, overhead=1e15).flops(f) == pytest.approx(8 * 6e7 * 1.2e9 + 1e15)
    with pytest.raises(MixsurrogateError, match="SIZE:TOKENS"):
        Fidelity.parse("60M")
    with pytest.raises(MixsurrogateError):
        CostModel(factor=0)


def test_menu_target_may_exceed_every_item_but_no_item_may_exceed_the_target():
    menu = FidelityMenu.parse("20M:0.4B,60M:1.2B,150M:3B", "1B:20B")
    assert [str(f) for f in menu.items] == ["20M:400M", "60M:1.2B", "150M:3B", "1B:20B"]
    assert menu.target == Fidelity(1e9, 2e10)
    small = FidelityMenu.parse("20M:0.4B", "1B:20B", include_target=False)
    assert small.target not in small.items
    with pytest.raises(MixsurrogateError, match="larger than the target"):
        FidelityMenu.parse("20M:0.4B,2B:1B", "1B:20B")
    with pytest.raises(MixsurrogateError, match="larger than the target"):
        FidelityMenu.parse("20M:40B", "1B:20B")  # more tokens than the target
    with pytest.raises(MixsurrogateError, match="bad model size"):
        FidelityMenu.parse("20Q:0.4B", "1B:20B")
    with pytest.raises(MixsurrogateError, match="bad token count"):
        FidelityMenu.parse("20M:0.4B", "1B:-2B")


def _log(params, tokens=None) -> RunsLog:
    n = len(params)
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(3), n)  # noqa: N806
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)]})
    for j, d in enumerate("abc"):
        frame[f"w:{d}"] = W[:, j]
    frame["loss:x"] = 3 + W[:, 0]
    frame["params"] = params
    frame["tokens"] = tokens if tokens is not None else [1e9] * n
    return RunsLog(frame)


def test_fidelity_features_are_log10_and_validated():
    log = _log([1e6, 6e7, 1e9], [1e9, 1e9, 25e9])
    np.testing.assert_allclose(
        fidelity_features(log), [[6, 9], [np.log10(6e7), 9], [9, np.log10(25e9)]]
    )
    for bad in (0, np.nan, -1, "big"):
        with pytest.raises(MixsurrogateError, match="run r1: params") as err:
            fidelity_features(_log([1e6, bad, 1e9]))
        assert "positive finite" in str(err.value)
    frame = _log([1e6] * 3).frame.drop(columns="tokens")
    with pytest.raises(MixsurrogateError, match="no 'tokens' column"):
        fidelity_features(RunsLog(frame))


def test_parse_where_grammar_and_refusals():
    assert parse_where("params<1e8") == [("params", "<", 1e8)]
    assert parse_where("params>=100M and tokens < 2B") == [
        ("params", ">=", 1e8),
        ("tokens", "<", 2e9),
    ]
    assert parse_where("params>1 & params!=5") == [("params", ">", 1.0), ("params", "!=", 5.0)]
    for bad in ("__import__('os').system('x')", "params<1e8 or tokens>1", "params", "params<x",
                "params<1e8; tokens>1", "", "params < 1e8)"):  # fmt: skip
        with pytest.raises(MixsurrogateError) as err:
            parse_where(bad)
        assert "\n" not in str(err.value)


def test_where_mask_and_split():
    log = _log([1e6, 1e6, 6e7, 1e9, 1e9, 1e9])
    np.testing.assert_array_equal(where_mask(log, "params<1e8"), [1, 1, 1, 0, 0, 0])
    split = where_split(log, "params<1e8", "params>=1B")
    np.testing.assert_array_equal(split.train, [0, 1, 2])
    np.testing.assert_array_equal(split.test, [3, 4, 5])
    with pytest.raises(MixsurrogateError, match="match both"):
        where_split(log, "params<1e8", "params>1e6")
    with pytest.raises(MixsurrogateError, match="no column 'size'"):
        where_mask(log, "size<5")
    with pytest.raises(MixsurrogateError, match="matches no run"):
        where_split(log, "params<1", "params>=1B")
    with pytest.raises(MixsurrogateError, match="need at least 3"):
        where_split(log, "params<1e8", "params>1e10")


def _multiscale_log(n_small=40, n_large=12, seed=0) -> RunsLog:
    """A synthetic two-scale log: the same mixture effect at both scales, shifted and shrunk."""
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(3), n_small + n_large)  # noqa: N806
    large = np.arange(len(W)) >= n_small
    effect = np.sin(3 * W[:, 0]) + W[:, 1] ** 2
    loss = np.where(large, 3.0 + 0.3 * effect, 5.0 + effect) + 0.005 * rng.standard_normal(len(W))
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(len(W))]})
    for j, d in enumerate("abc"):
        frame[f"w:{d}"] = W[:, j]
    frame["loss:x"] = loss
    frame["params"] = np.where(large, 1e9, 1e6)
    frame["tokens"] = np.where(large, 2e10, 1e9)
    return RunsLog(frame)


def test_mfgp_predicts_the_large_scale_from_small_runs_and_a_few_large_ones():
    from scipy.stats import spearmanr

    from mixsurrogate.evaluation import protocol as evaluate

    log = _multiscale_log(n_small=40, n_large=20)
    train = np.arange(48)  # 40 small runs and 8 large ones
    test = np.arange(48, 60)
    spec = evaluate.PredictorSpec("mfgp")
    outcome = evaluate.fit_predict(
        spec, log.subset(train), log.W[test], ["x"], test_rows=log.subset(test)
    )
    assert outcome.status["x"][0] == "ok"
    truth = log.loss("x")[test]
    # the large scale's level (3 nats), not the small one's (5); a stationary kernel keeps the
    # small runs' amplitude, so the errors are a fraction of the mixture effect, not ~0
    assert abs(outcome.pred[:, 0] - truth).max() < 0.5
    assert spearmanr(truth, outcome.pred[:, 0]).statistic > 0.9


def test_mfgp_is_deterministic_and_has_std_and_intervals():
    log = _multiscale_log()
    F = fidelity_features(log)  # noqa: N806
    a = make_predictor("mfgp", seed=3).fit(log.W, log.loss("x"), F)
    b = make_predictor("mfgp", seed=3).fit(log.W, log.loss("x"), F)
    np.testing.assert_array_equal(a.predict(log.W, F), b.predict(log.W, F))
    std = a.predict_std(log.W[:5], F[:5])
    lo, hi = a.predict_interval(log.W[:5], F[:5], 0.9)
    assert (std > 0).all() and (lo < hi).all()
    with pytest.raises(MixsurrogateError, match="fidelity"):
        a.predict(log.W[:5])
    assert "mfgp" not in RATE_PREDICTORS  # needs fidelity columns: not a default cv predictor


def test_stratified_rows_keep_rare_fidelities():
    groups = np.r_[np.zeros(500), np.ones(8), np.full(20, 2.0)][:, None]
    rows = stratified_rows(groups, 100, seed=0)
    assert len(rows) == 100 and len(set(rows)) == 100
    kept = groups[rows, 0]
    assert (kept == 1).sum() == 8 and (kept == 2).sum() == 20


def test_cv_train_where_test_where(tmp_path):
    log = _multiscale_log(n_small=30, n_large=10)
    path = tmp_path / "runs.csv"
    save_runs(log, path)
    runner = CliRunner()
    args = ["cv", str(path), "--train-where", "params<1e8", "--test-where", "params>=1e9"]
    result = runner.invoke(main, [*args, "-p", "linear", "--json"])
    assert result.exit_code == 0, result.output
    assert "train 30 runs (params<1e8) -> test 10 runs (params>=1e9)" in result.output
    result = runner.invoke(main, [*args[:4], "-p", "linear"])
    assert result.exit_code != 0 and "go together" in result.output
    result = runner.invoke(main, [*args[:5], "params>=1e9 or 1", "-p", "linear"])
    assert result.exit_code != 0 and "cannot read" in result.output
    frame = log.frame.copy()
    frame.loc[3, "params"] = 0
    save_runs(RunsLog(frame), path)
    result = runner.invoke(main, [*args, "-p", "mfgp"])
    assert result.exit_code != 0
    assert "run r3: params is 0" in result.output
    assert "Traceback" not in result.output
