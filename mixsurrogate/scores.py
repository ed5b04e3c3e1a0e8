"""Deprecated import path: the score store is :mod:`mixsurrogate.mde.store` now.

Kept for one release so code that imported ``mixsurrogate.scores`` (``write_scores``,
``load_scores``, ``ScoreStore``) keeps working, with a warning that says where to go.
"""

from __future__ import annotations

import warnings

from .mde.store import EvalSetScores, ScoreStore, load_scores, write_scores

warnings.warn(
    "mixsurrogate.scores moved to mixsurrogate.mde.store; the old path goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["EvalSetScores", "ScoreStore", "load_scores", "write_scores"]
