"""Foreign runs logs into the runs-log format: RegMix, Olmix, W&B runs-table exports, any CSV.

Each importer reads its source, picks the weight and loss columns, names them by the runs log's
rules (:func:`safe_name`, then ``renames``), checks the weights (and divides raw amounts, such as
token counts, by their sum, with a note), turns higher-is-better metrics into lower-is-better
columns, and returns an :class:`ImportedLog`: a validated :class:`~mixsurrogate.runs.RunsLog` and
the :class:`~mixsurrogate.runs.LogMetadata` that says what its numbers are (units, direction,
source columns, notes). Nothing is written until :func:`write_import`, so an import that is
refused leaves no file behind.

A cell the source leaves empty or writes as NaN (pandas' missing spellings: ``NaN``, ``NA``,
``null``, ...) means "not evaluated": it stays missing in the log (an empty CSV cell, a JSON
``null``), and :meth:`ImportedLog.summary` counts, per set, the runs that have it. A weight is
never missing: a domain a run did not use has weight 0.

Higher-is-better metrics (``higher_is_better`` patterns) become error rates, non-negative and
lower-is-better as every ``loss:`` column must be: ``1 - value`` when every value is in [0, 1],
``1 - value/100`` when every value is in [0, 100] and some are above 1 (percentages). Any other
range is refused: no offset would make an unbounded score a loss without being arbitrary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import MixsurrogateError, RunsLogError
from .import_formats import FORMATS
from .runs import (
    LOSS_PREFIX,
    LOSS_UNITS,
    WEIGHT_PREFIX,
    LogMetadata,
    RunsLog,
    atomic_write_text,
    frame_to_text,
    log_lock,
    metadata_path,
    save_log_metadata,
    validate_frame,
)
from .simplex import SUM_TOLERANCE, check_mixtures

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
    "olmix": ("weights", "losses", "run_id"),
    "wandb": ("weights", "losses", "run_id"),
    "csv": ("weights", "losses", "run_id"),
}
#: Olmix's metrics are bits per byte; the others' losses are nats unless told
DEFAULT_UNITS = {"regmix": "nats", "olmix": "bpb", "wandb": "nats", "csv": "nats"}
#: the run-id column of a W&B export or a CSV when no --run-id names it: the first one present
RUN_ID_COLUMNS = ("run_id", "run", "ID", "id", "Name", "name")
#: Olmix joins its two files on either
OLMIX_ID_COLUMNS = ("run", "run_id")
#: Olmix's optional human-readable label column, in either file: neither a weight nor a metric
OLMIX_LABEL_COLUMN = "name"

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

SHOWN = 5  # names an error lists before "..."
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _display_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


_PILE_BY_KEY = {_display_key(k): v for k, v in PILE_DISPLAY_NAMES.items()}


@dataclass
class ImportedLog:
    """An imported runs log and its metadata (``metadata.notes`` are the notes to print)."""

    log: RunsLog
    metadata: LogMetadata

    @property
    def notes(self) -> list[str]:
        return self.metadata.notes

    def summary(self, out: str | Path | None = None) -> dict:
        """What the import gives, as plain data (the CLI's ``--json``): ``units`` is the units
        declared for the source's losses; each target has its own, its source column, and how
        many runs have it."""
        counts = self.log.run_counts()
        return {
            "out": None if out is None else str(out),
            "metadata": None if out is None else str(metadata_path(out)),
            "format": self.metadata.source.get("format"),
            "runs": len(self.log),
            "domains": self.log.domains,
            "targets": {
                t: {"runs": counts[t], **self.metadata.targets.get(t, {})} for t in self.log.targets
            },
            "units": self.metadata.units,
            "notes": list(self.notes),
        }


def safe_name(text: str) -> str:
    """A domain or set name by the runs log's rules (those of a corpus's domain names: letters,
    digits, ``_`` and ``-``, starting with a letter or digit); every other run of characters
    becomes ``_``: ``'wiki/en'`` -> ``'wiki_en'``, ``'dclm:web'`` -> ``'dclm_web'``."""
    name = _UNSAFE.sub("_", str(text)).strip("_-")
    if not name:
        raise RunsLogError(f"{text!r} gives no usable name (letters, digits, _ and -)")
    return name


def parse_renames(specs: Sequence[str]) -> dict[str, str]:
    """``--rename OLD=NEW`` specs -> {OLD: NEW}; NEW must already be a usable name."""
    renames: dict[str, str] = {}
    for spec in specs:
        old, sep, new = (part.strip() for part in str(spec).partition("="))
        if not sep or not old or not new:
            raise MixsurrogateError(f"--rename {spec!r}: give OLD=NEW")
        if _UNSAFE.search(new) or new != new.strip("_-"):
            raise MixsurrogateError(
                f"--rename {spec!r}: {new!r} is not a usable name "
                "(letters, digits, _ and -, starting and ending with a letter or digit)"
            )
        if renames.get(old, new) != new:
            raise MixsurrogateError(f"--rename gives {old!r} two new names")
        renames[old] = new
    return renames


def _shown(items, n: int = SHOWN) -> str:
    items = [str(i) for i in items]
    more = f", ... ({len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _pattern(pattern: str) -> re.Pattern:
    """A column glob: ``*`` (the only wildcard) matches any text, which becomes the name."""
    return re.compile("(.*)".join(re.escape(part) for part in pattern.split("*")))


def _matches(columns: Sequence[str], pattern: str) -> list[tuple[str, str]]:
    regex = _pattern(pattern)
    hits = []
    for column in columns:
        found = regex.fullmatch(column)
        if found:
            hits.append((column, "_".join(found.groups()) if found.groups() else column))
    return hits


def match_columns(
    columns: Sequence[str],
    patterns: Sequence[str],
    option: str,
    source: str,
    exclude: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """(column, name) for each column one of ``patterns`` matches, in the file's order.

    The name is what the pattern's ``*`` matched (several ``*``: their matches joined by ``_``),
    or the whole column for a pattern without one. A pattern that matches nothing is an error
    that lists some of the columns there are.
    """
    excluded = set(exclude)
    candidates = [str(c) for c in columns if str(c) not in excluded]
    chosen: dict[str, str] = {}
    for pattern in patterns:
        hits = _matches(candidates, pattern)
        if not hits:
            raise RunsLogError(
                f"{source}: {option} {pattern!r} matches no column; its columns: "
                f"{_shown(candidates, 8)}"
            )
        for column, name in hits:
            chosen.setdefault(column, name)
    return [(c, chosen[c]) for c in candidates if c in chosen]


def _read_csv(path: str | Path, id_columns: Sequence[str], hint: str) -> tuple[pd.DataFrame, str]:
    """A foreign CSV and its run-id column (the first of ``id_columns`` it has), ids as text.

    Pandas' default missing spellings (empty, ``NaN``, ``NA``, ``null``, ...) read as missing:
    in a foreign file they mean "not evaluated". A missing or repeated run id is refused.
    """
    path = Path(path)
    try:
        columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise RunsLogError(f"{path}: cannot parse as CSV ({err})") from err
    id_column = next((c for c in id_columns if c in columns), None)
    if id_column is None:
        wanted = " or ".join(repr(c) for c in id_columns)
        raise RunsLogError(
            f"{path}: no {wanted} column ({hint}); its columns: {_shown(columns, 8)}"
        )
    try:
        table = pd.read_csv(path, dtype={id_column: str})
    except (ValueError, pd.errors.ParserError) as err:
        raise RunsLogError(f"{path}: cannot parse as CSV ({err})") from err
    table.columns = [str(c) for c in table.columns]
    ids = table[id_column]
    if ids.isna().any():
        line = int(np.flatnonzero(ids.isna().to_numpy())[0]) + 2  # the header is line 1
        raise RunsLogError(f"{path}: line {line}: the run id ({id_column}) is missing")
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        raise RunsLogError(f"{path}: run id {_shown(repeated)} appears more than once")
    return table, id_column


def _aligned(
    left: pd.DataFrame, left_id: str, right: pd.DataFrame, right_id: str, names: tuple[str, str]
) -> pd.DataFrame:
    """``right``'s rows in ``left``'s run order; the two files must hold the same runs."""
    left_ids, right_ids = list(left[left_id]), list(right[right_id])
    in_left, in_right = set(left_ids), set(right_ids)
    only_left = [r for r in left_ids if r not in in_right]
    only_right = [r for r in right_ids if r not in in_left]
    if only_left or only_right:
        parts = [
            f"{len(only)} only in {name} ({_shown(only)})"
            for only, name in ((only_left, names[0]), (only_right, names[1]))
            if only
        ]
        raise RunsLogError(f"the run ids of {names[0]} and {names[1]} differ: {'; '.join(parts)}")
    return right.set_index(right_id).loc[left_ids].reset_index()


def _numbers(values: pd.Series, ids: Sequence[str], column: str, source: str) -> np.ndarray:
    """Floats, NaN where the source leaves the cell empty; text that is not a number is refused."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = (numbers.isna() & values.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise RunsLogError(
            f"{source}: run {ids[row]}: column {column!r} holds {values.iloc[row]!r}, not a number"
        )
    return numbers.to_numpy(dtype=float)


