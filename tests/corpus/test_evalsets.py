"""Evaluation sequences that cover their domain, and the real-text generator's plan (issue 9)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mixsurrogate.corpus.evalsets import task_sequences, val_windows
from mixsurrogate.runs.log import load_runs

from builders import REPO, make_corpus, tiny_preset


def test_validation_windows_spread_over_every_document():
    """The first N windows covered one document of a long-document domain; spread windows
    start evenly over the whole stream and never overlap."""
    docs = [np.full(1000, d + 1) for d in range(40)]  # 40 long documents, ids 1..40
    stream = np.concatenate([np.append(d, 0) for d in docs])  # 0 = end of text
    seqs = val_windows(stream, 40, 15, "long", eos_id=0)
    assert seqs.tokens.shape == (40, 16)
    first_ids = {int(row[row > 0][0]) for row in seqs.tokens}
    assert len(first_ids) == 40  # one window in every document
    assert seqs.documents == 40 and seqs.documents_available == 40
    flat = stream.tolist()
    positions = [
        next(i for i in range(len(flat) - 15) if flat[i : i + 16] == row.tolist())
        for row in seqs.tokens
    ]
    assert all(b - a >= 16 for a, b in zip(positions, positions[1:], strict=False))


def test_answers_longer_than_the_context_are_counted():
    seqs = task_sequences([([1, 2], [3] * 9), ([1], [4])], context=5, eos_id=0, name="t")
    assert seqs.answers_truncated == 1
    assert seqs.facts()["answers_truncated"] == 1


@pytest.mark.slow
def test_generate_gives_every_model_its_own_seed_and_copies_seed_zero(tmp_path):
    """The CPU smoke test of the generator (the GPU variant runs the same code with
    --device cuda and a GPU preset)."""
    corpus = make_corpus(tmp_path / "corpus")
    preset = tiny_preset(tmp_path / "tiny.toml")
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "realtext" / "generate.py"), "--corpus", str(corpus),
         "--work", str(tmp_path / "work"), "--out", str(out), "--preset", str(preset),
         "--sobol", "3", "--design-n", "8", "--seed-after", "4", "--seeds", "2", "--repeated",
         "2", "--log", str(tmp_path / "log"), "--workers", "1"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    runs, seeds = load_runs(out / "runs.csv"), load_runs(out / "seeds.csv")
    assert runs.run_ids == ["vertex-words", "vertex-sums", "uniform", "sobol-000", "sobol-001",
                            "sobol-002"]  # fmt: skip
    all_seeds = pd.concat([runs.frame, seeds.frame])
    models = all_seeds.drop_duplicates("seed")
    assert len(models) == len(runs) + 2  # seeds 0 of the repeats are main-log rows
    s0 = seeds.frame.set_index("run_id").loc["uniform-s0"]
    main = runs.frame.set_index("run_id").loc["uniform"]
    assert s0["seed"] == main["seed"] and s0["loss:words"] == main["loss:words"]
    assert "the expert of words" in runs.frame.set_index("run_id").loc["vertex-words", "notes"]
