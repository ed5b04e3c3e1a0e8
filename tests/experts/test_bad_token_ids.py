"""Token ids the model cannot read (issue 18, item 12): runs train and experts train say so in one
line, before anything is logged, and a failed ``runs train`` leaves no pending row behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mixsurrogate.cli.main import main
from mixsurrogate.corpus.store import token_path
from mixsurrogate.runs.log import load_runs

from builders import cli_error_line, copy_corpus, tiny_preset

# one_torch_thread: tests/conftest.py; slow: trains or imports models end to end
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]

STEPS = 4


def _ids_beyond_vocabulary(copy: Path, domain: str, split: str) -> None:
    path = token_path(copy, domain, split)
    ids = np.fromfile(path, dtype=np.uint16)
    ids[::3] = 60_000  # the tokenizer has 300 ids
    ids.tofile(path)


@pytest.fixture
def preset(tmp_path) -> Path:
    return tiny_preset(
        tmp_path / "short.toml",
        train={"tokens": STEPS * 8 * 32, "warmup_steps": 1, "checkpoint_every": 2},
        eval={"val_sequences": 2, "task_items": 4, "batch_size": 4},
    )


def test_runs_train_with_ids_beyond_the_vocabulary_is_one_line_and_leaves_no_pending_row(
    corpus_dir, tmp_path, preset
):
    """Before: torch's IndexError (a traceback), and r2 stayed in the log 'in flight' for ever."""
    copy = copy_corpus(corpus_dir, tmp_path)
    _ids_beyond_vocabulary(copy, "words", "train")
    mixtures = tmp_path / "mix.csv"
    mixtures.write_text("run_id,w:words,w:sums\nr1,0,1\nr2,0.5,0.5\n")
    log = tmp_path / "runs.csv"
    line = cli_error_line(
        main,
        ["runs", "train", str(copy), str(mixtures), str(log), "--preset", str(preset), "--quiet"],
        exit_code=1,
    )
    assert "token id 60000 is beyond the vocabulary" in line
    assert "training stream of domain 'words'" in line
    logged = load_runs(log)
    assert logged.run_ids == ["r1"]  # trained before r2 failed: kept, and finished
    assert not logged.pending_mask.any()


def test_runs_train_failing_on_its_only_run_leaves_no_log(corpus_dir, tmp_path, preset):
    copy = copy_corpus(corpus_dir, tmp_path)
    _ids_beyond_vocabulary(copy, "words", "train")
    mixtures = tmp_path / "mix.csv"
    mixtures.write_text("run_id,w:words,w:sums\nr2,0.5,0.5\n")
    log = tmp_path / "runs.csv"
    cli_error_line(
        main,
        ["runs", "train", str(copy), str(mixtures), str(log), "--preset", str(preset), "--quiet"],
        exit_code=1,
    )
    assert not log.exists()


def test_experts_train_with_ids_beyond_the_vocabulary_is_one_line(corpus_dir, tmp_path, preset):
    copy = copy_corpus(corpus_dir, tmp_path)
    _ids_beyond_vocabulary(copy, "sums", "train")
    out = tmp_path / "experts"
    line = cli_error_line(
        main,
        ["experts", "train", str(copy), str(out), "--preset", str(preset), "--quiet"],
        exit_code=1,
    )
    assert "training stream of domain 'sums'" in line and "beyond the vocabulary" in line
    assert not (out / "sums").exists()


def test_validation_ids_beyond_the_vocabulary_fail_before_anything_is_logged(
    corpus_dir, tmp_path, preset
):
    copy = copy_corpus(corpus_dir, tmp_path)
    _ids_beyond_vocabulary(copy, "sums", "val")
    mixtures = tmp_path / "mix.csv"
    mixtures.write_text("run_id,w:words,w:sums\nr1,1,0\n")
    log = tmp_path / "runs.csv"
    line = cli_error_line(
        main,
        ["runs", "train", str(copy), str(mixtures), str(log), "--preset", str(preset), "--quiet"],
        exit_code=1,
    )
    assert "validation stream of domain 'sums'" in line
    assert not log.exists()
