"""Appends to a runs log (issue 10): locked appends from many processes, file modes, metadata
columns and column order, and rejected rows that write nothing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mixsurrogate.errors import RunsLogError
from mixsurrogate.files import atomic_write_text
from mixsurrogate.runs.log import (
    append_run,
    load_runs,
    read_frame,
    save_runs,
)

from builders import REPO

APPENDER = """
import sys
from mixsurrogate.runs.log import append_run

path, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for j in range(n):
    row = {"run_id": f"p{worker}-{j}", "w:a": 0.5, "w:b": 0.5, "loss:a": 3.0, "loss:b": 2.0}
    append_run(path, row)
"""


def _row(run_id: str, **extra: object) -> dict:
    return {"run_id": run_id, "w:a": 0.25, "w:b": 0.75, "loss:a": 3.0, "loss:b": 2.5, **extra}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
def test_concurrent_appends_keep_every_row(tmp_path):
    """8 processes x 50 appends: read-modify-rename without a lock kept 68 of the 400 rows."""
    path = tmp_path / "runs.csv"
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}  # this checkout's package
    workers = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(path), str(i), "50"], env=env)
        for i in range(8)
    ]
    assert [w.wait(timeout=600) for w in workers] == [0] * 8
    log = load_runs(path)
    assert len(log) == 400
    assert sorted(log.run_ids) == sorted(f"p{i}-{j}" for i in range(8) for j in range(50))
    assert not list(tmp_path.glob("*.tmp")), "no temporary file left behind"


def test_a_new_log_gets_the_umask_mode(tmp_path, umask_022):
    path = tmp_path / "runs.csv"
    append_run(path, _row("a"))
    assert _mode(path) == 0o644  # mkstemp's 0600 made every log private to its writer
    save_runs(load_runs(path), tmp_path / "copy.jsonl")
    assert _mode(tmp_path / "copy.jsonl") == 0o644
    atomic_write_text(tmp_path / "mixtures.csv", "run_id,w:a\nx,1\n")
    assert _mode(tmp_path / "mixtures.csv") == 0o644


@pytest.mark.parametrize("mode", [0o664, 0o640, 0o600], ids=oct)
def test_appends_keep_the_log_mode(tmp_path, umask_022, mode):
    path = tmp_path / "runs.csv"
    append_run(path, _row("a"))
    path.chmod(mode)  # a team's shared log (0664), or one its owner made private (0600)
    append_run(path, _row("b"))
    assert _mode(path) == mode
    save_runs(load_runs(path), path)
    assert _mode(path) == mode


def test_append_without_a_metadata_column_of_the_log(tmp_path):
    """A row without the log's ``notes`` (or with a new ``seed``) goes in, one clear log after."""
    path = tmp_path / "runs.csv"
    append_run(path, _row("a", notes="first", params=1000))
    log = append_run(path, _row("b", params=2000))  # KeyError: ['notes'] not in index
    assert log.run_ids == ["a", "b"]
    assert pd.isna(log.frame["notes"].iloc[1])
    log = append_run(path, _row("c", seed=3))
    assert list(read_frame(path).columns)[-1] == "seed"
    assert log.frame["params"].tolist()[:2] == [1000, 2000]
    assert load_runs(path).run_ids == ["a", "b", "c"]


def test_append_in_another_column_order_keeps_the_log_order(tmp_path):
    path = tmp_path / "runs.csv"
    append_run(path, _row("a"))
    swapped = {"run_id": "b", "loss:b": 2.0, "w:b": 0.5, "loss:a": 3.0, "w:a": 0.5}
    log = append_run(path, swapped)
    assert log.domains == ["a", "b"] and log.targets == ["a", "b"]
    assert log.W.tolist() == [[0.25, 0.75], [0.5, 0.5]]


def test_a_rejected_row_writes_nothing_not_even_the_lock(tmp_path):
    path = tmp_path / "runs.csv"
    with pytest.raises(RunsLogError, match="loss:a is negative"):
        append_run(path, _row("a", **{"loss:a": -0.5}))
    assert list(tmp_path.iterdir()) == []
