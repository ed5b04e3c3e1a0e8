"""fit, cv and propose on a schedule log (``w@<p>:<domain>``, ``share@<p>``)."""

import json

import pytest
from click.testing import CliRunner

from mixsurrogate.cli.common import schedule_predictors
from mixsurrogate.cli.main import main
from mixsurrogate.runs.log import save_runs

from builders import cli_error_line, schedule_log


@pytest.fixture
def log_path(tmp_path):
    path = tmp_path / "schedules.csv"
    save_runs(schedule_log(40), path)
    return path


def run(args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_fit_and_cv_use_the_schedules(log_path):
    out = json.loads(run(["fit", log_path, "-p", "linear", "--json"]))
    assert out["in_sample"][0]["spearman"] > 0.95
    cv = json.loads(run(["cv", log_path, "-p", "linear", "-p", "loglinear", "--json"]))
    ok = [r for r in cv["results"] if r["status"] == "ok"]
    assert {r["predictor"] for r in ok} == {"linear", "loglinear"}
    assert min(r["spearman"] for r in ok) > 0.9


def test_cv_leaves_the_laws_out_of_its_default_list_on_a_schedule_log():
    assert schedule_predictors(["linear", "dml", "gp", "bimix"]) == ["linear", "gp"]


def test_a_law_of_the_mixture_is_refused_on_a_schedule_log(log_path):
    line = cli_error_line(main, ["fit", str(log_path), "-p", "dml"])
    assert "cannot take a 2-phase schedule log" in line


def test_propose_shows_each_phase_and_writes_log_rows(log_path):
    out = run(["propose", log_path, "-p", "linear", "--objective", "web=1", "--phases", "2",
               "--phase-share", "0.2", "--no-ledger"])  # fmt: skip
    assert "phase 2 (share 0.2)" in out and "optimism report" in out
    payload = json.loads(run(["propose", log_path, "-p", "linear", "--objective", "web=1",
                              "--phase-share", "0.2", "--no-ledger", "--json"]))  # fmt: skip
    row = payload["proposals"][0]
    assert [p["share"] for p in row["schedule"]] == pytest.approx([0.8, 0.2])
    assert row["schedule"][1]["mixture"]["a"] > 0.95
    assert row["log_row"]["w@2:a"] == pytest.approx(row["schedule"][1]["mixture"]["a"])


def test_phases_must_match_the_log(log_path, tmp_path):
    line = cli_error_line(main, ["propose", str(log_path), "-p", "linear", "--objective",
                                 "web=1", "--phases", "3"])  # fmt: skip
    assert "has 2-phase schedules" in line


def test_explore_on_a_new_log_starts_with_sobol_schedules(tmp_path):
    out = json.loads(run(["propose", tmp_path / "new.csv", "--explore", "-n", "3", "--domains",
                          "a,b,c", "--objective", "web=1", "--phases", "2", "--json"]))  # fmt: skip
    assert len(out["proposals"]) == 3
    assert all("share@2" in p["log_row"] for p in out["proposals"])
