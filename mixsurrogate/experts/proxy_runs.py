"""Proxy runs: one small model per mixture of a mixtures file, evaluated and appended to a runs log.

Runs already in the log are skipped, after checking that the log holds runs of the same
domains, evaluation sequences and token budget, so a log never mixes incomparable rows.
A run is logged as pending (weights, no loss) when its training starts, so that other workers
see it in flight, and filled in when it ends; a pending row already in the log (e.g. a proposed
run) is trained and filled in. A run whose training fails with an error has the pending row it
logged taken out again; an interrupted job leaves it, in flight until a rerun resumes it. With
``eval_every``, intermediate checkpoints are logged as rows of their own: same mixture, fewer
tokens, run id ``<run>@<tokens>`` (a free lower fidelity).

Cluster array jobs: with ``shard`` I/N a worker trains rows I, I + N, I + 2N, ... (1-based, in
the mixtures file's row order), and every worker appends to the same log under its lock.
Round-robin rather than contiguous blocks: shares differ by at most one row, and rows appended
to the file later leave every earlier row in its shard.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..corpus.evalsets import EvalSuite, build_eval_suite
from ..corpus.store import Corpus
from ..errors import MixsurrogateError, RunsLogError
from ..runs.exposure import unique_tokens_column
from ..runs.fidelity import checkpoint_run_id, is_checkpoint_row
from ..runs.log import (
    LOSS_PREFIX,
    WEIGHT_PREFIX,
    RunsLog,
    append_run,
    read_frame,
    remove_pending_runs,
    update_run,
)
from ..runs.log import validate_frame as validate_runs
from ..runs.names import UNIQUE_PREFIX
from ..runs.schedule import is_phase_column
from .checkpoints import run_identity
from .lm_eval import eval_losses
from .mixtures import Mixture, Shard, read_mixtures
from .model import build_model, load_trained, select_device
from .presets import Preset
from .publish import model_facts, read_expert_meta
from .repetition import subsample_note, unique_limits
from .schedules import realised, run_sampler, schedule_note, seen_by, training_target
from .train import TrainResult, barrier, distributed, train_loop


def _safe_name(run_id: str) -> str:
    """A file name for a run's checkpoint; the hash keeps ids that clean alike apart."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)[:80]
    return f"{clean}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


__all__ = ["Mixture", "Shard", "checkpoint_run_id", "read_mixtures", "train_proxy_runs"]


def _identity_column(name: str) -> bool:
    """Cells that say what a run trains on: mixture, schedule and subsample."""
    name = str(name)
    return name.startswith((WEIGHT_PREFIX, UNIQUE_PREFIX)) or is_phase_column(name)


@dataclass
class LoggedRuns:
    """What the log already holds: finished run ids, pending rows (id -> the cells that say
    what they train on: weights, phases, subsample), all ids."""

    finished: set[str]
    pending: dict[str, dict[str, float]]
    ids: set[str]


