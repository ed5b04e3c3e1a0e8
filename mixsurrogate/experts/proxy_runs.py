"""Proxy runs: one small model per mixture of a mixtures file, evaluated and appended to a runs log.

Runs already in the log are skipped, after checking that the log holds runs of the same
domains, evaluation sequences and token budget, so a log never mixes incomparable rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import MixsurrogateError, RunsLogError
from ..runs import LOSS_PREFIX, WEIGHT_PREFIX, append_run, read_frame
from ..simplex import SUM_TOLERANCE, check_mixtures
from .batches import mixture_sampler
from .checkpoints import run_identity
from .corpus_store import Corpus
from .evalsets import EvalSuite, build_eval_suite
from .lm_eval import eval_losses
from .model import build_model, load_trained, select_device
from .presets import Preset
from .publish import model_facts, read_expert_meta
from .train import TrainResult, barrier, distributed, train_loop


@dataclass
class Mixture:
    """One row of a mixtures file: the run's id, its domain weights and its own seed, if any."""

    run_id: str
    weights: dict[str, float]
    seed: int | None


def read_mixtures(path: str | Path, corpus: Corpus) -> list[Mixture]:
    """Mixtures from CSV/JSONL with ``run_id``, ``w:<domain>`` and optional ``seed`` columns."""
    path = Path(path)
    if not path.is_file():
        raise MixsurrogateError(f"{path}: no such mixtures file")
    try:
        if path.suffix in (".jsonl", ".json"):
            frame = pd.read_json(path, lines=True, dtype={"run_id": str})
        else:
            frame = pd.read_csv(path, dtype={"run_id": str})
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise MixsurrogateError(f"{path}: cannot parse the mixtures file ({err})") from err
    columns = [c for c in frame.columns if str(c).startswith(WEIGHT_PREFIX)]
    if "run_id" not in frame.columns or not columns or frame.empty:
        raise MixsurrogateError(f"{path}: needs a 'run_id' column, 'w:<domain>' columns and rows")
    domains = [c[len(WEIGHT_PREFIX) :] for c in columns]
    corpus.check_domains(domains)
    ids = frame["run_id"].astype(str)
    if ids.duplicated().any():
        raise MixsurrogateError(f"{path}: duplicate run_id {ids[ids.duplicated()].iloc[0]}")
    weights = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    try:
        check_mixtures(
            weights, labels=[f"run {r}" for r in ids], columns=columns,
            sum_tolerance=SUM_TOLERANCE,
        )  # fmt: skip
    except MixsurrogateError as err:
        raise MixsurrogateError(f"{path}: {err}") from err
    mixtures = []
    for row, run_id in enumerate(ids):
        w = weights[row]
        seed = frame["seed"].iloc[row] if "seed" in frame.columns else None
        mixtures.append(
            Mixture(
                run_id,
                dict(zip(domains, (w / w.sum()).tolist(), strict=True)),
                None if seed is None or pd.isna(seed) else int(seed),
            )
        )
    return mixtures


def _safe_name(run_id: str) -> str:
    """A file name for a run's checkpoint; the hash keeps ids that clean alike apart."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", run_id)[:80]
    return f"{clean}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def _logged_runs(log: Path, suite: EvalSuite, domains: list[str], tokens: int) -> set[str]:
    """Run ids already in the log, after checking that the log is compatible with these runs."""
    if not log.exists():
        return set()
    frame = read_frame(log)
    expected = {WEIGHT_PREFIX + d for d in domains} | {LOSS_PREFIX + n for n in suite.sets}
    found = {c for c in frame.columns if str(c).startswith((WEIGHT_PREFIX, LOSS_PREFIX))}
    if found != expected:
        raise RunsLogError(
            f"{log}: its w:/loss: columns differ from these runs' domains and evaluation sets"
        )
    if "eval_id" in frame.columns and (frame["eval_id"].astype(str) != suite.eval_id).any():
        raise RunsLogError(
            f"{log}: logged runs were evaluated on other sequences or another tokenizer "
            f"(eval_id differs from {suite.eval_id[:12]}); use a new log"
        )
    if "tokens" in frame.columns and (frame["tokens"] != tokens).any():
        raise RunsLogError(
            f"{log}: logged runs trained {int(frame['tokens'].iloc[0]):,} tokens, this preset "
            f"trains {tokens:,}; runs of one log share a budget, so use a new log"
        )
    return set(frame["run_id"].astype(str))


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
) -> list[dict]:
    """Train one model per mixture, evaluate it on every evaluation set, append it to ``log``.

    Runs already in the log are skipped; an interrupted run resumes from its checkpoint in
    ``resume_dir`` (default: ``.<log name>.checkpoints`` beside the log). A row's ``seed`` column
    overrides ``seed``; the default gives every run the same seed (common random numbers).
    A one-domain mixture whose expert in ``experts_dir`` has the same preset, seed and tokenizer
    is that expert (same model, same sampled windows), so it is evaluated, not trained again.
    """
    corpus = Corpus.load(corpus_dir)
    log = Path(log)
    mixtures = read_mixtures(mixtures_path, corpus)
    # corpus order, the order of the experts in a score store (check_matches_runs compares them)
    domains = [d for d in corpus.domains if d in mixtures[0].weights]
    suite = build_eval_suite(
        corpus, preset.model.context, preset.eval.val_sequences, preset.eval.task_items
    )
    done = _logged_runs(log, suite, domains, preset.steps * preset.tokens_per_step)
    todo = [m for m in mixtures if m.run_id not in done]
    samplers = {
        m.run_id: mixture_sampler(
            corpus, m.weights, preset.model.context, preset.train.batch_size,
            seed if m.seed is None else m.seed,
        )
        for m in todo
    }  # fmt: skip
    resume = Path(resume_dir) if resume_dir else log.with_name(f".{log.name}.checkpoints")
    dev = select_device(device)
    rank, _ = distributed()
    rows = []
    for m in todo:
        run_seed = seed if m.seed is None else m.seed
        checkpoint = resume / f"{_safe_name(m.run_id)}.safetensors"
        expert = _same_expert(experts_dir, m.weights, preset, corpus, run_seed)
        if expert is not None:
            folder, result = expert
            model, note = load_trained(folder, dev), folder.name
        else:
            target = "mixture:" + json.dumps(m.weights, sort_keys=True)
            identity = run_identity(preset, corpus, run_seed, target)
            model = build_model(preset, corpus.vocab_size, corpus.eos_id, run_seed)
            result = train_loop(
                model,
                samplers[m.run_id],
                preset,
                dev,
                identity,
                checkpoint,
                f"run {m.run_id}",
                progress,
            )
            note = None
        if rank == 0:
            losses = eval_losses(model, suite, preset.eval.batch_size, dev)
            row = {
                "run_id": m.run_id,
                **{WEIGHT_PREFIX + d: m.weights[d] for d in domains},
                **{LOSS_PREFIX + n: v for n, v in losses.items()},
                "params": model_facts(model)["params"],
                "tokens": result.tokens,
                "steps": result.steps,
                "seed": run_seed,
                "eval_id": suite.eval_id,
                "notes": f"preset={preset.name}"
                + (f"; the expert of {note} (identical training)" if note else ""),
            }
            append_run(log, row)
            checkpoint.unlink(missing_ok=True)
            rows.append({**row, "seconds": round(result.seconds, 2)})
        barrier()
    if resume.is_dir() and not any(resume.iterdir()):
        resume.rmdir()
    return rows
