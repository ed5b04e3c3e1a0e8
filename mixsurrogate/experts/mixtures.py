"""Mixtures files: the runs ``runs train`` is given (one mixture, or a schedule of phase
mixtures, per row), and the I-th of N shares of such a file for cluster array jobs.

A mixtures file is a runs log without losses: ``run_id``, ``w:<domain>`` and, for multi-phase
runs, the schedule columns of :mod:`mixsurrogate.runs.schedule` (``w@<p>:<domain>``,
``share@<p>``; ``w:`` may then be left empty, it is the effective mixture). A row whose phase
cells are all empty is a single-phase run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..corpus.store import Corpus
from ..errors import MixsurrogateError
from ..runs.log import WEIGHT_PREFIX
from ..runs.schedule import fill_effective_mixtures, is_phase_column, read_schedules, schedule_row
from ..simplex import SUM_TOLERANCE, check_mixtures


@dataclass
class Mixture:
    """One row of a mixtures file: the run's id, its (effective) domain weights and its own
    seed, if any; a multi-phase run also has its phase mixtures and token shares."""

    run_id: str
    weights: dict[str, float]
    seed: int | None
    phases: tuple[dict[str, float], ...] | None = None
    shares: tuple[float, ...] | None = None

    def log_cells(self, domains: list[str]) -> dict[str, float]:
        """The runs-log cells of this mixture: ``w:`` and, for a schedule, its phase cells."""
        if self.phases is None or self.shares is None:
            return {WEIGHT_PREFIX + d: self.weights[d] for d in domains}
        weights = np.array([[phase[d] for d in domains] for phase in self.phases])
        return schedule_row(weights, np.array(self.shares), domains)


def read_mixtures(path: str | Path, corpus: Corpus) -> list[Mixture]:
    """Mixtures from CSV/JSONL with ``run_id``, ``w:<domain>`` and optional ``seed`` and
    schedule columns."""
    path = Path(path)
    if not path.is_file():
        raise MixsurrogateError(f"{path}: no such mixtures file")
    try:
        if path.suffix in (".jsonl", ".json"):
            frame = pd.read_json(path, lines=True, dtype={"run_id": str})
        else:
            frame = pd.read_csv(path, dtype={"run_id": str})
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise MixsurrogateError(f"{path}: cannot parse the mixtures file ({err})") from err
    columns = [c for c in frame.columns if str(c).startswith(WEIGHT_PREFIX)]
    if "run_id" not in frame.columns or not columns or frame.empty:
        raise MixsurrogateError(f"{path}: needs a 'run_id' column, 'w:<domain>' columns and rows")
    domains = [c[len(WEIGHT_PREFIX) :] for c in columns]
    corpus.check_domains(domains)
    ids = frame["run_id"].astype(str)
    if ids.duplicated().any():
        raise MixsurrogateError(f"{path}: duplicate run_id {ids[ids.duplicated()].iloc[0]}")
    phase_columns = [c for c in frame.columns if is_phase_column(str(c))]
    single = frame[phase_columns].isna().all(axis=1).to_numpy()
    frame = fill_effective_mixtures(frame, str(path))  # validates the schedules, one line
    schedules = read_schedules(frame, str(path))
    weights = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    try:
        check_mixtures(
            weights, labels=[f"run {r}" for r in ids], columns=columns,
            sum_tolerance=SUM_TOLERANCE,
        )  # fmt: skip
    except MixsurrogateError as err:
        raise MixsurrogateError(f"{path}: {err}") from err
    mixtures = []
    for row, run_id in enumerate(ids):
        w = weights[row]
        seed = frame["seed"].iloc[row] if "seed" in frame.columns else None
        phases = shares = None
        if schedules is not None and not single[row]:
            phases = tuple(
                dict(zip(domains, p.tolist(), strict=True)) for p in schedules.weights[row]
            )
            shares = tuple(schedules.shares[row].tolist())
        mixtures.append(
            Mixture(
                run_id,
                dict(zip(domains, (w / w.sum()).tolist(), strict=True)),
                None if seed is None or pd.isna(seed) else int(seed),
                phases,
                shares,
            )
        )
    return mixtures


@dataclass(frozen=True)
class Shard:
    """The I-th of N shares of a mixtures file (1-based): rows I, I + N, I + 2N, ..."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``I/N`` with 1 <= I <= N, or one line saying what is wrong."""
        index, sep, count = str(text).strip().partition("/")
        if not (sep and index.strip().isdigit() and count.strip().isdigit()):
            raise MixsurrogateError(
                f"--shard {text!r}: expected I/N, two whole numbers (e.g. --shard 1/4)"
            )
        i, n = int(index), int(count)
        if n < 1:
            raise MixsurrogateError(f"--shard {text!r}: N, the number of shards, must be >= 1")
        if not 1 <= i <= n:
            raise MixsurrogateError(
                f"--shard {text!r}: I must be between 1 and {n} (shards are numbered from 1)"
            )
        return cls(i, n)

    def select(self, mixtures: list[Mixture]) -> list[Mixture]:
        """This shard's rows, in file order."""
        return mixtures[self.index - 1 :: self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
