"""Tokens/s of our training loop against a bare torch loop: same model, batch, data, threads.

Our loop (``mixsurrogate.experts.train.train_loop``) adds what a real run needs: the batch
sampler, the learning-rate schedule, gradient clipping, the progress bar and checkpoints. The
bare loop is forward, cross-entropy, backward, AdamW step on pre-drawn batches. The two are run
alternately (``--repeats`` rounds) so load from other processes hits both alike, and the median
tokens/s of each is compared (target: ours >= 95% of bare). Checkpoint writes are timed on
their own and amortised over the preset's checkpoint interval.

``--expert`` also trains one full expert with the preset and reports its wall time. Data are a
synthetic Zipf-distributed token stream over the preset's vocabulary (speed does not depend on
the text) unless ``--corpus`` names a built corpus.

    python bench/train_speed.py --preset tiny-cpu --steps 12 --repeats 3 --expert
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mixsurrogate.experts.batches import mixture_sampler
from mixsurrogate.experts.checkpoints import save_checkpoint
from mixsurrogate.experts.corpus_store import CORPUS_FORMAT, Corpus, token_path, write_token_stream
from mixsurrogate.experts.evalsets import build_eval_suite
from mixsurrogate.experts.lm_eval import eval_losses
from mixsurrogate.experts.model import build_model, count_params, next_token_loss, select_device
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.train import make_optimizer, train_experts, train_loop

RESULTS = Path(__file__).parent / "results"


def synthetic_corpus(root: Path, vocab: int, train_tokens: int, val_tokens: int) -> Path:
    """Two domains of Zipf-distributed ids; a byte-level tokenizer file only for its hash."""
    rng = np.random.default_rng(0)
    from tokenizers import Tokenizer, models

    tokenizer = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    tokenizer.save(str(root / "tokenizer.json"))
    domains = {}
    for d in ("a", "b"):
        for split, n in (("train", train_tokens), ("val", val_tokens)):
            ids = np.minimum(rng.zipf(1.2, n) - 1, vocab - 1)
            write_token_stream(token_path(root, d, split), ids)
        domains[d] = {"tokens": {"train": train_tokens, "val": val_tokens}}
    manifest = {
        "format": CORPUS_FORMAT,
        "tokenizer": {
            "file": "tokenizer.json",
            "sha256": "synthetic",
            "vocab_size": vocab,
            "eos_id": 0,
        },
        "domains": domains,
        "tasks": {},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def bare_loop(model: torch.nn.Module, batches: list[torch.Tensor], preset, device) -> float:
    """Seconds for the bare loop over ``batches``."""
    t = preset.train
    opt = torch.optim.AdamW(
        model.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), weight_decay=t.weight_decay
    )
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    model.to(device).train()
    sync(device)
    began = time.perf_counter()
    for x in batches:
        x = x.to(device, non_blocking=True)
        with autocast:
            loss = next_token_loss(model, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync(device)
    return time.perf_counter() - began


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_per_token(preset, non_embedding: int, vocab: int) -> float:
    """Training FLOPs per token: 6 x (matmul params incl. the LM head) + attention scores."""
    m = preset.model
    return 6 * (non_embedding + vocab * m.n_embd) + 12 * m.n_layer * m.context * m.n_embd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-cpu")
    parser.add_argument("--steps", type=int, default=12, help="optimiser steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds (median kept)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="auto")
    parser.add_argument("--corpus", help="a built corpus (default: synthetic Zipf tokens)")
    parser.add_argument(
        "--vocab", type=int, default=4096, help="vocabulary of the synthetic corpus"
    )
    parser.add_argument("--expert", action="store_true", help="also time one full expert + eval")
    parser.add_argument(
        "--peak-tflops", type=float, default=None, help="for MFU on a GPU (H100 bf16 dense: 989)"
    )
    parser.add_argument(
        "--out", default=str(RESULTS / "train_speed"), help="results path without suffix"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    preset = load_preset(args.preset)
    device = select_device(args.device)
    tmp = Path(tempfile.mkdtemp(prefix="train_speed."))
    if args.corpus:
        corpus = Corpus.load(args.corpus)
    else:
        need = max(4_000_000, 40 * preset.tokens_per_step)
        corpus = Corpus.load(synthetic_corpus(tmp, args.vocab, need, 100_000))
    domains = corpus.domains
    weights = {d: 1 / len(domains) for d in domains}
    ctx, batch = preset.model.context, preset.train.batch_size
    sampler = mixture_sampler(corpus, weights, ctx, batch, seed=0)
    bench_preset = dataclasses.replace(
        preset, train=dataclasses.replace(preset.train, tokens=args.steps * preset.tokens_per_step)
    )
    batches = [sampler.batch(s) for s in range(args.steps)]
    identity = {
        "preset": preset.name,
        "preset_sha256": preset.sha256,
        "seed": 0,
        "target": "bench",
        "tokenizer_sha256": "-",
    }
    load_before = os.getloadavg()

    tokens = args.steps * preset.tokens_per_step
    cpu_rates: dict[str, list[float]] = {"bare": [], "ours": []}

    def run_bare() -> float:
        model = build_model(preset, corpus.vocab_size, corpus.eos_id, 0)
        cpu = time.process_time()
        rate = tokens / bare_loop(model, batches, preset, device)
        cpu_rates["bare"].append(tokens / (time.process_time() - cpu))
        return rate

    def run_ours(r: int) -> float:
        model = build_model(preset, corpus.vocab_size, corpus.eos_id, 0)
        sync(device)
        began, cpu = time.perf_counter(), time.process_time()
        ckpt = tmp / f"ckpt{r}.safetensors"
        train_loop(model, sampler, bench_preset, device, identity, ckpt, desc="ours", progress=True)
        sync(device)
        cpu_rates["ours"].append(tokens / (time.process_time() - cpu))
        return tokens / (time.perf_counter() - began)

    bare_loop(build_model(preset, corpus.vocab_size, corpus.eos_id, 0), batches[:2], preset, device)
    ours, bare = [], []
    for r in range(args.repeats):  # alternate which loop goes first, after an untimed warm-up
        if r % 2:
            ours.append(run_ours(r))
            bare.append(run_bare())
        else:
            bare.append(run_bare())
            ours.append(run_ours(r))
        print(f"round {r}: bare {bare[-1]:,.0f} tok/s, ours {ours[-1]:,.0f} tok/s", file=sys.stderr)

    model = build_model(preset, corpus.vocab_size, corpus.eos_id, 0).to(device)
    opt = make_optimizer(model, preset)
    next_token_loss(model, batches[0].to(device)).backward()
    opt.step()
    began = time.perf_counter()
    for _ in range(3):
        save_checkpoint(tmp / "ckpt.safetensors", model, opt, 1, identity)
    checkpoint_s = (time.perf_counter() - began) / 3
    step_s = preset.tokens_per_step / statistics.median(ours)
    checkpoint_share = checkpoint_s / (checkpoint_s + preset.train.checkpoint_every * step_s)

    total, non_embedding = count_params(model)
    result = {
        "preset": preset.name,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "torch": torch.__version__,
        "data": args.corpus or f"synthetic Zipf tokens, vocab {args.vocab}",
        "params": total,
        "non_embedding_params": non_embedding,
        "batch_size": batch,
        "context": ctx,
        "steps_per_measurement": args.steps,
        "repeats": args.repeats,
        "bare_tokens_per_s": [round(v, 1) for v in bare],
        "ours_tokens_per_s": [round(v, 1) for v in ours],
        "bare_median": round(statistics.median(bare), 1),
        "ours_median": round(statistics.median(ours), 1),
        "ratio": round(statistics.median(ours) / statistics.median(bare), 4),
        "paired_ratios": [round(o / b, 4) for o, b in zip(ours, bare, strict=True)],
        "paired_ratio_median": round(
            statistics.median(o / b for o, b in zip(ours, bare, strict=True)), 4
        ),
        # tokens per CPU-second of this process: robust to other processes taking the cores
        # (with one thread it is the cleanest measure of the work each loop does)
        "bare_cpu_tokens_per_s": [round(v, 1) for v in cpu_rates["bare"]],
        "ours_cpu_tokens_per_s": [round(v, 1) for v in cpu_rates["ours"]],
        "cpu_time_ratio": round(
            statistics.median(cpu_rates["ours"]) / statistics.median(cpu_rates["bare"]), 4
        ),
        "checkpoint_seconds": round(checkpoint_s, 4),
        "checkpoint_share_of_time": round(checkpoint_share, 5),
        "ratio_with_checkpoints": round(
            statistics.median(ours) * (1 - checkpoint_share) / statistics.median(bare), 4
        ),
        "flops_per_token": flops_per_token(preset, non_embedding, corpus.vocab_size),
        "load_average_before_after": [
            [round(v, 2) for v in load_before],
            [round(v, 2) for v in os.getloadavg()],
        ],
    }
    result["achieved_gflops"] = round(result["flops_per_token"] * result["ours_median"] / 1e9, 2)
    if args.peak_tflops:
        result["mfu"] = round(result["achieved_gflops"] / 1e3 / args.peak_tflops, 4)
    if args.expert:
        began = time.perf_counter()
        train_experts(
            corpus.root, preset, tmp / "experts", [domains[0]], seed=0, device=args.device
        )
        result["expert_wall_seconds"] = round(time.perf_counter() - began, 1)
        suite = build_eval_suite(corpus, ctx, preset.eval.val_sequences, preset.eval.task_items)
        from mixsurrogate.experts.model import load_trained

        trained = load_trained(tmp / "experts" / domains[0], device)
        began = time.perf_counter()
        eval_losses(trained, suite, preset.eval.batch_size, device)
        result["eval_seconds_per_run"] = round(time.perf_counter() - began, 2)
        result["eval_tokens"] = int(sum(s.mask.size for s in suite.sets.values()))
        result["expert_tokens"] = preset.steps * preset.tokens_per_step
    write_results(result, Path(args.out))
    print(json.dumps(result, indent=2))


def write_results(r: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(r, indent=2) + "\n")
    lines = [
        f"# Training-loop speed: preset `{r['preset']}` on {r['device']}",
        "",
        f"Machine: {r['cpu_count']} CPU cores ({r['cpu']}), {r['threads']} torch threads, torch {r['torch']}"
        + (
            f", GPU {r['gpu']}"
            if r["gpu"]
            else "; no GPU was available in this session, so no GPU numbers (tokens/s, MFU) are recorded."
        ),
        f"Model: {r['params']:,} parameters ({r['non_embedding_params']:,} non-embedding), "
        f"batch {r['batch_size']} x context {r['context']}; data: {r['data']}.",
        f"Load average (1/5/15 min) before and after: {r['load_average_before_after']} "
        "(the machine is shared; both loops are measured alternately so load hits them alike).",
        "",
        "| loop | tokens/s (median) | per round |",
        "|---|---|---|",
        f"| bare torch (forward, CE, backward, AdamW) | {r['bare_median']:,.0f} | {', '.join(f'{v:,.0f}' for v in r['bare_tokens_per_s'])} |",
        f"| ours (`train_loop`: sampler, LR schedule, clipping, progress bar) | {r['ours_median']:,.0f} | {', '.join(f'{v:,.0f}' for v in r['ours_tokens_per_s'])} |",
        "",
        f"**Ratio ours / bare: {r['ratio']:.3f}** (target >= 0.95; median of the per-round ratios "
        f"{r['paired_ratio_median']:.3f}, rounds: {', '.join(f'{v:.2f}' for v in r['paired_ratios'])}); with checkpoint writes "
        f"({r['checkpoint_seconds']:.3f} s each, every checkpoint interval; {100 * r['checkpoint_share_of_time']:.2f}% of the time): "
        f"{r['ratio_with_checkpoints']:.3f}.",
        f"Per CPU-second of this process (less sensitive to other processes on the cores, though "
        f"with several threads OpenMP spin-waiting under load inflates it): bare "
        f"{statistics.median(r['bare_cpu_tokens_per_s']):,.0f}, ours {statistics.median(r['ours_cpu_tokens_per_s']):,.0f} tokens, "
        f"**ratio {r['cpu_time_ratio']:.3f}**.",
        f"Throughput: {r['achieved_gflops']} GFLOP/s at {r['flops_per_token'] / 1e6:.2f} MFLOP per training token"
        + (f", MFU {100 * r['mfu']:.1f}%." if "mfu" in r else "."),
    ]
    if "expert_wall_seconds" in r:
        lines += [
            "",
            f"One full `{r['preset']}` expert ({r['expert_tokens']:,} tokens) took **{r['expert_wall_seconds']:.0f} s** wall time; "
            f"evaluating one proxy model on every evaluation set ({r['eval_tokens']:,} positions) took {r['eval_seconds_per_run']:.1f} s.",
        ]
    lines += ["", "Command: `python bench/train_speed.py " + " ".join(sys.argv[1:]) + "`", ""]
    out.with_suffix(".md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
