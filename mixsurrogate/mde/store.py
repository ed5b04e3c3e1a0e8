"""The score store: every data expert's log-probabilities on fixed evaluation sequences.

Layout of a store directory::

    manifest.json          format, tokenizer hash, sequence length, experts (domain order),
                           evaluation sets (kind 'val' or 'task', shape, counted tokens), eval_id,
                           provenance
    <eval_set>.logp.npy    float32 or float16 (experts, sequences, positions):
                           log p_expert(token_t | tokens_<t)
    <eval_set>.mask.npy    bool (sequences, positions): True where the token counts
                           (False for padding and for the prompt tokens of task items)
    <eval_set>.budget-<tokens>.logp.npy
                           optional, one per budget snapshot below the full budget: the same
                           log-probabilities from each expert's snapshot at ``tokens`` training
                           tokens (``experts train --checkpoints``); the manifest's ``budgets``
                           lists every budget, ascending, the last the full one (fraction 1,
                           whose arrays are ``<eval_set>.logp.npy``). A store without
                           ``budgets`` is a plain store (budget-matched MDE refuses it).

Arrays are plain ``.npy`` read with ``allow_pickle=False``, so a store handed in by a user can
never run code. This module is numpy-only: the surrogate side reads stores without torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import ScoreStoreError
from ..files import MANIFEST_FILE, atomic_folder, escapes, read_manifest

STORE_FORMAT = "mixsurrogate-scores/1"
EVAL_KINDS = ("val", "task")


@dataclass(frozen=True)
class Budget:
    """A training budget of the experts: ``fraction`` of their full budget, ``tokens`` seen."""

    fraction: float
    tokens: int


def budget_file(name: str, budget: Budget | None = None) -> str:
    """The log-prob file of a set at a budget (the full budget, or None: the plain file)."""
    if budget is None or budget.fraction == 1.0:
        return f"{name}.logp.npy"
    return f"{name}.budget-{budget.tokens}.logp.npy"


@dataclass
class EvalSetScores:
    """One evaluation set: ``logp`` (experts, sequences, positions) and its ``mask``.

    ``budget_logp``: with budget snapshots, the same array at each budget below the full one
    (store order of ``ScoreStore.budgets`` without its last, full entry); empty otherwise.
    """

    name: str
    kind: str
    logp: np.ndarray
    mask: np.ndarray
    budget_logp: tuple[np.ndarray, ...] = ()

    def logp_at(self, index: int) -> np.ndarray:
        """The log-probs of budget ``index`` (the last index is the full budget, ``logp``)."""
        return self.budget_logp[index] if index < len(self.budget_logp) else self.logp

    @property
    def n_tokens(self) -> int:
        return int(self.mask.sum())

    def token_logp(self) -> np.ndarray:
        """(experts, counted tokens) float32: the masked positions dropped, order kept."""
        return np.ascontiguousarray(self.logp[:, self.mask], dtype=np.float32)


@dataclass
class ScoreStore:
    """A loaded score store; ``eval_sets`` keeps manifest order."""

    path: Path | None
    experts: list[str]
    eval_sets: dict[str, EvalSetScores]
    seq_len: int
    tokenizer_sha256: str
    eval_id: str
    provenance: dict = field(default_factory=dict)
    budgets: tuple[Budget, ...] = ()  # ascending, the last the full budget; () without snapshots

    def require_budgets(self) -> tuple[Budget, ...]:
        """The budgets, or one line naming the store: budget-matched MDE needs snapshots."""
        if len(self.budgets) < 2:
            raise ScoreStoreError(
                f"score store {self.path or '(in memory)'} has no budget snapshots; "
                "budget-matched MDE needs experts trained with 'experts train --checkpoints' "
                "and scored into a new store"
            )
        return self.budgets

    def require_sets(self, eval_sets: Sequence[str]) -> list[str]:
        """``eval_sets`` as a list, or one line naming those the store lacks: features are
        built per set, from the experts' scores of that set."""
        eval_sets = list(eval_sets)
        if not eval_sets:
            raise ScoreStoreError("MDE features need at least one evaluation set")
        missing = [name for name in eval_sets if name not in self.eval_sets]
        if missing:
            raise ScoreStoreError(
                f"evaluation sets not in the score store: {', '.join(missing)}; "
                f"the store has: {', '.join(self.eval_sets)}"
            )
        return eval_sets

    def names(self, kind: str | None = None) -> list[str]:
        return [n for n, s in self.eval_sets.items() if kind is None or s.kind == kind]

    @property
    def kinds(self) -> dict[str, str]:
        """Evaluation set -> 'val' or 'task', what ``Objective.parse`` needs for its groups."""
        return {n: s.kind for n, s in self.eval_sets.items()}

    def reordered(self, experts: list[str]) -> ScoreStore:
        """The same store with its expert axis in ``experts`` order (a runs log's domain order).

        Safe to do silently: each expert's scores are a slice of the arrays, so the order is a
        convention, not data. A memory-mapped store is read into memory by a real reordering.
        """
        experts = list(experts)
        if experts == self.experts:
            return self
        if sorted(experts) != sorted(self.experts):
            raise ScoreStoreError(
                f"score store experts ({', '.join(self.experts)}) differ from the runs log "
                f"domains ({', '.join(experts)})"
            )
        order = [self.experts.index(e) for e in experts]
        sets = {
            n: replace(s, logp=s.logp[order], budget_logp=tuple(b[order] for b in s.budget_logp))
            for n, s in self.eval_sets.items()
        }
        return replace(self, experts=experts, eval_sets=sets)

    def check_matches_runs(
        self, domains: list[str], targets: list[str], eval_id: str | None = None
    ) -> None:
        """One clear error if this store cannot be used with a runs log of these columns."""
        if list(domains) != list(self.experts):
            same = sorted(domains) == sorted(self.experts)
            raise ScoreStoreError(
                (
                    "the runs log has the score store's domains in another order "
                    f"(log: {', '.join(domains)}; store: {', '.join(self.experts)}); put the "
                    "log's w: columns in the store's order (ScoreStore.reordered aligns a store)"
                )
                if same
                else "score store experts "
                f"({', '.join(self.experts)}) differ from the runs log domains ({', '.join(domains)})"
            )
        missing = [t for t in targets if t not in self.eval_sets]
        if missing:
            raise ScoreStoreError(
                f"runs log evaluation sets not in the score store: {', '.join(missing)}"
            )
        if eval_id and self.eval_id and eval_id != self.eval_id:
            raise ScoreStoreError(
                f"runs log was evaluated on other sequences or tokenizer (eval_id {eval_id}) "
                f"than the score store ({self.eval_id})"
            )


