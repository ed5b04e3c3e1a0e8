"""propose and demo inputs and outputs (issue 18): -n below 1, imported logs without set
kinds, --kinds globs, and what the demo says about its proposal and temporary folder."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mixsurrogate.cli.main  # noqa: F401 - first, while cli.py and cli_demo.py import each other
from mixsurrogate import demo as demos
from mixsurrogate.cli import demo as cli_demo
from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.evaluation import report
from mixsurrogate.objective import Objective, parse_kinds
from mixsurrogate.runs.log import RunsLog, load_runs, save_runs
from mixsurrogate.search.campaign import CampaignData, propose_next_runs

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


def test_propose_next_runs_refuses_q_below_one():
    obj = Objective.parse("a=1", ["a"], {"a": "val"})
    with pytest.raises(MixsurrogateError, match="-n .* must be >= 1, got 0"):
        propose_next_runs(CampaignData.from_log(None, obj, ["a", "b"]), obj, q=0)


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


def test_parse_kinds_names_and_globs():
    sets = ["code", "books", "arc_easy", "arc_challenge", "piqa"]
    kinds = parse_kinds(["val=code,books", "task='arc_*',piqa"], sets)
    assert kinds == {"code": "val", "books": "val", "arc_easy": "task", "arc_challenge": "task",
                     "piqa": "task"}  # fmt: skip
    assert parse_kinds(["val=*"], sets) == dict.fromkeys(sets, "val")
    with pytest.raises(MixsurrogateError, match="--kinds task= 'hella_\\*' matches no set"):
        parse_kinds(["task=hella_*"], sets)
    with pytest.raises(MixsurrogateError, match="gives 'arc_easy' two kinds"):
        parse_kinds(["val=*", "task=arc_*"], sets)


def test_missing_kinds_error_cuts_long_lists():
    sets = [f"task_{i:02d}" for i in range(40)]
    with pytest.raises(MixsurrogateError) as err:
        Objective.parse("val=1", sets)
    text = str(err.value)
    assert "40 of the 40 sets have none" in text and "... and 30 more" in text
    assert "task_39" not in text and "--kinds val=task_00,task_01 --kinds task=task_02" in text


@pytest.fixture
def stub_demo(monkeypatch):
    """The demo's computation stubbed out: records the folder, or fails when asked."""
    seen: list[Path] = []
    failing: list[bool] = [False]

    def fake_demo(*args) -> SimpleNamespace:
        out_dir = Path(args[-1])
        seen.append(out_dir)
        (out_dir / "learning_curve.png").write_bytes(b"png")
        if failing[0]:
            raise MixsurrogateError("the runs log is unreadable")
        proposal = SimpleNamespace(set_losses={"a": 1.0}, to_dict=lambda: {"proposals": []})
        frame = pd.DataFrame({"predictor": ["gp"], "spearman": [0.5]})
        return SimpleNamespace(
            description="stub", comparison=frame, curve=frame, proposal=proposal,
            figures=[out_dir / "learning_curve.png"], target="objective", predictor="gp+mde",
        )  # fmt: skip

    monkeypatch.setattr(demos, "realtext_paths", lambda: (None, None))
    monkeypatch.setattr(demos, "mde_demo", fake_demo)
    for name in ("print_table", "show_proposal"):
        monkeypatch.setattr(cli_demo, name, lambda *a, **k: None)
    table = pd.DataFrame({"predictor": ["gp"], "spearman": [0.5]}).set_index("predictor")
    for name in ("headline_table", "curve_table"):
        monkeypatch.setattr(report, name, lambda *a, **k: table)
    return SimpleNamespace(seen=seen, failing=failing)


def test_demo_names_the_predictor_of_its_proposal(stub_demo, tmp_path):
    """Before: neither the table output nor --json said which predictor proposed."""
    text = CliRunner().invoke(cli_demo.demo, ["--out", str(tmp_path)])
    assert text.exit_code == 0, text.output
    assert "proposal by gp+mde" in text.output
    as_json = CliRunner().invoke(cli_demo.demo, ["--out", str(tmp_path), "--json"])
    assert json.loads(as_json.output)["proposal"]["predictor"] == "gp+mde"


def test_failed_demo_removes_its_temporary_folder(stub_demo):
    """Before: every failed or interrupted demo left a mixsurrogate-demo-* folder behind."""
    stub_demo.failing[0] = True
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 1 and "unreadable" in result.output
    (folder,) = stub_demo.seen
    assert folder.parent == Path(tempfile.gettempdir()) and not folder.exists()


def test_demo_help_counts_the_shipped_runs():
    """Before: the help said 48 runs (the log has more) and under 2 minutes."""
    runs_path, _ = demos.realtext_paths()
    count = len(load_runs(runs_path))
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert f"({count} runs," in " ".join(result.output.split())
    assert "48 runs" not in result.output and "2 minutes" not in result.output
