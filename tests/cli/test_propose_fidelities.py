"""``propose --explore --fidelities``: the default two-phase switch, runs in flight, and the
single-fidelity options it refuses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.runs.log import RunsLog, save_runs
from mixsurrogate.search.defaults import SWITCH_RUNS_PER_DIM
from mixsurrogate.simplex import Bounds

MENU = ["--fidelities", "1M:1B,60M:1B", "--target", "1B:25B"]


def _log(tmp_path, n_small: int, in_flight: int = 0):
    """A 3-domain log of 1M:1B runs, the last ``in_flight`` of them without a loss yet."""
    W = Bounds.unbounded(3).sample(n_small, seed=0)  # noqa: N806
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(n_small)]})
    for j, d in enumerate("abc"):
        frame[f"w:{d}"] = W[:, j]
    y = 5.0 + ((W - [0.6, 0.3, 0.1]) ** 2).sum(axis=1)
    y[n_small - in_flight :] = np.nan
    frame["loss:val"] = y
    frame["params"], frame["tokens"] = 1e6, 1e9
    path = tmp_path / "runs.csv"
    save_runs(RunsLog(frame), path)
    return path


def _propose(path, *extra):
    args = ["propose", str(path), "--explore", "-n", "2", "--objective", "val=1", "--kinds",
            "val=val", *MENU, "--json", *extra]  # fmt: skip
    return CliRunner().invoke(main, args)


@pytest.fixture(scope="module")
def logs(tmp_path_factory, one_torch_thread):
    switch = SWITCH_RUNS_PER_DIM * 4  # K = 3
    return {
        "before": _log(tmp_path_factory.mktemp("before"), switch - 2),
        "after": _log(tmp_path_factory.mktemp("after"), switch),
        "flight": _log(tmp_path_factory.mktemp("flight"), switch, in_flight=2),
    }


@pytest.mark.slow
def test_default_switches_to_the_target_after_the_exploration_runs(logs):
    before = _propose(logs["before"])
    assert before.exit_code == 0, before.output
    fids = {p["fidelity"] for p in json.loads(before.output)["proposals"]}
    assert "1B:25B" not in fids
    after = _propose(logs["after"])
    assert after.exit_code == 0, after.output
    payload = json.loads(after.output)
    assert {p["fidelity"] for p in payload["proposals"]} == {"1B:25B"}
    assert any("confirmation phase" in n for n in payload["notes"])
    never = _propose(logs["after"], "--switch-after", "never")
    assert never.exit_code == 0, never.output
    assert not any("confirmation" in n for n in json.loads(never.output)["notes"])
    early = _propose(logs["before"], "--switch-after", "3")
    assert {p["fidelity"] for p in json.loads(early.output)["proposals"]} == {"1B:25B"}
    by_flops = _propose(logs["before"], "--switch-after", "never", "--switch-flops", "1e16")
    assert {p["fidelity"] for p in json.loads(by_flops.output)["proposals"]} == {"1B:25B"}


@pytest.mark.slow
def test_runs_in_flight_are_pending_and_count_for_the_switch(logs):
    result = _propose(logs["flight"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert any("2 run(s) in flight" in n for n in payload["notes"])
    # 14 runs with losses + 2 in flight = 16 below the target: the switch is reached
    assert {p["fidelity"] for p in payload["proposals"]} == {"1B:25B"}


def test_initial_sets_the_space_filling_start(logs):
    result = _propose(logs["before"], "--initial", "20", "--switch-after", "never")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert "space-filling start: 14 of 20" in payload["notes"][0]


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--strategy", "qlognei"], "--strategy"),
        (["--recommender", "argmin"], "--recommender"),
        (["--recommend", "top-k"], "--recommend"),
        (["--switch-after", "soon"], "--switch-after"),
    ],
)
def test_single_fidelity_options_and_bad_values_refused_in_one_line(logs, extra, flag):
    result = _propose(logs["before"], *extra)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and flag in lines[0], result.output
    assert "Traceback" not in result.output


def test_fidelities_on_a_log_with_no_runs_refused(tmp_path):
    path = tmp_path / "new.csv"
    result = CliRunner().invoke(
        main,
        [
            "propose",
            str(path),
            "--explore",
            "--objective",
            "val=1",
            "--domains",
            "a,b",
            *MENU,
        ],  # fmt: skip
    )
    assert result.exit_code != 0 and "no runs yet" in result.output


def test_the_help_shows_the_library_s_default_switch():
    shown = CliRunner().invoke(main, ["propose", "--help"], terminal_width=200).output
    assert f"[default: {SWITCH_RUNS_PER_DIM} x (K+1);" in " ".join(shown.split())
