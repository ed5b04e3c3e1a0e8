"""The demo's output folder (issue 10): a temporary folder by default, and it says where."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from click.testing import CliRunner

import mixsurrogate.cli.main  # noqa: F401 - first, while cli.py and cli_demo.py import each other
from mixsurrogate import demo as demos
from mixsurrogate.cli import demo as cli_demo
from mixsurrogate.evaluation import report


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
    # the tables and the proposal are not what this tests (and their helpers are being renamed)
    for name in ("print_table", "show_proposal"):
        monkeypatch.setattr(cli_demo, name, lambda *a, **k: None)
    table = pd.DataFrame({"predictor": ["gp"], "spearman": [0.5]}).set_index("predictor")
    for name in ("headline_table", "curve_table"):  # imported by the command when it runs
        monkeypatch.setattr(report, name, lambda *a, **k: table)
    return seen


@pytest.mark.parametrize("data", ["realtext", "regmix"])
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
