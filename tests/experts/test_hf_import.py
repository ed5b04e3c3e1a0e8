"""Your own Hugging Face experts: tiny random GPT-2 and Llama models saved by the test itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from mixsurrogate.cli.experts import experts
from mixsurrogate.corpus.evalsets import build_eval_suite
from mixsurrogate.corpus.store import Corpus
from mixsurrogate.errors import ExpertError
from mixsurrogate.experts.hf_import import import_experts, parse_model_args
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.score import score_experts
from mixsurrogate.mde.store import load_scores

from builders import EOS, cli_error_line, make_corpus, tiny_preset

# one_torch_thread: tests/conftest.py; slow: trains or imports models end to end
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]


def gpt2(folder: Path, vocab: int = 300, positions: int = 64, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=vocab, n_positions=positions, n_embd=16, n_layer=1, n_head=2,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def llama(folder: Path, vocab: int = 300, positions: int = 64, seed: int = 1) -> Path:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=positions,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


def save_tokenizer(tokenizer_file: Path, folder: Path) -> None:
    """The tokenizer files save_pretrained writes beside a model (tokenizer.json and config)."""
    PreTrainedTokenizerFast(tokenizer_file=str(tokenizer_file), eos_token=EOS).save_pretrained(
        folder
    )


def other_tokenizer(path: Path, vocab: int) -> Path:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=[EOS], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )  # fmt: skip
    tokenizer.train_from_iterator(["a quick brown fox", "12 + 30 = 42;"] * 50, trainer)
    tokenizer.save(str(path))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    corpus = make_corpus(root / "corpus")
    preset = tiny_preset(root / "tiny.toml")
    words = gpt2(root / "hf" / "words")
    save_tokenizer(corpus / "tokenizer.json", words)  # the corpus tokenizer, saved with the model
    sums = llama(root / "hf" / "llama-sums")  # no tokenizer files: the corpus tokenizer is used
    runner = CliRunner()
    imported = runner.invoke(
        experts,
        [
            "import", str(words), f"sums={sums}", "--corpus", str(corpus),
            "--out", str(root / "experts"), "--preset", str(preset), "--json",
        ],
    )  # fmt: skip
    assert imported.exit_code == 0, imported.output
    scored = runner.invoke(
        experts, ["score", str(root / "experts"), str(corpus), str(root / "scores"), "--quiet"]
    )
    assert scored.exit_code == 0, scored.output
    return {
        "root": root, "corpus": corpus, "preset": preset, "words": words, "sums": sums,
        "imported": json.loads(imported.output),
    }  # fmt: skip


def test_import_records_both_architectures(world):
    by_domain = {m["domain"]: m for m in world["imported"]}
    assert by_domain["words"]["model_type"] == "gpt2"
    assert by_domain["sums"]["model_type"] == "llama"
    assert by_domain["words"]["tokenizer"].startswith("own tokenizer")
    assert by_domain["sums"]["tokenizer"].startswith("corpus tokenizer")
    expected = sum(p.numel() for p in LlamaForCausalLM.from_pretrained(world["sums"]).parameters())
    assert by_domain["sums"]["params"] == expected
    meta = json.loads((world["root"] / "experts" / "sums" / "meta.json").read_text())
    assert meta["model_dir"] == str(world["sums"].resolve())


def test_scores_equal_a_direct_forward_pass(world):
    store = load_scores(world["root"] / "scores")
    assert store.experts == ["words", "sums"]  # corpus domain order
    preset = load_preset(world["preset"])
    suite = build_eval_suite(
        Corpus.load(world["corpus"]), preset.model.context, preset.eval.val_sequences,
        preset.eval.task_items,
    )  # fmt: skip
    assert store.eval_id == suite.eval_id
    assert set(store.eval_sets) == set(suite.sets) and len(store.eval_sets) == 3
    for i, folder in enumerate((world["words"], world["sums"])):
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        for name, seqs in suite.sets.items():
            tokens = torch.from_numpy(seqs.tokens[1:2])  # one sequence
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=tokens[:, :-1]).logits, -1)
            direct = logp.gather(-1, tokens[:, 1:, None])[0, :, 0].numpy()
            stored = store.eval_sets[name].logp[i, 1]
            np.testing.assert_allclose(stored, direct, rtol=1e-5, atol=1e-5)
            assert store.eval_sets[name].mask.shape == seqs.mask.shape
    # the two random models score differently: each row really is its own model
    val = store.eval_sets["words"].logp
    assert np.abs(val[0] - val[1]).max() > 1e-3
    assert store.provenance["experts"]["sums"]["model_type"] == "llama"


def _import(world, out: Path, *models: str) -> str:
    return cli_error_line(experts,
        ["import", *models, "--corpus", str(world["corpus"]), "--out", str(out),
         "--preset", str(world["preset"])]
    )  # fmt: skip


def test_bad_models_are_one_line_and_write_nothing(world, tmp_path):
    out = tmp_path / "out"
    # a folder without safetensors (a pickled checkpoint only)
    pickled = tmp_path / "pickled" / "words"
    gpt2(pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    line = _import(world, out, str(pickled))
    assert "holds only pytorch_model.bin" in line and "safetensors only" in line
    # two experts with different tokenizers
    words, sums = gpt2(tmp_path / "a" / "words"), llama(tmp_path / "b" / "sums")
    save_tokenizer(world["corpus"] / "tokenizer.json", words)
    save_tokenizer(other_tokenizer(tmp_path / "other.json", 300), sums)
    line = _import(world, out, str(words), str(sums))
    assert "experts 'words'" in line and "'sums'" in line and "different tokenizers" in line
    # one expert whose tokenizer is not the corpus's
    alone = llama(tmp_path / "c" / "sums")
    save_tokenizer(other_tokenizer(tmp_path / "other2.json", 290), alone)
    assert "is not the corpus tokenizer" in _import(world, out, str(alone))
    # vocabulary smaller than the corpus ids (an IndexError before)
    small = gpt2(tmp_path / "d" / "words", vocab=200)
    line = _import(world, out, str(small))
    assert "vocabulary of 200 ids, the corpus tokenizer has 300" in line
    # context shorter than the evaluation sequences
    short = llama(tmp_path / "e" / "words", positions=16)
    assert "at most 16 positions, the evaluation sequences have 32" in _import(
        world, out, str(short)
    )
    # a domain the corpus lacks, and a folder that is no model
    assert "domains not in the corpus: code" in _import(world, out, f"code={words}")
    assert "no config.json" in _import(world, out, f"words={tmp_path}")
    assert not out.exists()
    # nor does scoring write anything when a recorded folder has lost its weights
    store = tmp_path / "s"
    gone = gpt2(tmp_path / "f" / "words")
    import_experts(parse_model_args([str(gone)]), world["corpus"], tmp_path / "ex",
                   load_preset(world["preset"]))  # fmt: skip
    (gone / "model.safetensors").unlink()
    with pytest.raises(ExpertError, match="holds no"):
        score_experts(tmp_path / "ex", world["corpus"], store, progress=False)
    # or a weight (transformers would initialise it at random, with a warning)
    gpt2(gone)
    tensors = load_file(gone / "model.safetensors")
    del tensors["transformer.h.0.mlp.c_fc.weight"]
    save_file(tensors, gone / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ExpertError, match="1 weight.*missing.*c_fc.weight"):
        score_experts(tmp_path / "ex", world["corpus"], store, progress=False)
    assert not store.exists()


def test_import_refuses_a_taken_domain_and_bad_arguments(world, tmp_path):
    line = _import(world, world["root"] / "experts", str(world["words"]))
    assert "already holds words" in line
    with pytest.raises(ExpertError, match="two models"):
        parse_model_args([f"words={world['words']}", str(world["words"])])


def test_training_into_an_imported_folder_is_refused(world):
    from mixsurrogate.experts.checkpoints import CheckpointError
    from mixsurrogate.experts.train import train_experts

    with pytest.raises(CheckpointError, match="not an expert trained here"):
        train_experts(
            world["corpus"], load_preset(world["preset"]), world["root"] / "experts", ["sums"],
            progress=False,
        )  # fmt: skip


def test_table_output(world, tmp_path):
    result = CliRunner().invoke(
        experts,
        ["import", str(world["words"]), "--corpus", str(world["corpus"]), "--out",
         str(tmp_path / "e"), "--preset", str(world["preset"])],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "gpt2" in result.output and "own tokenizer" in result.output
    assert (tmp_path / "e" / "words" / "meta.json").is_file()
