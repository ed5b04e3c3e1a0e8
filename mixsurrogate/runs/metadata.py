"""What a runs log's numbers are: the ``<log>.meta.json`` sidecar (units, direction, sources).

A sidecar, not a header row or extra columns: it is the same for CSV and JSONL, and a log's
readers, which know nothing of it, are unchanged. A log without one gets the contract's
defaults: every set in nats per token, lower is better.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RunsLogError
from ..files import atomic_write_text

METADATA_SUFFIX = ".meta.json"
METADATA_VERSION = 1
#: the units a loss column may be in: the contract's nats per token, or bits per byte
LOSS_UNITS = ("nats", "bpb")


@dataclass
class LogMetadata:
    """What a log's ``loss:`` columns hold, kept beside the log in ``<log>.meta.json``.

    A sidecar, not a header row or extra columns: it is the same for CSV and JSONL, and a log's
    readers, which know nothing of it, are unchanged. ``units`` is the log's default (``nats``,
    the contract, when no sidecar exists); ``targets`` may give a set its own: for each set
    ``units``, ``source_column``, ``source_direction`` (``lower`` or ``higher``) and
    ``transform`` (how a higher-is-better metric became the column, e.g. ``1 - value``). Every
    ``loss:`` column is lower-is-better, whatever its source was (``direction`` says so).
    """

    units: str = "nats"
    targets: dict[str, dict] = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def units_of(self, target: str) -> str:
        """What the loss column of ``target`` is in: ``nats``, ``bpb``, or a transform of a
        higher-is-better metric such as ``1 - value``."""
        return str(self.targets.get(target, {}).get("units", self.units))

    def units_label(self, targets: list[str] | None = None) -> str:
        """One label for a table that shows ``targets`` (default: every set the metadata
        names): their units when they share them, else ``mixed: nats (3), 1 - value (2)``."""
        names = list(self.targets) if targets is None else list(targets)
        units = [self.units_of(t) for t in names] or [self.units]
        distinct = list(dict.fromkeys(units))
        if len(distinct) == 1:
            return distinct[0]
        return "mixed: " + ", ".join(f"{u} ({units.count(u)})" for u in distinct)

    def to_dict(self) -> dict:
        return {
            "version": METADATA_VERSION,
            "units": self.units,
            "direction": "lower",
            "targets": self.targets,
            "source": self.source,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict, source: str = "metadata") -> LogMetadata:
        if not isinstance(data, dict) or data.get("version") != METADATA_VERSION:
            raise RunsLogError(f"{source}: not a version-{METADATA_VERSION} runs-log metadata file")
        targets = data.get("targets") or {}
        if not isinstance(targets, dict) or not all(isinstance(v, dict) for v in targets.values()):
            raise RunsLogError(f"{source}: 'targets' must map each set to an object")
        return cls(
            units=str(data.get("units", "nats")),
            targets={str(k): dict(v) for k, v in targets.items()},
            source=dict(data.get("source") or {}),
            notes=[str(n) for n in data.get("notes") or []],
        )


def metadata_path(path: str | Path) -> Path:
    """The sidecar of the log at ``path``: ``runs.csv`` -> ``runs.csv.meta.json``."""
    path = Path(path)
    return path.with_name(path.name + METADATA_SUFFIX)


def load_log_metadata(path: str | Path) -> LogMetadata:
    """The metadata of the log at ``path`` (a CSV or JSONL log, or a built-in log's name).

    A log without a sidecar (built-in RegMix logs, logs written by ``runs train``) gets the
    contract's defaults: every set in nats per token, lower is better.
    """
    sidecar = metadata_path(path)
    if not sidecar.is_file():
        return LogMetadata()
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunsLogError(f"{sidecar}: cannot read the log's metadata ({err})") from err
    return LogMetadata.from_dict(data, source=str(sidecar))


def save_log_metadata(path: str | Path, metadata: LogMetadata) -> Path:
    """Write the sidecar of the log at ``path`` atomically; returns the sidecar's path.

    A caller that also rewrites the log holds :func:`mixsurrogate.runs.log.log_lock` around both writes.
    """
    sidecar = metadata_path(path)
    text = json.dumps(metadata.to_dict(), indent=2, allow_nan=False, sort_keys=False)
    atomic_write_text(sidecar, text + "\n")
    return sidecar
