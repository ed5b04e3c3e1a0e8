"""The runs log: one row per trained proxy run (mixture weights in, losses out).

Format (CSV or JSONL): ``run_id``, one ``w:<domain>`` column per training domain, one
``loss:<eval_set>`` column per evaluation set, and optional metadata (``params``, ``tokens``,
``steps``, ``seed``, ``notes``, ``eval_id``). The log is the single source of truth for every
surrogate, so it is validated strictly on load and only ever written atomically, under a lock
(``.<log name>.lock`` beside it) so that concurrent writers, such as cluster array jobs, lose nothing.

A missing loss (an empty CSV cell, a JSON ``null``) means the run was not evaluated on that set;
a row with weights and no loss at all is a run in flight (*pending*): fitted on nowhere, never
proposed again, and a pending point of batch acquisition. A loss written as text that is not a
number (``NaN``, ``inf``, ``n/a``) or a negative loss is refused: only an empty cell is missing.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from ..errors import MixsurrogateError, RunsLogError
from ..files import atomic_write_text
from ..simplex import SUM_TOLERANCE, check_mixtures
from .missing import empty_cells, fill_missing_weights
from .names import LOSS_PREFIX, WEIGHT_PREFIX
from .schedule import fill_effective_mixtures

LOCK_POLL_S = 0.005
#: run ids that pandas reads back as missing (read_csv's default NA spellings): a log holding one
#: could be written but not loaded again
MISSING_RUN_IDS = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"}
    | {"<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)


@dataclass
class RunsLog:
    """A validated runs log: weights ``W`` (runs x domains) and losses ``Y`` (runs x eval sets)."""

    frame: pd.DataFrame

    @property
    def run_ids(self) -> list[str]:
        return [str(r) for r in self.frame["run_id"]]

    @property
    def domains(self) -> list[str]:
        return [c[len(WEIGHT_PREFIX) :] for c in self.frame.columns if c.startswith(WEIGHT_PREFIX)]

    @property
    def targets(self) -> list[str]:
        return [c[len(LOSS_PREFIX) :] for c in self.frame.columns if c.startswith(LOSS_PREFIX)]

    @property
    def W(self) -> np.ndarray:  # noqa: N802 - the conventional name for the mixture matrix
        return self.frame[[WEIGHT_PREFIX + d for d in self.domains]].to_numpy(dtype=float)

    @property
    def Y(self) -> np.ndarray:  # noqa: N802
        return self.frame[[LOSS_PREFIX + t for t in self.targets]].to_numpy(dtype=float)

    def __len__(self) -> int:
        return len(self.frame)

    def loss(self, target: str) -> np.ndarray:
        """The loss column of one evaluation set (NaN where the run was not evaluated on it),
        with a clear error for an unknown name."""
        if target not in self.targets:
            raise RunsLogError(
                f"unknown evaluation set {target!r}; the runs log has: {', '.join(self.targets)}"
            )
        return self.frame[LOSS_PREFIX + target].to_numpy(dtype=float)

    def has_loss(self, target: str) -> np.ndarray:
        """Which runs were evaluated on ``target`` (bool per row)."""
        return ~np.isnan(self.loss(target))

    @property
    def pending_mask(self) -> np.ndarray:
        """Runs in flight (bool per row): weights logged, no loss yet."""
        return np.isnan(self.Y).all(axis=1)

    def completed(self) -> RunsLog:
        """The log without its pending rows (what every fit uses); ``self`` if none is pending."""
        pending = self.pending_mask
        return self if not pending.any() else self.subset(np.flatnonzero(~pending))

    def pending(self) -> RunsLog:
        """The pending rows alone (possibly none): ``pending().W`` are the mixtures in flight."""
        return self.subset(np.flatnonzero(self.pending_mask))

    def run_counts(self) -> dict[str, int]:
        """Per evaluation set, how many runs have its loss."""
        return {t: int(self.has_loss(t).sum()) for t in self.targets}

    def subset(self, rows: np.ndarray | list[int]) -> RunsLog:
        return RunsLog(self.frame.iloc[list(rows)].reset_index(drop=True))

    def with_domain_order(self, domains: list[str]) -> RunsLog:
        """The same log with its ``w:`` columns in ``domains`` order (another log's, a store's).

        Safe to do silently: a column's name, not its place, says which domain it is; only the
        matrices ``W`` built from two sources must agree on one order.
        """
        domains = list(domains)
        if domains == self.domains:
            return self
        if sorted(domains) != sorted(self.domains):
            raise RunsLogError(
                f"the runs log has domains {', '.join(self.domains)}, not {', '.join(domains)}"
            )
        weights = iter([WEIGHT_PREFIX + d for d in domains])
        columns = [next(weights) if c.startswith(WEIGHT_PREFIX) else c for c in self.frame.columns]
        return RunsLog(self.frame[columns])


def _fail(source: str, message: str) -> RunsLogError:
    return RunsLogError(f"{source}: {message}")


def validate_frame(
    frame: pd.DataFrame, source: str = "runs log", missing_domains: str = "refuse"
) -> pd.DataFrame:
    """Check the contract and return a clean copy (weights renormalised within tolerance).

    ``missing_domains``: what an empty weight cell means (``runs.missing``): refused, 0, or kept.
    """
    frame = frame.copy()
    if "run_id" not in frame.columns:
        raise _fail(source, "missing column 'run_id'")
    weight_cols = [c for c in frame.columns if str(c).startswith(WEIGHT_PREFIX)]
    loss_cols = [c for c in frame.columns if str(c).startswith(LOSS_PREFIX)]
    if not weight_cols:
        raise _fail(source, "missing mixture columns: expected at least one 'w:<domain>' column")
    if not loss_cols:
        raise _fail(source, "missing loss columns: expected at least one 'loss:<eval_set>' column")
    if len(frame) == 0:
        raise _fail(source, "no runs (the log has a header but no rows)")
    _check_run_ids(frame["run_id"], source)
    frame["run_id"] = frame["run_id"].astype(str)
    duplicated = frame["run_id"][frame["run_id"].duplicated()].unique()
    if len(duplicated):
        raise _fail(source, f"duplicate run_id {', '.join(map(str, duplicated[:5]))}")
    frame = fill_effective_mixtures(frame, source)

    weights, empty = fill_missing_weights(frame, weight_cols, source, missing_domains)
    try:
        check_mixtures(
            weights, labels=[f"run {r}" for r in frame["run_id"]], columns=weight_cols,
            sum_tolerance=SUM_TOLERANCE,
        )  # fmt: skip
    except MixsurrogateError as err:
        raise _fail(source, str(err)) from err
    weights = weights / weights.sum(axis=1, keepdims=True)
    if missing_domains == "keep":
        weights[empty] = np.nan  # written back empty, as the user left them
    frame[weight_cols] = weights

    raw = frame[loss_cols]
    missing = raw.apply(empty_cells).to_numpy(dtype=bool)
    losses = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, copy=True)
    bad = ~missing & ~np.isfinite(losses)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise _fail(
            source,
            f"run {frame['run_id'].iloc[row]}: loss {loss_cols[col]} is "
            f"{_shown(raw.iat[row, col])}, not a finite number; leave the cell empty (JSON: null) "
            "for a set the run was not evaluated on",
        )
    losses[missing] = np.nan
    negative = losses < 0
    if negative.any():
        row, col = map(int, np.argwhere(negative)[0])
        raise _fail(
            source,
            f"run {frame['run_id'].iloc[row]}: loss {loss_cols[col]} is negative "
            f"({losses[row, col]:g}); losses are cross-entropies in nats per token, never below 0",
        )
    frame[loss_cols] = losses
    return frame.reset_index(drop=True)


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else f"{value}"


def _check_run_ids(ids: pd.Series, source: str) -> None:
    """Refuse missing or blank ids: ``astype(str)`` would turn NaN into the id ``'nan'``."""
    for row, value in enumerate(ids):
        text = "" if pd.api.types.is_scalar(value) and pd.isna(value) else str(value)
        if text.strip() in MISSING_RUN_IDS:
            shown = "missing" if not text.strip() else f"{text!r}, which reads back as missing"
            raise _fail(source, f"row {row + 1}: run_id is {shown}; give every run an id")


def read_frame(path: str | Path) -> pd.DataFrame:
    """Read a CSV or JSONL runs file into a frame, without validation.

    Only an empty cell (JSON: ``null``) reads as missing: the text ``NaN`` or ``inf`` (JSON: the
    bare constants ``NaN``, ``Infinity``) in a loss column stays text, so validation can refuse
    it instead of taking it for "not evaluated".
    """
    path = Path(path)
    if not path.exists():
        raise RunsLogError(f"{path}: no such runs log")
    if path.is_dir():
        raise RunsLogError(f"{path}: is a folder, not a runs log (a .csv or .jsonl file)")
    kind = "JSONL" if path.suffix in (".jsonl", ".json") else "CSV"
    try:
        if kind == "JSONL":
            return _read_jsonl(path)
        header = read_csv_header(path)
        check_unique_columns(header, str(path))
        return pd.read_csv(path, dtype={"run_id": str}, keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise RunsLogError(f"{path}: cannot parse as {kind} ({err})") from err
    except OSError as err:
        raise RunsLogError(f"{path}: cannot read the runs log ({err.strerror or err})") from err


def read_csv_header(path: str | Path) -> list[str]:
    """A CSV file's header row as written, read with the csv module (empty if the file is).

    Pandas renames a repeated column (``w:web`` twice gives ``w:web`` and ``w:web.1``) and an
    empty one (``Unnamed: 0``), which would pass for a new domain or set; the raw header shows
    what the file says. Raises ``OSError`` or ``UnicodeDecodeError`` as ``open`` does.
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


