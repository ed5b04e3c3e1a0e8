"""Pending runs and missing losses (issue 11, part 4): a row with weights and no loss is a run
in flight, a missing loss is a set the run was not evaluated on, and bad values still fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import RunsLogError
from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.objective import Objective
from mixsurrogate.predictors import make_predictor
from mixsurrogate.predictors.multitarget import MultiTargetPredictor
from mixsurrogate.runs.log import (
    RunsLog,
    append_run,
    load_runs,
    save_runs,
    update_run,
    validate_frame,
)


def _partial_log(n: int = 30, pending: int = 2, missing_y: int = 12, seed: int = 0) -> RunsLog:
    """Three domains, two sets: ``y`` measured on ``n - pending - missing_y`` runs only."""
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(3), n)  # noqa: N806
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)]})
    for j, d in enumerate("abc"):
        frame[f"w:{d}"] = W[:, j]
    frame["loss:x"] = 3.0 - W[:, 0] + 0.3 * W[:, 2] ** 2 + 0.01 * rng.normal(size=n)
    frame["loss:y"] = 3.0 - W[:, 1] + 0.01 * rng.normal(size=n)
    frame.loc[frame.index[pending : pending + missing_y], "loss:y"] = np.nan
    frame.loc[frame.index[:pending], ["loss:x", "loss:y"]] = np.nan
    return RunsLog(validate_frame(frame))


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
    log = _partial_log(8, pending=1, missing_y=3)
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
    assert [p.wait(timeout=120) for p in procs] == [0] * workers
    log = load_runs(path)
    assert len(log) == 2 * workers * n and not log.pending_mask.any()
    filled = log.frame.set_index("run_id")["loss:x"]
    assert all(filled[f"p{i}-{j}"] == 2.0 + i for i in range(workers) for j in range(n))


# --- fitting and scoring ----------------------------------------------------------------------


def test_each_target_is_fitted_on_the_runs_that_have_it():
    log = _partial_log()
    done = log.completed()
    model = MultiTargetPredictor("linear").fit(done.W, done.Y, done.targets, done.domains)
    assert model.n_runs_ == {"x": 28, "y": 16}
    assert model.notes_["y"] == ["fitted on the 16 of 28 runs evaluated on it"]
    assert model.notes_["x"] == []
    grid = np.random.default_rng(1).dirichlet(np.ones(3), 5)
    for j, target in enumerate(done.targets):
        have = done.has_loss(target)
        alone = make_predictor("linear").fit(done.W[have], done.loss(target)[have])
        np.testing.assert_allclose(model.predict(grid)[:, j], alone.predict(grid))


def test_gp_targets_on_different_runs_are_tuned_on_their_own_runs():
    log = _partial_log(20, pending=0, missing_y=6)
    model = MultiTargetPredictor("gp").fit(log.W, log.Y, log.targets, log.domains)
    assert model.fitted_targets_ == ["x", "y"] and model.n_runs_ == {"x": 20, "y": 14}
    assert np.isfinite(model.predict(log.W)).all()


def test_a_target_no_run_has_is_skipped_with_the_reason():
    log = _partial_log(10, pending=0, missing_y=10)
    model = MultiTargetPredictor("linear").fit(log.W, log.Y, log.targets, log.domains)
    assert model.reasons() == {"y": ("skipped", "no run has this loss")}


def test_pending_runs_are_left_out_of_every_fit():
    log = _partial_log()
    spec = evaluate.PredictorSpec("linear")
    with_pending = evaluate.fit_predict(spec, log, log.W, log.targets)
    without = evaluate.fit_predict(spec, log.completed(), log.W, log.targets)
    np.testing.assert_array_equal(with_pending.pred, without.pred)
    assert with_pending.n_runs == {"x": 28, "y": 16}
    assert with_pending.notes["y"] == ["fitted on the 16 of 28 runs evaluated on it"]


def test_cv_fits_and_scores_each_set_on_its_runs_and_never_scores_pending():
    log = _partial_log()
    obj = Objective.parse("x=0.5,y=0.5", log.targets, None, "")
    result = evaluate.cross_validate(
        [evaluate.PredictorSpec("linear")], log, 4, seed=0, progress=False, objective=obj
    )
    scores = result.scores.set_index(["target", "fold"])
    pending = set(np.flatnonzero(log.pending_mask))
    assert not pending & set(np.concatenate(list(result.split_rows.values())))
    for fold, rows in enumerate(result.split_rows.values()):
        has_y = int(log.has_loss("y")[rows].sum())
        assert has_y > 0  # folds stratified on which sets each run has
        assert scores.loc[("y", fold), "n_scored"] == has_y
        assert scores.loc[("x", fold), "n_scored"] == len(rows)
        assert scores.loc[("objective", fold), "n_scored"] == has_y
    summary = result.summary().set_index("target")
    assert (summary["status"] == "ok").all()
    assert summary.loc["y", "n_train"] == pytest.approx(16 * 3 / 4)
    assert summary.loc["x", "n_train"] == pytest.approx(28 * 3 / 4)
    assert summary.loc["y", "notes"] == (
        "evaluated on 16 of the log's 28 completed runs, so fitted and scored on those "
        "(n_train, n_scored) [4 of 4 fits]"
    )
    assert summary.loc["x", "notes"] == ""


def test_learning_curve_notes_count_over_the_cells_own_draws():
    """A curve cell's note counts that size's fits (it read "34 of 10", then counted over
    every size, so auto's choice at one size could not be told from another's)."""
    log = _partial_log()
    curve = evaluate.learning_curve(
        [evaluate.PredictorSpec("linear")], log, None, [12, 16], 3, seed=0, progress=False
    )
    notes = curve.summary(["size"]).set_index(["target", "size"]).loc[("y", 12), "notes"]
    assert notes.endswith("[3 of 3 fits]"), notes


def test_complete_logs_keep_their_folds():
    """Stratification only when losses are partial: a full log's folds are cv_splits'."""
    log = _partial_log(20, pending=0, missing_y=0)
    result = evaluate.cross_validate([evaluate.PredictorSpec("mean")], log, 5, progress=False)
    expected = evaluate.cv_splits(len(log), 5, 1, 0)
    assert [s.test.tolist() for s in expected] == [r.tolist() for r in result.split_rows.values()]


def test_train_test_and_curves_skip_pending_and_missing():
    log = _partial_log()
    specs = [evaluate.PredictorSpec("linear")]
    tested = evaluate.train_test(specs, log, log, progress=False).summary().set_index("target")
    assert tested.loc["x", "n_scored"] == 28 and tested.loc["y", "n_scored"] == 16
    assert tested.loc["y", "n_train"] == 16
    curve = evaluate.learning_curve(specs, log, None, [10, 20], 2, seed=0, progress=False)
    sizes = curve.summary(["size"])
    assert (sizes["status"] == "ok").all()
    assert (sizes.loc[sizes["target"] == "x", "n_scored"] == [18, 8]).all()


def _write(tmp_path: Path, log: RunsLog) -> Path:
    path = tmp_path / "runs.csv"
    save_runs(log, path)
    return path


def test_cli_fit_says_how_many_runs_each_set_was_fitted_on(tmp_path):
    path = _write(tmp_path, _partial_log())
    result = CliRunner().invoke(main, ["fit", str(path), "-p", "linear", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["n_runs"] == 28 and out["n_pending"] == 2
    assert {r["target"]: r["runs"] for r in out["in_sample"]} == {"x": 28, "y": 16}
    assert out["notes"]["y"] == ["fitted on the 16 of 28 runs evaluated on it"]
    table = CliRunner().invoke(main, ["fit", str(path), "-p", "linear"])
    assert table.exit_code == 0, table.output
    assert "fitted on 28 runs (2 pending run(s) not used)" in table.output
    assert "note (y): fitted on the 16 of 28 runs evaluated on it" in table.output


def test_cli_cv_reports_pending_and_per_set_counts(tmp_path):
    path = _write(tmp_path, _partial_log())
    result = CliRunner().invoke(main, ["cv", str(path), "-p", "linear", "--folds", "4", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert "(2 pending run(s) not used)" in out["mode"]
    cells = {r["target"]: r for r in out["results"] if r["predictor"] == "linear"}
    assert cells["y"]["n_train"] == 12 and cells["x"]["n_train"] == 21
    assert "evaluated on 16 of the log's 28 completed runs" in cells["y"]["notes"]
    table = CliRunner().invoke(main, ["cv", str(path), "-p", "linear", "--folds", "4"])
    assert table.exit_code == 0, table.output
    assert "note: linear on y: evaluated on 16 of the log's 28 completed runs" in table.output


@pytest.mark.parametrize("command", ["fit", "cv"])
@pytest.mark.parametrize("cell", ["NaN", "inf", "-1.5"])
def test_cli_refuses_bad_loss_values_with_one_line(tmp_path, command, cell):
    path = tmp_path / "runs.csv"
    lines = [f"r{i},0.{i + 1},0.{9 - i},{3 + i / 10},2.0" for i in range(6)]
    lines[3] = f"r3,0.4,0.6,{cell},"
    path.write_text("run_id,w:a,w:b,loss:x,loss:y\n" + "\n".join(lines) + "\n")
    result = CliRunner().invoke(main, [command, str(path)])
    assert result.exit_code != 0
    out = result.output.strip().splitlines()
    assert len(out) == 1 and "run r3: loss loss:x is" in out[0], result.output
    assert "Traceback" not in result.output


# --- runs train: pending while training, --eval-every checkpoints ---------------------------

from builders import REPO, make_corpus, tiny_preset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, one_torch_thread):
    """A two-domain corpus and a 20-step preset (8 x 32 tokens a step)."""
    root = tmp_path_factory.mktemp("runs_train")
    corpus = make_corpus(root / "corpus")
    preset = tiny_preset(root / "tiny.toml", train={"tokens": 8 * 32 * 20})
    (root / "mix.csv").write_text("run_id,w:words,w:sums\nr1,0.75,0.25\n")
    return {"root": root, "corpus": corpus, "preset": preset, "mix": root / "mix.csv"}


def _runs_train(tiny, log: Path, *extra: str):
    from mixsurrogate.cli.experts import runs_train

    args = [str(tiny["corpus"]), str(tiny["mix"]), str(log), "--preset", str(tiny["preset"])]
    return CliRunner().invoke(runs_train, [*args, "--quiet", *extra])


def test_eval_every_logs_intermediate_checkpoints_as_rows(tiny, tmp_path):
    log_path = tmp_path / "runs.csv"
    result = _runs_train(tiny, log_path, "--eval-every", "8")
    assert result.exit_code == 0, result.output
    assert "logged 1 run(s) and 2 intermediate checkpoint(s)" in result.output
    log = load_runs(log_path)
    assert log.run_ids == ["r1", "r1@2048", "r1@4096"]  # the final row is the pending one filled
    frame = log.frame.set_index("run_id")
    assert frame.loc["r1@2048", "steps"] == 8 and frame.loc["r1@4096", "tokens"] == 16 * 256
    assert frame.loc["r1", "steps"] == 20 and frame.loc["r1", "tokens"] == 20 * 256
    assert "intermediate checkpoint of r1 at step 8 of 20" in frame.loc["r1@2048", "notes"]
    assert "in flight" not in frame.loc["r1", "notes"] and not log.pending_mask.any()
    np.testing.assert_allclose(log.W, np.tile(log.W[0], (3, 1)))  # same mixture
    assert frame.loc["r1@2048", "loss:words"] > frame.loc["r1", "loss:words"]  # it learns
    # evaluating mid-run changes nothing in training: the final row is the plain run's
    plain = _runs_train(tiny, tmp_path / "plain.csv")
    assert plain.exit_code == 0, plain.output
    final = load_runs(tmp_path / "plain.csv").frame.set_index("run_id").loc["r1"]
    for target in log.targets:
        assert frame.loc["r1", f"loss:{target}"] == final[f"loss:{target}"]
    # checkpoint rows pass the log's budget check: a rerun finds nothing to train
    again = _runs_train(tiny, log_path, "--eval-every", "8")
    assert again.exit_code == 0 and "nothing to train" in again.output, again.output
    assert len(load_runs(log_path)) == 3


def test_runs_are_pending_while_they_train_and_a_rerun_fills_them(tiny, tmp_path, monkeypatch):
    from mixsurrogate.experts import proxy_runs

    log_path = tmp_path / "runs.csv"
    seen = []

    def crash(*args, **kwargs):
        seen.append(load_runs(log_path))
        raise KeyboardInterrupt  # the job is killed mid-training

    monkeypatch.setattr(proxy_runs, "train_loop", crash)
    with pytest.raises(KeyboardInterrupt):
        proxy_runs.train_proxy_runs(
            tiny["corpus"], tiny["mix"], load_preset_of(tiny), log_path, progress=False
        )
    assert seen[0].pending_mask.tolist() == [True] and seen[0].run_ids == ["r1"]
    assert load_runs(log_path).pending_mask.all()  # still in flight, for every other worker
    monkeypatch.undo()
    rows = proxy_runs.train_proxy_runs(
        tiny["corpus"], tiny["mix"], load_preset_of(tiny), log_path, progress=False
    )
    log = load_runs(log_path)
    assert [r["run_id"] for r in rows] == ["r1"] and log.run_ids == ["r1"]
    assert not log.pending_mask.any() and np.isfinite(log.Y).all()


def test_a_proposed_pending_row_is_trained_only_with_its_weights(tiny, tmp_path):
    log_path = tmp_path / "runs.jsonl"
    sets = ["words", "sums", "qa"]
    row = {"run_id": "r1", "w:words": 0.5, "w:sums": 0.5, **{f"loss:{s}": None for s in sets}}
    append_run(log_path, row)
    result = _runs_train(tiny, log_path)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "run r1 is pending there with other weights" in lines[0]
    update_path = tmp_path / "proposed.jsonl"
    append_run(update_path, {**row, "w:words": 0.75, "w:sums": 0.25, "notes": "proposed"})
    result = _runs_train(tiny, update_path)
    assert result.exit_code == 0, result.output
    log = load_runs(update_path)
    assert log.run_ids == ["r1"] and not log.pending_mask.any()
    assert log.frame.loc[0, "notes"].startswith("preset=")


def load_preset_of(tiny):
    from mixsurrogate.experts.presets import load_preset

    return load_preset(tiny["preset"])
