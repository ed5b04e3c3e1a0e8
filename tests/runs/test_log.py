"""Runs log: contract, validation errors, atomic writes, RegMix import, design."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import RunsLogError
from mixsurrogate.runs.builtin import regmix_runs
from mixsurrogate.runs.importers import import_regmix
from mixsurrogate.runs.log import append_run, load_runs, save_runs, validate_frame

from builders import random_log


def _frame(**overrides) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "w:code": [0.5, 0.2, 1.0],
            "w:books": [0.5, 0.8, 0.0],
            "loss:code": [3.0, 3.5, 2.5],
            "loss:books": [4.0, 3.6, 5.0],
        }
    )
    for col, values in overrides.items():
        frame[col.replace("__", ":")] = values
    return frame


def _write(tmp_path, frame: pd.DataFrame, name: str = "runs.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_load_valid_log_exposes_matrices(tmp_path):
    log = load_runs(_write(tmp_path, _frame()))
    assert log.domains == ["code", "books"]
    assert log.targets == ["code", "books"]
    assert log.W.shape == (3, 2) and log.Y.shape == (3, 2)
    np.testing.assert_allclose(log.W.sum(axis=1), 1.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"w__code": [0.5, -0.2, 1.0]}, "run b: weight w:code is negative"),
        # an empty weight cell: a run from before the domain was added (--missing-domains zero)
        ({"w__code": [0.5, np.nan, 1.0]}, r"1 run\(s\) \(first: b\) have no weight for w:code"),
        ({"w__code": [0.5, 0.5, 1.0]}, "run b: weights sum to 1.3000, not 1"),
        # an empty cell is "not evaluated on that set"; the text NaN or inf is a bad value
        ({"loss__books": [4.0, "NaN", 5.0]}, "run b: loss loss:books is 'NaN', not a finite"),
        ({"loss__code": [3.0, 3.5, np.inf]}, "run c: loss loss:code is inf, not a finite"),
        ({"run_id": ["a", "b", "a"]}, "duplicate run_id a"),
    ],
)
def test_bad_rows_give_one_clear_error(tmp_path, overrides, message):
    with pytest.raises(RunsLogError, match=message):
        load_runs(_write(tmp_path, _frame(**overrides)))


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        (["run_id"], "missing column 'run_id'"),
        (["w:code", "w:books"], "missing mixture columns"),
        (["loss:code", "loss:books"], "missing loss columns"),
    ],
)
def test_missing_columns(tmp_path, drop, message):
    with pytest.raises(RunsLogError, match=message):
        load_runs(_write(tmp_path, _frame().drop(columns=drop)))


def test_small_sum_error_is_renormalised_silently(tmp_path):
    log = load_runs(_write(tmp_path, _frame(w__code=[0.503, 0.2, 1.0])))
    np.testing.assert_allclose(log.W.sum(axis=1), 1.0)
    assert log.W[0, 0] == pytest.approx(0.503 / 1.003)


def test_jsonl_round_trip_and_append(tmp_path):
    log = load_runs(_write(tmp_path, _frame()))
    path = tmp_path / "runs.jsonl"
    save_runs(log, path)
    again = load_runs(path)
    pd.testing.assert_frame_equal(log.frame, again.frame, check_dtype=False)
    row = {
        "run_id": "d",
        "w:code": 0.3,
        "w:books": 0.7,
        "loss:code": 3.3,
        "loss:books": 3.8,
        "seed": 1,
    }
    appended = append_run(path, row)
    assert appended.run_ids == ["a", "b", "c", "d"]
    assert [json.loads(line)["run_id"] for line in path.read_text().splitlines()] == [
        "a",
        "b",
        "c",
        "d",
    ]


def test_append_bad_row_leaves_log_untouched(tmp_path):
    path = _write(tmp_path, _frame())
    before = path.read_text()
    with pytest.raises(RunsLogError, match="duplicate run_id a"):
        append_run(
            path,
            {"run_id": "a", "w:code": 1.0, "w:books": 0.0, "loss:code": 1.0, "loss:books": 1.0},
        )
    with pytest.raises(RunsLogError, match="other domains"):
        append_run(path, {"run_id": "z", "w:code": 1.0, "loss:code": 1.0, "loss:books": 1.0})
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]  # no temporary file left behind


def test_regmix_import_maps_columns():
    log = regmix_runs("train-1m")
    assert len(log) == 512 and len(log.domains) == 17 and len(log.targets) == 13
    assert "pile_cc" in log.domains and "pile_cc" in log.targets
    assert "enron_emails" in log.domains and "enron_emails" not in log.targets
    assert len(regmix_runs("test-1b")) == 64


def test_regmix_import_rejects_other_files(tmp_path):
    bad = tmp_path / "x.csv"
    pd.DataFrame({"a": [1]}).to_csv(bad, index=False)
    with pytest.raises(RunsLogError, match="no 'index' column"):
        import_regmix(bad, bad)


def test_cli_runs_import_and_design(tmp_path):
    from importlib import resources

    folder = resources.files("mixsurrogate") / "data" / "regmix"
    out = tmp_path / "runs.csv"
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "runs",
            "import",
            "--format",
            "regmix",
            str(folder / "test_mixture_1B.csv"),
            str(folder / "test_pile_loss_1B.csv"),
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(load_runs(out)) == 64
    design = tmp_path / "mix.csv"
    result = runner.invoke(
        main,
        [
            "runs",
            "design",
            "--domains",
            "a,b,c",
            "-n",
            "8",
            "--vertices",
            "--bounds",
            "a=0.1:0.5",
            str(design),
        ],
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(design)
    assert len(frame) == 12
    designed = frame.iloc[4:][["w:a", "w:b", "w:c"]].to_numpy()
    np.testing.assert_allclose(designed.sum(axis=1), 1.0, atol=1e-9)
    assert (designed[:, 0] >= 0.1 - 1e-6).all() and (designed[:, 0] <= 0.5 + 1e-6).all()


def test_cli_bad_log_is_one_line_and_nonzero(tmp_path):
    path = _write(tmp_path, _frame(w__code=[0.5, -0.2, 1.0]))
    result = CliRunner().invoke(main, ["fit", str(path)])
    assert result.exit_code != 0
    assert "run b: weight w:code is negative" in result.output
    assert "Traceback" not in result.output


def _refused_in_one_line(result, fragment: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], lines


@pytest.mark.parametrize("command", [["fit"], ["cv", "-p", "mean", "--folds", "2"]])
def test_a_folder_given_as_the_log_is_one_line(tmp_path, command):
    folder = tmp_path / "runs"
    folder.mkdir()
    result = CliRunner().invoke(main, [command[0], str(folder), *command[1:]])
    _refused_in_one_line(result, f"{folder}: is a folder, not a runs log")
    with pytest.raises(RunsLogError, match="is a folder"):
        load_runs(folder)
    with pytest.raises(RunsLogError, match="is a folder"):
        append_run(folder, {"run_id": "x", "w:a": 1.0, "loss:a": 2.0})


@pytest.mark.parametrize("column", ["w:code", "loss:books"])
@pytest.mark.parametrize("command", [["fit"], ["cv", "-p", "mean", "--folds", "2"]])
def test_a_log_naming_a_column_twice_is_refused_not_renamed(tmp_path, column, command):
    """pandas would read the second ``w:code`` as ``w:code.1``: a domain of its own."""
    path = _write(tmp_path, _frame())
    header, *rows = path.read_text().splitlines()
    extra = {"w:code": "0.0", "loss:books": "4.1"}[column]
    path.write_text("\n".join([f"{header},{column}", *(f"{row},{extra}" for row in rows)]) + "\n")
    with pytest.raises(RunsLogError, match=f"column '{column}' appears more than once"):
        load_runs(path)
    result = CliRunner().invoke(main, [command[0], str(path), *command[1:]])
    _refused_in_one_line(result, f"column '{column}' appears more than once in the header")


def test_a_jsonl_record_naming_a_key_twice_is_refused(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(
        '{"run_id": "a", "w:code": 0.5, "w:books": 0.5, "loss:code": 3.0}\n'
        '{"run_id": "b", "w:code": 0.2, "w:books": 0.8, "loss:code": 3.1, "loss:code": 9.9}\n'
    )
    with pytest.raises(RunsLogError, match="key 'loss:code' appears more than once in one record"):
        load_runs(path)


def test_runs_log_reorders_its_weight_columns(tmp_path):
    log = random_log(["a", "b", "c"], ["x"])
    other = log.with_domain_order(["c", "a", "b"])
    assert other.domains == ["c", "a", "b"]
    np.testing.assert_array_equal(other.W, log.W[:, [2, 0, 1]])
    assert other.targets == log.targets and other.run_ids == log.run_ids
    assert log.with_domain_order(["a", "b", "c"]) is log
    with pytest.raises(RunsLogError, match="not a, b, d"):
        log.with_domain_order(["a", "b", "d"])


def test_negative_cross_entropy_is_refused():
    with pytest.raises(RunsLogError, match=r"run b: loss loss:code is negative \(-0\.1\)"):
        validate_frame(_frame(loss__code=[3.0, -0.1, 2.5]))
    validate_frame(_frame(loss__code=[3.0, 0.0, 2.5]))  # zero is a (perfect) cross-entropy


@pytest.mark.parametrize(
    ("run_id", "message"),
    [
        (np.nan, "row 2: run_id is missing"),
        (None, "row 2: run_id is missing"),
        ("", "row 2: run_id is missing"),
        ("  ", "row 2: run_id is missing"),
        ("nan", "row 2: run_id is 'nan', which reads back as missing"),
        ("NA", "row 2: run_id is 'NA', which reads back as missing"),
    ],
)
def test_missing_or_blank_run_ids_are_refused(run_id, message):
    """Before: NaN became the run id 'nan' (astype(str)), and '' was a run id."""
    with pytest.raises(RunsLogError, match=message):
        validate_frame(_frame(run_id=["a", run_id, "c"]))


def test_a_csv_with_an_empty_run_id_cell_is_refused(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("run_id,w:a,w:b,loss:a\nx,0.5,0.5,3.0\n,0.5,0.5,3.1\n")
    with pytest.raises(RunsLogError, match="row 2: run_id is missing"):
        load_runs(path)
