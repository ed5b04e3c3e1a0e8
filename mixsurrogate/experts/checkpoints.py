"""Checkpoints of the training loop: save, load and verify, atomically and without pickle.

A checkpoint holds the weights, the AdamW moments, the step and the RNG states, so a run killed
at any moment (even ``kill -9``) and resumed from its last checkpoint ends with the same
weights as one that never stopped. It is one safetensors file (tensors) with the rest as JSON
in its metadata, written to a temporary file and renamed: a crash leaves the previous
checkpoint or the new one, never half of one, and nothing is ever unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..corpus.store import Corpus
from ..errors import MixsurrogateError
from ..files import atomic_write
from .presets import Preset

CHECKPOINT_FORMAT = "mixsurrogate-checkpoint/1"


class CheckpointError(MixsurrogateError):
    """A checkpoint is unreadable or belongs to another preset, seed, target or tokenizer."""


def run_identity(preset: Preset, corpus: Corpus, seed: int, target: str) -> dict:
    """What a checkpoint must match to be resumed: preset, seed, training target, tokenizer."""
    return {
        "preset": preset.name,
        "preset_sha256": preset.sha256,
        "seed": seed,
        "target": target,
        "tokenizer_sha256": corpus.tokenizer_sha256,
    }


def save_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, identity: dict
) -> None:
    """Weights, optimiser moments, RNG states and step in one file, replaced atomically."""
    tensors = {f"model.{n}": p.detach().contiguous() for n, p in model.named_parameters()}
    state = optimizer.state_dict()
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{index}.{key}"] = value.detach().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    meta = {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        "identity": identity,
        "param_groups": state["param_groups"],
    }
    cpu = {k: v.cpu() for k, v in tensors.items()}
    for attempt in range(3):
        try:
            atomic_write(
                path, lambda tmp: save_file(cpu, str(tmp), metadata={"state": json.dumps(meta)})
            )
            return
        except (SafetensorError, OSError):
            # a folder shared by concurrent workers (runs train --shard) is removed by the one
            # that finds it empty at its end: make it again, unless that is not what failed
            if path.parent.is_dir() or attempt == 2:
                raise


def recovery_hint(path: Path) -> str:
    """How to get past a damaged checkpoint: it is replaced in place, so no older one is kept."""
    return (
        f"delete {path} and rerun: the run restarts from step 0 (a checkpoint is replaced in "
        "place, so there is no older one to resume from)"
    )


def read_checkpoint_meta(path: Path) -> dict:
    """The step, identity and optimiser groups of a checkpoint, read without its tensors."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["state"])
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({err}); {recovery_hint(path)}"
        ) from err
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a mixsurrogate checkpoint; {recovery_hint(path)}")
    return meta


def check_identity(path: Path, found: dict, expected: dict) -> None:
    """Refuse to resume a run of another preset (or seed, target, tokenizer): one clear line."""
    if found.get("preset_sha256") != expected["preset_sha256"]:
        raise CheckpointError(
            f"{path}: checkpoint of preset {found.get('preset')!r} (sha256 "
            f"{str(found.get('preset_sha256'))[:12]}), not of preset {expected['preset']!r} "
            f"({expected['preset_sha256'][:12]}); resume with that preset or delete the checkpoint"
        )
    for key in sorted(expected):
        if found.get(key) != expected[key]:
            raise CheckpointError(
                f"{path}: checkpoint has {key}={found.get(key)!r}, this run has {expected[key]!r}; "
                "resume with the same settings or delete the checkpoint"
            )


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, identity: dict
) -> int:
    """Restore a checkpoint written by :func:`save_checkpoint`; returns the step to resume at."""
    meta = read_checkpoint_meta(path)
    check_identity(path, meta.get("identity", {}), identity)
    device = next(model.parameters()).device
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 - not a dict
    except Exception as err:  # as in read_checkpoint_meta: a damaged file past its header
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({err}); {recovery_hint(path)}"
        ) from err
    names = [n for n, _ in model.named_parameters()]
    if sorted(f"model.{n}" for n in names) != sorted(k for k in tensors if k.startswith("model.")):
        raise CheckpointError(
            f"{path}: weights do not match this model's shape; {recovery_hint(path)}"
        )
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(tensors[f"model.{n}"])
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            slots.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    return int(meta["step"])
