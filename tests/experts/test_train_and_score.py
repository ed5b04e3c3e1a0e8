"""Data experts and proxy runs end to end on a tiny synthetic corpus (2 domains, 1 task set)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from mixsurrogate.cli.experts import experts, runs_train
from mixsurrogate.corpus.evalsets import build_eval_suite, task_sequences
from mixsurrogate.corpus.store import Corpus
from mixsurrogate.errors import CorpusError, MixsurrogateError, ScoreStoreError
from mixsurrogate.experts.batches import WindowSampler, mixture_sampler
from mixsurrogate.experts.checkpoints import CheckpointError, read_checkpoint_meta, save_checkpoint
from mixsurrogate.experts.model import build_model, count_params, select_device
from mixsurrogate.experts.presets import PresetError, list_presets, load_preset
from mixsurrogate.experts.proxy_runs import train_proxy_runs
from mixsurrogate.experts.score import score_experts
from mixsurrogate.experts.train import learning_rate, make_optimizer, train_experts, train_loop
from mixsurrogate.mde.store import load_scores
from mixsurrogate.runs.log import load_runs

from builders import REPO, cli_error_line, make_corpus, tiny_preset

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Corpus, preset, two experts, their score store and two proxy runs, made through the CLI."""
    root = tmp_path_factory.mktemp("experts")
    corpus = make_corpus(root / "corpus")
    preset = tiny_preset(root / "tiny.toml")
    runner = CliRunner()
    trained = runner.invoke(
        experts, ["train", str(corpus), str(root / "experts"), "--preset", str(preset), "--quiet"]
    )
    assert trained.exit_code == 0, trained.output
    scored = runner.invoke(
        experts,
        ["score", str(root / "experts"), str(corpus), str(root / "scores"), "--quiet", "--json"],
    )
    assert scored.exit_code == 0, scored.output
    (root / "mix.csv").write_text("run_id,w:words,w:sums\nr1,0.75,0.25\nr2,0.25,0.75\n")
    ran = runner.invoke(
        runs_train,
        [
            str(corpus),
            str(root / "mix.csv"),
            str(root / "runs.csv"),
            "--preset",
            str(preset),
            "--quiet",
        ],
    )
    assert ran.exit_code == 0, ran.output
    return {
        "root": root,
        "corpus": corpus,
        "preset": preset,
        "train_out": trained.output,
        "score_json": json.loads(scored.output),
    }


@pytest.mark.slow
def test_experts_written_with_meta(world):
    for domain in ("words", "sums"):
        folder = world["root"] / "experts" / domain
        assert {"model.safetensors", "config.json", "meta.json"} <= {
            p.name for p in folder.iterdir()
        }
        meta = json.loads((folder / "meta.json").read_text())
        assert meta["domain"] == domain and meta["steps"] == 40 and meta["tokens"] == 40 * 8 * 32
        assert meta["tokenizer_sha256"] == Corpus.load(world["corpus"]).tokenizer_sha256
        assert np.isfinite(meta["final_train_loss"])
        config = json.loads((folder / "config.json").read_text())
        assert config["eos_token_id"] == config["bos_token_id"] < config["vocab_size"]
    assert not list((world["root"] / "experts").glob(".*")), "checkpoints and temporaries removed"
    assert "trained" in world["train_out"]


@pytest.mark.slow
def test_score_store_shapes_masks_and_specialisation(world):
    store = load_scores(world["root"] / "scores")
    assert store.experts == ["words", "sums"]
    assert store.names("val") == ["words", "sums"] and store.names("task") == ["qa"]
    assert store.eval_id == world["score_json"]["eval_id"]
    for name in ("words", "sums"):
        s = store.eval_sets[name]
        assert s.logp.shape == (2, 6, 32) and s.mask.all()
    qa = store.eval_sets["qa"]
    assert qa.logp.shape[:2] == (2, 12) and qa.logp.dtype == np.float32
    # only answer tokens count: " 7;" is 2-3 tokens, far fewer than the prompt
    assert 12 * 2 <= qa.n_tokens <= 12 * 4 and not qa.mask[:, 0].any()
    for s in store.eval_sets.values():
        assert np.isfinite(s.logp).all() and (s.logp <= 0).all()
    loss = {
        n: -np.array([s.logp[i][s.mask].mean() for i in range(2)])
        for n, s in store.eval_sets.items()
    }
    assert loss["words"][0] < loss["words"][1] - 1.0, "the words expert knows words best"
    assert loss["sums"][1] < loss["sums"][0] - 1.0, "the sums expert knows sums best"


