"""The ``--json`` of ``propose`` and ``cv`` on a built-in log is what it was before the proposal
and evaluation entry points were restructured (issue 19): recorded on main, compared here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main

GOLDEN = Path(__file__).parent / "golden"


def same(got, want, where="$") -> None:
    """Equal JSON, numbers to 1e-9 relative; wall-clock fields (``*seconds``) skipped."""
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for k in want:
            if not str(k).endswith("seconds"):
                same(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), where
    else:
        assert got == want, where


@pytest.mark.parametrize(
    ("args", "golden"),
    [
        (
            [
                "propose",
                "regmix:train-1m",
                "-p",
                "linear",
                "--objective",
                "pile_cc=1",
                "--json",
                "--no-ledger",
            ],
            "propose_linear_pile_cc.json",
        ),  # fmt: skip
        (
            ["cv", "regmix:train-1m", "-p", "linear", "-t", "pile_cc", "--json"],
            "cv_linear_pile_cc.json",
        ),  # fmt: skip
    ],
)
def test_json_unchanged(args, golden):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    same(json.loads(result.stdout), json.loads((GOLDEN / golden).read_text()))
