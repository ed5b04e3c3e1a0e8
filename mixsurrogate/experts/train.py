"""The training loop, its checkpoints, and the two things it trains: data experts and proxy runs.

Deterministic given the seed: the initial weights come from ``torch.manual_seed(seed)`` and the
batch of step ``s`` from ``(seed, s)`` (see :mod:`.batches`), the learning rate is a function of
the step, and dropout is off. A checkpoint holds the weights, the AdamW moments, the step and the
RNG states, so a run killed at any moment (even ``kill -9``) and resumed from its last checkpoint
ends with the same weights as one that never stopped.

Checkpoints are one safetensors file (tensors) with the rest as JSON in its metadata, written to
a temporary file and renamed: a crash leaves the previous checkpoint or the new one, never half
of one, and nothing is ever unpickled.

Multi-GPU: under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DDP, each rank takes
rows ``rank::world`` of the same global batch, and rank 0 alone writes files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..errors import MixsurrogateError, RunsLogError
from ..runs import LOSS_PREFIX, SUM_TOLERANCE, WEIGHT_PREFIX, append_run, read_frame
from .batches import WindowSampler, mixture_sampler
from .corpus_store import Corpus
from .evalsets import EvalSuite, build_eval_suite
from .lm_eval import eval_losses
from .model import (
    build_model,
    count_params,
    load_trained,
    next_token_loss,
    save_trained,
    select_device,
)
from .presets import Preset

CHECKPOINT_FORMAT = "mixsurrogate-checkpoint/1"
POSTFIX_EVERY = 10  # steps between progress-bar loss readings (a GPU sync each)
EMA_BETA = 0.95  # the progress bar's loss averages about the last 1 / (1 - 0.95) = 20 steps


class CheckpointError(MixsurrogateError):
    """A checkpoint is unreadable or belongs to another preset, seed, target or tokenizer."""


@dataclass
class TrainResult:
    steps: int
    tokens: int
    final_loss: float  # mean batch loss of the last POSTFIX_EVERY steps
    seconds: float
    resumed_from: int
    smoothed_loss: float = float("nan")  # SmoothedLoss at the end: what the progress bar showed

    @property
    def tokens_per_s(self) -> float:
        done = (self.steps - self.resumed_from) * (self.tokens / max(self.steps, 1))
        return done / self.seconds if self.seconds > 0 else float("nan")


def distributed() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def learning_rate(preset: Preset, step: int) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``min_lr`` at the last step."""
    t = preset.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    span = max(1, preset.steps - t.warmup_steps)
    progress = min(1.0, (step - t.warmup_steps) / span)
    return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1 + math.cos(math.pi * progress))


