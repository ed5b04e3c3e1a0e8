"""Tokens/s of our training loop against a bare torch loop: same model, batch, data, threads.

Our loop (``mixsurrogate.experts.train.train_loop``) adds what a real run needs: the batch
sampler, the learning-rate schedule, gradient clipping, the progress bar and checkpoints. The
bare loop is forward, cross-entropy, backward, AdamW step on pre-drawn batches.

The machine is shared and its speed drifts 2-5x with load, so one ratio of two medians taken
minutes apart is noise (the previous run: 1.04x, rounds from 0.78 to 1.68). Each round here is
bare, ours, ours, bare (ours first on odd rounds) with ``--steps`` steps per measurement and a
fresh model each, so a linear drift cancels within the round; the ratio of a round is its
summed bare time over its summed ours time (same tokens), and the report is the median of the
rounds' ratios with a bootstrap 95% interval and the min-max (target: ours >= 0.95 x bare; an
interval that holds 1 means no difference within noise). Checkpoint writes are timed on their
own and amortised over the preset's checkpoint interval.

``--expert`` also trains one full expert with the preset and reports its wall time. Data are a
synthetic Zipf-distributed token stream over the preset's vocabulary (speed does not depend on
the text) unless ``--corpus`` names a built corpus.

    python bench/train_speed.py --preset tiny-cpu                 # 6 rounds x 4 x 3 steps
    python bench/train_speed.py --preset tiny-cpu --rounds 3 --expert
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

from mixsurrogate.corpus.evalsets import build_eval_suite
from mixsurrogate.corpus.store import CORPUS_FORMAT, Corpus, token_path, write_token_stream
from mixsurrogate.experts.batches import mixture_sampler
from mixsurrogate.experts.checkpoints import save_checkpoint
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


def interval(x: list[float], seed: int = 0, n_boot: int = 2000) -> dict:
    """Median, bootstrap 95% interval of the median, and min-max of per-round values."""
    a = np.asarray(x, dtype=float)
    boot = np.median(np.random.default_rng(seed).choice(a, (n_boot, len(a))), axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {
        "median": round(float(np.median(a)), 4),
        "ci95": [round(float(lo), 4), round(float(hi), 4)],
        "min": round(float(a.min()), 4),
        "max": round(float(a.max()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-cpu")
    parser.add_argument("--steps", type=int, default=3, help="optimiser steps per measurement")
    parser.add_argument(
        "--rounds", type=int, default=6, help="rounds of bare, ours, ours, bare (or mirrored)"
    )
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

    t_start = time.perf_counter()
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
    runs = iter(range(1_000_000))  # a fresh checkpoint path per run of ours: never a resume

    def run_bare() -> tuple[float, float]:
        """(wall, CPU) seconds of the bare loop on a fresh model."""
        model = build_model(preset, corpus.vocab_size, corpus.eos_id, 0)
        cpu = time.process_time()
        wall = bare_loop(model, batches, preset, device)
        return wall, time.process_time() - cpu

    def run_ours(run_preset=bench_preset) -> tuple[float, float]:
        """(wall, CPU) seconds of ``train_loop`` on a fresh model, its set-up included."""
        model = build_model(preset, corpus.vocab_size, corpus.eos_id, 0)
        sync(device)
        began, cpu = time.perf_counter(), time.process_time()
        ckpt = tmp / f"ckpt{next(runs)}.safetensors"
        train_loop(model, sampler, run_preset, device, identity, ckpt, desc="ours", progress=True)
        sync(device)
        return time.perf_counter() - began, time.process_time() - cpu

    # untimed warm-up of both loops (allocator, threads, first-call imports)
    bare_loop(build_model(preset, corpus.vocab_size, corpus.eos_id, 0), batches[:2], preset, device)
    one_step = dataclasses.replace(
        preset, train=dataclasses.replace(preset.train, tokens=preset.tokens_per_step)
    )
    run_ours(one_step)
    times: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": []}
    rounds = []
    for r in range(args.rounds):
        order = ["bare", "ours", "ours", "bare"] if r % 2 == 0 else ["ours", "bare", "bare", "ours"]
        got: dict[str, list[tuple[float, float]]] = {"bare": [], "ours": []}
        for name in order:
            got[name].append(run_bare() if name == "bare" else run_ours())
        for name in got:
            times[name] += got[name]
        wall = {k: sum(w for w, _ in v) for k, v in got.items()}
        cpu = {k: sum(c for _, c in v) for k, v in got.items()}
        rounds.append(
            {"ratio": wall["bare"] / wall["ours"], "cpu_ratio": cpu["bare"] / cpu["ours"]}
        )
        print(
            f"round {r + 1}/{args.rounds}: bare {2 * tokens / wall['bare']:,.0f} tok/s, "
            f"ours {2 * tokens / wall['ours']:,.0f} tok/s, ratio {rounds[-1]['ratio']:.3f}",
            file=sys.stderr,
        )
    bare = [tokens / w for w, _ in times["bare"]]
    ours = [tokens / w for w, _ in times["ours"]]
    ratio = interval([x["ratio"] for x in rounds])
    cpu_ratio = interval([x["cpu_ratio"] for x in rounds])

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
        "rounds": args.rounds,
        "steps_timed": 4 * args.steps * args.rounds,
        "bare_tokens_per_s": [round(v, 1) for v in bare],
        "ours_tokens_per_s": [round(v, 1) for v in ours],
        "bare_median": round(statistics.median(bare), 1),
        "ours_median": round(statistics.median(ours), 1),
        "round_ratios": [round(x["ratio"], 4) for x in rounds],
        "ratio": ratio,
        "within_noise": ratio["ci95"][0] <= 1.0 <= ratio["ci95"][1],
        "target_met": ratio["median"] >= 0.95,
        # tokens per CPU-second of this process: robust to other processes taking the cores,
        # though OpenMP threads spin-waiting under load inflate it
        "round_cpu_ratios": [round(x["cpu_ratio"], 4) for x in rounds],
        "cpu_ratio": cpu_ratio,
        "checkpoint_seconds": round(checkpoint_s, 4),
        "checkpoint_every": preset.train.checkpoint_every,
        "checkpoint_share_of_time": round(checkpoint_share, 5),
        "ratio_with_checkpoints": round(ratio["median"] * (1 - checkpoint_share), 4),
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
    result["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    result["command"] = "python bench/train_speed.py " + " ".join(sys.argv[1:])
    write_results(result, Path(args.out))
    print(json.dumps(result, indent=2))


def write_results(r: dict, out: Path) -> None:
    """The JSON as measured, and a page that leads with the interval, not a point estimate."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(r, indent=2) + "\n")
    ratio, cpu_ratio = r["ratio"], r["cpu_ratio"]
    gpu = (
        f", GPU {r['gpu']}"
        if r["gpu"]
        else "; no GPU in this session, so no GPU numbers (tokens/s, MFU) are recorded"
    )
    verdict = (
        "the interval holds 1: no difference within noise"
        if r["within_noise"]
        else "the interval excludes 1"
    )
    per_round = ", ".join(f"{v:.2f}" for v in r["round_ratios"])
    lines = [
        f"# Training-loop speed: preset `{r['preset']}` on {r['device']}",
        "",
        f"`{r['command']}` ({r['wall_seconds'] / 60:.1f} min). Machine: {r['cpu_count']} CPU "
        f"cores ({r['cpu']}), {r['threads']} torch threads, torch {r['torch']}{gpu}. "
        f"Model: {r['params']:,} parameters ({r['non_embedding_params']:,} non-embedding), "
        f"batch {r['batch_size']} x context {r['context']}; data: {r['data']}. Load average "
        f"(1/5/15 min) before and after: {r['load_average_before_after']} (a shared machine).",
        "",
        f"{r['rounds']} rounds of bare, ours, ours, bare (mirrored on odd rounds), "
        f"{r['steps_per_measurement']} optimiser steps per measurement on a fresh model: "
        f"{r['steps_timed']} timed steps. A round's ratio is its summed bare time over its "
        "summed ours time (same tokens), so load that drifts during a round hits both alike.",
        "",
        f"**Ours / bare tokens/s: {ratio['median']:.3f}, 95% interval {ratio['ci95'][0]:.3f}-"
        f"{ratio['ci95'][1]:.3f}** (bootstrap of the median over rounds; rounds {ratio['min']:.2f}"
        f"-{ratio['max']:.2f}: {per_round}); {verdict}. Target >= 0.95: "
        f"{'met' if r['target_met'] else 'missed'}. With checkpoint writes "
        f"({r['checkpoint_seconds']:.3f} s each, every {r['checkpoint_every']} steps; "
        f"{100 * r['checkpoint_share_of_time']:.2f}% of the time): {r['ratio_with_checkpoints']:.3f}.",
        "",
        "| loop | tokens/s: median (min-max over measurements) |",
        "|---|---|",
        f"| bare torch (forward, CE, backward, AdamW) | {r['bare_median']:,.0f} "
        f"({min(r['bare_tokens_per_s']):,.0f}-{max(r['bare_tokens_per_s']):,.0f}) |",
        f"| ours (`train_loop`: sampler, LR schedule, clipping, progress bar) | "
        f"{r['ours_median']:,.0f} ({min(r['ours_tokens_per_s']):,.0f}-"
        f"{max(r['ours_tokens_per_s']):,.0f}) |",
        "",
        "The absolute rates swing with the other processes on the two cores; only the ratios "
        "within rounds are comparable. Per CPU-second of this process (less sensitive to other "
        "processes, though OpenMP threads spin-waiting under load inflate it): ratio "
        f"{cpu_ratio['median']:.3f}, 95% interval {cpu_ratio['ci95'][0]:.3f}-"
        f"{cpu_ratio['ci95'][1]:.3f}.",
        f"Throughput: {r['achieved_gflops']} GFLOP/s at {r['flops_per_token'] / 1e6:.2f} MFLOP "
        "per training token" + (f", MFU {100 * r['mfu']:.1f}%." if "mfu" in r else "."),
    ]
    if "expert_wall_seconds" in r:
        lines += [
            "",
            f"One full `{r['preset']}` expert ({r['expert_tokens']:,} tokens) took "
            f"**{r['expert_wall_seconds']:.0f} s** wall time; evaluating one proxy model on every "
            f"evaluation set ({r['eval_tokens']:,} positions) took {r['eval_seconds_per_run']:.1f} s.",
        ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