def load_scores(path: str | Path, mmap: bool = False) -> ScoreStore:
    """Load a score store directory, validating shapes against the manifest."""
    path = Path(path)
    manifest_path = path / MANIFEST_FILE
    manifest = read_manifest(
        path,
        STORE_FORMAT,
        ScoreStoreError,
        missing=f"not a score store (no {MANIFEST_FILE})",
        check_link=lambda file: check_no_link_out(path, file),
    )
    experts, eval_sets, seq_len = _check_manifest(manifest, manifest_path)
    budgets = check_budgets(manifest.get("budgets"), manifest_path)
    provenance = manifest.get("provenance", {})
    if not isinstance(provenance, dict):
        raise ScoreStoreError(f"{manifest_path}: 'provenance' must be a JSON object")
    sets: dict[str, EvalSetScores] = {}
    for name, meta in eval_sets.items():
        logp = read_array(path, f"{name}.logp.npy", mmap)
        mask = read_array(path, f"{name}.mask.npy")
        if logp.ndim != 3 or logp.shape[0] != len(experts) or logp.shape[1:] != mask.shape:
            raise ScoreStoreError(
                f"{path}: evaluation set {name!r} has logp {logp.shape} and mask {mask.shape}; "
                f"expected ({len(experts)}, S, T) and (S, T)"
            )
        if meta.get("kind") not in EVAL_KINDS:
            raise ScoreStoreError(f"{path}: evaluation set {name!r} has kind {meta.get('kind')!r}")
        if not mmap and logp.dtype != np.float32:
            logp = logp.astype(np.float32)
        snapshots = []
        for budget in budgets[:-1]:
            snap = read_array(path, budget_file(name, budget), mmap)
            if snap.shape != logp.shape:
                raise ScoreStoreError(
                    f"{path / budget_file(name, budget)}: shape {snap.shape}, the set's logp "
                    f"has {logp.shape}"
                )
            snapshots.append(snap if mmap or snap.dtype == np.float32 else snap.astype(np.float32))
        sets[name] = EvalSetScores(name, meta["kind"], logp, mask.astype(bool), tuple(snapshots))
    return ScoreStore(
        path=path,
        experts=experts,
        eval_sets=sets,
        seq_len=seq_len,
        tokenizer_sha256=str(manifest.get("tokenizer_sha256", "")),
        eval_id=str(manifest.get("eval_id", "")),
        provenance=provenance,
        budgets=budgets,
    )


