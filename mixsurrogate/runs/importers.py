"""Foreign runs logs into the runs-log format: RegMix, Olmix, W&B runs-table exports, any CSV.

Each importer reads its source and picks the weight and loss columns (RegMix by its two kinds of
header, the others by ``--weights``/``--losses`` globs); :mod:`mixsurrogate.runs.columns` names
them, checks the weights, converts higher-is-better metrics and returns an
:class:`~mixsurrogate.runs.columns.ImportedLog`. Nothing is written until :func:`write_import`,
so an import that is refused leaves no file behind.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MixsurrogateError, RunsLogError
from ..files import atomic_write_text
from .columns import (
    ImportedLog,
    aligned,
    assemble,
    match_columns,
    matches,
    parse_renames,
    read_csv,
    safe_name,
    shown,
    unnamed,
)
from .formats import FORMATS
from .log import RunsLog, frame_to_text, log_lock
from .metadata import save_log_metadata
from .schedule import PHASE_WEIGHT_PREFIX, is_phase_column, phase_weight_column

#: the input files of each format, in the order they are given (then OUT)
FORMAT_FILES = {
    "regmix": ("MIXTURE_CSV", "LOSS_CSV"),
    "olmix": ("RATIOS_CSV", "METRICS_CSV"),
    "wandb": ("EXPORT_CSV",),
    "csv": ("CSV",),
}
#: the column options each format takes (every format takes renames, units, higher_is_better)
FORMAT_OPTIONS = {
    "regmix": (),
    "olmix": ("weights", "losses", "run_id", "normalize_weights"),
    "wandb": ("weights", "losses", "run_id", "normalize_weights"),
    "csv": ("weights", "losses", "run_id", "normalize_weights"),
}
#: Olmix's metrics are bits per byte; the others' losses are nats unless told
DEFAULT_UNITS = {"regmix": "nats", "olmix": "bpb", "wandb": "nats", "csv": "nats"}
#: the run-id column of a CSV when no --run-id names it: the first one present
RUN_ID_COLUMNS = ("run_id", "run", "ID", "id", "Name", "name")
#: a W&B export's: its human ``Name`` before the hash ``ID`` it also writes
WANDB_ID_COLUMNS = ("run_id", "run", "Name", "name", "ID", "id")
#: Olmix joins its two files on either
OLMIX_ID_COLUMNS = ("run", "run_id")
#: columns of Olmix's files that are neither weights nor metrics, besides the id and any column
#: with an empty header (the saved pandas index): a label, and the index saved again as a column
OLMIX_OTHER_COLUMNS = ("name", "index")
#: RegMix's weights sum to 1: a file whose rows do not is not RegMix's mixture file
REGMIX_SUM_HINT = "RegMix's weights sum to 1: is it RegMix's mixture file?"

REGMIX_WEIGHT_PATTERN = "train_the_pile_*"
REGMIX_LOSS_PATTERN = "metric/the_pile_*_val_loss"
#: The Pile's display names, which head the columns of RegMix's 1000-run files
#: (``data/pile/tiny_config_1M_pile.csv``, ``tiny_wandb_1M_1000_pile_4B.csv``), and the snake-case
#: names of its released files (``train_the_pile_<name>``, ``metric/the_pile_<name>_val_loss``),
#: which are the log's names. Looked up by :func:`_display_key`, so ``GitHub`` or
#: ``StackExchange`` find them too.
PILE_DISPLAY_NAMES = {
    "ArXiv": "arxiv",
    "FreeLaw": "freelaw",
    "NIH ExPorter": "nih_exporter",
    "PubMed Central": "pubmed_central",
    "Wikipedia (en)": "wikipedia_en",
    "DM Mathematics": "dm_mathematics",
    "Github": "github",
    "PhilPapers": "philpapers",
    "Stack Exchange": "stackexchange",
    "Enron Emails": "enron_emails",
    "Gutenberg (PG-19)": "gutenberg_pg_19",
    "Pile-CC": "pile_cc",
    "Ubuntu IRC": "ubuntu_irc",
    "EuroParl": "europarl",
    "HackerNews": "hackernews",
    "PubMed Abstracts": "pubmed_abstracts",
    "USPTO Backgrounds": "uspto_backgrounds",
}


def _display_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


_PILE_BY_KEY = {_display_key(k): v for k, v in PILE_DISPLAY_NAMES.items()}


def _regmix_columns(table: pd.DataFrame, path: str | Path, pattern: str) -> list[tuple[str, str]]:
    """One RegMix file's (column, name) pairs, of either kind: released (snake-case columns
    matching ``pattern``) or the 1000-run files' display names (:data:`PILE_DISPLAY_NAMES`)."""
    columns = [c for c in table.columns if c != "index" and not unnamed(c)]
    released = matches(columns, pattern)
    if released:
        return released
    names = [_PILE_BY_KEY.get(_display_key(c)) for c in columns]
    unknown = [c for c, name in zip(columns, names, strict=True) if name is None]
    if columns and not unknown:
        return list(zip(columns, names, strict=True))
    what = f"{shown(unknown)} is not one of" if unknown else "no column holds"
    raise RunsLogError(
        f"{path}: no '{pattern}' columns, and {what} the Pile's display names (ArXiv, Pile-CC, "
        "Wikipedia (en), ...): is it a RegMix file?"
    )