def _names(
    selected: list[tuple[str, str]],
    renames: Mapping[str, str],
    used: set[str],
    what: str,
    source: str,
) -> list[str]:
    """The log's name for each selected column: renamed (by the name the pattern gave, raw or
    made safe), else made safe; two columns may not give one name."""
    names, seen = [], {}
    for column, raw in selected:
        if raw in renames:
            name, key = renames[raw], raw
        else:
            try:
                name = safe_name(raw)
            except RunsLogError as err:
                raise RunsLogError(f"{source}: column {column!r}: {err}; --rename it") from err
            key = name if name in renames else None
            name = renames.get(name, name)
        if key is not None:
            used.add(key)
        if name in seen:
            raise RunsLogError(
                f"{source}: columns {seen[name]!r} and {column!r} both give the {what} {name!r}; "
                "--rename one"
            )
        seen[name] = column
        names.append(name)
    return names


def _weights(
    W: np.ndarray, ids: Sequence[str], names: list[str], source: str, normalise: bool, notes: list
) -> np.ndarray:  # noqa: N803
    """Weights as the log holds them: raw amounts (token counts, percentages) divided by each
    run's sum, with a note, when ``normalise``; every weight must be a number >= 0 for that.
    Without ``normalise``, validation checks them (each run sums to 1 within its tolerance)."""
    if not normalise:
        return W
    try:
        check_mixtures(
            W, labels=[f"run {r}" for r in ids], columns=[WEIGHT_PREFIX + n for n in names]
        )
    except MixsurrogateError as err:
        raise RunsLogError(f"{source}: {err}") from err
    sums = W.sum(axis=1)
    off = np.abs(sums - 1) > SUM_TOLERANCE
    if not off.any():
        return W
    if (sums <= 0).any():
        raise RunsLogError(f"{source}: run {ids[int(np.argmax(sums <= 0))]}: every weight is 0")
    notes.append(
        f"the weights of {int(off.sum())} of {len(W)} runs did not sum to 1 (sums "
        f"{sums[off].min():.4g} to {sums[off].max():.4g}): each run's weights were divided by "
        "their sum"
    )
    return W / sums[:, None]


