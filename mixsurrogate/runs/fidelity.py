"""Fidelity of a run: model size and training tokens, their cost, and the menu a search picks from.

A run's fidelity is the pair (``params``, ``tokens``) logged in the runs log. Multi-fidelity
surrogates take ``log10`` of these columns as inputs (``fidelity_features``), scale-transfer
evaluation splits on them, and multi-fidelity search chooses among a *menu* of fidelities
(``20M:0.4B,60M:1.2B,150M:3B``) to learn about one *target* fidelity (``1B:20B``), the scale
the mixture is for. Sizes are written with a suffix: K (1e3), M (1e6), B or G (1e9), T (1e12).

Intermediate checkpoints (``runs train --eval-every``) are rows of their own: same mixture and
model size, the tokens seen so far, run id ``<run>@<tokens>`` (``checkpoint_run_id``). Their
fidelity is (params, tokens seen): a free, lower-token observation of the same mixture, which a
multi-fidelity search uses as such but does not count as a run or as FLOPs spent (the run's
final row carries its whole cost). They are not short runs: their learning rate has not
decayed, so a checkpoint after t tokens reads higher than a run trained for t tokens; the
multi-fidelity GP's scale terms absorb a shift common to every mixture, not one that depends
on the mixture.

The target is usually larger than every menu item (that is the point: the target is too
expensive to search at); it is not required to be on the menu. What is refused is a menu item
larger than the target in model size or in tokens: a proxy run bigger than the run it stands
for is never cheaper information.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import MixsurrogateError
from .builtin import regmix_runs
from .log import RunsLog

#: runs-log columns that say a run's fidelity (``steps`` may be used instead of ``tokens``)
FIDELITY_COLUMNS = ("params", "tokens")
SUFFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]?)\s*$")

#: RegMix's public runs: 1M and 60M models on 1B tokens, 1B models on 25B tokens (Liu et al.
#: 2025, section 4: "256 unseen mixtures for 1M, 60M models (each trained with 1B tokens) and
#: 64 unseen mixtures for 1B models (each trained with 25B tokens)")
REGMIX_FIDELITY = {
    "train-1m": (1e6, 1e9),
    "test-1m": (1e6, 1e9),
    "test-60m": (6e7, 1e9),
    "test-1b": (1e9, 25e9),
}


def parse_size(text: str, what: str = "size") -> float:
    """``20M`` -> 2e7, ``1.2B`` -> 1.2e9, ``3e9`` -> 3e9; positive and finite, else one clear error."""
    match = _SIZE.match(str(text))
    suffix = match.group(2).upper() if match else ""
    if not match or suffix not in SUFFIXES:
        raise MixsurrogateError(
            f"bad {what} {text!r}: give a positive number with an optional suffix K, M, B (or G) "
            "or T, e.g. 20M or 1.2B"
        )
    value = float(match.group(1)) * SUFFIXES[suffix]
    if not (value > 0 and math.isfinite(value)):
        raise MixsurrogateError(f"bad {what} {text!r}: must be positive")
    return value


def format_size(value: float) -> str:
    """The shortest suffixed spelling: 2e7 -> ``20M``, 1.2e9 -> ``1.2B``."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:.4g}{suffix}"
    return f"{value:.4g}"


@dataclass(frozen=True, order=True)
class Fidelity:
    """A run's scale: model parameters and training tokens."""

    params: float
    tokens: float

    @classmethod
    def parse(cls, text: str) -> Fidelity:
        """``SIZE:TOKENS``, e.g. ``60M:1.2B``."""
        size, sep, tokens = str(text).partition(":")
        if not sep or not size.strip() or not tokens.strip():
            raise MixsurrogateError(
                f"bad fidelity {text!r}: give model size and tokens as SIZE:TOKENS, e.g. 60M:1.2B"
            )
        return cls(parse_size(size, "model size"), parse_size(tokens, "token count"))

    def __str__(self) -> str:
        return f"{format_size(self.params)}:{format_size(self.tokens)}"

    def features(self) -> np.ndarray:
        """The surrogate's inputs for this fidelity: log10 params, log10 tokens."""
        return np.log10([self.params, self.tokens])

    def covers(self, other: Fidelity) -> bool:
        """Whether this fidelity is at least as large as ``other`` in size and in tokens."""
        return self.params >= other.params and self.tokens >= other.tokens