def from_regmix(
    mixture_csv: str | Path,
    loss_csv: str | Path,
    *,
    run_prefix: str = "",
    renames: Mapping[str, str] | None = None,
    units: str = "nats",
    higher_is_better: Sequence[str] = (),
) -> ImportedLog:
    """RegMix's mixture and loss CSVs joined on ``index``: the released pair
    (``train_the_pile_*``, ``metric/the_pile_*_val_loss``) or the 1000-run files headed by the
    Pile's display names, told apart per file; both give the same ``w:pile_cc``/``loss:pile_cc``
    names. RegMix's weights sum to 1, so a row that does not is refused, never normalised (it
    would hide a swapped pair of files)."""
    hint = "is it a RegMix file?"
    mixture, _ = read_csv(mixture_csv, ["index"], hint)
    losses, _ = read_csv(loss_csv, ["index"], hint)
    losses = aligned(mixture, "index", losses, "index", (str(mixture_csv), str(loss_csv)))
    return assemble(
        run_prefix + mixture["index"],
        mixture,
        _regmix_columns(mixture, mixture_csv, REGMIX_WEIGHT_PATTERN),
        losses,
        _regmix_columns(losses, loss_csv, REGMIX_LOSS_PATTERN),
        fmt="regmix",
        files=[mixture_csv, loss_csv],
        renames=renames,
        units=units,
        higher_is_better=higher_is_better,
        normalise=False,
        sum_hint=REGMIX_SUM_HINT,
    )


def import_regmix(mixture_csv: str | Path, loss_csv: str | Path, run_prefix: str = "") -> RunsLog:
    """Join RegMix's mixture and loss CSVs on ``index`` into the runs-log format.

    Either kind of RegMix file: the released pair (``train_the_pile_*`` and
    ``metric/the_pile_*_val_loss`` columns) or the 1000-run files headed by the Pile's display
    names (``Pile-CC``, ``Wikipedia (en)``, ...); :func:`from_regmix` also gives the log's
    metadata.
    """
    return from_regmix(mixture_csv, loss_csv, run_prefix=run_prefix).log


