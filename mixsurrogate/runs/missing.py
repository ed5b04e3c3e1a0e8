"""Empty weight cells: runs logged before a domain was added to the log.

When a new training domain joins a log, the runs trained before it have no ``w:<new>`` value
(an empty CSV cell, a JSON ``null`` or a missing key). They did train with none of it, so 0 is
the right weight, but an empty cell can also be a mistake (a lost value), and reading a mistake as
0 would fit every predictor on a wrong mixture with exit 0. So reading refuses empty weight cells
unless the caller says that they mean 0 (``missing_domains='zero'``, ``--missing-domains zero``);
the writers keep them empty (``'keep'``), so appending a run to such a log never turns the
user's empty cells into numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import RunsLogError

#: what an empty weight cell means: an error (default), weight 0 (the user says so), or left
#: empty (the log writers: they check the row and write the cell back as it was)
MISSING_DOMAINS = ("refuse", "zero", "keep")
MISSING_DOMAINS_OPTION = "--missing-domains zero"


def empty_cells(column: pd.Series) -> pd.Series:
    """Empty cells: NaN or None in memory (an empty CSV cell, a JSON null), or blank text.

    Text such as ``'NaN'`` or ``'inf'`` is not missing: it is a value, and a bad one.
    """
    blank = column.map(lambda v: isinstance(v, str) and not v.strip())
    return column.isna() | blank.astype(bool)


def check_policy(missing_domains: str) -> None:
    if missing_domains not in MISSING_DOMAINS:
        raise RunsLogError(
            f"unknown missing-domains policy {missing_domains!r}; choose one of "
            + ", ".join(MISSING_DOMAINS)
        )


def fill_missing_weights(
    frame: pd.DataFrame, weight_cols: list[str], source: str, missing_domains: str
) -> tuple[np.ndarray, np.ndarray]:
    """The weights as floats with empty cells read as 0, and where the empty cells were.

    Refuses (``'refuse'``) with one line naming the runs, the columns and the option. A cell
    holding text that is not a number is not empty: it stays NaN here and the mixture check
    refuses it whatever the policy.
    """
    check_policy(missing_domains)
    raw = frame[weight_cols]
    empty = raw.apply(empty_cells).to_numpy(dtype=bool)
    weights = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, copy=True)
    if empty.any() and missing_domains == "refuse":
        rows = np.flatnonzero(empty.any(axis=1))
        columns = [c for c, e in zip(weight_cols, empty.any(axis=0), strict=True) if e]
        first = frame["run_id"].iloc[rows[0]]
        raise RunsLogError(
            f"{source}: {len(rows)} run(s) (first: {first}) have no weight for "
            f"{', '.join(columns)} (empty cell); if they were trained before that domain was "
            f"added, pass {MISSING_DOMAINS_OPTION} to read the empty cells as weight 0"
        )
    weights[empty] = 0.0
    return weights, empty
