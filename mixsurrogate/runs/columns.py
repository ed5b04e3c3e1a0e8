"""The format-independent half of ``runs import``: foreign tables into a runs log and its metadata.

:mod:`mixsurrogate.runs.importers` reads each format and picks its columns; this module does the rest
for all of them: reading a CSV with a run-id column, matching columns by glob, naming them by the
runs log's rules (:func:`safe_name`, then ``renames``), checking the weights (each run's must sum
to 1 within round-off, unless raw amounts such as token counts are to be divided by their sum,
asked for explicitly), refusing a metric column on mixed scales, turning higher-is-better metrics into
lower-is-better columns, and returning an :class:`ImportedLog`: a validated
:class:`~mixsurrogate.runs.log.RunsLog` and the :class:`~mixsurrogate.runs.metadata.LogMetadata` that says what
its numbers are (units, direction, source columns, notes).

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

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import MixsurrogateError, RunsLogError
from ..simplex import SUM_TOLERANCE, check_mixtures
from .log import (
    LOSS_PREFIX,
    WEIGHT_PREFIX,
    RunsLog,
    check_unique_columns,
    read_csv_header,
    validate_frame,
)
from .metadata import LOSS_UNITS, LogMetadata, metadata_path

SHOWN = 5  # names an error lists before "..."
#: how an error on weights that do not sum to 1 ends, for the formats that can normalise
NORMALISE_HINT = "if they are raw amounts such as token counts, import with --normalize-weights"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


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


def shown(items, n: int = SHOWN) -> str:
    """The first ``n`` of ``items`` as text for an error line, and how many more there are."""
    items = [str(i) for i in items]
    more = f", ... ({len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _pattern(pattern: str) -> re.Pattern:
    """A column glob: ``*`` (the only wildcard) matches any text, which becomes the name."""
    return re.compile("(.*)".join(re.escape(part) for part in pattern.split("*")))


def matches(columns: Sequence[str], pattern: str) -> list[tuple[str, str]]:
    """(column, name) for each of ``columns`` the glob matches; the name is what ``*`` matched."""
    regex = _pattern(pattern)
    hits = []
    for column in columns:
        found = regex.fullmatch(column)
        if found:
            hits.append((column, "_".join(found.groups()) if found.groups() else column))
    return hits


def nearest(columns: Sequence[str], pattern: str) -> list[str]:
    """``columns`` by how much of ``pattern``'s text before its first ``*`` each starts with,
    most first (ties in file order): a W&B export starts with a dozen columns of its own
    (``Name``, ``State``, ``Tags``, ...), and an error should show ``config.mix.web`` for
    ``config.mixture.*``, not those."""
    literal = pattern.split("*", 1)[0]
    return sorted(columns, key=lambda c: -len(os.path.commonprefix([c, literal])))


def match_columns(
    columns: Sequence[str],
    patterns: Sequence[str],
    option: str,
    source: str,
    exclude: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """(column, name) for each column one of ``patterns`` matches, in the file's order.

    The name is what the pattern's ``*`` matched (several ``*``: their matches joined by ``_``),
    or the whole column for a pattern without one. Columns with an empty header (a saved index)
    are never chosen. A pattern that matches nothing is an error that lists some of the columns
    there are.
    """
    excluded = set(exclude)
    candidates = [str(c) for c in columns if str(c) not in excluded and not unnamed(c)]
    chosen: dict[str, str] = {}
    for pattern in patterns:
        hits = matches(candidates, pattern)
        if not hits:
            raise RunsLogError(
                f"{source}: {option} {pattern!r} matches no column; the nearest: "
                f"{shown(nearest(candidates, pattern), 8)}"
            )
        for column, name in hits:
            chosen.setdefault(column, name)
    return [(c, chosen[c]) for c in candidates if c in chosen]


def unnamed(column: str) -> bool:
    """Whether a column's header is empty: a saved pandas index (``df.to_csv()`` writes its index
    under an empty header), never a domain or a metric."""
    return not str(column).strip()


def read_csv(path: str | Path, id_columns: Sequence[str], hint: str) -> tuple[pd.DataFrame, str]:
    """A foreign CSV and its run-id column (the first of ``id_columns`` it has), ids as text.

    The columns keep the header's names as written (read with the csv module): a column named
    twice is refused, since pandas would rename one (``web.1``) into a domain of its own, and an
    empty header stays empty (not pandas' ``Unnamed: 0``), so that :func:`match_columns` skips it.
    Pandas' default missing spellings (empty, ``NaN``, ``NA``, ``null``, ...) read as missing:
    in a foreign file they mean "not evaluated". A missing or repeated run id is refused.
    """
    path = Path(path)
    try:
        header = read_csv_header(path)
    except (OSError, UnicodeDecodeError) as err:
        raise RunsLogError(f"{path}: cannot read ({err})") from err
    check_unique_columns(header, str(path))
    id_column = next((c for c in id_columns if c in header), None)
    if id_column is None:
        wanted = " or ".join(repr(c) for c in id_columns)
        raise RunsLogError(f"{path}: no {wanted} column ({hint}); its columns: {shown(header, 8)}")
    try:
        table = pd.read_csv(path, dtype={id_column: str})
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise RunsLogError(f"{path}: cannot parse as CSV ({err})") from err
    if len(table.columns) != len(header):
        raise RunsLogError(f"{path}: the header and the rows disagree on the number of columns")
    table.columns = header
    ids = table[id_column]
    if ids.isna().any():
        line = int(np.flatnonzero(ids.isna().to_numpy())[0]) + 2  # the header is line 1
        raise RunsLogError(f"{path}: line {line}: the run id ({id_column}) is missing")
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        raise RunsLogError(
            f"{path}: run id {shown(repeated)} appears more than once in column {id_column!r} "
            f"({hint})"
        )
    return table, id_column


def aligned(
    left: pd.DataFrame, left_id: str, right: pd.DataFrame, right_id: str, names: tuple[str, str]
) -> pd.DataFrame:
    """``right``'s rows in ``left``'s run order; the two files must hold the same runs."""
    left_ids, right_ids = list(left[left_id]), list(right[right_id])
    in_left, in_right = set(left_ids), set(right_ids)
    only_left = [r for r in left_ids if r not in in_right]
    only_right = [r for r in right_ids if r not in in_left]
    if only_left or only_right:
        parts = [
            f"{len(only)} only in {name} ({shown(only)})"
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
    W: np.ndarray,  # noqa: N803
    ids: Sequence[str],
    names: list[str],
    source: str,
    normalise: bool,
    hint: str,
    notes: list,
) -> np.ndarray:
    """Weights as the log holds them. Every weight must be a number >= 0. A run whose weights
    sum to 1 within round-off (:data:`SUM_TOLERANCE`) is kept (validation divides out the
    round-off); any other sum is refused unless ``normalise`` (raw amounts, such as token counts,
    asked for explicitly): then each run's weights are divided by their sum, with a note. Never
    silently: a sum far from 1 is as often a column that is not a domain (a saved index) as a
    token count."""
    labels = [f"run {r}" for r in ids]
    try:
        check_mixtures(W, labels=labels, columns=[WEIGHT_PREFIX + n for n in names])
    except MixsurrogateError as err:
        raise RunsLogError(f"{source}: {err}") from err
    sums = W.sum(axis=1)
    off = np.abs(sums - 1) > SUM_TOLERANCE
    if not off.any():
        return W
    first = int(np.argmax(off))
    if not normalise:
        raise RunsLogError(
            f"{source}: run {ids[first]}: weights ({shown(names)}) sum to {sums[first]:.4g}, not 1 "
            f"({int(off.sum())} of {len(W)} runs are off by more than {SUM_TOLERANCE:g}); {hint}"
        )
    if (sums <= 0).any():
        raise RunsLogError(f"{source}: run {ids[int(np.argmax(sums <= 0))]}: every weight is 0")
    notes.append(
        f"the weights of {int(off.sum())} of {len(W)} runs did not sum to 1 (sums "
        f"{sums[off].min():.4g} to {sums[off].max():.4g}): each run's weights were divided by "
        "their sum (--normalize-weights)"
    )
    return W / sums[:, None]


def _lower_is_better(values: np.ndarray, name: str, column: str, source: str) -> tuple:
    """A higher-is-better metric as an error rate: (values, transform).

    One scale per column: fractions (all in [0, 1]) or percentages (all in [0, 100], some
    above 1). A column that holds values above 1 and others strictly between 0 and 1 (45 and
    0.31) mixes the two: no transform fits both, and guessing one would turn 0.31 (31%) into
    an error rate of 0.9969, so it is refused.
    """
    seen = values[~np.isnan(values)]
    if seen.size == 0 or (seen.min() >= 0 and seen.max() <= 1):
        return 1 - values, "1 - value"
    if seen.min() >= 0 and seen.max() <= 100:
        fractions = seen[(seen > 0) & (seen < 1)]
        if fractions.size:
            above = shown([f"{v:g}" for v in seen[seen > 1]], 3)
            below = shown([f"{v:g}" for v in fractions], 3)
            raise RunsLogError(
                f"{source}: {column!r} (set {name}) mixes scales: values above 1 ({above}: "
                f"percentages?) and between 0 and 1 ({below}: fractions?); put the column on one "
                "scale before import"
            )
        return 1 - values / 100, "1 - value/100"
    raise RunsLogError(
        f"{source}: {column!r} (set {name}) runs from {seen.min():g} to {seen.max():g}: a "
        "higher-is-better metric must be a fraction in [0, 1] or a percentage in [0, 100] to "
        "become a loss; convert it before import"
    )


def assemble(
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
    sum_hint: str = NORMALISE_HINT,
    notes: Sequence[str] = (),
    extra_columns: Mapping[str, np.ndarray] | None = None,
) -> ImportedLog:
    """The runs log from selected (column, name) pairs of row-aligned tables, and its metadata
    (``sum_hint`` ends the error for weights that do not sum to 1; ``notes``: the importer's
    own, such as columns it skipped, before this function's; ``extra_columns``: log columns
    carried through as they are, e.g. a schedule's ``w@<p>:``/``share@<p>``)."""
    source = " + ".join(str(f) for f in files)
    if units not in LOSS_UNITS:
        raise MixsurrogateError(f"units {units!r}: choose from {', '.join(LOSS_UNITS)}")
    overlap = {c for c, _ in weight_cols} & {c for c, _ in loss_cols}
    if weight_table is loss_table and overlap:
        raise RunsLogError(f"{source}: {shown(sorted(overlap))} match both --weights and --losses")
    renames = dict(renames or {})
    used: set[str] = set()
    domains = _names(weight_cols, renames, used, "domain", source)
    targets = _names(loss_cols, renames, used, "evaluation set", source)
    unused = [old for old in renames if old not in used]
    if unused:
        raise MixsurrogateError(
            f"--rename {unused[0]}: no domain or set is called {unused[0]!r}; the names are "
            f"{shown([*domains, *targets], 8)}"
        )
    run_ids = [str(r) for r in ids]
    notes = list(notes)
    W = np.column_stack(  # noqa: N806
        [_numbers(weight_table[c], run_ids, c, source) for c, _ in weight_cols]
    )
    W = _weights(W, run_ids, domains, source, normalise, sum_hint, notes)  # noqa: N806

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
            f"{shown(names)}"
        )
    missing = sum(int(np.isnan(columns[LOSS_PREFIX + t]).sum()) for t in targets)
    if missing:
        cells = "1 loss cell is" if missing == 1 else f"{missing} loss cells are"
        notes.append(f"{cells} empty or NaN in the source: kept missing (not evaluated)")
    columns.update(extra_columns or {})
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
                f"{shown([c for c, _ in loss_cols], 8)}"
            )
        converted |= hits
    return converted
