"""Model presets: plain TOML files, one per scale (``mixsurrogate/presets/*.toml``, package
data).

One preset fixes the model shape, the optimiser, the token budget and the evaluation settings,
and the same preset trains the data experts and the proxy runs, so their budgets match. The
preset's hash goes into every checkpoint and expert, which is how a resume or a scoring run
refuses to mix models of different presets.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import tomllib

from ..errors import MixsurrogateError


class PresetError(MixsurrogateError):
    """The preset name is unknown or its TOML is malformed."""


@dataclass(frozen=True)
class ModelShape:
    n_layer: int
    n_head: int
    n_embd: int
    context: int


@dataclass(frozen=True)
class TrainSettings:
    batch_size: int
    tokens: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float
    beta1: float
    beta2: float
    grad_clip: float
    checkpoint_every: int


@dataclass(frozen=True)
class EvalSettings:
    val_sequences: int
    task_items: int
    batch_size: int


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    model: ModelShape
    train: TrainSettings
    eval: EvalSettings

    @property
    def tokens_per_step(self) -> int:
        return self.train.batch_size * self.model.context

    @property
    def steps(self) -> int:
        """Optimiser steps that spend the token budget (the last step may overshoot it)."""
        return max(1, math.ceil(self.train.tokens / self.tokens_per_step))

    def to_dict(self) -> dict:
        """The settings as plain data (what experts and checkpoints record)."""
        return {"name": self.name, "description": self.description, **self.settings()}

    def settings(self) -> dict:
        return {"model": asdict(self.model), "train": asdict(self.train), "eval": asdict(self.eval)}

    @property
    def sha256(self) -> str:
        """Hash of the settings (not the name or description): equal hash, equal training."""
        text = json.dumps(self.settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


_SECTIONS = {"model": ModelShape, "train": TrainSettings, "eval": EvalSettings}


def _coerce(value: object, kind: str) -> int | float:
    """TOML numbers to the field's type; ``2.0`` is a fine int, ``2.5`` or ``true`` are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    if kind == "int":
        if value != int(value):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value)
    return float(value)


def preset_from_dict(data: dict, name: str, source: str = "preset") -> Preset:
    """Validate parsed TOML (unknown or missing keys are errors: a typo must not pass silently)."""
    extra = set(data) - set(_SECTIONS) - {"description", "name"}
    if extra:
        raise PresetError(f"{source}: unknown keys {', '.join(sorted(extra))}")
    parts = {}
    for section, cls in _SECTIONS.items():
        values = data.get(section)
        if not isinstance(values, dict):
            raise PresetError(f"{source}: missing section [{section}]")
        fields = cls.__dataclass_fields__
        unknown = set(values) - set(fields)
        missing = set(fields) - set(values)
        if unknown or missing:
            raise PresetError(
                f"{source}: [{section}] "
                + "; ".join(
                    f"{what} {', '.join(sorted(keys))}"
                    for what, keys in (("unknown", unknown), ("missing", missing))
                    if keys
                )
            )
        try:
            parts[section] = cls(**{k: _coerce(v, fields[k].type) for k, v in values.items()})
        except (TypeError, ValueError) as err:
            raise PresetError(f"{source}: [{section}] {err}") from err
    model: ModelShape = parts["model"]
    if min(asdict(model).values()) < 1 or model.n_embd % model.n_head:
        raise PresetError(f"{source}: [model] needs positive sizes and n_embd divisible by n_head")
    train: TrainSettings = parts["train"]
    if train.batch_size < 1 or train.tokens < 1 or train.checkpoint_every < 1 or train.lr <= 0:
        raise PresetError(
            f"{source}: [train] needs positive batch_size, tokens, lr, checkpoint_every"
        )
    ev: EvalSettings = parts["eval"]
    if min(asdict(ev).values()) < 1:
        raise PresetError(f"{source}: [eval] needs positive values")
    return Preset(
        name=str(data.get("name", name)),
        description=str(data.get("description", "")),
        model=model,
        train=train,
        eval=ev,
    )


def preset_dir() -> Path:
    """The presets shipped in the package (``mixsurrogate/presets/*.toml``, package data)."""
    return Path(__file__).resolve().parents[1] / "presets"


def list_presets() -> list[str]:
    return sorted(p.stem for p in preset_dir().glob("*.toml"))


def load_preset(name_or_path: str | Path) -> Preset:
    """A preset by name (``tiny-cpu``) or by path to a ``.toml`` file."""
    text = str(name_or_path)
    if text.endswith(".toml") or Path(text).is_file():
        path = Path(text)
        if not path.is_file():
            raise PresetError(f"{path}: no such preset file")
        name = path.stem
    else:
        path = preset_dir() / f"{text}.toml"
        name = text
        if not path.is_file():
            raise PresetError(
                f"unknown preset {text!r}; valid presets: {', '.join(list_presets())} "
                "(or a path to a .toml file)"
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise PresetError(f"{path}: invalid TOML ({err})") from err
    return preset_from_dict(data, name, source=str(path))
