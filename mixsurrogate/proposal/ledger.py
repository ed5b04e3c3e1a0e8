"""The predicted-vs-realised ledger: what every proposal promised, kept beside the runs log.

A surrogate's optimism at its own minimiser is only measured once the proposed runs are
trained. ``propose`` appends one JSON line per proposed mixture to ``<log>.ledger.jsonl``
(under the log's kind of file lock, rewritten atomically): the mixture, the predicted objective,
per-set losses and interval, the predictor and recommender, the objective's weights, a hash of
the log's content and the runs that were complete when it was made. ``mixsurrogate audit LOG``
then matches every entry with the runs that have since arrived (by run id when the entry has
one, else by mixture within a tolerance, among runs that were not complete at proposal time)
and reports prediction against realisation, interval coverage and the mean optimism.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MixsurrogateError
from ..files import atomic_write_text
from ..objective import Objective, cut_names
from ..runs.log import RunsLog, log_lock
from .record import Proposal

LEDGER_SUFFIX = ".ledger.jsonl"
#: a logged run realises an entry when their mixtures are this close (total variation)
MATCH_TOLERANCE = 1e-3


def ledger_path(log_path: str | Path) -> Path:
    """``<log>.ledger.jsonl`` beside the log."""
    path = Path(log_path)
    return path.with_name(path.name + LEDGER_SUFFIX)


#: the package's own files (the built-in logs): never written beside
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def keeps_ledger(log: str) -> bool:
    """A ledger is kept beside a user's log file, never beside a built-in log (``regmix:``, or a
    file shipped inside the package: writing there would change the installed package)."""
    if ":" in log and not Path(log).exists():
        return False
    return not Path(log).resolve().is_relative_to(PACKAGE_DIR)


def log_hash(log_path: str | Path) -> str:
    """sha256 of the log file's bytes (which log state a prediction was made on)."""
    return hashlib.sha256(Path(log_path).read_bytes()).hexdigest()


@dataclass
class LedgerEntry:
    """One proposed mixture and what was predicted for it."""

    role: str  # "recommendation" (train at full scale) or "explore" (a next run)
    mode: str
    domains: list[str]
    mixture: list[float]
    objective: dict[str, float]  # set -> weight
    predicted: float | None
    losses: dict[str, float]
    level: float | None
    lower: float | None
    upper: float | None
    predictor: str
    recommender: str | None
    judged: float | None  # the cross-fitted judges' estimate (robust recommendation)
    log_sha256: str
    known_runs: list[str]  # runs complete when the proposal was made (never matched)
    run_id: str | None = None
    created: float = field(default_factory=time.time)

    @classmethod
    def from_dict(cls, data: dict, where: str) -> LedgerEntry:
        try:
            return cls(**data)
        except TypeError as err:
            raise MixsurrogateError(f"{where}: not a ledger entry ({err})") from err


