"""Which runs each fit sees and which it is scored on: k-fold, learning-curve draws, and the
runs left out of scoring (kept for fitting).

A split is drawn over the *scored* runs only; every unscored run is in every training set. So
single-domain vertex runs, which are what data experts already are (MDE is exact there), can
inform every fit without ever flattering a score.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedKFold

from ..errors import MixsurrogateError
from ..runs.fidelity import parse_size
from ..runs.log import RunsLog


@dataclass(frozen=True)
class Split:
    """Rows to fit on and rows to score; ``key`` names the split within its protocol."""

    key: tuple  # (protocol, ...): ("cv", repeat, fold), ("curve", size, draw), ("test", label)
    train: np.ndarray
    test: np.ndarray


def scored_mask(n: int, scored: np.ndarray | None) -> np.ndarray:
    """The boolean mask of the rows to score (all when ``scored`` is None)."""
    mask = np.ones(n, bool) if scored is None else np.asarray(scored, bool)
    if mask.shape != (n,):
        raise ValueError(f"scored mask has shape {mask.shape}, expected ({n},)")
    return mask


def cv_splits(
    n_rows: int, folds: int, repeats: int = 1, seed: int = 0, scored: np.ndarray | None = None
) -> list[Split]:
    """Repeated k-fold over the scored rows; unscored rows are in every training set."""
    mask = scored_mask(n_rows, scored)
    scored_idx, always = np.flatnonzero(mask), np.flatnonzero(~mask)
    if folds < 2 or folds > len(scored_idx):
        raise MixsurrogateError(
            f"--folds must be between 2 and the number of scored runs ({len(scored_idx)}), "
            f"got {folds}"
        )
    if repeats < 1:
        raise MixsurrogateError(f"--repeats must be >= 1, got {repeats}")
    kfold = RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    splits = []
    for i, (tr, te) in enumerate(kfold.split(scored_idx)):
        train = np.sort(np.concatenate([scored_idx[tr], always]))
        splits.append(Split(("cv", i // folds, i % folds), train, scored_idx[te]))
    return splits


def curve_splits(
    n_rows: int,
    sizes: Sequence[int],
    draws: int,
    seed: int = 0,
    scored: np.ndarray | None = None,
    test_rows: int | None = None,
) -> tuple[list[Split], list[str]]:
    """``draws`` random subsets of each size of the scored rows (plus every unscored row).

    Without a test log (``test_rows`` None) each draw is scored on the scored rows it did not
    train on, so a size needs at least 3 of them left. Returns the splits and one line per
    size that had to be left out, saying why.
    """
    mask = scored_mask(n_rows, scored)
    pool, always = np.flatnonzero(mask), np.flatnonzero(~mask)
    rng = np.random.default_rng(seed)
    splits, dropped = [], []
    limit = len(pool) if test_rows is not None else len(pool) - 3
    for n in sizes:
        if n < 1 or n > limit:
            dropped.append(f"size {n}: needs 1..{limit} runs to draw from {len(pool)}")
            continue
        for d in range(draws):
            if n == len(pool) and d > 0:
                break  # every draw of the whole pool is the same set
            idx = np.sort(rng.choice(pool, n, replace=False))
            train = np.sort(np.concatenate([idx, always]))
            test = np.arange(test_rows) if test_rows is not None else np.setdiff1d(pool, idx)
            splits.append(Split(("curve", n, d), train, test))
    return splits, dropped


def scoring_mask(log: RunsLog, only: Sequence[str] = (), exclude: Sequence[str] = ()) -> np.ndarray:
    """Rows to score: run ids matching any ``only`` glob (default all), minus ``exclude`` globs.

    Rows left out are still fitted on (e.g. ``--exclude-scoring 'vertex-*'``: single-domain
    runs are what data experts already are, so MDE is exact there and they would flatter it).
    """
    ids = pd.Series(log.run_ids, dtype=str)
    mask = np.ones(len(ids), bool)
    for label, patterns in (("--score-only", only), ("--exclude-scoring", exclude)):
        for pattern in patterns:
            if not fnmatch_any(ids, pattern).any():
                raise MixsurrogateError(f"{label} {pattern!r} matches no run id")
    if only:
        mask = np.logical_or.reduce([fnmatch_any(ids, p) for p in only])
    for pattern in exclude:
        mask &= ~fnmatch_any(ids, pattern)
    if mask.sum() < 3:
        raise MixsurrogateError(f"only {int(mask.sum())} run(s) left to score; need at least 3")
    return mask


def fnmatch_any(ids: pd.Series, pattern: str) -> np.ndarray:
    """Which run ids match a shell-style pattern (``vertex-*``)."""
    return np.array([fnmatchcase(i, pattern) for i in ids], bool)


# --- where-splits: fit on runs matching one condition, score on runs matching another ----------

#: comparison operators of a where-expression, longest first so "<=" is not read as "<"
WHERE_OPERATORS = ("<=", ">=", "==", "!=", "<", ">")
_WHERE_CLAUSE = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_:.\-]*)\s*(<=|>=|==|!=|<|>)\s*([^\s<>=!&]+)\s*$"
)
_WHERE_AND = re.compile(r"\s+and\s+|\s*&&?\s*", re.IGNORECASE)


def parse_where(expr: str, option: str = "--where") -> list[tuple[str, str, float]]:
    """``params<1e8 and tokens>=1B`` -> [(column, operator, number), ...].

    A deliberately small grammar (column, comparison, number; clauses joined by ``and`` or
    ``&``), parsed here rather than by ``DataFrame.query``, whose python engine evaluates
    arbitrary code. Numbers may carry a size suffix (``100M``, ``1.2B``).
    """
    text = str(expr).strip()
    if not text:
        raise MixsurrogateError(f"{option}: empty expression")
    clauses = []
    for part in _WHERE_AND.split(text):
        match = _WHERE_CLAUSE.match(part)
        if not match:
            raise MixsurrogateError(
                f"{option} {expr!r}: cannot read {part.strip()!r}; write COLUMN OP NUMBER "
                f"(OP one of {' '.join(WHERE_OPERATORS)}), clauses joined by 'and', "
                "e.g. 'params<1e8 and tokens>=1B'"
            )
        column, op, value = match.groups()
        number = _where_number(value, option, expr)
        clauses.append((column, op, number))
    return clauses


def _where_number(value: str, option: str, expr: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_size(value, "number")
    except MixsurrogateError as err:
        raise MixsurrogateError(f"{option} {expr!r}: {err}") from err


def where_mask(log: RunsLog, expr: str, option: str = "--where") -> np.ndarray:
    """Rows of ``log`` matching every clause of a where-expression (NaN never matches)."""
    ops = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
           "==": operator.eq, "!=": operator.ne}  # fmt: skip
    mask = np.ones(len(log), bool)
    for column, op, number in parse_where(expr, option):
        if column not in log.frame.columns:
            raise MixsurrogateError(
                f"{option}: the runs log has no column {column!r} "
                f"(it has {', '.join(map(str, log.frame.columns[:12]))}"
                f"{', ...' if len(log.frame.columns) > 12 else ''})"
            )
        values = pd.to_numeric(log.frame[column], errors="coerce").to_numpy(dtype=float)
        if np.isnan(values).all():
            raise MixsurrogateError(f"{option}: column {column!r} holds no numbers")
        with np.errstate(invalid="ignore"):
            mask &= ops[op](values, number) & ~np.isnan(values)
    return mask


def where_split(
    log: RunsLog, train_where: str, test_where: str, scored: np.ndarray | None = None
) -> Split:
    """Fit on the runs matching ``train_where``, score on the (scored) runs matching
    ``test_where``; a run matching both is refused (it would be scored on its own fit)."""
    train = where_mask(log, train_where, "--train-where")
    test = where_mask(log, test_where, "--test-where") & scored_mask(len(log), scored)
    both = int((train & test).sum())
    if both:
        raise MixsurrogateError(
            f"{both} run(s) match both --train-where {train_where!r} and --test-where "
            f"{test_where!r}; a run cannot be fitted on and scored"
        )
    if not train.any():
        raise MixsurrogateError(f"--train-where {train_where!r} matches no run")
    if test.sum() < 3:
        raise MixsurrogateError(
            f"--test-where {test_where!r} matches {int(test.sum())} run(s) to score; need at "
            "least 3"
        )
    label = f"{train_where} -> {test_where}"  # protocol "test": one explicit train/test split
    return Split(("test", label), np.flatnonzero(train), np.flatnonzero(test))