def _lower_is_better(values: np.ndarray, name: str, column: str, source: str) -> tuple:
    """A higher-is-better metric as an error rate: (values, transform)."""
    seen = values[~np.isnan(values)]
    if seen.size == 0 or (seen.min() >= 0 and seen.max() <= 1):
        return 1 - values, "1 - value"
    if seen.min() >= 0 and seen.max() <= 100:
        return 1 - values / 100, "1 - value/100"
    raise RunsLogError(
        f"{source}: {column!r} (set {name}) runs from {seen.min():g} to {seen.max():g}: a "
        "higher-is-better metric must be a fraction in [0, 1] or a percentage in [0, 100] to "
        "become a loss; convert it before import"
    )


def _assemble(
    ids: pd.Series,
    weight_table: pd.DataFrame,
    weight_cols: list[tuple[str, str]],
    loss_table: pd.DataFrame,
    loss_cols: list[tuple[str, str]],
    *,
    fmt: str,
    files: Sequence[str | Path],
    renames: Mapping[str, str] | None,
    units: str,
    higher_is_better: Sequence[str],
    normalise: bool,
) -> ImportedLog:
    """The runs log from selected (column, name) pairs of row-aligned tables, and its metadata."""
    source = " + ".join(str(f) for f in files)
    if units not in LOSS_UNITS:
        raise MixsurrogateError(f"units {units!r}: choose from {', '.join(LOSS_UNITS)}")
    overlap = {c for c, _ in weight_cols} & {c for c, _ in loss_cols}
    if weight_table is loss_table and overlap:
        raise RunsLogError(f"{source}: {_shown(sorted(overlap))} match both --weights and --losses")
    renames = dict(renames or {})
    used: set[str] = set()
    domains = _names(weight_cols, renames, used, "domain", source)
    targets = _names(loss_cols, renames, used, "evaluation set", source)
    unused = [old for old in renames if old not in used]
    if unused:
        raise MixsurrogateError(
            f"--rename {unused[0]}: no domain or set is called {unused[0]!r}; the names are "
            f"{_shown([*domains, *targets], 8)}"
        )
    run_ids = [str(r) for r in ids]
    notes: list[str] = []
    W = np.column_stack(  # noqa: N806
        [_numbers(weight_table[c], run_ids, c, source) for c, _ in weight_cols]
    )
    W = _weights(W, run_ids, domains, source, normalise, notes)  # noqa: N806

    converted = _converted(loss_cols, targets, higher_is_better)
    columns = {"run_id": run_ids}
    columns.update({WEIGHT_PREFIX + d: W[:, j] for j, d in enumerate(domains)})
    target_meta: dict[str, dict] = {}
    transforms: dict[str, list[str]] = {}
    for (column, _), name in zip(loss_cols, targets, strict=True):
        values = _numbers(loss_table[column], run_ids, column, source)
        meta = {"units": units, "source_column": column, "source_direction": "lower"}
        if name in converted:
            values, transform = _lower_is_better(values, name, column, source)
            meta.update(units=transform, source_direction="higher", transform=transform)
            transforms.setdefault(transform, []).append(name)
        columns[LOSS_PREFIX + name] = values
        target_meta[name] = {**meta, "direction": "lower"}
    for transform, names in transforms.items():
        why = " (values above 1: read as percentages)" if transform.endswith("/100") else ""
        notes.append(
            f"higher-is-better metrics imported as {transform}{why}, lower is better: "
            f"{_shown(names)}"
        )
    missing = sum(int(np.isnan(columns[LOSS_PREFIX + t]).sum()) for t in targets)
    if missing:
        cells = "1 loss cell is" if missing == 1 else f"{missing} loss cells are"
        notes.append(f"{cells} empty or NaN in the source: kept missing (not evaluated)")
    log = RunsLog(validate_frame(pd.DataFrame(columns), source=source))
    metadata = LogMetadata(
        units=units,
        targets=target_meta,
        source={"format": fmt, "files": [str(f) for f in files]},
        notes=notes,
    )
    return ImportedLog(log, metadata)


