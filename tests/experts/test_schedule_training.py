"""Multi-phase proxy runs: the sampler switches mixture at a step boundary under one learning-rate
schedule, single-phase runs train as before, and a kill -9 in phase 2 resumes bit-exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from mixsurrogate.corpus.evalsets import build_eval_suite
from mixsurrogate.corpus.store import Corpus
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.experts.batches import mixture_sampler
from mixsurrogate.experts.checkpoints import read_checkpoint_meta, run_identity
from mixsurrogate.experts.lm_eval import eval_losses
from mixsurrogate.experts.mixtures import Mixture, read_mixtures
from mixsurrogate.experts.model import build_model
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.proxy_runs import train_proxy_runs
from mixsurrogate.experts.schedules import (
    ScheduleSampler,
    phase_boundaries,
    realised,
    run_sampler,
    seen_by,
    training_target,
)
from mixsurrogate.experts.train import train_loop
from mixsurrogate.runs.log import LOSS_PREFIX, load_runs
from mixsurrogate.runs.schedule import read_schedules

from builders import REPO, make_corpus, tiny_preset

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

SCHEDULE = (
    "run_id,w:words,w:sums,w@1:words,w@1:sums,w@2:words,w@2:sums,share@1,share@2\n"
    "s1,,,0.9,0.1,0.2,0.8,0.5,0.5\n"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("schedules")
    corpus = make_corpus(root / "corpus", docs={"words": 60, "sums": 60}, val_docs=6, tasks=4)
    preset = tiny_preset(
        root / "fast.toml",
        model={"n_layer": 1, "n_head": 2, "n_embd": 16, "context": 32},
        train={"tokens": 8 * 32 * 12, "warmup_steps": 2, "checkpoint_every": 4},
        eval={"val_sequences": 2, "task_items": 4, "batch_size": 4},
    )
    return {"root": root, "corpus": corpus, "preset": preset}


def test_phase_boundaries_round_half_up_and_the_log_gets_the_realised_shares():
    assert phase_boundaries((0.8, 0.2), 512) == [410]  # 409.6 -> 410: phase 2 has 102 steps
    assert phase_boundaries((0.5, 0.25, 0.25), 10) == [5, 8]  # 7.5 -> 8
    m = Mixture("r", {"a": 0.5, "b": 0.5}, None, ({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}),
                (0.8, 0.2))  # fmt: skip
    r = realised(m, 512)
    assert r.shares == (410 / 512, 102 / 512)
    assert r.weights == pytest.approx({"a": 410 / 512, "b": 102 / 512})
    with pytest.raises(MixsurrogateError, match="phase 2's share 0.01 rounds to no optimiser step"):
        realised(Mixture("r", m.weights, None, m.phases, (0.99, 0.01)), 10)


def test_an_intermediate_checkpoint_is_logged_with_the_phases_it_has_seen():
    m = realised(
        Mixture("r", {"a": 0.5, "b": 0.5}, None, ({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}),
                (0.5, 0.5)),
        10,
    )  # fmt: skip
    early = seen_by(m, 10, 4)  # still in phase 1: a single-phase run of phase 1's mixture
    assert early.phases is None and early.weights == {"a": 1.0, "b": 0.0}
    later = seen_by(m, 10, 8)  # 5 steps of phase 1, 3 of phase 2
    assert later.shares == (5 / 8, 3 / 8)
    assert later.weights == pytest.approx({"a": 5 / 8, "b": 3 / 8})


def test_the_sampler_switches_at_the_boundary_with_the_same_random_numbers(world):
    corpus = Corpus.load(world["corpus"])
    first, second = {"words": 1.0, "sums": 0.0}, {"words": 0.0, "sums": 1.0}
    m = Mixture("s", {"words": 0.5, "sums": 0.5}, None, (first, second), (0.5, 0.5))
    sampler = run_sampler(corpus, m, 32, 8, 3, 10)
    assert isinstance(sampler, ScheduleSampler) and sampler.boundaries == [5]
    alone = [mixture_sampler(corpus, w, 32, 8, 3) for w in (first, second)]
    for step in range(10):
        expected = alone[0 if step < 5 else 1].windows(step)
        np.testing.assert_array_equal(sampler.windows(step), expected)


def _reference_losses(world, weights: dict[str, float], seed: int = 0) -> dict[str, float]:
    """What `runs train` did before schedules, spelled out with the training primitives."""
    corpus, preset = Corpus.load(world["corpus"]), load_preset(world["preset"])
    model = build_model(preset, corpus.vocab_size, corpus.eos_id, seed)
    sampler = mixture_sampler(corpus, weights, preset.model.context, preset.train.batch_size, seed)
    identity = run_identity(preset, corpus, seed, "mixture:" + json.dumps(weights, sort_keys=True))
    device = torch.device("cpu")
    train_loop(model, sampler, preset, device, identity, None, progress=False)
    suite = build_eval_suite(
        corpus, preset.model.context, preset.eval.val_sequences, preset.eval.task_items
    )
    return eval_losses(model, suite, preset.eval.batch_size, device)


def test_single_phase_runs_train_as_before_and_equal_phases_change_nothing(world, tmp_path):
    preset = load_preset(world["preset"])
    single = tmp_path / "single.csv"
    single.write_text("run_id,w:words,w:sums\nr1,0.75,0.25\n")
    train_proxy_runs(world["corpus"], single, preset, tmp_path / "a.csv", progress=False)
    logged = load_runs(tmp_path / "a.csv")
    expected = _reference_losses(world, {"words": 0.75, "sums": 0.25})
    assert {t: logged.loss(t)[0] for t in logged.targets} == expected  # bit-identical
    assert not any(c.startswith(("w@", "share@", "unique:")) for c in logged.frame.columns)
    same = tmp_path / "same.csv"
    same.write_text(
        "run_id,w:words,w:sums,w@1:words,w@1:sums,w@2:words,w@2:sums,share@1,share@2\n"
        "r1,,,0.75,0.25,0.75,0.25,0.3,0.7\n"
    )
    train_proxy_runs(world["corpus"], same, preset, tmp_path / "b.csv", progress=False)
    np.testing.assert_array_equal(load_runs(tmp_path / "b.csv").Y, logged.Y)
    # a checkpoint written before schedules existed still resumes: the same training target
    weights = {"words": 0.75, "sums": 0.25}
    target = training_target(Mixture("r1", weights, None), preset.steps)
    assert target == "mixture:" + json.dumps(weights, sort_keys=True)


def test_a_schedule_is_logged_with_its_realised_phases(world, tmp_path):
    preset = load_preset(world["preset"])
    mixtures = tmp_path / "sched.csv"
    mixtures.write_text(SCHEDULE.replace("0.5,0.5\n", "0.7,0.3\n"))
    rows = train_proxy_runs(
        world["corpus"], mixtures, preset, tmp_path / "log.csv", progress=False, eval_every=4
    )
    log = load_runs(tmp_path / "log.csv")
    schedules = read_schedules(log.frame)
    final = log.run_ids.index("s1")
    # 12 steps: phase 1 ends after round(0.7 * 12) = 8 steps, so the shares are 8/12 and 4/12
    np.testing.assert_allclose(schedules.shares[final], [8 / 12, 4 / 12])
    np.testing.assert_allclose(
        log.W[final], [0.9 * 8 / 12 + 0.2 * 4 / 12, 0.1 * 8 / 12 + 0.8 * 4 / 12]
    )
    assert "phases end after steps [8, 12]" in log.frame["notes"][final]
    # the checkpoint after step 4 saw phase 1 only; after step 8 all of phase 1 and no more
    at4 = log.run_ids.index("s1@1024")
    np.testing.assert_allclose(log.W[at4], [0.9, 0.1])
    assert len(rows) == 3 and all(np.isfinite(log.Y).all(axis=1))


CHILD = """
import sys, time, torch
from pathlib import Path
torch.set_num_threads(1)
from mixsurrogate.experts import schedules
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.proxy_runs import train_proxy_runs

