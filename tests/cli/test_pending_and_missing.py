"""fit and cv on logs with pending runs and missing losses (issue 11): per-set run counts, and bad
loss values refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.runs.log import (
    RunsLog,
    save_runs,
)

from builders import partial_log


def _write(tmp_path: Path, log: RunsLog) -> Path:
    path = tmp_path / "runs.csv"
    save_runs(log, path)
    return path


def test_cli_fit_says_how_many_runs_each_set_was_fitted_on(tmp_path):
    path = _write(tmp_path, partial_log())
    result = CliRunner().invoke(main, ["fit", str(path), "-p", "linear", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["n_runs"] == 28 and out["n_pending"] == 2
    assert {r["target"]: r["runs"] for r in out["in_sample"]} == {"x": 28, "y": 16}
    assert out["notes"]["y"] == ["fitted on the 16 of 28 runs evaluated on it"]
    table = CliRunner().invoke(main, ["fit", str(path), "-p", "linear"])
    assert table.exit_code == 0, table.output
    assert "fitted on 28 runs (2 pending run(s) not used)" in table.output
    assert "note (y): fitted on the 16 of 28 runs evaluated on it" in table.output


def test_cli_cv_reports_pending_and_per_set_counts(tmp_path):
    path = _write(tmp_path, partial_log())
    result = CliRunner().invoke(main, ["cv", str(path), "-p", "linear", "--folds", "4", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert "(2 pending run(s) not used)" in out["mode"]
    cells = {r["target"]: r for r in out["results"] if r["predictor"] == "linear"}
    assert cells["y"]["n_train"] == 12 and cells["x"]["n_train"] == 21
    assert "evaluated on 16 of the log's 28 completed runs" in cells["y"]["notes"]
    table = CliRunner().invoke(main, ["cv", str(path), "-p", "linear", "--folds", "4"])
    assert table.exit_code == 0, table.output
    assert "note: linear on y: evaluated on 16 of the log's 28 completed runs" in table.output


@pytest.mark.parametrize("command", ["fit", "cv"])
@pytest.mark.parametrize("cell", ["NaN", "inf", "-1.5"])
def test_cli_refuses_bad_loss_values_with_one_line(tmp_path, command, cell):
    path = tmp_path / "runs.csv"
    lines = [f"r{i},0.{i + 1},0.{9 - i},{3 + i / 10},2.0" for i in range(6)]
    lines[3] = f"r3,0.4,0.6,{cell},"
    path.write_text("run_id,w:a,w:b,loss:x,loss:y\n" + "\n".join(lines) + "\n")
    result = CliRunner().invoke(main, [command, str(path)])
    assert result.exit_code != 0
    out = result.output.strip().splitlines()
    assert len(out) == 1 and "run r3: loss loss:x is" in out[0], result.output
    assert "Traceback" not in result.output
