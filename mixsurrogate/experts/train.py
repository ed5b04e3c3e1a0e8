"""The training loop (nanoGPT-style, readable in one sitting) and the experts it trains.

Deterministic given the seed: the initial weights come from ``torch.manual_seed(seed)`` and the
batch of step ``s`` from ``(seed, s)`` (see :mod:`.batches`), the learning rate is a function of
the step, and dropout is off, so a run resumed from a checkpoint (see :mod:`.checkpoints`) ends
with the same weights as one that never stopped. Finished experts are written by
:mod:`.publish`; proxy runs on mixtures live in :mod:`.proxy_runs`.

Multi-GPU: under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DDP, each rank takes
rows ``rank::world`` of the same global batch, and rank 0 alone writes files.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ..corpus.store import Corpus
from ..errors import MixsurrogateError
from .batches import WindowSampler, mixture_sampler
from .checkpoints import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint_meta,
    run_identity,
    save_checkpoint,
)
from .model import build_model, next_token_loss, select_device
from .presets import Preset
from .publish import EXPERT_FORMAT, model_facts, publish_expert, read_expert_meta
from .snapshots import (
    missing_snapshots,
    save_snapshot,
    snapshot_name,
    snapshot_records,
    snapshot_steps,
)

POSTFIX_EVERY = 10  # steps between progress-bar loss readings (a GPU sync each)
EMA_BETA = 0.95  # the progress bar's loss averages about the last 1 / (1 - 0.95) = 20 steps


@dataclass
class TrainResult:
    """What a finished (or resumed) run reports: recorded in expert meta and runs-log rows."""

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
    """Wait for every rank (a no-op on one process), so nobody reads a file rank 0 is writing."""
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
    eval_every: int = 0,
    on_eval: Callable[[int], None] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train ``model`` for the preset's steps, resuming from ``checkpoint`` when it exists.

    With ``eval_every`` N > 0, ``on_eval(step)`` is called on every rank after steps N, 2N, ...
    before the last (the caller evaluates the final model itself); a resumed run calls it only
    for the steps it trains. ``on_eval`` must leave ``model`` in training mode. ``on_step(done)``
    is called after every optimiser step, before that step's checkpoint (budget snapshots); it
    must not change the model, the optimiser or any random state.
    """
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
        if on_step is not None:
            on_step(done)
        if on_eval is not None and eval_every > 0 and done % eval_every == 0 and done < total:
            on_eval(done)
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


# --- experts ----------------------------------------------------------------------------------


def train_experts(
    corpus_dir: str | Path,
    preset: Preset,
    out: str | Path,
    domains: list[str] | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    checkpoints: tuple[float, ...] | None = None,
) -> list[dict]:
    """One expert per domain into ``out/<domain>/`` (model.safetensors, config.json, meta.json).

    Finished experts are skipped and unfinished ones resume from ``out/.<domain>.checkpoint``;
    every domain is validated before any training, so bad input writes nothing.
    ``checkpoints``: budget fractions (:func:`.snapshots.parse_checkpoints`) whose weights are
    also saved, in ``out/<domain>/snapshots/`` (see :mod:`.snapshots`).
    """
    corpus = Corpus.load(corpus_dir)
    out = Path(out)
    domains = list(domains) if domains else corpus.domains
    corpus.check_domains(domains)
    samplers = {
        d: mixture_sampler(corpus, {d: 1.0}, preset.model.context, preset.train.batch_size, seed)
        for d in domains
    }
    steps = snapshot_steps(checkpoints, preset.steps, preset.name) if checkpoints else []
    records = (
        snapshot_records(checkpoints, steps, preset.steps, preset.tokens_per_step)
        if steps
        else None
    )
    wanted = {s for s in steps if s < preset.steps}  # the last is the expert itself
    for d in domains:
        meta = read_expert_meta(out / d)
        if meta and records and meta.get("snapshots") != records:
            raise CheckpointError(
                f"{out / d}: a finished expert without these --checkpoints (it has "
                f"{len(meta.get('snapshots') or [])} snapshots); use another OUT folder or "
                "delete it to train it again"
            )
        if meta and meta.get("format") != EXPERT_FORMAT:
            raise CheckpointError(
                f"{out / d}: not an expert trained here (format {meta.get('format')!r}, e.g. a "
                "model recorded by 'experts import'); use another OUT folder"
            )
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
        identity = run_identity(preset, corpus, seed, f"expert:{d}")
        model = build_model(preset, corpus.vocab_size, corpus.eos_id, seed)
        checkpoint = out / f".{d}.checkpoint.safetensors"
        snap_dir = out / f".{d}.snapshots"
        if steps and checkpoint.is_file():
            resumed_at = int(read_checkpoint_meta(checkpoint).get("step", 0))
            lost = missing_snapshots(snap_dir, steps, resumed_at)
            if lost:
                raise CheckpointError(
                    f"{checkpoint}: resumes at step {resumed_at} but the snapshots of steps "
                    f"{', '.join(map(str, lost))} were never saved (a run without these "
                    "--checkpoints); delete the checkpoint to train this expert from step 0"
                )

        def snapshot(done: int, model=model, snap_dir=snap_dir) -> None:
            if done in wanted and rank == 0:
                save_snapshot(snap_dir, model, done)

        result = train_loop(
            model, samplers[d], preset, dev, identity, checkpoint, f"expert {d}", progress,
            on_step=snapshot if wanted else None,
        )  # fmt: skip
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
            **model_facts(model),
            "steps": result.steps,
            "tokens": result.tokens,
            "final_train_loss": result.final_loss,
            "smoothed_train_loss": result.smoothed_loss,
            "seconds": round(result.seconds, 2),
            "tokens_per_s": round(result.tokens_per_s, 1),
            "resumed_from_step": result.resumed_from,
            "device": str(dev),
        }
        if records:
            meta["snapshots"] = records
        files = {f"snapshots/{snapshot_name(s)}": snap_dir / snapshot_name(s) for s in wanted}
        if rank == 0:
            publish_expert(model, meta, out / d, files)
            checkpoint.unlink(missing_ok=True)
            shutil.rmtree(snap_dir, ignore_errors=True)
        barrier()
        results.append({**meta, "skipped": False})
    return results