def _logged_runs(log: Path, suite: EvalSuite, domains: list[str], tokens: int) -> LoggedRuns:
    """The runs already in the log, after checking that the log is compatible with these runs.

    Pending rows (no loss yet) and intermediate checkpoints (``<run>@<tokens>``) are exempt
    from the budget check, pending rows from the evaluation-sequence check too.
    """
    if not log.exists():
        return LoggedRuns(set(), {}, set())
    # a writer: runs logged before a domain was added keep their empty cells (runs.missing)
    logged = RunsLog(validate_runs(read_frame(log), source=str(log), missing_domains="keep"))
    frame = logged.frame
    expected = {WEIGHT_PREFIX + d for d in domains} | {LOSS_PREFIX + n for n in suite.sets}
    found = {c for c in frame.columns if str(c).startswith((WEIGHT_PREFIX, LOSS_PREFIX))}
    if found != expected:
        raise RunsLogError(
            f"{log}: its w:/loss: columns differ from these runs' domains and evaluation sets"
        )
    pending = logged.pending_mask
    evaluated = frame[~pending]
    if "eval_id" in frame.columns and (evaluated["eval_id"].astype(str) != suite.eval_id).any():
        raise RunsLogError(
            f"{log}: logged runs were evaluated on other sequences or another tokenizer "
            f"(eval_id differs from {suite.eval_id[:12]}); use a new log"
        )
    if "tokens" in frame.columns:
        pairs = zip(evaluated["run_id"], evaluated["tokens"], strict=True)
        final = evaluated.iloc[[i for i, (r, t) in enumerate(pairs) if not is_checkpoint_row(r, t)]]
        if (final["tokens"] != tokens).any():
            other = final["tokens"][final["tokens"] != tokens].iloc[0]
            shown = "no" if pd.isna(other) else f"{int(other):,}"
            raise RunsLogError(
                f"{log}: logged runs trained {shown} tokens, this preset trains {tokens:,}; "
                "runs of one log share a budget, so use a new log"
            )
    ids = [str(r) for r in frame["run_id"]]
    cells = frame[[c for c in frame.columns if _identity_column(c)]]
    cells = cells.apply(pd.to_numeric, errors="coerce")
    return LoggedRuns(
        {r for r, p in zip(ids, pending, strict=True) if not p},
        {
            r: {c: float(v) for c, v in cells.iloc[i].items() if pd.notna(v)}
            for i, (r, p) in enumerate(zip(ids, pending, strict=True))
            if p
        },
        set(ids),
    )


def _check_pending_weights(
    log: Path, run_id: str, cells: dict[str, float], logged: dict[str, float]
) -> None:
    """A pending row is trained only if it is this run (a proposal, or our own crash): same
    mixture, schedule (realised shares) and subsample."""
    same = cells.keys() == logged.keys() and all(
        abs(logged[c] - v) <= 1e-6 for c, v in cells.items()
    )
    if not same:
        raise RunsLogError(
            f"{log}: run {run_id} is pending there with other weights than this run (mixture, "
            "phases or subsample); give this mixture another run_id"
        )


def _same_expert(
    experts_dir: str | Path | None, weights: dict, preset: Preset, corpus: Corpus, seed: int
) -> tuple[Path, TrainResult] | None:
    """The expert folder that *is* the run of a one-domain mixture, with its training facts."""
    whole = [d for d, w in weights.items() if w >= 1.0 - 1e-12]
    if experts_dir is None or len(whole) != 1:
        return None
    folder = Path(experts_dir) / whole[0]
    meta = read_expert_meta(folder)
    same = meta is not None and (
        meta.get("preset_sha256"),
        meta.get("seed"),
        meta.get("tokenizer_sha256"),
    ) == (preset.sha256, seed, corpus.tokenizer_sha256)
    if not same:
        return None
    final = float(meta.get("final_train_loss", "nan"))
    return folder, TrainResult(meta["steps"], meta["tokens"], final, seconds=0.0, resumed_from=0)


