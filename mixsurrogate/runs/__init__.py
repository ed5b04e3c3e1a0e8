"""The runs log: one row per trained proxy run (mixture weights, losses, fidelity).

Its columns, loading and validation, locked appends and updates (``log``), the sidecar
metadata (units and direction), foreign formats and importers, designs (which mixtures to
train first), fidelity columns and the built-in logs. The names below are the log's public
API, at the import paths users had before the package was split; they load on first use
(PEP 562), so the CLI can read ``runs.formats`` without pandas.
"""

from __future__ import annotations

import importlib

PUBLIC = {
    "LOSS_PREFIX": "log",
    "WEIGHT_PREFIX": "log",
    "RunsLog": "log",
    "append_run": "log",
    "load_runs": "log",
    "save_runs": "log",
    "update_run": "log",
}
__all__ = sorted(PUBLIC)


def __getattr__(name: str) -> object:
    if name in PUBLIC:
        return getattr(importlib.import_module(f".{PUBLIC[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