@pytest.mark.slow
def test_runs_log_rows_match_score_store(world):
    log = load_runs(world["root"] / "runs.csv")
    assert log.run_ids == ["r1", "r2"]
    assert log.domains == ["words", "sums"] and log.targets == ["words", "sums", "qa"]
    assert np.isfinite(log.Y).all() and (log.Y > 0).all()
    frame = log.frame
    assert (
        (frame["tokens"] == 40 * 8 * 32).all()
        and (frame["steps"] == 40).all()
        and (frame["seed"] == 0).all()
    )
    assert (
        frame["params"] == count_params(build_model(load_preset(world["preset"]), 300, 0, 0))[0]
    ).all()
    store = load_scores(world["root"] / "scores")
    store.check_matches_runs(log.domains, log.targets, frame["eval_id"].iloc[0])
    # the run with more 'words' is better on words, the one with more 'sums' better on sums
    assert log.loss("words")[0] < log.loss("words")[1] and log.loss("sums")[1] < log.loss("sums")[0]


@pytest.mark.slow
def test_reruns_skip_finished_work(world):
    runner = CliRunner()
    again = runner.invoke(
        experts,
        [
            "train",
            str(world["corpus"]),
            str(world["root"] / "experts"),
            "--preset",
            str(world["preset"]),
            "--json",
        ],
    )
    assert again.exit_code == 0 and all(r["skipped"] for r in json.loads(again.output))
    runs = runner.invoke(
        runs_train,
        [
            str(world["corpus"]),
            str(world["root"] / "mix.csv"),
            str(world["root"] / "runs.csv"),
            "--preset",
            str(world["preset"]),
        ],
    )
    assert runs.exit_code == 0 and "nothing to train" in runs.output
    assert len(load_runs(world["root"] / "runs.csv")) == 2


@pytest.mark.slow
def test_proxy_run_matches_expert_on_a_vertex(world, tmp_path):
    """A proxy run with all weight on one domain is that domain's expert (same seed, same batches)."""
    (tmp_path / "mix.jsonl").write_text(
        json.dumps({"run_id": "v", "w:sums": 0.0, "w:words": 1.0}) + "\n"
    )
    preset = load_preset(world["preset"])
    rows = train_proxy_runs(
        world["corpus"], tmp_path / "mix.jsonl", preset, tmp_path / "log.jsonl", progress=False
    )
    store = load_scores(world["root"] / "scores")
    log = load_runs(tmp_path / "log.jsonl")
    assert log.domains == store.experts, "w: columns follow the corpus order, like the experts"
    for name, s in store.eval_sets.items():
        assert rows[0][f"loss:{name}"] == pytest.approx(
            -s.logp[0][s.mask].astype(np.float64).mean(), rel=1e-5
        )
    # given the experts, the vertex run is evaluated from its expert instead of trained again
    reused = train_proxy_runs(
        world["corpus"],
        tmp_path / "mix.jsonl",
        preset,
        tmp_path / "reused.jsonl",
        progress=False,
        experts_dir=world["root"] / "experts",
    )
    assert "the expert of words" in reused[0]["notes"] and reused[0]["seconds"] == 0.0
    for name in store.eval_sets:
        assert reused[0][f"loss:{name}"] == pytest.approx(rows[0][f"loss:{name}"], rel=1e-5)
    assert (reused[0]["tokens"], reused[0]["steps"]) == (rows[0]["tokens"], rows[0]["steps"])


# --- kill -9 and resume -------------------------------------------------------------------------

