"""Where-splits: the --train-where/--test-where grammar, masks and splits, and cv across scales."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.evaluation.splits import parse_where, where_mask, where_split
from mixsurrogate.runs.log import RunsLog, save_runs

from builders import fidelity_log, two_scale_log


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
    log = fidelity_log([1e6, 1e6, 6e7, 1e9, 1e9, 1e9])
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


def test_cv_train_where_test_where(tmp_path):
    log = two_scale_log(n_small=30, n_large=10)
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
