"""Budget snapshots of experts (issue 21): ``experts train --checkpoints`` keeps the final expert
bit for bit, writes the same snapshots with and without an interruption, and ``experts score``
puts every snapshot's log-probabilities in the store."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from mixsurrogate.cli.experts import experts
from mixsurrogate.experts import train as train_module
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.score import score_experts
from mixsurrogate.experts.train import train_experts
from mixsurrogate.mde.features import MDEFeatureMap
from mixsurrogate.mde.store import load_scores

from builders import cli_error_line, make_corpus, tiny_preset

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
SPEC = "1/8,1/4,1/2"  # 40 steps: snapshots after steps 5, 10, 20; the expert is step 40


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("budget")
    corpus = make_corpus(root / "corpus")
    preset = tiny_preset(root / "tiny.toml")
    runner = CliRunner()
    for out, extra in (("plain", []), ("snap", ["--checkpoints", SPEC])):
        done = runner.invoke(
            experts,
            ["train", str(corpus), str(root / out), "--preset", str(preset), "--quiet", *extra],
        )
        assert done.exit_code == 0, done.output
    return {"root": root, "corpus": corpus, "preset": preset}


def _tensors_equal(a, b) -> bool:
    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_final_expert_is_bit_identical_and_snapshots_listed(world):
    root = world["root"]
    for d in ("words", "sums"):
        assert _tensors_equal(
            root / "plain" / d / "model.safetensors", root / "snap" / d / "model.safetensors"
        )
        meta = json.loads((root / "snap" / d / "meta.json").read_text())
        assert [(s["step"], s["fraction"], s["tokens"]) for s in meta["snapshots"]] == [
            (5, 0.125, 5 * 256), (10, 0.25, 10 * 256), (20, 0.5, 20 * 256), (40, 1.0, 40 * 256)
        ]  # fmt: skip
        files = sorted(p.name for p in (root / "snap" / d / "snapshots").iterdir())
        assert files == ["step-10.safetensors", "step-20.safetensors", "step-5.safetensors"]
        assert not _tensors_equal(
            root / "snap" / d / "snapshots" / "step-20.safetensors",
            root / "snap" / d / "model.safetensors",
        )
    assert not list((root / "snap").glob(".*")), "no hidden checkpoint or snapshot folder left"


def test_snapshots_identical_after_an_interruption(world, tmp_path, monkeypatch):
    """Stopped after snapshot 20 was written but before checkpoint 20: the resumed run keeps
    snapshots 5, 10, 20, resumes at 10 and ends with the same snapshots and expert."""
    preset = load_preset(world["preset"])
    real = train_module.save_checkpoint

    def stop_at_20(path, model, optimizer, step, identity):
        if step == 20:
            raise KeyboardInterrupt  # as a kill at this moment: nothing more is written
        real(path, model, optimizer, step, identity)

    monkeypatch.setattr(train_module, "save_checkpoint", stop_at_20)
    out = tmp_path / "experts"
    with pytest.raises(KeyboardInterrupt):
        train_experts(
            world["corpus"],
            preset,
            out,
            ["words"],
            progress=False,
            checkpoints=(0.125, 0.25, 0.5, 1.0),
        )
    kept = sorted(p.name for p in (out / ".words.snapshots").iterdir())
    assert kept == ["step-10.safetensors", "step-20.safetensors", "step-5.safetensors"]
    monkeypatch.setattr(train_module, "save_checkpoint", real)
    [result] = train_experts(
        world["corpus"], preset, out, ["words"], progress=False, checkpoints=(0.125, 0.25, 0.5, 1.0)
    )
    assert result["resumed_from_step"] == 10
    ref = world["root"] / "snap" / "words"
    for name in kept:
        assert (out / "words" / "snapshots" / name).read_bytes() == (
            ref / "snapshots" / name
        ).read_bytes()
    assert _tensors_equal(out / "words" / "model.safetensors", ref / "model.safetensors")


def test_resume_of_a_run_without_snapshots_is_refused(world, tmp_path, monkeypatch):
    preset = load_preset(world["preset"])
    real = train_module.save_checkpoint

    def stop_at_20(path, model, optimizer, step, identity):
        if step == 20:
            raise KeyboardInterrupt
        real(path, model, optimizer, step, identity)

    monkeypatch.setattr(train_module, "save_checkpoint", stop_at_20)
    out = tmp_path / "experts"
    with pytest.raises(KeyboardInterrupt):
        train_experts(world["corpus"], preset, out, ["words"], progress=False)
    line = cli_error_line(
        experts, ["train", str(world["corpus"]), str(out), "--preset", str(world["preset"]),
                  "--domains", "words", "--quiet", "--checkpoints", SPEC],
    )  # fmt: skip
    assert "resumes at step 10" in line and "steps 5, 10 were never saved" in line


def test_finished_experts_with_other_checkpoints_and_bad_specs_are_one_line(world):
    args = [
        "train",
        str(world["corpus"]),
        str(world["root"] / "plain"),
        "--preset",
        str(world["preset"]),
        "--quiet",
    ]
    line = cli_error_line(experts, [*args, "--checkpoints", SPEC])
    assert "a finished expert without these --checkpoints" in line
    assert "not in (0, 1]" in cli_error_line(experts, [*args, "--checkpoints", "1/8,2"])
    assert "same step" in cli_error_line(experts, [*args, "--checkpoints", "1/64,1/32"])


def test_score_store_holds_every_budget(world, tmp_path):
    root = world["root"]
    plain = load_scores(
        score_experts(root / "plain", world["corpus"], tmp_path / "plain", progress=False)
    )
    path = score_experts(
        root / "snap", world["corpus"], tmp_path / "snap", dtype="float16", progress=False
    )
    store = load_scores(path)
    assert plain.budgets == ()
    assert [(b.fraction, b.tokens) for b in store.budgets] == [
        (0.125, 1280),
        (0.25, 2560),
        (0.5, 5120),
        (1.0, 10240),
    ]
    for name, s in store.eval_sets.items():
        full = plain.eval_sets[name].logp.astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(s.logp, full)  # the final expert's scores, unchanged
        assert not np.array_equal(s.logp_at(0), s.logp)
    for i, d in enumerate(store.experts):  # each expert improved on its own domain's text
        own = store.eval_sets[next(n for n in store.names("val") if d in n)]
        means = [own.logp_at(b)[i, own.mask].mean() for b in range(4)]
        assert means[0] < means[-1], means
    fmap = MDEFeatureMap(store, store.names(), kind="budget")
    W = np.array([[0.5, 0.5], [0.9, 0.1]])  # noqa: N806
    token = MDEFeatureMap(store, store.names())
    assert np.abs(fmap.transform(W) - token.transform(W)).min() > 1e-3
    vertices = np.eye(2)  # the other expert weighs nothing: the full expert alone, as token MDE
    np.testing.assert_allclose(fmap.transform(vertices), token.transform(vertices), rtol=1e-6)
    mixed = tmp_path / "mixed"
    shutil.copytree(root / "snap", mixed)
    shutil.rmtree(mixed / "sums")
    shutil.copytree(root / "plain" / "sums", mixed / "sums")
    with pytest.raises(Exception, match="other budget snapshots than expert"):
        score_experts(mixed, world["corpus"], tmp_path / "mixed-scores", progress=False)