CHILD = """
import sys, time, torch
from pathlib import Path
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from mixsurrogate.experts.batches import WindowSampler, mixture_sampler
from mixsurrogate.corpus.store import Corpus
from mixsurrogate.experts.model import build_model
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.train import train_loop

class StallAfter12(WindowSampler):
    def batch(self, step, rank=0, world=1):
        if step >= 12:  # steps 10-11 ran (lost work); the last checkpoint is step 10
            Path({stalled!r}).touch()
            time.sleep(600)  # the parent kills us here
        return super().batch(step, rank, world)

corpus, preset = Corpus.load({corpus!r}), load_preset({preset!r})
sampler = mixture_sampler(corpus, {{"words": 0.5, "sums": 0.5}}, 32, 8, 3)
sampler.__class__ = StallAfter12
model = build_model(preset, corpus.vocab_size, corpus.eos_id, 3)
train_loop(model, sampler, preset, torch.device("cpu"), {identity!r}, Path({ckpt!r}), progress=False)
"""


def _identity(preset):
    return {
        "preset": preset.name,
        "preset_sha256": preset.sha256,
        "seed": 3,
        "target": "t",
        "tokenizer_sha256": "x",
    }


@pytest.mark.slow
def test_kill_9_and_resume_equals_uninterrupted(world, tmp_path):
    preset_path = tiny_preset(
        tmp_path / "kill.toml", train={"tokens": 20 * 8 * 32, "checkpoint_every": 5}
    )
    preset = load_preset(preset_path)
    ckpt = tmp_path / "run.safetensors"
    stalled = tmp_path / "stalled"
    script = CHILD.format(
        tests=str(Path(__file__).parent),
        corpus=str(world["corpus"]),
        preset=str(preset_path),
        identity=_identity(preset),
        ckpt=str(ckpt),
        stalled=str(stalled),
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:  # no clock: the child says when it has run steps 10-11 into the stall
        while not stalled.exists():
            assert child.poll() is None, "the child ended before it reached step 12"
            time.sleep(0.05)
        assert read_checkpoint_meta(ckpt)["step"] == 10
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not list(tmp_path.glob(".*.tmp")), "no half-written checkpoint left behind"

    corpus = Corpus.load(world["corpus"])
    sampler = mixture_sampler(corpus, {"words": 0.5, "sums": 0.5}, 32, 8, 3)
    resumed = build_model(preset, corpus.vocab_size, corpus.eos_id, 3)
    result = train_loop(
        resumed, sampler, preset, torch.device("cpu"), _identity(preset), ckpt, progress=False
    )
    assert result.resumed_from == 10 and result.steps == 20
    straight = build_model(preset, corpus.vocab_size, corpus.eos_id, 3)
    reference = train_loop(
        straight, sampler, preset, torch.device("cpu"), _identity(preset), None, progress=False
    )
    assert result.final_loss == reference.final_loss
    for (name, a), (_, b) in zip(
        resumed.named_parameters(), straight.named_parameters(), strict=True
    ):
        assert torch.equal(a, b), name


@pytest.mark.slow
def test_resume_from_another_presets_checkpoint_is_refused(world, tmp_path):
    other = load_preset(tiny_preset(tmp_path / "other.toml", train={"lr": 5e-3}))
    corpus = Corpus.load(world["corpus"])
    model = build_model(other, corpus.vocab_size, corpus.eos_id, 0)
    out = tmp_path / "experts"
    identity = {
        "preset": "other",
        "preset_sha256": other.sha256,
        "seed": 0,
        "target": "expert:words",
        "tokenizer_sha256": corpus.tokenizer_sha256,
    }
    save_checkpoint(
        out / ".words.checkpoint.safetensors", model, make_optimizer(model, other), 10, identity
    )
    with pytest.raises(CheckpointError, match="checkpoint of preset 'other'.*not of preset 'tiny'"):
        train_experts(world["corpus"], load_preset(world["preset"]), out, ["words"], progress=False)
    assert not (out / "words").exists()


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_bad_inputs_are_one_line_and_write_nothing(world, tmp_path):
    preset = str(world["preset"])
    line = cli_error_line(
        experts, ["train", str(world["corpus"]), str(tmp_path / "a"), "--preset", "huge-tpu"]
    )
    assert "unknown preset 'huge-tpu'" in line and "tiny-cpu" in line
    line = cli_error_line(
        experts, ["train", str(tmp_path), str(tmp_path / "a"), "--preset", preset]
    )
    assert "no manifest.json" in line
    (tmp_path / "bad.csv").write_text("run_id,w:words,w:code\nr,0.5,0.5\n")
    line = cli_error_line(
        runs_train,
        [
            str(world["corpus"]),
            str(tmp_path / "bad.csv"),
            str(tmp_path / "log.csv"),
            "--preset",
            preset,
        ],
    )
    assert "domains not in the corpus: code" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "log.csv").exists()


