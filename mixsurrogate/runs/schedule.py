"""Multi-phase runs: a schedule of mixtures, each phase with its share of the run's tokens.

Format (columns of a runs log, beside the usual ones):

- ``w@<p>:<domain>``: the mixture of phase ``p`` (``p = 1..P``, every domain of the log);
- ``share@<p>``: the fraction of the run's tokens trained in phase ``p`` (all > 0, sum 1);
- ``w:<domain>``: still present, and for a schedule it is the *effective* mixture, the
  token-weighted mean of the phases, ``sum_p share_p * w_p`` (filled in when left empty,
  checked when given).

Why this shape: a log without phase columns is a valid single-phase log unchanged, and every
tool that does not know schedules still reads a schedule log correctly as "what the model saw
in total", which is the right marginal for exposure, epochs caps and the MDE of the whole run.
A row whose phase cells are all empty in a schedule log is a one-phase run; it is described as
P equal phases of equal shares, which is the same training whatever the shares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import RunsLogError
from .names import WEIGHT_PREFIX

PHASE_WEIGHT_PREFIX = "w@"
PHASE_SHARE_PREFIX = "share@"
SUM_TOLERANCE = 1e-3
_PHASE_WEIGHT = re.compile(r"^w@(\d+):(.+)$")
_PHASE_SHARE = re.compile(r"^share@(\d+)$")


def phase_weight_column(phase: int, domain: str) -> str:
    """``w@<phase>:<domain>`` (phases count from 1)."""
    return f"{PHASE_WEIGHT_PREFIX}{phase}:{domain}"


def phase_share_column(phase: int) -> str:
    """``share@<phase>``."""
    return f"{PHASE_SHARE_PREFIX}{phase}"


def is_phase_column(name: str) -> bool:
    """Whether ``name`` is a schedule column (phase weight or phase share)."""
    return bool(_PHASE_WEIGHT.match(str(name)) or _PHASE_SHARE.match(str(name)))


@dataclass(frozen=True)
class Schedules:
    """Phase mixtures ``weights`` (runs x phases x domains) and ``shares`` (runs x phases)."""

    weights: np.ndarray
    shares: np.ndarray
    domains: tuple[str, ...]

    @property
    def n_phases(self) -> int:
        return int(self.weights.shape[1])

    def effective(self) -> np.ndarray:
        """The token-weighted mean mixture of each run (runs x domains)."""
        return np.einsum("np,npk->nk", self.shares, self.weights)

    def last_phase(self) -> np.ndarray:
        """The mixture each run ended on (runs x domains)."""
        return self.weights[:, -1, :]

    def flat(self) -> np.ndarray:
        """Predictor inputs: every phase's mixture, then the shares of phases 2..P (phase 1's
        share is one minus their sum, so it is left out as redundant)."""
        n = len(self.shares)
        return np.hstack([self.weights.reshape(n, -1), self.shares[:, 1:]])

    def flat_names(self) -> list[str]:
        """Column names of :meth:`flat`, in the log's column format."""
        names = [phase_weight_column(p + 1, d) for p in range(self.n_phases) for d in self.domains]
        return names + [phase_share_column(p + 1) for p in range(1, self.n_phases)]


def phase_count(columns: list[str] | pd.Index) -> int:
    """How many phases the log's columns describe (0 for a single-phase log)."""
    phases = {int(m.group(1)) for c in columns if (m := _PHASE_WEIGHT.match(str(c)))}
    phases |= {int(m.group(1)) for c in columns if (m := _PHASE_SHARE.match(str(c)))}
    return max(phases, default=0)


def check_phase_columns(columns: list[str], domains: list[str], source: str) -> int:
    """The number of phases, after checking that every phase has every domain and a share."""
    n_phases = phase_count(columns)
    if n_phases == 0:
        return 0
    present = set(map(str, columns))
    if n_phases < 2:
        raise RunsLogError(f"{source}: schedule columns describe 1 phase; a schedule needs >= 2")
    for phase in range(1, n_phases + 1):
        missing = [d for d in domains if phase_weight_column(phase, d) not in present]
        if missing:
            raise RunsLogError(
                f"{source}: phase {phase} has no column {phase_weight_column(phase, missing[0])}"
                f" (every phase needs a weight for each of the {len(domains)} domains)"
            )
        if phase_share_column(phase) not in present:
            raise RunsLogError(f"{source}: missing column {phase_share_column(phase)}")
    extra = [c for c in present if (m := _PHASE_WEIGHT.match(c)) and m.group(2) not in domains]
    if extra:
        raise RunsLogError(f"{source}: {sorted(extra)[0]} names a domain with no 'w:' column")
    return n_phases


