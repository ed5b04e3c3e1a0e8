"""The issue-22 benchmark generator (bench/schedules/generate.py) end to end at a tiny scale."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mixsurrogate.corpus.store import Corpus
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.repetition import unique_limits
from mixsurrogate.runs.exposure import exposure_features
from mixsurrogate.runs.log import load_runs
from mixsurrogate.runs.schedule import read_schedules

from builders import REPO, make_corpus, tiny_preset


@pytest.mark.slow
def test_generator_trains_every_log_and_resumes_with_nothing_left(tmp_path):
    corpus = make_corpus(tmp_path / "corpus", docs={"words": 80, "sums": 80}, val_docs=6, tasks=4)
    preset = tiny_preset(
        tmp_path / "tiny.toml",
        model={"n_layer": 1, "n_head": 2, "n_embd": 16, "context": 32},
        train={"tokens": 8 * 32 * 8, "warmup_steps": 1, "checkpoint_every": 4},
        eval={"val_sequences": 2, "task_items": 4, "batch_size": 4},
    )
    out = tmp_path / "out"
    command = [
        sys.executable, str(REPO / "bench" / "schedules" / "generate.py"), "--corpus",
        str(corpus), "--work", str(tmp_path / "work"), "--out", str(out), "--preset", str(preset),
        "--cap", "words=3000", "--sobol", "2", "--schedules", "1", "--proxies", "1", "--seeds",
        "2", "--workers", "1", "--log", str(tmp_path / "log"),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    runs, seeds = load_runs(out / "runs.csv"), load_runs(out / "seeds.csv")
    assert runs.run_ids == ["sobol-000", "sobol-001", "sched-000"]
    assert seeds.run_ids == ["uniform-s0", "uniform-s1", "sched-000-s0", "sched-000-s1"]
    assert read_schedules(runs.frame).shares[2].tolist() == [0.75, 0.25]  # 0.2 of 8 steps
    assert np.isfinite(runs.Y).all() and np.isfinite(seeds.Y).all()
    # every run trained on the capped words data, and recorded it
    c = Corpus.load(corpus)
    assert (runs.frame["unique:words"] == 3000).all()

    unmatched, matched = (
        load_runs(out / "proxy-unmatched.csv"),
        load_runs(out / "proxy-matched.csv"),
    )
    assert unmatched.run_ids == matched.run_ids == ["sobol-000"]  # the truth is runs.csv's row
    np.testing.assert_allclose(matched.W, runs.W[:1])
    full, quarter = load_preset(preset), load_preset(tmp_path / "work" / "tiny-x0.25.toml")
    target = full.steps * full.tokens_per_step
    limits = unique_limits(
        c, ["words", "sums"], quarter.steps * quarter.tokens_per_step, {"words": 3000}, target
    )
    assert matched.frame["unique:words"][0] == limits["words"]
    assert matched.frame["tokens"][0] == target // 4
    # the matched proxy repeats each domain about as often as its full-budget truth
    manifest = json.loads((out / "corpus.json").read_text())
    epochs = {name: exposure_features(log, manifest)[1][0] for name, log in
              (("truth", runs), ("matched", matched), ("unmatched", unmatched))}  # fmt: skip
    np.testing.assert_allclose(epochs["matched"], epochs["truth"], rtol=1e-3)
    np.testing.assert_allclose(epochs["unmatched"], epochs["truth"] / 4)

    before = {p.name: p.read_text() for p in out.glob("*.csv")}
    subprocess.run(command, check=True, capture_output=True, text=True)
    assert {p.name: p.read_text() for p in out.glob("*.csv")} == before  # nothing left to do