def _converted(
    loss_cols: list[tuple[str, str]], targets: list[str], patterns: Sequence[str]
) -> set[str]:
    """The sets that ``patterns`` mark higher-is-better (by source column or by set name)."""
    converted: set[str] = set()
    for pattern in patterns:
        regex = _pattern(pattern)
        hits = {
            name
            for (column, _), name in zip(loss_cols, targets, strict=True)
            if regex.fullmatch(column) or regex.fullmatch(name)
        }
        if not hits:
            raise MixsurrogateError(
                f"--higher-is-better {pattern!r} matches none of the imported metrics: "
                f"{_shown([c for c, _ in loss_cols], 8)}"
            )
        converted |= hits
    return converted


def _regmix_columns(table: pd.DataFrame, path: str | Path, pattern: str) -> list[tuple[str, str]]:
    """One RegMix file's (column, name) pairs, of either kind: released (snake-case columns
    matching ``pattern``) or the 1000-run files' display names (:data:`PILE_DISPLAY_NAMES`)."""
    columns = [c for c in table.columns if c != "index"]
    released = _matches(columns, pattern)
    if released:
        return released
    names = [_PILE_BY_KEY.get(_display_key(c)) for c in columns]
    unknown = [c for c, name in zip(columns, names, strict=True) if name is None]
    if columns and not unknown:
        return list(zip(columns, names, strict=True))
    what = f"{_shown(unknown)} is not one of" if unknown else "no column holds"
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
    mixture, _ = _read_csv(mixture_csv, ["index"], hint)
    losses, _ = _read_csv(loss_csv, ["index"], hint)
    losses = _aligned(mixture, "index", losses, "index", (str(mixture_csv), str(loss_csv)))
    return _assemble(
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
    )


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
) -> ImportedLog:
    """Olmix's ``ratios.csv`` (one column per domain) and ``metrics.csv`` (one per metric, bits
    per byte by default) joined on ``run`` or ``run_id`` (or ``run_id``, the column both share).
    Every column but the id and ``name`` is a domain or a metric unless ``weights``/``losses``
    choose. The two files must hold the same runs."""
    id_columns = [run_id] if run_id else list(OLMIX_ID_COLUMNS)
    hint = "name it with --run-id COLUMN"
    ratios, ratios_id = _read_csv(ratios_csv, id_columns, hint)
    metrics, metrics_id = _read_csv(metrics_csv, id_columns, hint)
    metrics = _aligned(ratios, ratios_id, metrics, metrics_id, (str(ratios_csv), str(metrics_csv)))
    weight_cols = match_columns(
        ratios.columns, weights or ("*",), "--weights", str(ratios_csv),
        exclude=(ratios_id, OLMIX_LABEL_COLUMN),
    )  # fmt: skip
    loss_cols = match_columns(
        metrics.columns, losses or ("*",), "--losses", str(metrics_csv),
        exclude=(metrics_id, OLMIX_LABEL_COLUMN),
    )  # fmt: skip
    return _assemble(
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
        normalise=True,
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
) -> ImportedLog:
    """Any CSV with one row per run: weight and loss columns chosen by glob ``patterns`` whose
    ``*`` is the domain or set name; the run id from ``run_id`` or the first of
    :data:`RUN_ID_COLUMNS` present."""
    return _from_table(path, "csv", weights, losses, run_id, renames, units, higher_is_better)