def make_optimizer(model: torch.nn.Module, preset: Preset) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (biases and norms are exempt)."""
    t = preset.train
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": t.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.AdamW(groups, lr=t.lr, betas=(t.beta1, t.beta2), fused=fused or None)


# --- checkpoints --------------------------------------------------------------------------------


def save_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int, identity: dict
) -> None:
    """Weights, optimiser moments, RNG states and step in one file, replaced atomically."""
    tensors = {f"model.{n}": p.detach().contiguous() for n, p in model.named_parameters()}
    state = optimizer.state_dict()
    for index, slots in state["state"].items():
        for key, value in slots.items():
            tensors[f"optim.{index}.{key}"] = value.detach().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    meta = {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        "identity": identity,
        "param_groups": state["param_groups"],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(
            {k: v.cpu() for k, v in tensors.items()}, str(tmp), metadata={"state": json.dumps(meta)}
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def recovery_hint(path: Path) -> str:
    """How to get past a damaged checkpoint: it is replaced in place, so no older one is kept."""
    return (
        f"delete {path} and rerun: the run restarts from step 0 (a checkpoint is replaced in "
        "place, so there is no older one to resume from)"
    )


def read_checkpoint_meta(path: Path) -> dict:
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["state"])
    except Exception as err:  # safetensors raises its own error types for damaged files
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({err}); {recovery_hint(path)}"
        ) from err
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a mixsurrogate checkpoint; {recovery_hint(path)}")
    return meta


def check_identity(path: Path, found: dict, expected: dict) -> None:
    """Refuse to resume a run of another preset (or seed, target, tokenizer): one clear line."""
    if found.get("preset_sha256") != expected["preset_sha256"]:
        raise CheckpointError(
            f"{path}: checkpoint of preset {found.get('preset')!r} (sha256 "
            f"{str(found.get('preset_sha256'))[:12]}), not of preset {expected['preset']!r} "
            f"({expected['preset_sha256'][:12]}); resume with that preset or delete the checkpoint"
        )
    for key in sorted(expected):
        if found.get(key) != expected[key]:
            raise CheckpointError(
                f"{path}: checkpoint has {key}={found.get(key)!r}, this run has {expected[key]!r}; "
                "resume with the same settings or delete the checkpoint"
            )


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, identity: dict
) -> int:
    """Restore a checkpoint written by :func:`save_checkpoint`; returns the step to resume at."""
    meta = read_checkpoint_meta(path)
    check_identity(path, meta.get("identity", {}), identity)
    device = next(model.parameters()).device
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 - not a dict
    except Exception as err:  # as in read_checkpoint_meta: a damaged file past its header
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({err}); {recovery_hint(path)}"
        ) from err
    names = [n for n, _ in model.named_parameters()]
    if sorted(f"model.{n}" for n in names) != sorted(k for k in tensors if k.startswith("model.")):
        raise CheckpointError(
            f"{path}: weights do not match this model's shape; {recovery_hint(path)}"
        )
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(tensors[f"model.{n}"])
    slots: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            slots.setdefault(int(index), {})[name] = value if name == "step" else value.to(device)
    optimizer.load_state_dict({"state": slots, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    return int(meta["step"])


# --- the loop -----------------------------------------------------------------------------------


class SmoothedLoss:
    """Exponential moving average of the batch losses, bias-corrected as Adam's moments are.

    One batch's loss jumps with the batch drawn; the average over about ``1 / (1 - beta)``
    steps shows the trend. It stays on the device, so an update costs no GPU sync.
    """

    def __init__(self, beta: float = EMA_BETA, device: torch.device | str = "cpu") -> None:
        self.beta = beta
        self.steps = 0
        self._ema = torch.zeros((), dtype=torch.float32, device=device)

    def update(self, loss: torch.Tensor) -> None:
        self._ema.mul_(self.beta).add_(loss.detach().float(), alpha=1 - self.beta)
        self.steps += 1

    def value(self) -> float:
        """The smoothed loss (NaN before the first update); a GPU sync."""
        if not self.steps:
            return float("nan")
        return float(self._ema) / (1 - self.beta**self.steps)


def train_loop(
    model: torch.nn.Module,
    sampler: WindowSampler,
    preset: Preset,
    device: torch.device,
    identity: dict,
    checkpoint: Path | None = None,
    desc: str = "train",
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` for the preset's steps, resuming from ``checkpoint`` when it exists."""
    rank, world = distributed()
    if preset.train.batch_size % world:
        raise MixsurrogateError(
            f"batch_size {preset.train.batch_size} is not divisible by {world} ranks"
        )
    model.to(device).train()
    optimizer = make_optimizer(model, preset)
    start = 0
    if checkpoint is not None and checkpoint.is_file():
        start = load_checkpoint(checkpoint, model, optimizer, identity)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    total = preset.steps
    bar = tqdm(
        total=total, initial=start, desc=desc, unit="step", disable=not progress or rank != 0,
        dynamic_ncols=True, leave=False,
    )  # fmt: skip
    began = time.perf_counter()
    losses: list[torch.Tensor] = []
    loss_value = float("nan")
    smoothed = SmoothedLoss(device=device)
    for step in range(start, total):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(preset, step)
        windows = sampler.batch(step, rank, world).to(device, non_blocking=True)
        with autocast:
            loss = next_token_loss(net, windows)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), preset.train.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.detach())
        smoothed.update(loss)
        done = step + 1
        if done % POSTFIX_EVERY == 0 or done == total:
            loss_value = float(torch.stack(losses).mean())
            losses.clear()
            rate = (done - start) * preset.tokens_per_step / (time.perf_counter() - began)
            postfix = {"loss(ema)": f"{smoothed.value():.3f}", "tok_s": f"{rate:,.0f}"}
            bar.set_postfix(postfix, refresh=False)
        bar.update(1)
        if checkpoint is not None and done % preset.train.checkpoint_every == 0 and done < total:
            if rank == 0:
                save_checkpoint(checkpoint, model, optimizer, done, identity)
            barrier()
    bar.close()
    smoothed_value = smoothed.value()
    if world > 1:  # each rank saw its own rows: report the loss of the global batch
        mean = torch.tensor([loss_value, smoothed_value], dtype=torch.float64, device=device)
        dist.all_reduce(mean)
        loss_value, smoothed_value = (float(v) / world for v in mean)
    seconds = time.perf_counter() - began
    return TrainResult(
        total, total * preset.tokens_per_step, loss_value, seconds, start, smoothed_value
    )