def check_budgets(raw, source: Path | str) -> tuple[Budget, ...]:
    """The manifest's ``budgets`` (absent: none), or one line saying how they are inconsistent.

    Each is ``{"fraction": f, "tokens": t}``: fractions in (0, 1] strictly ascending and ending
    at 1 (the full expert), tokens positive integers strictly ascending.
    """
    if raw is None:
        return ()
    bad = f"{source}: inconsistent 'budgets'"
    if not isinstance(raw, list) or len(raw) < 2:
        raise ScoreStoreError(f"{bad}: must list at least two budgets, the last the full one")
    budgets = []
    for entry in raw:
        f = entry.get("fraction") if isinstance(entry, dict) else None
        t = entry.get("tokens") if isinstance(entry, dict) else None
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
            raise ScoreStoreError(f"{bad}: fraction {f!r} is not in (0, 1]")
        if isinstance(t, bool) or not isinstance(t, int) or t < 1:
            raise ScoreStoreError(f"{bad}: tokens {t!r} is not a positive integer")
        budgets.append(Budget(float(f), t))
    fractions = [b.fraction for b in budgets]
    tokens = [b.tokens for b in budgets]
    if len(set(fractions)) < len(fractions) or len(set(tokens)) < len(tokens):
        raise ScoreStoreError(f"{bad}: a budget is listed twice")
    if fractions != sorted(fractions) or tokens != sorted(tokens):
        raise ScoreStoreError(f"{bad}: budgets are not in ascending order")
    if fractions[-1] != 1.0:
        raise ScoreStoreError(f"{bad}: the last budget must be the full one (fraction 1)")
    return tuple(budgets)


def check_no_link_out(store: Path, file: Path) -> None:
    """Refuse a file of the store that is a link to a file outside it (see :mod:`mixsurrogate.files`)."""
    target = escapes(store, file)
    if target is not None:
        raise ScoreStoreError(
            f"{file}: a link to {target}, outside the score store; "
            "a score store only reads files inside its own folder"
        )