def train_proxy_runs(
    corpus_dir: str | Path,
    mixtures_path: str | Path,
    preset: Preset,
    log: str | Path,
    seed: int = 0,
    resume_dir: str | Path | None = None,
    device: str = "auto",
    progress: bool = True,
    experts_dir: str | Path | None = None,
    eval_every: int = 0,
    shard: Shard | None = None,
    unique_caps: dict[str, int] | None = None,
    match_repetition: int | None = None,
) -> list[dict]:
    """Train one model per mixture, evaluate it on every evaluation set, log it in ``log``.

    Runs already in the log are skipped; the others are logged as pending before training
    starts and filled in when it ends, so other workers see them in flight. An interrupted run
    resumes from its checkpoint in ``resume_dir`` (default: ``.<log name>.checkpoints`` beside
    the log). A row's ``seed`` column overrides ``seed``; the default gives every run the same
    seed (common random numbers). A one-domain mixture whose expert in ``experts_dir`` has the
    same preset, seed and tokenizer is that expert (same model, same sampled windows), so it is
    evaluated, not trained again. With ``eval_every`` N > 0 steps, the model is also evaluated
    after steps N, 2N, ... and each checkpoint logged as its own row, run id
    ``<run>@<tokens>`` (intermediate checkpoints a resumed run has passed are not redone).
    With ``shard`` I/N only that share of the mixtures file is trained (the whole file is
    still validated, so every shard refuses the same bad file). A row with schedule columns
    trains its phases in turn (see :mod:`.schedules`). ``unique_caps`` and ``match_repetition``
    (the target run's tokens) train on a subsample of each domain's data (see
    :mod:`.repetition`), recorded in the rows' ``unique:<domain>`` cells and notes. Returns the
    logged rows, final and intermediate, each with its ``seconds``.
    """
    if eval_every < 0:
        raise MixsurrogateError(
            f"--eval-every must be a positive number of steps, got {eval_every}"
        )
    corpus = Corpus.load(corpus_dir)
    log = Path(log)
    mixtures = [realised(m, preset.steps) for m in read_mixtures(mixtures_path, corpus)]
    # corpus order, the order of the experts in a score store (check_matches_runs compares them)
    domains = [d for d in corpus.domains if d in mixtures[0].weights]
    if shard is not None:
        mixtures = shard.select(mixtures)
    suite = build_eval_suite(
        corpus, preset.model.context, preset.eval.val_sequences, preset.eval.task_items
    )
    run_tokens = preset.steps * preset.tokens_per_step
    limits = unique_limits(corpus, domains, run_tokens, unique_caps, match_repetition)
    subsample = {unique_tokens_column(d): n for d, n in (limits or {}).items()}
    logged = _logged_runs(log, suite, domains, run_tokens)
    todo = [m for m in mixtures if m.run_id not in logged.finished]
    for m in todo:
        if m.run_id in logged.pending:
            cells = m.log_cells(domains) | subsample
            _check_pending_weights(log, m.run_id, cells, logged.pending[m.run_id])
    samplers = {
        m.run_id: run_sampler(
            corpus, m, preset.model.context, preset.train.batch_size,
            seed if m.seed is None else m.seed, preset.steps, limits,
        )
        for m in todo
    }  # fmt: skip
    extra = subsample_note(limits, match_repetition)
    resume = Path(resume_dir) if resume_dir else log.with_name(f".{log.name}.checkpoints")
    dev = select_device(device)
    rank, _ = distributed()
    experts = {  # a schedule or a subsample is not an expert's training
        m.run_id: None
        if m.phases is not None or limits
        else _same_expert(
            experts_dir, m.weights, preset, corpus, seed if m.seed is None else m.seed
        )
        for m in todo
    }
    appended: list[str] = []  # the pending rows this call logs (a proposal's are not ours)
    try:
        if rank == 0:  # in flight from now on: other workers' proposals count them as pending
            for m in todo:
                if experts[m.run_id] is None and m.run_id not in logged.ids:
                    append_run(log, _pending_row(m, domains, suite, preset, seed, subsample))
                    appended.append(m.run_id)
        barrier()
        rows: list[dict] = []
        for m in todo:
            run_seed = seed if m.seed is None else m.seed
            checkpoint = resume / f"{_safe_name(m.run_id)}.safetensors"
            expert = experts[m.run_id]
            if expert is not None:
                folder, result = expert
                model, note = load_trained(folder, dev), folder.name
            else:
                target = training_target(m, preset.steps, limits)
                identity = run_identity(preset, corpus, run_seed, target)
                model = build_model(preset, corpus.vocab_size, corpus.eos_id, run_seed)
                checkpoints = _CheckpointLogger(
                    log, m, domains, model, suite, preset, run_seed, dev, logged.ids, rows,
                    (subsample, extra),
                )  # fmt: skip
                result = train_loop(
                    model,
                    samplers[m.run_id],
                    preset,
                    dev,
                    identity,
                    checkpoint,
                    f"run {m.run_id}",
                    progress,
                    eval_every,
                    checkpoints,
                )
                note = None
            if rank == 0:
                losses = eval_losses(model, suite, preset.eval.batch_size, dev)
                notes = f"preset={preset.name}" + (
                    f"; the expert of {note} (identical training)" if note else ""
                )
                notes += schedule_note(m, preset.steps) + extra
                row = (
                    _run_row(
                        m,
                        domains,
                        losses,
                        model,
                        result.tokens,
                        result.steps,
                        run_seed,
                        suite,
                        notes,
                    )
                    | subsample
                )
                if expert is not None and m.run_id not in logged.ids:
                    append_run(log, row)
                else:  # the pending row this run (or a proposal) logged before training
                    filled = {
                        k: v for k, v in row.items() if k != "run_id" and not _identity_column(k)
                    }
                    update_run(log, m.run_id, filled)
                checkpoint.unlink(missing_ok=True)
                rows.append({**row, "seconds": round(result.seconds, 2)})
            barrier()
    except Exception:
        # a failed run is no longer in flight: its pending row goes (a rerun logs it again and
        # resumes from its checkpoint); rows already filled in stay. An interrupted job
        # (KeyboardInterrupt, a killed cluster job) keeps it: it is resumed, still in flight.
        if rank == 0:
            remove_pending_runs(log, appended)
        raise
    if resume.is_dir() and not any(resume.iterdir()):
        try:
            resume.rmdir()
        except OSError:  # another worker (shard) has put a checkpoint there since
            pass
    return rows


