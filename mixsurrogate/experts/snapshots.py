"""Budget snapshots of an expert: its weights when it has seen given fractions of its tokens.

``experts train --checkpoints 1/32,1/16,1/8,1/4,1/2,1`` (or ``geometric:6``, the same six
fractions: halving from 1) saves, during the one usual run (same seed, data order and learning
rate schedule, so the final expert is the same bit for bit), the weights after the step where the
tokens seen reach each fraction of the budget: fraction ``f`` is step ``round(f * steps)``, and
the fraction recorded is that step over the steps. The full budget (fraction 1) is the expert
itself, always included. Budget-matched MDE (:mod:`mixsurrogate.mde.budget`) takes each expert
at the budget its domain gets in a mixture.

Approximation: a snapshot at fraction ``f`` is the expert mid-way through the cosine schedule of
the full budget (learning rate not yet decayed), not a model trained with its own schedule to
``f`` tokens; such a model would be somewhat better.

On disk: while training, ``OUT/.<domain>.snapshots/step-<N>.safetensors`` (each written
atomically; a resumed run keeps those already written, and a snapshot step it trains again is
identical, the run being deterministic); the finished expert holds them in
``OUT/<domain>/snapshots/`` and lists them in ``meta.json`` under ``snapshots``.
"""

from __future__ import annotations

import re
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import torch
from safetensors.torch import save_model

from ..errors import MixsurrogateError
from ..files import atomic_write

SNAPSHOT_FOLDER = "snapshots"


def parse_checkpoints(spec: str) -> tuple[float, ...]:
    """Ascending fractions in (0, 1] ending with 1, or one line saying what is wrong."""
    spec = spec.strip()
    geometric = re.fullmatch(r"geometric:(\d+)", spec)
    if geometric:
        n = int(geometric.group(1))
        if not 2 <= n <= 30:
            raise MixsurrogateError(f"--checkpoints {spec!r}: geometric:N needs 2 <= N <= 30")
        return tuple(2.0 ** -(n - 1 - k) for k in range(n))
    values = []
    for part in (p.strip() for p in spec.split(",")):
        try:
            value = Fraction(part)
        except (ValueError, ZeroDivisionError):
            raise MixsurrogateError(
                f"--checkpoints {spec!r}: {part!r} is not a fraction (e.g. 1/8 or 0.125); "
                "give a comma list or geometric:N"
            ) from None
        if not 0 < value <= 1:
            raise MixsurrogateError(f"--checkpoints {spec!r}: {part} is not in (0, 1]")
        values.append(value)
    if len(set(values)) != len(values):
        raise MixsurrogateError(f"--checkpoints {spec!r}: a fraction is given twice")
    return tuple(float(v) for v in sorted(set(values) | {Fraction(1)}))


def snapshot_steps(fractions: tuple[float, ...], steps: int, preset_name: str) -> list[int]:
    """The optimiser step of each fraction (``round(f * steps)``), distinct and >= 1."""
    out = [round(f * steps) for f in fractions]
    if out[0] < 1:
        raise MixsurrogateError(
            f"--checkpoints: fraction {fractions[0]:g} is less than one step of preset "
            f"{preset_name!r} ({steps} steps); use larger fractions"
        )
    for (f0, s0), (f1, s1) in pairwise(zip(fractions, out, strict=True)):
        if s0 == s1:
            raise MixsurrogateError(
                f"--checkpoints: fractions {f0:g} and {f1:g} fall on the same step {s0} of preset "
                f"{preset_name!r} ({steps} steps); use fewer fractions"
            )
    return out


def snapshot_name(step: int) -> str:
    return f"step-{step}.safetensors"


def snapshot_records(fractions, steps: list[int], total: int, tokens_per_step: int) -> list[dict]:
    """``meta.json``'s ``snapshots``: fraction (step / steps), step, tokens and file, ascending;
    the full budget's file is the expert's own ``model.safetensors``."""
    return [
        {
            "fraction": s / total,
            "requested": f,
            "step": s,
            "tokens": s * tokens_per_step,
            "file": "model.safetensors" if s == total else f"{SNAPSHOT_FOLDER}/{snapshot_name(s)}",
        }
        for f, s in zip(fractions, steps, strict=True)
    ]


def save_snapshot(folder: Path, model: torch.nn.Module, step: int) -> None:
    """The model's weights at ``step``, atomically; one already there is kept (same run, same
    weights: the loop is deterministic)."""
    path = folder / snapshot_name(step)
    if not path.is_file():
        atomic_write(path, lambda tmp: save_model(model, str(tmp)))


def missing_snapshots(folder: Path, steps: list[int], resumed_at: int) -> list[int]:
    """Snapshot steps at or before a resumed run's step that are not on disk (a run started
    without ``--checkpoints``, or with others): they cannot be made again without retraining."""
    return [s for s in steps if s <= resumed_at and not (folder / snapshot_name(s)).is_file()]
