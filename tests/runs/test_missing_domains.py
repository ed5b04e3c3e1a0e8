"""Runs logged before a domain was added: empty ``w:<new>`` cells are refused in one line unless
the caller says they mean weight 0 (issue 21); the writers keep them empty."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixsurrogate.errors import RunsLogError
from mixsurrogate.runs.log import append_run, load_runs, read_frame

from builders import one_line

# three runs from before "news" joined the log (empty cells), two after
GROWN = """run_id,w:forum,w:wiki,w:news,loss:forum,loss:wiki,loss:news,eval_id
o1,0.7,0.3,,3.1,3.6,,old
o2,0.2,0.8,,3.7,3.2,,old
o3,0.5,0.5,,3.4,3.4,,old
n1,0.3,0.3,0.4,3.5,3.5,3.2,new
n2,0.1,0.6,0.3,3.8,3.3,3.3,new
"""


def _csv(tmp_path: Path, text: str = GROWN) -> Path:
    path = tmp_path / "runs.csv"
    path.write_text(text)
    return path


def test_empty_weight_cells_are_refused_by_default_in_one_line_naming_the_option(tmp_path):
    with pytest.raises(RunsLogError) as err:
        load_runs(_csv(tmp_path))
    line = one_line(err)
    assert "3 run(s) (first: o1) have no weight for w:news" in line
    assert "--missing-domains zero" in line


def test_missing_domains_zero_reads_empty_cells_as_weight_zero(tmp_path):
    log = load_runs(_csv(tmp_path), missing_domains="zero")
    assert log.domains == ["forum", "wiki", "news"]
    np.testing.assert_allclose(log.W[:3], [[0.7, 0.3, 0], [0.2, 0.8, 0], [0.5, 0.5, 0]])
    np.testing.assert_allclose(log.W[3:], [[0.3, 0.3, 0.4], [0.1, 0.6, 0.3]])
    assert np.isnan(log.loss("news")[:3]).all()  # losses stay missing: not evaluated


def test_missing_key_in_jsonl_is_an_empty_cell_too(tmp_path):
    path = tmp_path / "runs.jsonl"
    rows = [
        {"run_id": "o1", "w:forum": 0.6, "w:wiki": 0.4, "loss:forum": 3.2},
        {"run_id": "n1", "w:forum": 0.3, "w:wiki": 0.3, "w:news": 0.4, "loss:forum": 3.5},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(RunsLogError, match="--missing-domains zero"):
        load_runs(path)
    np.testing.assert_allclose(load_runs(path, "zero").W[0], [0.6, 0.4, 0.0])


def test_zero_does_not_excuse_text_or_rows_that_do_not_sum_to_one(tmp_path):
    text = GROWN.replace("o2,0.2,0.8,,", "o2,0.2,0.8,NaN,")
    with pytest.raises(RunsLogError, match="run o2: weight w:news is missing or NaN"):
        load_runs(_csv(tmp_path, text), missing_domains="zero")
    short = GROWN.replace("o3,0.5,0.5,,", "o3,0.5,0.3,,")
    with pytest.raises(RunsLogError, match="run o3: weights sum to 0.8000, not 1"):
        load_runs(_csv(tmp_path, short), missing_domains="zero")
    with pytest.raises(RunsLogError, match="unknown missing-domains policy 'maybe'"):
        load_runs(_csv(tmp_path), missing_domains="maybe")


def test_appending_keeps_the_empty_cells_empty(tmp_path):
    path = _csv(tmp_path)
    row = {"run_id": "n3", "w:forum": 0.2, "w:wiki": 0.2, "w:news": 0.6, "loss:forum": 3.7}
    append_run(path, row)
    frame = read_frame(path)
    assert list(frame["run_id"]) == ["o1", "o2", "o3", "n1", "n2", "n3"]
    assert frame["w:news"].isna().tolist() == [True, True, True, False, False, False]
    with pytest.raises(RunsLogError, match="--missing-domains zero"):
        load_runs(path)  # still the user's call, not the writer's
    assert len(load_runs(path, "zero")) == 6