def _run_row(
    m: Mixture,
    domains: list[str],
    losses: dict[str, float | None],
    model,
    tokens: int | None,
    steps: int | None,
    seed: int,
    suite: EvalSuite,
    notes: str,
) -> dict:
    return {
        "run_id": m.run_id,
        **m.log_cells(domains),
        **{LOSS_PREFIX + n: v for n, v in losses.items()},
        "params": model_facts(model)["params"] if model is not None else None,
        "tokens": tokens,
        "steps": steps,
        "seed": seed,
        "eval_id": suite.eval_id,
        "notes": notes,
    }


def _pending_row(
    m: Mixture, domains: list[str], suite: EvalSuite, preset: Preset, seed: int, subsample: dict
) -> dict:
    run_seed = seed if m.seed is None else m.seed
    losses = dict.fromkeys(suite.sets)
    notes = f"preset={preset.name}; in flight (runs train)"
    return _run_row(m, domains, losses, None, None, None, run_seed, suite, notes) | subsample


class _CheckpointLogger:
    """``train_loop``'s ``on_eval``: logs the model at an intermediate step as its own row."""

    def __init__(
        self, log, m, domains, model, suite, preset, seed, device, logged_ids, rows, subsample
    ):
        self.log, self.m, self.domains, self.model = log, m, domains, model
        self.suite, self.preset, self.seed, self.device = suite, preset, seed, device
        self.logged_ids, self.rows = logged_ids, rows
        self.subsample, self.extra = subsample  # the unique: cells and the notes' words
        self.began = time.perf_counter()

    def __call__(self, step: int) -> None:
        rank, _ = distributed()
        tokens = step * self.preset.tokens_per_step
        run_id = checkpoint_run_id(self.m.run_id, tokens)
        if rank == 0 and run_id not in self.logged_ids:  # not logged before an interruption
            losses = eval_losses(self.model, self.suite, self.preset.eval.batch_size, self.device)
            notes = (
                f"preset={self.preset.name}; intermediate checkpoint of {self.m.run_id} at step "
                f"{step} of {self.preset.steps} (learning rate not yet decayed)"
                + schedule_note(self.m, self.preset.steps)
                + self.extra
            )
            seen = seen_by(self.m, self.preset.steps, step)  # a schedule: the phases so far
            row = _run_row(
                seen, self.domains, losses, self.model, tokens, step, self.seed, self.suite,
                notes,
            ) | self.subsample  # fmt: skip
            row["run_id"] = run_id
            append_run(self.log, row)
            self.rows.append({**row, "seconds": round(time.perf_counter() - self.began, 2)})
        barrier()
