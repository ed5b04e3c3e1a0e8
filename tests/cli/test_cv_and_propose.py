"""The cv and propose commands end to end on a built-in RegMix log, and their one-line refusals."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main


def test_cli_cv_json_and_propose(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "cv",
            "regmix:test-1b",
            "--folds",
            "4",
            "-p",
            "mean",
            "-p",
            "linear",
            "-t",
            "pile_cc",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {r["predictor"] for r in payload["results"]} == {"mean", "linear"}
    plot = tmp_path / "p.png"
    result = runner.invoke(
        main,
        [
            "propose",
            "regmix:test-1b",
            "-p",
            "linear",
            "--objective",
            "pile_cc=1",
            "--bounds",
            "github=:0.05",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "nearest logged run" in result.output and plot.stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["propose", "regmix:test-1b", "--objective", "nope=1"], "unknown set 'nope'"),
        (
            ["propose", "regmix:test-1b", "--bounds", "github=0.6:1", "--bounds", "arxiv=0.6:1"],
            "lower bounds sum",
        ),
        (["cv", "regmix:test-1b", "-p", "nosuch"], "unknown predictor 'nosuch'"),
        (["cv", "regmix:nosuch"], "unknown RegMix split"),
        (["cv", "regmix:test-1b", "--folds", "1"], "--folds must be between 2"),
    ],
)
def test_cli_bad_input(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output
