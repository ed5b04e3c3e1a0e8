"""Pending runs and missing losses (issue 11, part 4): a row with weights and no loss is a run
in flight, a missing loss is a set the run was not evaluated on, and bad values still fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mixsurrogate.errors import RunsLogError
from mixsurrogate.runs.log import (
    append_run,
    load_runs,
    remove_pending_runs,
    save_runs,
    update_run,
)

from builders import REPO, partial_log

# --- the runs log -----------------------------------------------------------------------------


def test_empty_cells_are_missing_and_a_lossless_row_is_pending(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("run_id,w:a,w:b,loss:x,loss:y\nr1,0.5,0.5,3.0,\nr2,0.2,0.8,,\nr3,1,0,2.0,2.5\n")
    log = load_runs(path)
    assert log.pending_mask.tolist() == [False, True, False]
    assert log.completed().run_ids == ["r1", "r3"] and log.pending().run_ids == ["r2"]
    np.testing.assert_allclose(log.pending().W, [[0.2, 0.8]])
    assert log.has_loss("y").tolist() == [False, False, True]
    assert np.isnan(log.loss("y")[0]) and log.run_counts() == {"x": 2, "y": 1}
    done = log.completed()
    assert done.completed() is done and done.pending().W.shape == (0, 2)  # nothing pending


def test_a_log_of_only_designed_runs_is_valid(tmp_path):
    path = tmp_path / "designed.csv"
    path.write_text("run_id,w:a,w:b,loss:x\nd1,0.5,0.5,\nd2,0.1,0.9,\n")
    log = load_runs(path)
    assert log.pending_mask.all() and len(log.completed()) == 0 and len(log.pending()) == 2


@pytest.mark.parametrize(
    ("cell", "shown"),
    [("NaN", "'NaN'"), ("nan", "'nan'"), ("NA", "'NA'"), ("inf", "inf"), ("-inf", "-inf"),
     ("oops", "'oops'")],
)  # fmt: skip
def test_csv_bad_loss_text_is_refused_naming_run_and_column(tmp_path, cell, shown):
    path = tmp_path / "runs.csv"
    path.write_text(f"run_id,w:a,w:b,loss:x,loss:y\nr1,0.5,0.5,3.0,\nr2,0.2,0.8,2.0,{cell}\n")
    with pytest.raises(RunsLogError, match=f"run r2: loss loss:y is {shown}, not a finite number"):
        load_runs(path)


def test_negative_loss_is_still_refused(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("run_id,w:a,w:b,loss:x\nr1,0.5,0.5,\nr2,0.2,0.8,-0.5\n")
    with pytest.raises(RunsLogError, match=r"run r2: loss loss:x is negative \(-0\.5\)"):
        load_runs(path)


@pytest.mark.parametrize(
    ("value", "shown"), [('"nan"', "'nan'"), ("NaN", "'NaN'"), ("Infinity", "'Infinity'")]
)
def test_jsonl_null_is_missing_but_nan_is_refused(tmp_path, value, shown):
    path = tmp_path / "runs.jsonl"
    good = '{"run_id": "r1", "w:a": 0.5, "w:b": 0.5, "loss:x": 3.0, "loss:y": null}\n'
    path.write_text(good)
    assert load_runs(path).run_counts() == {"x": 1, "y": 0}
    path.write_text(good + f'{{"run_id": "r2", "w:a": 1, "w:b": 0, "loss:x": {value}}}\n')
    with pytest.raises(RunsLogError, match=f"run r2: loss loss:x is {shown}, not a finite"):
        load_runs(path)


def test_missing_losses_round_trip_as_empty_cells_and_nulls(tmp_path):
    log = partial_log(8, pending=1, missing_y=3)
    for name in ("runs.csv", "runs.jsonl"):
        save_runs(log, tmp_path / name)
        again = load_runs(tmp_path / name)
        pd.testing.assert_frame_equal(log.frame, again.frame, check_dtype=False)
    records = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert records[0]["loss:x"] is None and records[1]["loss:y"] is None
    assert "NaN" not in (tmp_path / "runs.jsonl").read_text()  # valid JSON, not Python's NaN


def test_append_pending_then_fill_it_in(tmp_path):
    path = tmp_path / "runs.csv"
    append_run(path, {"run_id": "p1", "w:a": 0.5, "w:b": 0.5, "loss:x": None, "loss:y": None})
    append_run(path, {"run_id": "p2", "w:a": 0.3, "w:b": 0.7})  # losses left out: pending too
    assert load_runs(path).pending_mask.tolist() == [True, True]
    log = update_run(path, "p1", {"loss:x": 2.5, "y": 2.0, "tokens": 1000, "notes": "trained"})
    assert log.pending_mask.tolist() == [False, True]
    assert log.frame.loc[0, "notes"] == "trained" and float(log.frame.loc[0, "tokens"]) == 1000
    update_run(path, "p2", {"loss:x": 3.0})  # partial: evaluated on x only (so far)
    update_run(path, "p2", {"loss:x": 3.0, "loss:y": 2.8})  # y later; x again, unchanged: fine
    assert load_runs(path).run_counts() == {"x": 2, "y": 2}


@pytest.mark.parametrize(
    ("run_id", "values", "message"),
    [
        ("p1", {"loss:x": 9.0}, r"run p1: loss:x is already logged \(2\.5\)"),
        ("nope", {"loss:x": 1.0}, "run nope: not in the log"),
        ("p1", {"w:a": 1.0}, "run p1: w:a of a logged run cannot change"),
        ("p1", {"loss:z": 1.0}, "run p1: the log has no evaluation set loss:z"),
        ("p2", {"loss:x": "nan"}, "run p2: loss loss:x is 'nan', not a finite number"),
        ("p2", {"loss:y": -1.0}, "run p2: loss loss:y is negative"),
    ],
)
def test_update_run_refuses_with_one_line_and_writes_nothing(tmp_path, run_id, values, message):
    path = tmp_path / "runs.csv"
    append_run(path, {"run_id": "p1", "w:a": 0.5, "w:b": 0.5, "loss:x": 2.5, "loss:y": None})
    append_run(path, {"run_id": "p2", "w:a": 0.3, "w:b": 0.7})
    before = path.read_text()
    with pytest.raises(RunsLogError, match=message) as err:
        update_run(path, run_id, values)
    assert "\n" not in str(err.value) and path.read_text() == before


def test_append_refuses_a_set_the_log_lacks(tmp_path):
    path = tmp_path / "runs.csv"
    append_run(path, {"run_id": "p1", "w:a": 0.5, "w:b": 0.5, "loss:x": 2.5})
    with pytest.raises(RunsLogError, match="other domains or evaluation sets"):
        append_run(path, {"run_id": "p2", "w:a": 0.5, "w:b": 0.5, "loss:q": 2.5})


WORKER = """
import sys
from mixsurrogate.runs.log import append_run, update_run

path, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for j in range(n):
    update_run(path, f"p{worker}-{j}", {"loss:x": 2.0 + worker, "steps": j})
    append_run(path, {"run_id": f"new{worker}-{j}", "w:a": 0.5, "w:b": 0.5, "loss:x": 1.0})
"""


@pytest.mark.slow
def test_concurrent_updates_and_appends_all_land(tmp_path):
    path = tmp_path / "runs.jsonl"
    workers, n = 4, 10
    rows = [
        {"run_id": f"p{i}-{j}", "w:a": 0.5, "w:b": 0.5, "loss:x": None}
        for i in range(workers)
        for j in range(n)
    ]
    save_runs(pd.DataFrame(rows), path)
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(path), str(i), str(n)], env=env)
        for i in range(workers)
    ]
    assert [p.wait(timeout=600) for p in procs] == [0] * workers
    log = load_runs(path)
    assert len(log) == 2 * workers * n and not log.pending_mask.any()
    filled = log.frame.set_index("run_id")["loss:x"]
    assert all(filled[f"p{i}-{j}"] == 2.0 + i for i in range(workers) for j in range(n))


def _row(run_id: str, loss: float | None) -> dict:
    return {"run_id": run_id, "w:a": 0.5, "w:b": 0.5, "loss:x": loss, "notes": "n"}


def test_remove_pending_runs_takes_out_only_rows_without_a_loss(tmp_path):
    log = tmp_path / "runs.csv"
    for run_id, loss in (("done", 2.5), ("mine", None), ("proposal", None)):
        append_run(log, _row(run_id, loss))
    assert remove_pending_runs(log, ["mine", "done"]) == ["mine"]
    assert load_runs(log).run_ids == ["done", "proposal"]
    assert remove_pending_runs(log, ["mine"]) == []
    frame = pd.read_csv(log)
    assert frame["loss:x"].tolist()[0] == 2.5 and frame["notes"].tolist() == ["n", "n"]


def test_remove_pending_runs_deletes_a_log_it_empties(tmp_path):
    log = tmp_path / "runs.jsonl"
    append_run(log, _row("mine", None))
    assert remove_pending_runs(log, ["mine"]) == ["mine"]
    assert not log.exists()
