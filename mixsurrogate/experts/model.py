"""The language model: a GPT-2 from a ``transformers`` config, trained from scratch.

Experts and proxy runs share this one constructor, so a preset always means the same network.
Dropout is off: the token budgets are far below one epoch of any domain, and it keeps training
deterministic given the seed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model
from transformers import GPT2Config, GPT2LMHeadModel

from ..errors import ExpertError, MixsurrogateError
from .presets import Preset

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def select_device(name: str = "auto") -> torch.device:
    """``auto``: the rank's GPU under torchrun, else the first GPU, else the CPU."""
    if name == "auto":
        name = (
            f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"
        )
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise MixsurrogateError(f"device {name!r} asked for but no CUDA GPU is available")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise MixsurrogateError(f"unknown device {name!r} (auto, cpu, cuda, cuda:N)") from err
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL and the default stream follow the rank's GPU
    if device.type == "cpu":
        # Denormal floats make CPU matmuls orders of magnitude slower late in training.
        torch.set_flush_denormal(True)
    return device


def gpt2_config(preset: Preset, vocab_size: int, eos_id: int) -> GPT2Config:
    if not 0 <= eos_id < vocab_size:
        raise MixsurrogateError(f"end-of-text id {eos_id} is outside the vocabulary ({vocab_size})")
    m = preset.model
    return GPT2Config(
        vocab_size=vocab_size,
        n_positions=m.context,
        n_embd=m.n_embd,
        n_layer=m.n_layer,
        n_head=m.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        # GPT-2's defaults (50256) lie outside a small vocabulary; the corpus eos id is both.
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )


def build_model(preset: Preset, vocab_size: int, eos_id: int, seed: int) -> GPT2LMHeadModel:
    """A freshly initialised model; the seed alone fixes its weights."""
    torch.manual_seed(seed)
    return GPT2LMHeadModel(gpt2_config(preset, vocab_size, eos_id))


def count_params(model: torch.nn.Module) -> tuple[int, int]:
    """(total, non-embedding) parameter counts; tied weights are counted once."""
    total = sum(p.numel() for p in model.parameters())
    embedding = sum(
        p.numel() for n, p in model.named_parameters() if n.endswith(("wte.weight", "wpe.weight"))
    )
    return total, total - embedding


def next_token_loss(model: torch.nn.Module, windows: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``windows[:, 1:]`` given ``windows[:, :-1]``, in float32."""
    logits = model(input_ids=windows[:, :-1]).logits
    return F.cross_entropy(logits.float().flatten(0, 1), windows[:, 1:].flatten())


def save_trained(model: GPT2LMHeadModel, folder: Path) -> None:
    """``model.safetensors`` (tied weights stored once) and the HF ``config.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    save_model(model, str(folder / MODEL_FILE))
    (folder / CONFIG_FILE).write_text(model.config.to_json_string())


def load_trained(
    folder: Path, device: torch.device | str = "cpu", weights: str = MODEL_FILE
) -> GPT2LMHeadModel:
    """A model saved by :func:`save_trained` (safetensors only: no pickle is ever loaded);
    ``weights``: another weights file of the folder (a budget snapshot, same config)."""
    folder = Path(folder)
    if not (folder / weights).is_file() or not (folder / CONFIG_FILE).is_file():
        raise ExpertError(f"{folder}: no trained model ({weights} + {CONFIG_FILE})")
    # a damaged folder names itself and the way out, not a traceback from safetensors or json
    recover = f"delete {folder} and rerun 'mixsurrogate experts train' to train it again"
    try:
        config = GPT2Config.from_dict(json.loads((folder / CONFIG_FILE).read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as err:
        raise ExpertError(f"{folder / CONFIG_FILE}: unreadable ({err}); {recover}") from err
    config._attn_implementation = "sdpa"
    model = GPT2LMHeadModel(config)
    try:
        load_model(model, str(folder / weights), device=str(device))
    except (SafetensorError, OSError, RuntimeError) as err:
        # RuntimeError: tensors of other names or shapes than config.json describes
        raise ExpertError(f"{folder / weights}: corrupted or truncated ({err}); {recover}") from err
    return model.to(device).eval()