@dataclass(frozen=True)
class CostModel:
    """Cost of one run in FLOPs: ``factor * params * tokens + overhead``.

    The default factor 6 is the usual training estimate (forward + backward, Kaplan et al.
    2020); ``overhead`` is a fixed cost per run (evaluation, start-up), 0 by default.
    """

    factor: float = 6.0
    overhead: float = 0.0

    def __post_init__(self) -> None:
        if not (self.factor > 0 and math.isfinite(self.factor)):
            raise MixsurrogateError(f"cost factor must be positive, got {self.factor}")
        if not (self.overhead >= 0 and math.isfinite(self.overhead)):
            raise MixsurrogateError(f"cost overhead must be >= 0, got {self.overhead}")

    def flops(self, fidelity: Fidelity) -> float:
        return self.factor * fidelity.params * fidelity.tokens + self.overhead


@dataclass(frozen=True)
class FidelityMenu:
    """The fidelities a search may train at, and the target fidelity it recommends for."""

    items: tuple[Fidelity, ...]
    target: Fidelity

    @classmethod
    def parse(cls, menu: str, target: str, include_target: bool = True) -> FidelityMenu:
        """``--fidelities 20M:0.4B,60M:1.2B --target 1B:20B``.

        With ``include_target`` the target itself is a choice too (a search may spend on it),
        appended if it is not already listed.
        """
        texts = [t for t in str(menu).split(",") if t.strip()]
        if not texts:
            raise MixsurrogateError("--fidelities needs at least one SIZE:TOKENS item")
        items = [Fidelity.parse(t.strip()) for t in texts]
        goal = Fidelity.parse(target)
        return cls.build(items, goal, include_target)

    @classmethod
    def build(
        cls, items: list[Fidelity], target: Fidelity, include_target: bool = True
    ) -> FidelityMenu:
        for item in items:
            if not target.covers(item):
                raise MixsurrogateError(
                    f"menu fidelity {item} is larger than the target {target} (in model size or "
                    "tokens); every menu item must be at most the target in both"
                )
        if len(set(items)) != len(items):
            raise MixsurrogateError("--fidelities lists a fidelity twice")
        if include_target and target not in items:
            items = [*items, target]
        return cls(tuple(sorted(items)), target)

    def costs(self, cost: CostModel) -> np.ndarray:
        return np.array([cost.flops(f) for f in self.items])


def checkpoint_run_id(run_id: str, tokens: int) -> str:
    """The run id of an intermediate checkpoint of ``run_id`` after ``tokens`` tokens."""
    return f"{run_id}@{int(tokens)}"


def is_checkpoint_row(run_id: str, tokens: object) -> bool:
    """Whether a row is an intermediate checkpoint: id ``<run>@<N>`` with ``tokens`` N."""
    base, sep, count = str(run_id).rpartition("@")
    if not (sep and base and count.isdigit()):
        return False
    return _positive(tokens) == int(count)


def checkpoint_mask(log: RunsLog) -> np.ndarray:
    """Which rows of ``log`` are intermediate checkpoints (bool per row; none without a
    ``tokens`` column)."""
    if "tokens" not in log.frame.columns:
        return np.zeros(len(log), dtype=bool)
    pairs = zip(log.run_ids, log.frame["tokens"], strict=True)
    return np.array([is_checkpoint_row(r, t) for r, t in pairs], dtype=bool)