def test_empty_and_too_small_domains(tmp_path):
    corpus = make_corpus(tmp_path / "c", docs={"words": 40, "sums": 0, "sums_small": 1}, tasks=0)
    preset = load_preset(tiny_preset(tmp_path / "p.toml"))
    with pytest.raises(CorpusError, match="'sums' has no train tokens"):
        train_experts(corpus, preset, tmp_path / "e", ["sums"], progress=False)
    with pytest.raises(CorpusError, match="'sums_small' has .* less than one batch"):
        train_experts(corpus, preset, tmp_path / "e", ["words", "sums_small"], progress=False)
    assert not (tmp_path / "e").exists()


@pytest.mark.slow
def test_scoring_with_another_tokenizer_is_refused(world, tmp_path):
    other = make_corpus(tmp_path / "c", vocab_size=280)
    with pytest.raises(ScoreStoreError, match="trained with tokenizer"):
        score_experts(world["root"] / "experts", other, tmp_path / "s", progress=False)
    assert not (tmp_path / "s").exists()


@pytest.mark.slow
def test_runs_log_of_other_eval_sequences_is_refused(world, tmp_path):
    log = tmp_path / "runs.csv"
    log.write_text(
        (world["root"] / "runs.csv")
        .read_text()
        .replace(load_runs(world["root"] / "runs.csv").frame["eval_id"][0], "f" * 64)
    )
    (tmp_path / "mix.csv").write_text("run_id,w:words,w:sums\nr3,0.5,0.5\n")
    with pytest.raises(MixsurrogateError, match="eval_id differs"):
        train_proxy_runs(
            world["corpus"], tmp_path / "mix.csv", load_preset(world["preset"]), log, progress=False
        )
    longer = load_preset(tiny_preset(tmp_path / "longer.toml", train={"tokens": 8 * 32 * 50}))
    with pytest.raises(MixsurrogateError, match="share a budget"):
        train_proxy_runs(
            world["corpus"],
            tmp_path / "mix.csv",
            longer,
            world["root"] / "runs.csv",
            progress=False,
        )


# --- units --------------------------------------------------------------------------------------


def test_shipped_presets():
    assert {"tiny-cpu", "small-gpu", "gpu-70m", "gpu-150m"} <= set(list_presets())
    tiny = load_preset("tiny-cpu")
    assert tiny.model.context == 256 and 1_000_000 <= tiny.train.tokens <= 2_000_000
    _, non_embedding = count_params(build_model(tiny, 4096, 0, 0))
    assert 500_000 <= non_embedding <= 1_000_000
    sizes = {}
    for name in ("small-gpu", "gpu-70m", "gpu-150m"):
        m = load_preset(name).model
        sizes[name] = 12 * m.n_layer * m.n_embd**2
    assert (
        15e6 < sizes["small-gpu"] < 25e6
        and 60e6 < sizes["gpu-70m"] < 80e6
        and 130e6 < sizes["gpu-150m"] < 170e6
    )
    with pytest.raises(PresetError, match=r"unknown n_layers"):
        from mixsurrogate.experts.presets import preset_from_dict

        preset_from_dict(
            {**tiny.settings(), "model": {"n_layers": 2, "n_head": 2, "n_embd": 32, "context": 8}},
            "x",
        )