def read_array(store: Path, file_name: str, mmap: bool = False) -> np.ndarray:
    """One array file of a store, with one line for each way it can be unreadable.

    A link to a file outside the store is refused (see :mod:`mixsurrogate.files`). A file that is not a
    ``.npy`` array makes numpy suggest ``allow_pickle=True`` (its guess for unknown bytes),
    advice never to follow with a file handed in by someone else: say what is wrong instead.
    """
    file = store / file_name
    check_no_link_out(store, file)
    if not file.is_file():
        raise ScoreStoreError(f"{file}: missing from the score store")
    try:
        return np.load(file, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise ScoreStoreError(f"{file}: not a valid .npy array file ({err})") from err
        raise ScoreStoreError(
            f"{file}: not a valid .npy array file (unknown or damaged bytes)"
        ) from err
    except (OSError, EOFError) as err:
        raise ScoreStoreError(f"{file}: cannot read it as a .npy array file ({err})") from err


def _check_manifest(manifest: dict, source: Path) -> tuple[list[str], dict[str, dict], int]:
    """(experts, eval_sets, seq_len) of a manifest, with one clear line for each way it is bad."""
    missing = [k for k in ("experts", "seq_len", "eval_sets") if k not in manifest]
    if missing:
        raise ScoreStoreError(f"{source}: missing {', '.join(map(repr, missing))}")
    experts, eval_sets, seq_len = manifest["experts"], manifest["eval_sets"], manifest["seq_len"]
    if not isinstance(experts, list) or not experts or not all(isinstance(e, str) for e in experts):
        raise ScoreStoreError(f"{source}: 'experts' must be a non-empty list of domain names")
    if len(set(experts)) != len(experts):
        raise ScoreStoreError(f"{source}: 'experts' names a domain twice")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ScoreStoreError(f"{source}: 'seq_len' must be a positive integer, not {seq_len!r}")
    if not isinstance(eval_sets, dict) or not all(isinstance(m, dict) for m in eval_sets.values()):
        raise ScoreStoreError(f"{source}: 'eval_sets' must map each set's name to its facts")
    for name in eval_sets:
        check_set_name(name, source)
    return experts, eval_sets, seq_len


def check_set_name(name: str, source: Path | str) -> None:
    """An evaluation set's name becomes a file name in the store: it must stay in the folder.

    ``../x`` or an absolute path would read (or write) arrays outside the store.
    """
    bad = not name or any(c in name for c in "/\\\0")  # separators (POSIX, Windows) and NUL
    if bad:
        raise ScoreStoreError(
            f"{source}: evaluation set name {name!r} is not a plain file name; "
            "a score store only reads files inside its own folder"
        )


def write_scores(
    path: str | Path,
    experts: list[str],
    eval_sets: dict[str, EvalSetScores],
    seq_len: int,
    tokenizer_sha256: str,
    eval_id: str,
    provenance: dict | None = None,
    dtype: str = "float32",
    budgets: tuple[Budget, ...] = (),
) -> Path:
    """Write a store atomically: build it in a temporary sibling folder, then rename
    (:func:`mixsurrogate.files.atomic_folder`). With ``budgets``, every set carries one
    ``budget_logp`` array per budget below the last (full) one."""
    path = Path(path)
    budgets = tuple(budgets)
    if budgets:
        listed = [{"fraction": b.fraction, "tokens": b.tokens} for b in budgets]
        budgets = check_budgets(listed, path)
    for name, s in eval_sets.items():
        if len(s.budget_logp) != max(len(budgets) - 1, 0):
            raise ScoreStoreError(
                f"{path}: evaluation set {name!r} has {len(s.budget_logp)} budget arrays for "
                f"{len(budgets)} budgets (one per budget below the full one)"
            )
    if path.exists() and any(path.iterdir()):
        raise ScoreStoreError(f"{path}: exists and is not empty; choose a new folder")
    for name in eval_sets:
        check_set_name(name, path)
    with atomic_folder(path) as tmp:
        meta = {}
        for name, s in eval_sets.items():
            np.save(tmp / f"{name}.logp.npy", np.asarray(s.logp, dtype=dtype), allow_pickle=False)
            np.save(tmp / f"{name}.mask.npy", np.asarray(s.mask, dtype=bool), allow_pickle=False)
            for budget, snap in zip(budgets, s.budget_logp, strict=False):
                np.save(tmp / budget_file(name, budget), np.asarray(snap, dtype=dtype))
            meta[name] = {
                "kind": s.kind,
                "sequences": int(s.mask.shape[0]),
                "positions": int(s.mask.shape[1]),
                "tokens": int(s.mask.sum()),
            }
        manifest = {
            "format": STORE_FORMAT,
            "experts": list(experts),
            "seq_len": int(seq_len),
            "tokenizer_sha256": tokenizer_sha256,
            "eval_id": eval_id,
            "eval_sets": meta,
            "provenance": provenance or {},
        }
        if budgets:
            manifest["budgets"] = [{"fraction": b.fraction, "tokens": b.tokens} for b in budgets]
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    return path