def read_schedules(frame: pd.DataFrame, source: str = "runs log") -> Schedules | None:
    """The schedules of a log frame, validated, or None for a single-phase log.

    Refuses, in one line naming the run: a phase whose weights are negative or do not sum to 1,
    shares that are not positive or do not sum to 1, a row with some phase cells empty, and an
    effective mixture ``w:`` that disagrees with the phases.
    """
    domains = [
        str(c)[len(WEIGHT_PREFIX) :] for c in frame.columns if str(c).startswith(WEIGHT_PREFIX)
    ]
    n_phases = check_phase_columns(list(frame.columns), domains, source)
    if n_phases == 0:
        return None
    runs = frame["run_id"].astype(str).tolist()
    weight_cols = [phase_weight_column(p, d) for p in range(1, n_phases + 1) for d in domains]
    share_cols = [phase_share_column(p) for p in range(1, n_phases + 1)]
    cells = frame[weight_cols + share_cols].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    empty = np.isnan(cells)
    partial = empty.any(axis=1) & ~empty.all(axis=1)
    if partial.any():
        row = int(np.flatnonzero(partial)[0])
        column = (weight_cols + share_cols)[int(np.flatnonzero(empty[row])[0])]
        raise RunsLogError(
            f"{source}: run {runs[row]}: {column} is empty while other phase cells are not "
            "(fill every phase cell, or none for a single-phase run)"
        )
    n = len(frame)
    weights = cells[:, : len(weight_cols)].reshape(n, n_phases, len(domains)).copy()
    shares = cells[:, len(weight_cols) :].copy()
    single = empty.all(axis=1)
    effective_given = (
        frame[[WEIGHT_PREFIX + d for d in domains]]
        .apply(pd.to_numeric, errors="coerce")
        .to_numpy(float)
    )
    weights[single] = effective_given[single][:, None, :]
    shares[single] = 1.0 / n_phases
    _check_phases(weights, shares, runs, source)
    weights = weights / weights.sum(axis=2, keepdims=True)
    shares = shares / shares.sum(axis=1, keepdims=True)
    schedules = Schedules(weights, shares, tuple(domains))
    given = ~np.isnan(effective_given).any(axis=1)
    effective = schedules.effective()
    off = given & (np.abs(effective - effective_given).max(axis=1) > SUM_TOLERANCE)
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise RunsLogError(
            f"{source}: run {runs[row]}: its 'w:' mixture is not the share-weighted mean of its "
            f"phases (off by {np.abs(effective - effective_given)[row].max():.3g}); leave the "
            "'w:' cells empty to have it filled in"
        )
    return schedules


def _check_phases(weights: np.ndarray, shares: np.ndarray, runs: list[str], source: str) -> None:
    for row, run in enumerate(runs):
        if (shares[row] <= 0).any() or abs(shares[row].sum() - 1) > SUM_TOLERANCE:
            raise RunsLogError(
                f"{source}: run {run}: phase shares {np.round(shares[row], 4).tolist()} must be "
                "> 0 and sum to 1"
            )
        for phase, mixture in enumerate(weights[row], start=1):
            if np.isnan(mixture).any() or (mixture < 0).any():
                raise RunsLogError(
                    f"{source}: run {run}: phase {phase} has a negative or empty weight"
                )
            if abs(mixture.sum() - 1) > SUM_TOLERANCE:
                raise RunsLogError(
                    f"{source}: run {run}: phase {phase}'s weights sum to {mixture.sum():.4g}, not 1"
                )


def fill_effective_mixtures(frame: pd.DataFrame, source: str = "runs log") -> pd.DataFrame:
    """``frame`` with empty ``w:`` cells of schedule rows filled by the phases' mean mixture
    (after validating the schedule columns); a single-phase frame is returned unchanged."""
    schedules = read_schedules(frame, source)
    if schedules is None:
        return frame
    frame = frame.copy()
    columns = [WEIGHT_PREFIX + d for d in schedules.domains]
    given = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(float, copy=True)
    empty = np.isnan(given).all(axis=1)
    given[empty] = schedules.effective()[empty]
    frame[columns] = given
    return frame


def schedule_row(weights: np.ndarray, shares: np.ndarray, domains: list[str]) -> dict[str, float]:
    """The log cells of one schedule (phase weights, shares and the effective ``w:`` mixture)."""
    weights, shares = np.asarray(weights, float), np.asarray(shares, float)
    row = {
        phase_weight_column(p + 1, d): float(weights[p, k])
        for p in range(len(shares))
        for k, d in enumerate(domains)
    }
    row |= {phase_share_column(p + 1): float(s) for p, s in enumerate(shares)}
    effective = shares @ weights
    return row | {WEIGHT_PREFIX + d: float(effective[k]) for k, d in enumerate(domains)}


def exposure(
    effective: np.ndarray, run_tokens: np.ndarray, unique_tokens: np.ndarray
) -> np.ndarray:
    """Epochs of each domain each run trains on (runs x domains): tokens seen / unique tokens.

    ``effective`` is the runs' total mixture, ``run_tokens`` their token budgets (one per run),
    ``unique_tokens`` each domain's unique training tokens (the corpus manifest's
    ``tokens.train``, or the subsample a repetition-matched proxy used).
    """
    effective = np.asarray(effective, float)
    unique = np.asarray(unique_tokens, float)
    if (unique <= 0).any():
        raise RunsLogError("every domain needs a positive count of unique training tokens")
    return effective * np.asarray(run_tokens, float)[:, None] / unique[None, :]