# --- what gets trained --------------------------------------------------------------------------

EXPERT_FORMAT = "mixsurrogate-expert/1"
META_FILE = "meta.json"


def _identity(preset: Preset, corpus: Corpus, seed: int, target: str) -> dict:
    return {
        "preset": preset.name,
        "preset_sha256": preset.sha256,
        "seed": seed,
        "target": target,
        "tokenizer_sha256": corpus.tokenizer_sha256,
    }


def _model_facts(model: torch.nn.Module) -> dict:
    total, non_embedding = count_params(model)
    return {"params": total, "non_embedding_params": non_embedding}


def read_expert_meta(folder: Path) -> dict | None:
    """The meta.json of a finished expert, or None while it is unfinished."""
    path = folder / META_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise MixsurrogateError(f"{path}: invalid JSON ({err})") from err


def train_experts(
    corpus_dir: str | Path,
    preset: Preset,
    out: str | Path,
    domains: list[str] | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
) -> list[dict]:
    """One expert per domain into ``out/<domain>/`` (model.safetensors, config.json, meta.json).

    Finished experts are skipped and unfinished ones resume from ``out/.<domain>.checkpoint``;
    every domain is validated before any training, so bad input writes nothing.
    """
    corpus = Corpus.load(corpus_dir)
    out = Path(out)
    domains = list(domains) if domains else corpus.domains
    corpus.check_domains(domains)
    samplers = {
        d: mixture_sampler(corpus, {d: 1.0}, preset.model.context, preset.train.batch_size, seed)
        for d in domains
    }
    for d in domains:
        meta = read_expert_meta(out / d)
        if meta and meta.get("preset_sha256") != preset.sha256:
            raise CheckpointError(
                f"{out / d}: expert of preset {meta.get('preset', {}).get('name')!r}, not "
                f"{preset.name!r}; use another OUT folder"
            )
    dev = select_device(device)
    rank, _ = distributed()
    results = []
    for d in domains:
        meta = read_expert_meta(out / d)
        if meta is not None:
            results.append({**meta, "skipped": True})
            continue
        identity = _identity(preset, corpus, seed, f"expert:{d}")
        model = build_model(preset, corpus.vocab_size, corpus.eos_id, seed)
        checkpoint = out / f".{d}.checkpoint.safetensors"
        result = train_loop(
            model, samplers[d], preset, dev, identity, checkpoint, f"expert {d}", progress
        )
        meta = {
            "format": EXPERT_FORMAT,
            "domain": d,
            "preset": preset.to_dict(),
            "preset_sha256": preset.sha256,
            "seed": seed,
            "tokenizer_sha256": corpus.tokenizer_sha256,
            "vocab_size": corpus.vocab_size,
            "eos_id": corpus.eos_id,
            "corpus": str(corpus.root.resolve()),
            **_model_facts(model),
            "steps": result.steps,
            "tokens": result.tokens,
            "final_train_loss": result.final_loss,
            "smoothed_train_loss": result.smoothed_loss,
            "seconds": round(result.seconds, 2),
            "tokens_per_s": round(result.tokens_per_s, 1),
            "resumed_from_step": result.resumed_from,
            "device": str(dev),
        }
        if rank == 0:
            _publish_expert(model, meta, out / d)
            checkpoint.unlink(missing_ok=True)
        barrier()
        results.append({**meta, "skipped": False})
    return results


def _publish_expert(model: torch.nn.Module, meta: dict, folder: Path) -> None:
    """Write into a temporary sibling and rename: an expert folder is complete or absent."""
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save_trained(model, tmp)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        shutil.rmtree(folder, ignore_errors=True)  # a stale, unfinished folder (no meta.json)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Mixture:
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
    mixtures = []
    for row, run_id in enumerate(ids):
        w = weights[row]
        if not np.isfinite(w).all() or (w < 0).any() or abs(w.sum() - 1) > SUM_TOLERANCE:
            raise MixsurrogateError(f"{path}: run {run_id}: weights must be >= 0 and sum to 1")
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
            identity = _identity(preset, corpus, run_seed, target)
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
                "params": _model_facts(model)["params"],
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
