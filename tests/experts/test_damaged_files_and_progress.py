"""GPU-side reliability (issue 10): damaged model files and checkpoints say how to recover, and the
training progress shows a smoothed loss, labelled as such."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mixsurrogate.cli.experts import experts
from mixsurrogate.corpus.store import Corpus
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.experts import train as train_module
from mixsurrogate.experts.batches import mixture_sampler
from mixsurrogate.experts.checkpoints import save_checkpoint
from mixsurrogate.experts.model import MODEL_FILE, build_model, load_trained
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.train import train_loop

from builders import cli_error_line, make_corpus, tiny_preset

STEPS = 6


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A corpus, a preset of a few steps, and one trained expert per domain."""
    root = tmp_path_factory.mktemp("reliability")
    corpus = make_corpus(root / "corpus", docs={"words": 60, "sums": 60}, tasks=4)
    preset = tiny_preset(
        root / "short.toml",
        train={"tokens": STEPS * 8 * 32, "warmup_steps": 2, "checkpoint_every": 2},
        eval={"val_sequences": 2, "task_items": 4, "batch_size": 4},
    )
    result = CliRunner().invoke(
        experts, ["train", str(corpus), str(root / "experts"), "--preset", str(preset), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    return {"root": root, "corpus": corpus, "preset": preset, "train_out": result.output}


def _damaged_copy(src: Path, dst: Path, damage: str) -> Path:
    import shutil

    shutil.copytree(src, dst)
    model = dst / "words" / MODEL_FILE
    data = model.read_bytes()
    model.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x07garbage" * 64)
    return dst


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_model_file_during_score_is_one_line(setup, tmp_path, damage):
    """Before: a SafetensorError traceback ('incomplete metadata, file not fully covered')."""
    experts_dir = _damaged_copy(setup["root"] / "experts", tmp_path / "experts", damage)
    args = ["score", str(experts_dir), str(setup["corpus"]), str(tmp_path / "s"), "--quiet"]
    line = cli_error_line(experts, args)
    assert f"{experts_dir / 'words' / MODEL_FILE}: corrupted or truncated" in line
    assert f"delete {experts_dir / 'words'}" in line and "experts train" in line
    assert not (tmp_path / "s").exists()
    with pytest.raises(MixsurrogateError, match="corrupted or truncated"):
        load_trained(experts_dir / "words")


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_checkpoint_says_how_to_recover(setup, tmp_path, damage):
    """Before: 'unreadable checkpoint (...)' and nothing on what to do about it."""
    out = tmp_path / "experts"
    out.mkdir()
    corpus = Corpus.load(setup["corpus"])
    preset = load_preset(setup["preset"])
    model = build_model(preset, corpus.vocab_size, corpus.eos_id, 0)
    checkpoint = out / ".words.checkpoint.safetensors"
    identity = {"preset": preset.name, "preset_sha256": preset.sha256, "seed": 0}
    identity |= {"target": "expert:words", "tokenizer_sha256": corpus.tokenizer_sha256}
    save_checkpoint(checkpoint, model, train_module.make_optimizer(model, preset), 2, identity)
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"junk" * 100)
    args = ["train", str(setup["corpus"]), str(out), "--preset", str(setup["preset"])]
    line = cli_error_line(experts, [*args, "--domains", "words", "--quiet"])
    assert f"{checkpoint}: unreadable checkpoint" in line
    assert f"delete {checkpoint} and rerun" in line and "from step 0" in line
    checkpoint.unlink()  # the recovery the message gives works
    result = CliRunner().invoke(experts, [*args, "--domains", "words", "--quiet"])
    assert result.exit_code == 0, result.output


def test_smoothed_loss_is_the_bias_corrected_moving_average():
    smoothed = train_module.SmoothedLoss(beta=0.9)
    assert math.isnan(smoothed.value())
    losses = [5.0, 4.0, 4.5, 3.0, 3.5]
    ema = 0.0
    for k, loss in enumerate(losses, start=1):
        smoothed.update(torch.tensor(loss))
        ema = 0.9 * ema + 0.1 * loss
        assert smoothed.value() == pytest.approx(ema / (1 - 0.9**k), rel=1e-6)


class _RecordingBar:
    """Stands in for tqdm and keeps every postfix the loop shows."""

    postfixes: list[dict] = []

    def __init__(self, *args, **kwargs) -> None:
        pass

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs) -> None:
        _RecordingBar.postfixes.append({**(ordered_dict or {}), **kwargs})

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.slow
def test_progress_shows_a_smoothed_loss_labelled_as_such(setup, monkeypatch):
    """Before: the bar's 'loss' was the mean of the last 10 batches, labelled 'loss'."""
    monkeypatch.setattr(train_module, "tqdm", _RecordingBar)
    _RecordingBar.postfixes = []
    corpus = Corpus.load(setup["corpus"])
    preset = load_preset(setup["preset"])
    model = build_model(preset, corpus.vocab_size, corpus.eos_id, 0)
    sampler = mixture_sampler(corpus, {"words": 1.0}, preset.model.context, 8, 0)
    result = train_loop(model, sampler, preset, torch.device("cpu"), {}, None, progress=True)
    assert _RecordingBar.postfixes, "the loop shows its loss"
    last = _RecordingBar.postfixes[-1]
    assert "loss" not in last and "loss(ema)" in last
    assert last["loss(ema)"] == f"{result.smoothed_loss:.3f}"
    assert math.isfinite(result.smoothed_loss) and math.isfinite(result.final_loss)


@pytest.mark.slow
def test_experts_train_table_labels_the_smoothed_loss(setup):
    header = setup["train_out"].splitlines()[0]
    assert "loss(ema)" in header.split()
    assert (setup["root"] / "experts" / "words" / "meta.json").read_text().count(
        "smoothed_train_loss"
    ) == 1