def test_learning_rate_warmup_then_cosine(tmp_path):
    p = load_preset(tiny_preset(tmp_path / "p.toml"))
    lrs = [learning_rate(p, s) for s in range(p.steps)]
    assert lrs[p.train.warmup_steps - 1] == pytest.approx(p.train.lr)
    assert lrs[0] < lrs[1] < lrs[p.train.warmup_steps - 1]
    assert all(
        a >= b - 1e-12
        for a, b in zip(lrs[p.train.warmup_steps - 1 :], lrs[p.train.warmup_steps :], strict=False)
    )
    assert lrs[-1] == pytest.approx(p.train.min_lr, rel=0.05)


def test_sampler_is_a_function_of_seed_and_step():
    streams = {
        "a": np.arange(20000, dtype=np.uint16),
        "b": np.arange(30000, 50000, dtype=np.uint16),
    }
    s = WindowSampler(streams, {"a": 0.8, "b": 0.2}, context=7, batch_size=2000, seed=1)
    w = s.windows(3)
    assert (
        w.shape == (2000, 8)
        and np.array_equal(w, s.windows(3))
        and not np.array_equal(w, s.windows(4))
    )
    assert (np.diff(w, axis=1) == 1).all(), "windows are contiguous stretches of one stream"
    assert abs((w[:, 0] < 30000).mean() - 0.8) < 0.03, "rows follow the mixture weights"
    assert torch.equal(
        torch.cat([s.batch(3, 0, 2), s.batch(3, 1, 2)]).sort(0).values,
        torch.from_numpy(w).sort(0).values,
    )
    only_b = WindowSampler(streams, {"a": 0.0, "b": 1.0}, context=7, batch_size=50, seed=1).windows(
        0
    )
    assert (only_b >= 30000).all()


def test_task_packing_truncates_prompt_left_and_masks_answers():
    seqs = task_sequences([([5, 6, 7, 8, 9], [3, 4]), ([5], [3])], context=5, eos_id=0, name="t")
    assert seqs.tokens[0].tolist() == [6, 7, 8, 9, 3, 4]  # eos and 5 dropped from the left
    assert seqs.tokens[1].tolist() == [0, 5, 3, 0, 0, 0]  # eos, prompt, answer, padding
    assert seqs.mask.tolist() == [
        [False, False, False, True, True],
        [False, True, False, False, False],
    ]


@pytest.mark.slow
def test_eval_id_is_deterministic_and_tracks_the_sequences(world):
    corpus = Corpus.load(world["corpus"])
    a = build_eval_suite(corpus, 32, 6, 12)
    assert a.eval_id == build_eval_suite(corpus, 32, 6, 12).eval_id
    assert a.eval_id != build_eval_suite(corpus, 32, 5, 12).eval_id
    assert a.eval_id == load_scores(world["root"] / "scores").eval_id
    assert select_device("cpu").type == "cpu"
    assert mixture_sampler(corpus, {"words": 1.0}, 32, 8, 0).domains == ["words"]


@pytest.mark.slow
def test_demo_from_scratch_end_to_end(tmp_path):
    """`demo --from-scratch`: experts, scores, designed runs (vertices = experts), then the demo.

    The corpus is placed first (the pypi build is what test_corpus covers), so the pipeline
    resumes after its corpus step like an interrupted run would.
    """
    from mixsurrogate.cli.main import main

    work = tmp_path / "work"
    make_corpus(work / "corpus")
    preset = tiny_preset(tmp_path / "tiny.toml")
    args = ["demo", "--from-scratch", str(work), "--preset", str(preset), "--runs", "5"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    log = load_runs(work / "runs.csv")
    assert len(log) == 2 + 1 + 5  # vertices, uniform, Sobol points
    notes = log.frame.set_index("run_id")["notes"]
    assert sum("the expert of" in n for n in notes) == 2
    assert (tmp_path / "out" / "learning_curve.png").is_file()
    assert (tmp_path / "out" / "proposal.png").is_file()
    assert "on objective" in result.output and "gp+mde" in result.output
    # a second call finds everything done and trains nothing
    from mixsurrogate.experts.pipeline import build_from_scratch

    said: list[str] = []
    build_from_scratch(work, str(preset), 5, say=said.append)
    assert load_runs(work / "runs.csv").frame.equals(log.frame)
    assert not any("building the corpus" in line or "scoring" in line for line in said)
