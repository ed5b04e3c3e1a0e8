"""runs train and pending rows (issue 11): runs are pending while they train, a rerun fills them,
--eval-every logs intermediate checkpoints as rows, a proposed row trains with its weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.runs.log import (
    append_run,
    load_runs,
)

from builders import make_corpus, tiny_preset

pytestmark = pytest.mark.slow  # proxy runs trained end to end


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


def test_a_log_grown_by_a_domain_gets_new_runs_and_keeps_its_empty_cells(tiny, tmp_path):
    """Runs logged before ``sums`` was a domain have empty ``w:sums`` cells: ``runs train``
    appends to that log (no option needed: it writes, it does not fit) and leaves them empty."""
    first = tmp_path / "first.csv"
    assert _runs_train(tiny, first).exit_code == 0
    old = pd.read_csv(first)
    old["run_id"], old["w:words"], old["w:sums"] = "old", 1.0, np.nan
    log_path = tmp_path / "runs.csv"
    old.to_csv(log_path, index=False)
    result = _runs_train(tiny, log_path)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(log_path)
    assert frame["run_id"].tolist() == ["old", "r1"]
    assert pd.isna(frame.loc[0, "w:sums"]) and frame.loc[1, "w:sums"] == 0.25