original = schedules.ScheduleSampler.batch

def stall(self, step, rank=0, world=1):
    if step >= 10:  # in phase 2 (steps 6-11); the last checkpoint is step 8
        Path({stalled!r}).touch()
        time.sleep(600)  # the parent kills us here
    return original(self, step, rank, world)

schedules.ScheduleSampler.batch = stall
train_proxy_runs({corpus!r}, {mixtures!r}, load_preset({preset!r}), {log!r},
                 resume_dir={resume!r}, progress=False)
"""


@pytest.mark.slow
def test_kill_9_in_phase_2_resumes_bit_exact(world, tmp_path):
    mixtures = tmp_path / "sched.csv"
    mixtures.write_text(SCHEDULE)
    preset = load_preset(world["preset"])
    log, resume, stalled = tmp_path / "killed.csv", tmp_path / "ckpt", tmp_path / "stalled"
    script = CHILD.format(
        stalled=str(stalled), corpus=str(world["corpus"]), mixtures=str(mixtures),
        preset=str(world["preset"]), log=str(log), resume=str(resume),
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:  # no clock: the child says when it has trained into phase 2 past its checkpoint
        while not stalled.exists():
            assert child.poll() is None, "the child ended before it reached step 10"
            time.sleep(0.05)
        (checkpoint,) = resume.glob("*.safetensors")
        assert read_checkpoint_meta(checkpoint)["step"] == 8  # phase 2 began after step 6
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert load_runs(log).pending_mask.all()  # in flight until resumed

    (resumed,) = train_proxy_runs(
        world["corpus"], mixtures, preset, log, resume_dir=resume, progress=False
    )
    (straight,) = train_proxy_runs(
        world["corpus"], mixtures, preset, tmp_path / "straight.csv", progress=False
    )
    losses = [c for c in resumed if c.startswith(LOSS_PREFIX)]
    assert losses and all(resumed[c] == straight[c] for c in losses)  # bit-exact
    frames = [pd.read_csv(p).drop(columns="notes") for p in (log, tmp_path / "straight.csv")]
    pd.testing.assert_frame_equal(*frames)
    assert not resume.exists()


def test_read_mixtures_tells_schedules_from_single_phase_rows(world, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(SCHEDULE + "r2,0.4,0.6,,,,,,\n")
    schedule, single = read_mixtures(path, Corpus.load(world["corpus"]))
    assert schedule.shares == (0.5, 0.5) and schedule.weights == pytest.approx(
        {"words": 0.55, "sums": 0.45}
    )
    assert single.phases is None and single.weights == {"words": 0.4, "sums": 0.6}
    path.write_text(SCHEDULE.replace("0.5,0.5\n", "0.5,0.6\n"))
    with pytest.raises(MixsurrogateError, match="run s1: phase shares"):
        read_mixtures(path, Corpus.load(world["corpus"]))
