"""Logs with ``runs train --eval-every`` checkpoint rows: ``propose --explore --fidelities`` takes
them as free observations at their own tokens, never counted as runs or FLOPs; the one-budget
commands (fit, cv, propose, noise) leave them out with a note."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.runs.fidelity import (
    Fidelity,
    FidelityMenu,
    checkpoint_mask,
    fidelity_features,
    has_fidelity,
)
from mixsurrogate.runs.log import save_runs
from mixsurrogate.search.multifidelity import (
    fit_multifidelity_model,
    propose_multifidelity,
    target_posterior,
)

from builders import (
    EVAL_EVERY_PARAMS,
    EVAL_EVERY_TOKENS,
    cli_error_line,
    eval_every_log,
)

#: the runs' own fidelity and a quarter of it on the menu, a 10x larger target
FULL = Fidelity(EVAL_EVERY_PARAMS, EVAL_EVERY_TOKENS)
MENU = FidelityMenu.build([Fidelity(EVAL_EVERY_PARAMS, EVAL_EVERY_TOKENS // 4), FULL],
                          Fidelity(2e6, 1e7))  # fmt: skip
CLI_MENU = ["--fidelities", f"{EVAL_EVERY_PARAMS}:{EVAL_EVERY_TOKENS}", "--target", "2M:10M"]


def test_checkpoint_rows_are_found_by_id_and_tokens():
    log = eval_every_log(n_runs=3, in_flight=1)
    mask = checkpoint_mask(log)
    assert mask.sum() == 9 and not mask[log.run_ids.index("r0")]
    assert log.frame["run_id"][mask].str.contains("@").all()
    assert has_fidelity(log).sum() == 11  # the pending final row has no params/tokens yet


def _inputs(log):
    done = log.completed()
    return done.W, fidelity_features(done), done.loss("val"), checkpoint_mask(done)


@pytest.mark.slow
def test_checkpoints_count_neither_for_the_start_nor_for_the_switch(one_torch_thread):
    W, F, y, free = _inputs(eval_every_log(n_runs=6))  # noqa: N806
    # 6 runs, 24 rows: a start of 8 runs is not done yet, whatever the rows
    start = propose_multifidelity(W, F, y, list("abc"), MENU, n_initial=8, free=free)
    assert "space-filling start: 6 of 8 runs" in start.notes[0]
    # a switch after 10 runs below the target is not reached by 6 runs and their checkpoints
    common = dict(n_initial=4, switch_runs=10, n_candidates=256)
    explore = propose_multifidelity(W, F, y, list("abc"), MENU, free=free, **common)
    assert not any(n.startswith("confirmation phase") for n in explore.notes)
    assert any("18 intermediate checkpoint row(s)" in n for n in explore.notes)
    # counted as runs (what happened before), the 24 rows would have switched
    counted = propose_multifidelity(W, F, y, list("abc"), MENU, **common)
    assert any(n.startswith("confirmation phase: 24 runs") for n in counted.notes)
    # and their FLOPs are the run's own: the final rows' cost alone
    by_flops = propose_multifidelity(
        W, F, y, list("abc"), MENU, free=free, n_initial=4, n_candidates=256,
        switch_flops=6 * EVAL_EVERY_PARAMS * EVAL_EVERY_TOKENS * 6.5,
    )  # fmt: skip
    assert not any(n.startswith("confirmation phase") for n in by_flops.notes)


@pytest.mark.slow
def test_checkpoints_inform_the_model_at_fewer_tokens(one_torch_thread):
    W, F, y, free = _inputs(eval_every_log(n_runs=6))  # noqa: N806
    quarter = Fidelity(EVAL_EVERY_PARAMS, EVAL_EVERY_TOKENS // 4)
    finals = ~free
    # the model of every row predicts the quarter-run losses it saw; the finals-only one
    # cannot know that an early checkpoint reads higher
    full = fit_multifidelity_model(W, F, y)
    finals_only = fit_multifidelity_model(W[finals], F[finals], y[finals])
    early = free & np.isclose(F[:, 1], quarter.features()[1])
    truth = np.log(y[early])
    err_full = np.abs(target_posterior(full, W[early], quarter)[0] - truth).mean()
    err_finals = np.abs(target_posterior(finals_only, W[early], quarter)[0] - truth).mean()
    assert err_full < 0.2 * err_finals


@pytest.mark.slow
def test_propose_on_a_runs_train_log_in_flight(tmp_path, one_torch_thread):
    path = tmp_path / "runs.csv"
    save_runs(eval_every_log(n_runs=6, in_flight=1), path)
    args = ["propose", str(path), "--explore", "-n", "2", "--objective", "val=1", "--kinds",
            "val=val", *CLI_MENU, "--initial", "4", "--switch-after", "8", "--json"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    notes = json.loads(result.output)["notes"]
    # the running run's checkpoints count too: 6 x 3
    assert any("18 intermediate checkpoint row(s)" in n for n in notes)
    assert any("1 run(s) in flight without params/tokens" in n for n in notes)
    assert not any(n.startswith("confirmation phase") for n in notes)  # 5 runs < 8


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "-p", "linear"],
        ["cv", "-p", "linear", "--folds", "4"],
        ["propose", "-p", "linear", "--objective", "'*'=1", "--no-ledger"],
    ],
)
def test_one_budget_commands_leave_the_checkpoint_rows_out_and_say_so(tmp_path, args):
    """A checkpoint row is its run at a quarter to three quarters of the budget: fitted as one
    more run it would raise every prediction (here by about 0.5 nats)."""
    path = tmp_path / "runs.csv"
    save_runs(eval_every_log(n_runs=8), path)
    result = CliRunner().invoke(main, [args[0], str(path), *args[1:], "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    notes = report["log_notes"] if args[0] != "propose" else report["notes"]
    assert any("24 intermediate checkpoint row(s)" in n and "left out" in n for n in notes)
    if args[0] == "fit":
        assert report["n_runs"] == 8
    if args[0] == "propose":
        assert report["proposals"][0]["objective"] < 5.2  # the final losses: 5.0 + the effect
    text = CliRunner().invoke(main, [args[0], str(path), *args[1:]])
    assert text.exit_code == 0 and "24 intermediate checkpoint row(s)" in text.output


def _with_second_seeds(path, n_repeated: int = 3):
    """The log plus a second seed (final rows only) of its first ``n_repeated`` runs."""
    frame = pd.read_csv(path)
    finals = frame[~frame["run_id"].str.contains("@")].head(n_repeated).copy()
    finals["run_id"] += "-s1"
    finals["loss:val"] += 0.01
    pd.concat([frame, finals]).to_csv(path, index=False)
    return path


def test_noise_leaves_checkpoint_rows_out_and_says_so(tmp_path):
    """Fitted as repeats of their run, checkpoint rows would read as ~0.5 nats of seed noise."""
    path = tmp_path / "runs.csv"
    save_runs(eval_every_log(n_runs=8), path)
    _with_second_seeds(path)
    result = CliRunner().invoke(main, ["noise", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["runs"] == 11 and "24 intermediate checkpoint row(s)" in report["log_notes"][0]
    (row,) = report["sets"]
    assert row["repeat_groups"] == 3 and row["noise"] < 0.02  # the 0.01 seed offset, not 0.5


def test_noise_refuses_runs_of_two_budgets_in_one_line(tmp_path):
    path = tmp_path / "runs.csv"
    save_runs(eval_every_log(n_runs=4), path)
    _with_second_seeds(path)
    frame = pd.read_csv(path)
    frame.loc[frame["run_id"] == "r0-s1", "tokens"] *= 2  # one repeat at twice the budget
    frame.to_csv(path, index=False)
    line = cli_error_line(main, ["noise", str(path)], exit_code=1)
    assert "2 different budgets (params, tokens)" in line


def test_cv_leaves_the_checkpoint_rows_of_a_test_log_out_too(tmp_path):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    save_runs(eval_every_log(n_runs=8), train)
    save_runs(eval_every_log(n_runs=5, seed=1), test)
    args = ["cv", str(train), "--test", str(test), "-p", "linear", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["log_notes"][1].startswith("--test: 15 intermediate checkpoint row(s)")
    assert report["mode"] == "train 8 runs -> test 5 runs"