def check_unique_columns(header: list[str], source: str) -> None:
    """Refuse a header that names a column twice (empty headers, a saved index, aside)."""
    named = [c for c in header if c.strip()]
    repeated = list(dict.fromkeys(c for c in named if named.count(c) > 1))
    if repeated:
        shown = ", ".join(repr(c) for c in repeated[:5])
        raise RunsLogError(
            f"{source}: column {shown} appears more than once in the header; each column must "
            "have its own name"
        )


class _Constant(str):
    """A bare JSON ``NaN`` / ``Infinity``, kept as text until its column is known."""


def _jsonl_record(pairs: list[tuple[str, object]]) -> dict:
    record = {}
    keys = [key for key, _ in pairs]
    repeated = [key for key in dict.fromkeys(keys) if keys.count(key) > 1]
    if repeated:  # json keeps the last silently; read_frame turns this into one line
        raise ValueError(f"key {repeated[0]!r} appears more than once in one record")
    for key, value in pairs:
        if isinstance(value, _Constant) and not key.startswith(LOSS_PREFIX):
            value = float(value)  # a metadata NaN (older logs wrote them) is just missing
        record[key] = str(value) if isinstance(value, _Constant) else value
    return record


def _read_jsonl(path: Path) -> pd.DataFrame:
    with open(path, encoding="utf-8") as handle:
        records = [
            json.loads(line, parse_constant=_Constant, object_pairs_hook=_jsonl_record)
            for line in handle
            if line.strip()
        ]
    if not records:
        raise pd.errors.EmptyDataError("no records")
    frame = pd.DataFrame.from_records(records)
    if "run_id" in frame.columns:
        frame["run_id"] = frame["run_id"].map(lambda v: v if v is None else str(v))
    return frame