def final_runs(log: RunsLog) -> tuple[RunsLog, str | None]:
    """The log without its intermediate checkpoint rows, and a note saying how many it left
    out (None if none).

    A checkpoint row is its run at a fraction of the budget: a fit of final losses that took it
    for one more run would pull the predictions at that mixture towards a higher loss, with
    exit 0. Only multi-fidelity search and predictors, which take ``tokens`` as an input, use
    them.
    """
    mask = checkpoint_mask(log)
    if not mask.any():
        return log, None
    note = (
        f"{int(mask.sum())} intermediate checkpoint row(s) (<run>@<tokens>, from runs train "
        "--eval-every) left out: a fit of final losses would read them as finished runs; "
        "propose --fidelities and the mfgp predictor use them at their tokens"
    )
    return log.subset(np.flatnonzero(~mask)), note


def budget_count(log: RunsLog, columns: tuple[str, ...] = FIDELITY_COLUMNS) -> int:
    """How many distinct budgets (``params``, ``tokens``) the log's runs were trained at; runs
    without these columns or cells count as one budget (unknown, taken as the same)."""
    present = [c for c in columns if c in log.frame.columns]
    if not present:
        return 1
    cells = log.frame[present].apply(pd.to_numeric, errors="coerce").dropna()
    return max(1, len(cells.drop_duplicates()))


def has_fidelity(log: RunsLog, columns: tuple[str, ...] = FIDELITY_COLUMNS) -> np.ndarray:
    """Which rows have every fidelity column as a positive finite number (bool per row); a
    pending ``runs train`` row has none until its run ends."""
    known = np.ones(len(log), dtype=bool)
    for col in columns:
        if col not in log.frame.columns:
            return np.zeros(len(log), dtype=bool)
        known &= np.isfinite([_positive(v) for v in log.frame[col]])
    return known


def fidelity_features(log: RunsLog, columns: tuple[str, ...] = FIDELITY_COLUMNS) -> np.ndarray:
    """log10 of each run's fidelity columns, shape (runs, columns), validated.

    A missing column, or a value that is not a positive finite number (0, negative, NaN,
    text), stops with one clear line naming the run.
    """
    columns = tuple(columns)
    if not columns:
        raise MixsurrogateError("no fidelity columns named")
    missing = [c for c in columns if c not in log.frame.columns]
    if missing:
        raise MixsurrogateError(
            f"the runs log has no {', '.join(map(repr, missing))} column: multi-fidelity "
            f"surrogates and scale-transfer splits need {', '.join(columns)} for every run"
        )
    out = np.empty((len(log), len(columns)))
    ids = log.run_ids
    for j, col in enumerate(columns):
        raw = log.frame[col]
        values = np.asarray(
            [_positive(v) for v in raw], dtype=float
        )  # NaN where not a positive number
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            row = int(bad[0])
            more = f" (and {len(bad) - 1} more run(s))" if len(bad) > 1 else ""
            raise MixsurrogateError(
                f"run {ids[row]}: {col} is {_shown(raw.iloc[row])}{more}; fidelity columns must be "
                "positive finite numbers"
            )
        out[:, j] = np.log10(values)
    return out


def _shown(value) -> str:
    """A cell as the user wrote it: 0, nan, 'big' (not np.float64(0.0))."""
    if isinstance(value, str):
        return repr(value)
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return repr(value)


def _positive(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if number > 0 and math.isfinite(number) else math.nan


def with_fidelity(log: RunsLog, params: float, tokens: float) -> RunsLog:
    """The same log with constant ``params`` and ``tokens`` columns (for logs that lack them)."""
    frame = log.frame.copy()
    frame["params"] = float(params)
    frame["tokens"] = float(tokens)
    return RunsLog(frame)


def regmix_all_scales() -> RunsLog:
    """Every public RegMix run (512 + 256 1M, 256 60M, 64 1B) in one log with its fidelity."""
    logs = []
    domains = None
    for split, (params, tokens) in REGMIX_FIDELITY.items():
        log = regmix_runs(split)
        domains = domains or log.domains
        logs.append(with_fidelity(log.with_domain_order(domains), params, tokens).frame)
    return RunsLog(pd.concat(logs, ignore_index=True))
