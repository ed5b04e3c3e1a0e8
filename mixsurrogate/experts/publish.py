"""A finished expert on disk: ``OUT/<domain>/{model.safetensors, config.json, meta.json}``.

``meta.json`` is written last, inside a temporary sibling folder that is renamed into place,
so a folder with ``meta.json`` is a complete expert and one without is unfinished work.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from ..errors import MixsurrogateError
from ..files import atomic_folder
from .model import count_params, save_trained

EXPERT_FORMAT = "mixsurrogate-expert/1"
META_FILE = "meta.json"


def model_facts(model: torch.nn.Module) -> dict:
    """Parameter counts recorded with an expert and a run (scaling laws need them)."""
    total, non_embedding = count_params(model)
    return {"params": total, "non_embedding_params": non_embedding}


def read_expert_meta(folder: Path) -> dict | None:
    """The meta.json of a finished expert, or None while it is unfinished."""
    path = folder / META_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise MixsurrogateError(f"{path}: invalid JSON ({err})") from err


def publish_expert(
    model: torch.nn.Module, meta: dict, folder: Path, files: dict[str, Path] | None = None
) -> None:
    """Write into a temporary sibling and rename: an expert folder is complete or absent.

    ``files`` (name in the folder -> file) are copied in too: budget snapshots, so they arrive
    with the expert or not at all (their originals are kept until the caller removes them).
    """
    # replace: a folder already there is a stale, unfinished one (no meta.json)
    with atomic_folder(folder, replace=True) as tmp:
        save_trained(model, tmp)
        for name, source in (files or {}).items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp / name)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