def load_runs(path: str | Path, missing_domains: str = "refuse") -> RunsLog:
    """Load and validate a runs log (``.csv`` or ``.jsonl``); ``missing_domains='zero'`` reads
    empty weight cells (runs from before a domain was added) as 0."""
    return RunsLog(validate_frame(read_frame(path), str(path), missing_domains))


@contextmanager
def log_lock(path: str | Path) -> Iterator[None]:
    """Hold the exclusive lock that every writer of the log at ``path`` takes to rewrite it.

    A sibling file, not the log itself: the log is replaced by a rename, so a lock on its inode
    would guard a file that is no longer there. The lock file stays (removing it is racy).
    """
    path = Path(path)
    lock = FileLock(path.with_name(f".{path.name}.lock"))
    # a waiter polls; filelock's default 50 ms would dominate appends that take a few ms
    with lock.acquire(poll_interval=LOCK_POLL_S):
        yield


def frame_to_text(frame: pd.DataFrame, path: Path) -> str:
    """CSV (a missing value is an empty cell) or JSONL (a missing value is ``null``)."""
    if path.suffix in (".jsonl", ".json"):
        return "".join(
            json.dumps({k: _json_value(v) for k, v in rec.items()}, allow_nan=False) + "\n"
            for rec in frame.to_dict(orient="records")
        )
    return frame.to_csv(index=False)


