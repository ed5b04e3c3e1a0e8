"""The demo command (issues 10, 18): a temporary folder by default that it names and removes when
it fails, --out and --json, the predictor of its proposal, and its help."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate import demo as demos
from mixsurrogate.cli import demo as cli_demo
from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.evaluation import report
from mixsurrogate.runs.log import load_runs


@pytest.fixture
def recorded(monkeypatch) -> list[Path]:
    """The demo with its computation stubbed out (seconds, not minutes): records ``out_dir``."""
    seen: list[Path] = []

    def fake_demo(*args) -> SimpleNamespace:
        out_dir = Path(args[-1])
        seen.append(out_dir)
        figure = out_dir / "learning_curve.png"
        curve = pd.DataFrame(
            {"predictor": ["gp"], "n_train": [8], "spearman": [0.5], "target": ["objective"]}
        )
        return SimpleNamespace(
            description="stub",
            comparison=pd.DataFrame({"predictor": ["gp"], "spearman": [0.5]}),
            curve=curve,
            proposal=SimpleNamespace(
                set_losses={"a": 1.0}, to_dict=lambda: {"mixtures": [[0.5, 0.5]]}
            ),
            figures=[figure],
            target="objective",
            predictor="gp",
        )

    monkeypatch.setattr(demos, "realtext_paths", lambda: (None, None))
    monkeypatch.setattr(demos, "mde_demo", fake_demo)
    monkeypatch.setattr(demos, "regmix_demo", fake_demo)
    monkeypatch.setattr(demos, "schedules_demo", fake_demo)
    # the tables and the proposal are not what this tests (and their helpers are being renamed)
    for name in ("print_table", "show_proposal"):
        monkeypatch.setattr(cli_demo, name, lambda *a, **k: None)
    table = pd.DataFrame({"predictor": ["gp"], "spearman": [0.5]}).set_index("predictor")
    for name in ("headline_table", "curve_table"):  # imported by the command when it runs
        monkeypatch.setattr(report, name, lambda *a, **k: table)
    return seen


@pytest.mark.parametrize("data", ["realtext", "regmix", "schedules"])
def test_demo_writes_into_a_temporary_folder_and_says_where(tmp_path, monkeypatch, recorded, data):
    """Before: ``mixsurrogate-demo/`` in the current folder (a checkout's working tree)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli_demo.demo, ["--data", data])
    assert result.exit_code == 0, result.output
    (out_dir,) = recorded
    assert out_dir.is_dir() and out_dir.name.startswith("mixsurrogate-demo-")
    assert out_dir.parent == Path(tempfile.gettempdir())
    assert not any(tmp_path.iterdir()), "nothing written into the current folder"
    assert f"plots in {out_dir}" in result.output.splitlines()[-1]
    out_dir.rmdir()


def test_demo_out_is_still_honoured(tmp_path, recorded):
    result = CliRunner().invoke(cli_demo.demo, ["--data", "regmix", "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert recorded == [tmp_path / "p"]
    assert f"plots in {tmp_path / 'p'}" in result.output


def test_demo_json_is_one_valid_object(tmp_path, recorded):
    result = CliRunner().invoke(
        cli_demo.demo, ["--data", "regmix", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["comparison"] == [{"predictor": "gp", "spearman": 0.5}]
    assert payload["proposal"] == {"predictor": "gp", "mixtures": [[0.5, 0.5]]}
    assert payload["plots_dir"] == str(tmp_path)


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