def from_wandb(
    path: str | Path,
    *,
    weights: Sequence[str] = (),
    losses: Sequence[str] = (),
    run_id: str | None = None,
    renames: Mapping[str, str] | None = None,
    units: str = "nats",
    higher_is_better: Sequence[str] = (),
) -> ImportedLog:
    """A W&B runs-table CSV export: ``weights='config.mix.*'``, ``losses='summary.eval/*/loss'``
    (the ``*`` is the name); the run id from ``run_id`` or the first of ``run_id``, ``run``,
    ``ID``, ``id``, ``Name``, ``name`` present. Raw amounts (token counts) are normalised."""
    return _from_table(path, "wandb", weights, losses, run_id, renames, units, higher_is_better)


def _from_table(path, fmt, weights, losses, run_id, renames, units, higher_is_better):
    if not weights or not losses:
        raise MixsurrogateError(f"--format {fmt} needs --weights PATTERN and --losses PATTERN")
    id_columns = [run_id] if run_id else list(RUN_ID_COLUMNS)
    table, id_column = _read_csv(path, id_columns, "name it with --run-id COLUMN")
    return _assemble(
        table[id_column],
        table,
        match_columns(table.columns, weights, "--weights", str(path), exclude=(id_column,)),
        table,
        match_columns(table.columns, losses, "--losses", str(path), exclude=(id_column,)),
        fmt=fmt,
        files=[path],
        renames=renames,
        units=units,
        higher_is_better=higher_is_better,
        normalise=True,
    )


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
    given = {"weights": tuple(weights), "losses": tuple(losses), "run_id": run_id}
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


def write_import(imported: ImportedLog, out: str | Path) -> Path:
    """Write the log (CSV or JSONL by ``out``'s suffix) and its metadata sidecar, each atomically
    and both under the log's lock; returns the sidecar's path."""
    path = Path(out)
    text = frame_to_text(imported.log.frame, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with log_lock(path):
        atomic_write_text(path, text)
        return save_log_metadata(path, imported.metadata)