def _json_value(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    return value


def save_runs(log: RunsLog | pd.DataFrame, path: str | Path) -> None:
    """Validate and write a runs log atomically (format from the suffix)."""
    frame = log.frame if isinstance(log, RunsLog) else log
    path = Path(path)
    frame = validate_frame(frame, source=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    with log_lock(path):
        atomic_write_text(path, frame_to_text(frame, path))


def append_run(path: str | Path, row: dict) -> RunsLog:
    """Append one run to a log (created if absent), atomically; the new row is validated too.

    The row may lack some ``loss:`` values (None, NaN or left out: not evaluated on that set),
    or all of them: a pending run, to be filled in later with :func:`update_run`.
    The whole file is rewritten through a temporary file and renamed, which is what makes the
    append atomic: readers see the old log or the new one, never a half-written row. Writers
    take :func:`log_lock` and re-read the log under it, so concurrent appends all land.
    """
    path = Path(path)
    _with_row(
        path, row
    )  # a row that cannot go in fails here, before any file (even the lock) exists
    path.parent.mkdir(parents=True, exist_ok=True)
    with log_lock(path):
        log = _with_row(path, row)  # again under the lock: another writer may have appended since
        atomic_write_text(path, frame_to_text(log.frame, path))
    return log


def _with_row(path: Path, row: dict) -> RunsLog:
    """The log at ``path`` (empty if absent) with ``row`` appended, validated."""
    new = pd.DataFrame([row])
    if not path.exists() or path.stat().st_size == 0:
        return RunsLog(validate_frame(new, str(path), "keep"))
    old = read_frame(path)

    def columns(frame: pd.DataFrame, prefix: str) -> set[str]:
        return {c for c in frame.columns if str(c).startswith(prefix)}

    # a loss the row leaves out is one it was not evaluated on; a set the log lacks is an error
    same_weights = columns(old, WEIGHT_PREFIX) == columns(new, WEIGHT_PREFIX)
    if not same_weights or not columns(new, LOSS_PREFIX) <= columns(old, LOSS_PREFIX):
        raise RunsLogError(
            f"{path}: run {row.get('run_id')} has other domains or evaluation sets than the log"
        )
    # metadata (notes, seed, ...) is optional: a column the row lacks stays empty for it
    extra = [c for c in new.columns if c not in old.columns]
    frame = pd.concat([old, new], ignore_index=True)[[*old.columns, *extra]]
    return RunsLog(validate_frame(frame, str(path), "keep"))


def update_run(path: str | Path, run_id: str, values: dict) -> RunsLog:
    """Fill in a logged run, atomically and under the log's lock: typically a pending run's
    losses once it is trained, or a set it is evaluated on later.

    ``values`` maps columns to values: ``loss:<set>`` (or the bare set name) and metadata such
    as ``tokens``, ``steps``, ``params``, ``notes``. A loss already logged is never overwritten
    with another value, and weights never change (a new mixture is a new run: append it).
    """
    path = Path(path)
    if not path.exists():
        raise RunsLogError(f"{path}: no such runs log")
    with log_lock(path):
        frame = read_frame(path)
        frame = _with_values(frame, str(run_id), values, str(path))
        log = RunsLog(validate_frame(frame, str(path), "keep"))
        atomic_write_text(path, frame_to_text(log.frame, path))
    return log


def remove_pending_runs(path: str | Path, run_ids: list[str]) -> list[str]:
    """Take runs that never got a loss back out of the log, atomically and under its lock.

    For a worker whose training failed: the pending rows it logged must not stay "in flight"
    for ever (proposals would keep avoiding those mixtures). Only rows without any loss are
    removed; a log left without rows is deleted (it held only these runs). Returns the ids
    removed.
    """
    path = Path(path)
    wanted = {str(r) for r in run_ids}
    if not wanted or not path.exists():
        return []
    with log_lock(path):
        frame = read_frame(path)
        log = RunsLog(validate_frame(frame, str(path), "keep"))
        ids = np.array([r in wanted for r in log.run_ids], dtype=bool)
        drop = ids & log.pending_mask
        if not drop.any():
            return []
        removed = [r for r, d in zip(log.run_ids, drop, strict=True) if d]
        if drop.all():
            path.unlink()
        else:
            kept = RunsLog(validate_frame(frame[~drop].reset_index(drop=True), str(path), "keep"))
            atomic_write_text(path, frame_to_text(kept.frame, path))
    return removed


def _with_values(frame: pd.DataFrame, run_id: str, values: dict, source: str) -> pd.DataFrame:
    ids = frame["run_id"].astype(str) if "run_id" in frame.columns else pd.Series([], dtype=str)
    where = np.flatnonzero((ids == run_id).to_numpy())
    if len(where) != 1:
        raise _fail(source, f"run {run_id}: not in the log, so there is nothing to update")
    row = int(where[0])
    frame = frame.astype({c: object for c in frame.columns if c != "run_id"})
    targets = {str(c)[len(LOSS_PREFIX) :] for c in frame.columns if str(c).startswith(LOSS_PREFIX)}
    for key, value in values.items():
        column = str(key)
        if column.startswith(WEIGHT_PREFIX) or column == "run_id":
            raise _fail(source, f"run {run_id}: {column} of a logged run cannot change")
        if not column.startswith(LOSS_PREFIX) and column in targets:
            column = LOSS_PREFIX + column
        if column.startswith(LOSS_PREFIX):
            if column not in frame.columns:
                raise _fail(source, f"run {run_id}: the log has no evaluation set {column}")
            before, after = pd.to_numeric(
                pd.Series([frame.at[row, column], value], dtype=object), errors="coerce"
            )
            if pd.notna(before) and before != after:  # a retry with the same value is fine
                raise _fail(
                    source, f"run {run_id}: {column} is already logged ({before:g}); "
                    "a logged loss is never overwritten",
                )  # fmt: skip
        frame.loc[row, column] = value
    return frame