def from_olmix(
    ratios_csv: str | Path,
    metrics_csv: str | Path,
    *,
    run_id: str | None = None,
    weights: Sequence[str] = ("*",),
    losses: Sequence[str] = ("*",),
    renames: Mapping[str, str] | None = None,
    units: str = "bpb",
    higher_is_better: Sequence[str] = (),
    normalize_weights: bool = False,
) -> ImportedLog:
    """Olmix's ``ratios.csv`` (one column per domain) and ``metrics.csv`` (one per metric, bits
    per byte by default) joined on ``run`` or ``run_id`` (or ``run_id``, the column both share).
    Every column but the id, ``name``, ``index`` and the empty-headed saved pandas index is a
    domain or a metric unless ``weights``/``losses`` choose. The two files must hold the same
    runs. Olmix's ratios sum to 1; ``normalize_weights`` divides other sums out."""
    id_columns = [run_id] if run_id else list(OLMIX_ID_COLUMNS)
    hint = "name it with --run-id COLUMN"
    ratios, ratios_id = read_csv(ratios_csv, id_columns, hint)
    metrics, metrics_id = read_csv(metrics_csv, id_columns, hint)
    metrics = aligned(ratios, ratios_id, metrics, metrics_id, (str(ratios_csv), str(metrics_csv)))
    weight_cols = match_columns(
        ratios.columns, weights or ("*",), "--weights", str(ratios_csv),
        exclude=(ratios_id, *OLMIX_OTHER_COLUMNS, *phase_names(ratios)),
    )  # fmt: skip
    loss_cols = match_columns(
        metrics.columns, losses or ("*",), "--losses", str(metrics_csv),
        exclude=(metrics_id, *OLMIX_OTHER_COLUMNS, *phase_names(metrics)),
    )  # fmt: skip
    if phase_names(metrics):
        raise RunsLogError(
            f"{metrics_csv}: schedule columns ({phase_names(metrics)[0]}, ...) belong in the "
            f"ratios file {ratios_csv}, beside the mixture"
        )
    skipped = [
        "the empty-headed first column (a saved index)" if unnamed(c) else repr(c)
        for c in dict.fromkeys([*ratios.columns, *metrics.columns])
        if unnamed(c) or c in OLMIX_OTHER_COLUMNS
    ]
    return assemble(
        ratios[ratios_id],
        ratios,
        weight_cols,
        metrics,
        loss_cols,
        fmt="olmix",
        files=[ratios_csv, metrics_csv],
        renames=renames,
        units=units,
        higher_is_better=higher_is_better,
        normalise=normalize_weights,
        notes=[f"not domains or metrics, skipped: {', '.join(skipped)}"] if skipped else [],
        extra_columns=schedule_columns(ratios, renames, str(ratios_csv)),
    )


def from_csv(
    path: str | Path,
    *,
    weights: Sequence[str] = (),
    losses: Sequence[str] = (),
    run_id: str | None = None,
    renames: Mapping[str, str] | None = None,
    units: str = "nats",
    higher_is_better: Sequence[str] = (),
    normalize_weights: bool = False,
) -> ImportedLog:
    """Any CSV with one row per run: weight and loss columns chosen by glob ``patterns`` whose
    ``*`` is the domain or set name; the run id from ``run_id`` or the first of
    :data:`RUN_ID_COLUMNS` present. Weights must sum to 1 unless ``normalize_weights``."""
    return _from_table(
        path, "csv", weights, losses, run_id or RUN_ID_COLUMNS, renames, units, higher_is_better,
        normalize_weights,
    )  # fmt: skip


def from_wandb(
    path: str | Path,
    *,
    weights: Sequence[str] = (),
    losses: Sequence[str] = (),
    run_id: str | None = None,
    renames: Mapping[str, str] | None = None,
    units: str = "nats",
    higher_is_better: Sequence[str] = (),
    normalize_weights: bool = False,
) -> ImportedLog:
    """A W&B runs-table CSV export: ``weights='config.mix.*'``, ``losses='summary.eval/*/loss'``
    (the ``*`` is the name); the run id from ``run_id`` or the first of
    :data:`WANDB_ID_COLUMNS` present (W&B writes a human ``Name`` and a hash ``ID``: the name,
    which the user knows the run by, comes first). Raw amounts (token counts) are divided by
    each run's sum only with ``normalize_weights``."""
    return _from_table(
        path, "wandb", weights, losses, run_id or WANDB_ID_COLUMNS, renames, units,
        higher_is_better, normalize_weights,
    )  # fmt: skip


def _from_table(
    path, fmt, weights, losses, id_columns, renames, units, higher_is_better, normalize_weights
):
    if not weights or not losses:
        raise MixsurrogateError(f"--format {fmt} needs --weights PATTERN and --losses PATTERN")
    id_columns = [id_columns] if isinstance(id_columns, str) else list(id_columns)
    table, id_column = read_csv(path, id_columns, "name it with --run-id COLUMN")
    exclude = (id_column, *phase_names(table))
    return assemble(
        table[id_column],
        table,
        match_columns(table.columns, weights, "--weights", str(path), exclude=exclude),
        table,
        match_columns(table.columns, losses, "--losses", str(path), exclude=exclude),
        fmt=fmt,
        files=[path],
        renames=renames,
        units=units,
        higher_is_better=higher_is_better,
        normalise=normalize_weights,
        extra_columns=schedule_columns(table, renames, str(path)),
    )