def _num(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def entries_for(
    proposal: Proposal,
    log: RunsLog,
    log_path: str | Path,
    objective: Objective,
    predictor: str,
    run_ids: list[str | None] | None = None,
) -> list[LedgerEntry]:
    """The entries a proposal makes: one per exploit proposal (the recommendation); per
    explore step, one per next run and one for the recommendation when there is one."""
    digest = log_hash(log_path)
    known = [r for r, ok in zip(log.run_ids, ~log.pending_mask, strict=True) if ok]
    weights = {s: float(objective.weights[s]) for s in objective.sets}
    exploit = proposal.mode == "exploit"
    recommender = None if proposal.robust is None else proposal.robust.chosen
    judged = None if proposal.robust is None else proposal.robust.chosen_report.judged
    run_ids = run_ids or [None] * len(proposal.mixtures)
    interval = proposal.objective_interval
    out = []
    for i, w in enumerate(proposal.mixtures):
        out.append(
            LedgerEntry(
                role="recommendation" if exploit else "explore",
                mode=proposal.mode,
                domains=list(proposal.domains),
                mixture=[float(v) for v in w],
                objective=weights,
                predicted=_num(proposal.objective[i]),
                losses={s: float(v[i]) for s, v in proposal.set_losses.items()},
                level=None if interval is None else float(interval[0]),
                lower=None if interval is None else _num(interval[1][i]),
                upper=None if interval is None else _num(interval[2][i]),
                predictor=predictor if exploit else "gp (search)",
                recommender=recommender if exploit else None,
                judged=judged if exploit else None,
                log_sha256=digest,
                known_runs=known,
                run_id=run_ids[i],
            )
        )
    rec = proposal.recommendation
    if not exploit and rec is not None:
        interval = rec.get("interval") or {}
        out.append(
            LedgerEntry(
                role="recommendation",
                mode=proposal.mode,
                domains=list(proposal.domains),
                mixture=[float(rec["mixture"][d]) for d in proposal.domains],
                objective=weights,
                predicted=_num(rec["predicted_objective"]),
                losses={},
                level=interval.get("level"),
                lower=interval.get("lower"),
                upper=interval.get("upper"),
                predictor="gp (search)",
                recommender=recommender,
                judged=judged,
                log_sha256=digest,
                known_runs=known,
            )  # fmt: skip
        )
    return out


def append_entries(path: str | Path, entries: list[LedgerEntry]) -> None:
    """Append entries to the ledger at ``path`` atomically, under its file lock (concurrent
    proposals all land; a reader sees the old ledger or the new one)."""
    path = Path(path)
    text = "".join(json.dumps(asdict(e), allow_nan=False) + "\n" for e in entries)
    with log_lock(path):
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        atomic_write_text(path, old + text)


def read_ledger(path: str | Path) -> list[LedgerEntry]:
    """Every entry of a ledger file (one clear error for a missing or malformed one)."""
    path = Path(path)
    if not path.is_file():
        raise MixsurrogateError(
            f"no ledger at {path}: `mixsurrogate propose` writes one beside a runs log file"
        )
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise MixsurrogateError(f"{path}, line {n}: not valid JSON ({err})") from err
        if not isinstance(data, dict):
            raise MixsurrogateError(f"{path}, line {n}: not a ledger entry (a JSON object)")
        entries.append(LedgerEntry.from_dict(data, f"{path}, line {n}"))
    return entries


@dataclass(frozen=True)
class AuditRow:
    """One ledger entry beside what its runs realised (``realised`` None: not arrived)."""

    entry: LedgerEntry
    matched_runs: list[str]
    realised: float | None

    @property
    def error(self) -> float | None:
        """predicted - realised (below 0: the prediction was optimistic)."""
        if self.realised is None or self.entry.predicted is None:
            return None
        return self.entry.predicted - self.realised

    @property
    def covered(self) -> bool | None:
        e = self.entry
        if self.realised is None or e.lower is None or e.upper is None:
            return None
        return e.lower <= self.realised <= e.upper


@dataclass(frozen=True)
class Audit:
    """Every entry with its realisation, the intervals' coverage and the mean optimism."""

    rows: list[AuditRow]
    tolerance: float

    @property
    def arrived(self) -> list[AuditRow]:
        return [r for r in self.rows if r.realised is not None]

    @property
    def coverage(self) -> float | None:
        flags = [r.covered for r in self.arrived if r.covered is not None]
        return float(np.mean(flags)) if flags else None

    @property
    def n_intervals(self) -> int:
        return sum(r.covered is not None for r in self.arrived)

    @property
    def mean_optimism(self) -> float | None:
        errors = [r.error for r in self.arrived if r.error is not None]
        return float(np.mean(errors)) if errors else None

    def to_dict(self) -> dict:
        return {
            "entries": len(self.rows),
            "arrived": len(self.arrived),
            "tolerance_tv": self.tolerance,
            "coverage": self.coverage,
            "intervals_checked": self.n_intervals,
            "mean_optimism": self.mean_optimism,
            "rows": [
                {
                    "role": r.entry.role,
                    "mode": r.entry.mode,
                    "mixture": dict(zip(r.entry.domains, r.entry.mixture, strict=True)),
                    "run_id": r.entry.run_id,
                    "recommender": r.entry.recommender,
                    "predicted": r.entry.predicted,
                    "judged": r.entry.judged,
                    "interval": None
                    if r.entry.lower is None
                    else {"level": r.entry.level, "lower": r.entry.lower, "upper": r.entry.upper},
                    "matched_runs": r.matched_runs,
                    "realised": r.realised,
                    "predicted_minus_realised": r.error,
                    "covered": r.covered,
                }
                for r in self.rows
            ],
        }


def check_matches_log(entries: list[LedgerEntry], log: RunsLog, where: str) -> None:
    """One clear error when the ledger was not written for this log (other domains, or an
    objective set the log lacks)."""
    for n, e in enumerate(entries, start=1):
        if list(e.domains) != list(log.domains) or len(e.mixture) != len(log.domains):
            raise MixsurrogateError(
                f"{where} (entry {n}) is over domains {cut_names(e.domains)}, the log over "
                f"{cut_names(log.domains)}: not this log's ledger"
            )
        missing = [s for s in e.objective if s not in log.targets]
        if missing:
            raise MixsurrogateError(
                f"{where} (entry {n}) needs loss(es) the log lacks: {cut_names(missing)}: not "
                "this log's ledger"
            )


def audit(log: RunsLog, entries: list[LedgerEntry], tolerance: float = MATCH_TOLERANCE,
          where: str = "the ledger") -> Audit:  # fmt: skip
    """Match each entry with the runs that realised it and their objective (the mean over
    repeated runs of one mixture)."""
    check_matches_log(entries, log, where)
    ids = np.array(log.run_ids, dtype=object)
    rows = []
    for e in entries:
        obj = Objective(dict(e.objective))
        losses = np.column_stack([log.loss(s) for s in obj.sets])
        done = np.isfinite(losses).all(axis=1)
        if e.run_id is not None:
            hit = (ids == e.run_id) & done
        else:
            near = 0.5 * np.abs(log.W - np.asarray(e.mixture)).sum(axis=1) <= tolerance
            fresh = ~np.isin(ids, np.array(e.known_runs, dtype=object))
            hit = near & fresh & done
        realised = None
        if hit.any():
            realised = float(np.mean(obj.combine(losses[hit], obj.sets)))
        rows.append(AuditRow(e, [str(r) for r in ids[hit]], realised))
    return Audit(rows, tolerance)
