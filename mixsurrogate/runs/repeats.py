"""Repeated runs: rows of a runs log that train one mixture again (other seeds).

Rows whose weights agree to ``REPEAT_DECIMALS`` decimals are one mixture. The spread of a
repeated mixture's losses is seed noise: ``evaluation.noise`` pools it, ``mixsurrogate noise``
reports it per set, and the ``gp-hetero`` predictor models it as a function of the mixture.
"""

from __future__ import annotations

import numpy as np

#: weights equal to this many decimals are one mixture
REPEAT_DECIMALS = 4


def mixture_groups(W: np.ndarray) -> list[list[int]]:  # noqa: N803
    """Rows of each distinct mixture, in the order of first appearance, repeated or not."""
    groups: dict[tuple, list[int]] = {}
    for row, w in enumerate(np.asarray(W, dtype=float)):
        groups.setdefault(tuple(np.round(w, REPEAT_DECIMALS)), []).append(row)
    return list(groups.values())


def repeat_groups(W: np.ndarray) -> list[list[int]]:  # noqa: N803
    """Rows of each mixture trained more than once (possibly none)."""
    return [rows for rows in mixture_groups(W) if len(rows) > 1]
