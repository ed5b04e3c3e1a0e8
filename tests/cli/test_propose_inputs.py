"""propose inputs (issue 18): -n below 1, imported logs without set kinds, --kinds globs, and
long lists of kinds cut in the error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.runs.log import RunsLog, save_runs

#: evaluation sets named as an imported Olmix or W&B log names them (task names, no val/task)
IMPORTED_SETS = ["arc_easy_rc_olmes", "hellaswag_rc_olmes", "minerva_math_algebra_olmes"]


@pytest.mark.parametrize("n", ["0", "-3"])
def test_explore_refuses_fewer_than_one_run(tmp_path, n):
    """Before: exit 0 and nothing proposed."""
    args = ["propose", str(tmp_path / "new.csv"), "--explore", "-n", n, "--domains", "a,b,c",
            "--objective", "a=1"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "'-n'" in result.output and "x>=1" in result.output


@pytest.fixture
def imported_log(tmp_path) -> Path:
    """A runs log as ``runs import`` writes one: w:/loss: columns, sets named by their tasks."""
    rng = np.random.default_rng(0)
    W = rng.dirichlet(np.ones(4), size=12)  # noqa: N806
    frame = pd.DataFrame({"run_id": [f"swarm-30m-{i:04d}" for i in range(12)]})
    for j, domain in enumerate(["code", "science", "web", "books"]):
        frame[f"w:{domain}"] = W[:, j]
    for j, name in enumerate(IMPORTED_SETS):
        frame[f"loss:{name}"] = 1.0 + 0.3 * j + (W - 0.25) ** 2 @ np.ones(4) + 0.01 * rng.random(12)
    out = tmp_path / "runs.csv"
    save_runs(RunsLog(frame), out)
    return out


def test_default_objective_on_an_imported_log_says_what_to_type(imported_log):
    """Before: the error named made-up sets (--kinds val=code,books) and nothing of the log's."""
    result = CliRunner().invoke(main, ["propose", str(imported_log), "-p", "linear"])
    assert result.exit_code == 1
    (line,) = [x for x in result.output.splitlines() if x.startswith("Error:")]
    assert f"3 of the 3 sets have none ({', '.join(IMPORTED_SETS)})" in line
    assert "--kinds val='*'" in line and "--objective arc_easy_rc_olmes=1" in line
    # the commands the error gives work
    for extra in (["--kinds", "val=*"], ["--objective", "arc_easy_rc_olmes=1"]):
        done = CliRunner().invoke(main, ["propose", str(imported_log), "-p", "linear", *extra])
        assert done.exit_code == 0, done.output


def test_kinds_take_globs(imported_log):
    """Before: --kinds 'task=*_rc_olmes' was an unknown set name."""
    args = ["propose", str(imported_log), "-p", "linear", "--objective", "val=1,task=1",
            "--kinds", "task=*_rc_olmes", "--kinds", "val=minerva*", "--json"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    losses = json.loads(result.output)["proposals"][0]["losses"]
    assert sorted(losses) == sorted(IMPORTED_SETS)
