"""The schedules demo (issue 22) on the built-in schedule log ``schedules:runs``: the log and its
set kinds resolve by name, and the demo cross-validates schedule surrogates and proposes a
two-phase schedule with its optimism report, the same on every call."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mixsurrogate import demo as demos
from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.objective import resolve_kinds
from mixsurrogate.runs.builtin import resolve_log
from mixsurrogate.runs.schedule import read_schedules


def test_schedule_log_resolves_by_name_with_its_task_sets():
    log = resolve_log("schedules:runs")
    schedules = read_schedules(log.frame)
    assert schedules is not None and schedules.n_phases == 2
    ids = log.run_ids
    assert any(r.startswith("sched-") for r in ids) and any(r.startswith("sobol-") for r in ids)
    kinds, source = resolve_kinds((), "schedules:runs", log.targets, None)
    assert kinds["arc_easy"] == "task" and kinds["code"] == "val"
    assert "corpus manifest" in source
    assert {k for k in kinds.values()} == {"val", "task"}


def test_unknown_schedule_log_is_one_clear_error():
    with pytest.raises(MixsurrogateError, match="unknown schedules log 'run'.*proxy-matched"):
        resolve_log("schedules:run")


def test_propose_phases_on_the_builtin_log_takes_task_kinds_from_it():
    """Before: a val/task objective on a built-in schedule log had no kinds (--kinds needed)."""
    result = CliRunner().invoke(
        main,
        ["propose", "schedules:runs", "--phases", "2", "--phase-share", "0.2", "-p", "linear",
         "--objective", "val=0.5,task=0.5", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (proposal,) = json.loads(result.stdout)["proposals"]
    assert [p["share"] for p in proposal["schedule"]] == pytest.approx([0.8, 0.2])
    assert json.loads(result.stdout)["recommendation"]["optimism_report"]["halvings"] > 0


@pytest.mark.slow
def test_schedules_demo_is_deterministic(tmp_path):
    runs = [
        demos.schedules_demo(tmp_path / str(i), progress=False, predictors=("mean", "linear"),
                             curve_predictors=("linear",))
        for i in range(2)
    ]  # fmt: skip
    a, b = runs
    assert a.predictor == "linear"  # the mean is never the proposal's predictor
    shares = a.proposal.phase_shares[0]
    assert a.proposal.phase_weights.shape[1:] == (2, 6) and np.allclose(
        shares, [0.8, 0.2], atol=1e-3
    )
    assert "optimism_report" in a.proposal.recommendation
    assert np.array_equal(a.proposal.phase_weights, b.proposal.phase_weights)
    assert a.comparison.equals(b.comparison)
    assert all(f.is_file() for f in a.figures)
    assert "two-phase" in a.description