def schedule_columns(
    table: pd.DataFrame, renames: Mapping[str, str] | None, source: str
) -> dict[str, np.ndarray]:
    """A table's schedule columns (``w@<p>:<domain>``, ``share@<p>``: the log's own format),
    carried through with their domain named as the weights' (``safe_name``, then renames);
    never a domain or a metric. The log's validation then checks them (one line per problem)."""
    renames = dict(renames or {})
    out = {}
    for column in (str(c) for c in table.columns if is_phase_column(c)):
        name = column
        if column.startswith(PHASE_WEIGHT_PREFIX):
            phase, domain = column[len(PHASE_WEIGHT_PREFIX) :].split(":", 1)
            domain = safe_name(domain)
            name = phase_weight_column(int(phase), renames.get(domain, domain))
        raw = table[column]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise RunsLogError(
                f"{source}: schedule column {column!r} holds {raw.iloc[row]!r} (row {row + 1}), "
                "not a number"
            )
        out[name] = values.to_numpy(float)
    return out


def phase_names(table: pd.DataFrame) -> tuple[str, ...]:
    """The schedule columns of a table: left out of --weights and --losses matching."""
    return tuple(str(c) for c in table.columns if is_phase_column(c))


_READERS = {"regmix": from_regmix, "olmix": from_olmix, "wandb": from_wandb, "csv": from_csv}


def import_runs(
    fmt: str,
    files: Sequence[str | Path],
    *,
    weights: Sequence[str] = (),
    losses: Sequence[str] = (),
    run_id: str | None = None,
    renames: Sequence[str] = (),
    units: str | None = None,
    higher_is_better: Sequence[str] = (),
    normalize_weights: bool = False,
) -> ImportedLog:
    """The CLI's ``runs import``: one format, its input files, options as the command line gives
    them (``renames`` as ``OLD=NEW`` specs). An option the format does not take, or the wrong
    number of files, is one clear error."""
    if fmt not in FORMATS:
        raise MixsurrogateError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    expected = FORMAT_FILES[fmt]
    if len(files) != len(expected):
        raise MixsurrogateError(
            f"--format {fmt} reads {' and '.join(expected)}, then OUT; got {len(files)} input "
            f"file{'s' if len(files) != 1 else ''}"
        )
    given = {
        "weights": tuple(weights),
        "losses": tuple(losses),
        "run_id": run_id,
        "normalize_weights": normalize_weights,
    }
    for option, value in given.items():
        if value and option not in FORMAT_OPTIONS[fmt]:
            raise MixsurrogateError(
                f"--{option.replace('_', '-')} does not apply to --format {fmt}; it takes "
                "--rename, --units and --higher-is-better"
            )
    return _READERS[fmt](
        *files,
        **{k: v for k, v in given.items() if v},
        renames=parse_renames(renames),
        units=units or DEFAULT_UNITS[fmt],
        higher_is_better=tuple(higher_is_better),
    )


def check_out(out: str | Path, force: bool = False) -> None:
    """Refuse to replace an existing log unless ``force``: an import writes a whole new log, and
    a log holds runs that cost GPU hours (a typo in OUT would lose them)."""
    path = Path(out)
    if path.is_dir():
        raise MixsurrogateError(f"OUT {out} is a folder; give the runs log's file name")
    if not force and path.exists():
        raise MixsurrogateError(
            f"OUT {out} already exists; pass --force to replace it (and its metadata)"
        )


def write_import(imported: ImportedLog, out: str | Path, *, force: bool = False) -> Path:
    """Write the log (CSV or JSONL by ``out``'s suffix) and its metadata sidecar, each atomically
    and both under the log's lock; returns the sidecar's path. An existing ``out`` is refused
    unless ``force`` (checked again under the lock: another writer may have created it)."""
    check_out(out, force)
    path = Path(out)
    text = frame_to_text(imported.log.frame, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with log_lock(path):
        check_out(out, force)
        atomic_write_text(path, text)
        return save_log_metadata(path, imported.metadata)
