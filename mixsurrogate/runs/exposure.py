"""Exposure features: how many epochs of each domain's unique data each run trained on.

``epochs[r, d] = w_rd * tokens_r / unique_rd``: ``w`` is the run's effective mixture (a
schedule's token-weighted mean, see :mod:`.schedule`), ``tokens`` its ``tokens`` column, and
``unique`` the unique training tokens it could draw domain ``d`` from: the run's own
``unique:<domain>`` cell when it trained on a subsample (a repetition-matched proxy records
one), else the corpus manifest's ``domains.<d>.tokens.train``. A predictor that sees epochs can
learn the cost of repetition, which the mixture alone cannot show across token budgets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import RunsLogError
from .log import RunsLog
from .names import UNIQUE_PREFIX
from .schedule import exposure

EPOCHS_PREFIX = "epochs:"


def unique_tokens_column(domain: str) -> str:
    """``unique:<domain>``: a run's unique training tokens of that domain (a subsample)."""
    return f"{UNIQUE_PREFIX}{domain}"


def manifest_train_tokens(corpus_manifest: dict | str | Path, domains: list[str]) -> np.ndarray:
    """Each domain's unique training tokens from a corpus manifest (a dict, or the path of its
    ``manifest.json`` or of the corpus folder)."""
    manifest = corpus_manifest
    if not isinstance(manifest, dict):
        path = Path(manifest)
        path = path / "manifest.json" if path.is_dir() else path
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise RunsLogError(f"{path}: cannot read the corpus manifest ({err})") from err
    known = manifest.get("domains", {}) if isinstance(manifest, dict) else {}
    counts = []
    for d in domains:
        try:
            counts.append(float(known[d]["tokens"]["train"]))
        except (KeyError, TypeError) as err:
            raise RunsLogError(
                f"the corpus manifest has no training token count for domain {d!r}"
            ) from err
    return np.array(counts)


def unique_tokens(log: RunsLog, corpus_manifest: dict | str | Path) -> np.ndarray:
    """The unique training tokens of each run and domain (runs x domains): the run's recorded
    subsample where it has one, the corpus's count elsewhere."""
    full = manifest_train_tokens(corpus_manifest, log.domains)
    unique = np.tile(full, (len(log), 1))
    for k, d in enumerate(log.domains):
        column = unique_tokens_column(d)
        if column in log.frame.columns:
            recorded = pd.to_numeric(log.frame[column], errors="coerce").to_numpy(float)
            unique[:, k] = np.where(np.isnan(recorded), full[k], recorded)
    return unique


def exposure_features(
    log: RunsLog, corpus_manifest: dict | str | Path
) -> tuple[list[str], np.ndarray]:
    """(``epochs:<domain>`` names, runs x domains epochs) of every run of ``log``.

    Every run needs its ``tokens``; a pending run (no tokens yet) is one clear error, so pass
    ``log.completed()`` to leave those out.
    """
    if "tokens" not in log.frame.columns:
        raise RunsLogError("the runs log has no 'tokens' column: epochs need each run's tokens")
    tokens = pd.to_numeric(log.frame["tokens"], errors="coerce").to_numpy(float)
    if np.isnan(tokens).any() or (tokens < 0).any():
        run = log.run_ids[int(np.flatnonzero(np.isnan(tokens) | (tokens < 0))[0])]
        raise RunsLogError(f"run {run}: no token count, so its epochs are unknown")
    unique = unique_tokens(log, corpus_manifest)
    matrix = np.vstack(
        [exposure(log.W[[r]], tokens[[r]], unique[r]) for r in range(len(log))]
    ) if len(log) else np.zeros((0, len(log.domains)))  # fmt: skip
    return [f"{EPOCHS_PREFIX}{d}" for d in log.domains], matrix
