"""MDE evaluation speed vs a bare float32 ``np.log`` over the same mixtures x tokens elements.

    python bench/mde_speed.py                      # K=7, 1M tokens, 10,000 mixtures, 2 threads
    python bench/mde_speed.py --mixtures 1000      # quicker

The log is the one per-element operation no MDE evaluation can skip when done one token at a
time, so the target is ``time(token MDE) / time(np.log over M x T) <= 1.2``. Both run with the
same number of threads, and the mixtures are cut into slices timed alternately (ours, then the
log) so that load from other processes on a shared machine hits both alike. Writes
``bench/results/mde_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy.special import logsumexp
from threadpoolctl import threadpool_info, threadpool_limits

from mixsurrogate import mde
from mixsurrogate.scores import EvalSetScores
from mixsurrogate.simplex import dirichlet_simplex


def synthetic_scores(n_tokens: int, k: int, seq_len: int, seed: int) -> EvalSetScores:
    """Log-probs shaped like real experts': a shared per-token difficulty (mean 3 nats) that
    each expert rescales and perturbs, so experts agree on easy tokens and differ on hard ones."""
    rng = np.random.default_rng(seed)
    difficulty = rng.gamma(1.0, 3.0, size=n_tokens)
    scale = np.exp(0.3 * rng.standard_normal((k, n_tokens)))
    logp = -(difficulty * scale) + 0.3 * rng.standard_normal((k, n_tokens))
    logp = np.clip(logp, -40.0, 0.0).astype(np.float32)
    n_seq = n_tokens // seq_len
    return EvalSetScores(
        "synthetic",
        "val",
        logp[:, : n_seq * seq_len].reshape(k, n_seq, seq_len),
        np.ones((n_seq, seq_len), dtype=bool),
    )


def bare_log_seconds(n_elements: int, threads: int, tile: int) -> float:
    """``np.log`` of ``n_elements`` float32 values, ``threads`` workers on cache-sized tiles."""
    per = n_elements // threads

    def work(seed: int) -> None:
        src = np.random.default_rng(seed).uniform(0.05, 0.95, tile).astype(np.float32)
        dst = np.empty_like(src)
        left = per
        while left > 0:
            n = min(tile, left)
            np.log(src[:n], out=dst[:n])
            left -= n

    with ThreadPoolExecutor(threads) as pool:
        t0 = time.perf_counter()
        list(pool.map(work, range(threads)))
        return time.perf_counter() - t0


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def median_call(fn, arg, reps: int = 5) -> float:
    fn(arg)
    return float(np.median([timed(fn, arg) for _ in range(reps)]))


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = [
        f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return {
        "cpu": cpu,
        "cpus_available": mde.default_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tokens", type=int, default=1_000_000)
    ap.add_argument("--experts", type=int, default=7)
    ap.add_argument("--mixtures", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--slices", type=int, default=10)
    ap.add_argument("--seq-len", type=int, default=1000)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args()

    load_before = os.getloadavg()
    scores = synthetic_scores(args.tokens, args.experts, args.seq_len, args.seed)
    n_tok = scores.n_tokens
    W = dirichlet_simplex(args.mixtures, args.experts, alpha=1.0, seed=args.seed)
    slices = np.array_split(np.arange(len(W)), args.slices)

    precompute, evaluators = {}, {}
    for name, kind, window, fold in [
        ("token", "token", None, 16),
        ("token_no_fold", "token", None, 1),
        ("bayes", "bayes", None, 16),
        (f"window{args.window}", "window", args.window, 16),
    ]:
        t0 = time.perf_counter()
        evaluators[name] = mde.MDEEvaluator(
            scores, kind, window, threads=args.threads, max_fold=fold
        )
        precompute[name] = time.perf_counter() - t0

    # accuracy on the full token set: float32 engine vs float64 logsumexp references
    W_check = W[:4]
    lp = scores.token_logp().astype(np.float64)
    U = mde.check_weights(W_check, args.experts)[0]
    ref_token = np.array([-logsumexp(lp + np.log(u)[:, None], axis=0).mean() for u in U])
    seq_sum = scores.logp.astype(np.float64).sum(axis=2)
    ref_bayes = np.array(
        [-logsumexp(seq_sum + np.log(u)[:, None], axis=0).sum() / n_tok for u in U]
    )
    accuracy = {
        "token_max_abs_err_nats": float(
            np.abs(evaluators["token"].loss(W_check) - ref_token).max()
        ),
        "bayes_max_abs_err_nats": float(
            np.abs(evaluators["bayes"].loss(W_check) - ref_bayes).max()
        ),
    }

    tile = mde.TILE
    times = {name: 0.0 for name in evaluators} | {"np_log": 0.0}
    per_slice_ratio = []
    with threadpool_limits(1, user_api="blas"):
        for i, idx in enumerate(slices):
            Ws = W[idx]
            t_log = bare_log_seconds(len(idx) * n_tok, args.threads, tile)
            t_tok = timed(evaluators["token"].loss, Ws)
            times["np_log"] += t_log
            times["token"] += t_tok
            per_slice_ratio.append(t_tok / t_log)
            for name in ("token_no_fold", "bayes", f"window{args.window}"):
                times[name] += timed(evaluators[name].loss, Ws)
            print(
                f"slice {i + 1}/{len(slices)}: token {t_tok:.2f}s, np.log {t_log:.2f}s", flush=True
            )

    small = {}
    for m in (1, 32):
        Wm = W[:m]
        small[f"token_loss_M{m}_s"] = median_call(evaluators["token"].loss, Wm)
        small[f"token_loss_and_grad_M{m}_s"] = median_call(evaluators["token"].loss_and_grad, Wm)
        small[f"window_loss_M{m}_s"] = median_call(evaluators[f"window{args.window}"].loss, Wm)

    elements = len(W) * n_tok
    ratio = {name: times[name] / times["np_log"] for name in evaluators}
    result = {
        "machine": machine(),
        "threads": args.threads,
        "load_average_before_after": [list(load_before), list(os.getloadavg())],
        "experts": args.experts,
        "tokens": n_tok,
        "sequences": int(scores.mask.shape[0]),
        "mixtures": len(W),
        "elements": elements,
        "seconds": times,
        "ns_per_element": {k: v / elements * 1e9 for k, v in times.items()},
        "ratio_vs_np_log": ratio,
        "token_ratio_per_slice": {
            "min": min(per_slice_ratio),
            "median": float(np.median(per_slice_ratio)),
            "max": max(per_slice_ratio),
        },
        "target_ratio": 1.2,
        "target_met": ratio["token"] <= 1.2,
        "precompute_seconds": precompute,
        "small_batch_seconds": small,
        "accuracy_vs_float64": accuracy,
        "command": "python bench/mde_speed.py "
        + " ".join(
            f"--{k.replace('_', '-')} {v}"
            for k, v in vars(args).items()
            if k != "out" and v != ap.get_default(k)
        ),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mde_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "mde_speed.md").write_text(markdown(result, args.window))
    print(markdown(result, args.window))


def markdown(r: dict, window: int) -> str:
    s, ns, ratio = r["seconds"], r["ns_per_element"], r["ratio_vs_np_log"]
    m = r["machine"]
    rows = [
        ("bare float32 `np.log`, M x T elements", "np_log"),
        ("token MDE (`MDEEvaluator.loss`)", "token"),
        ("token MDE, fold disabled (one log per token)", "token_no_fold"),
        (f"windowed MDE, h = {window}", f"window{window}"),
        ("bayes (sequence-posterior) MDE", "bayes"),
    ]
    lines = [
        "# MDE evaluation speed",
        "",
        f"`{r['command'].strip()}` on {m['cpu']} ({m['cpus_available']} CPUs available), "
        f"{r['threads']} threads for both sides, numpy {m['numpy']}, BLAS {', '.join(m['blas'])}. "
        f"Load average before/after: {r['load_average_before_after'][0][0]:.1f} / "
        f"{r['load_average_before_after'][1][0]:.1f} (a shared machine).",
        "",
        f"K = {r['experts']} experts, T = {r['tokens']:,} counted tokens "
        f"({r['sequences']} sequences), M = {r['mixtures']:,} Dirichlet(1) mixtures: "
        f"{r['elements']:.2e} mixture x token elements.",
        "",
        "| evaluation | seconds | ns / element | ratio to `np.log` |",
        "|---|---:|---:|---:|",
    ]
    for label, key in rows:
        rr = "1.00" if key == "np_log" else f"{ratio[key]:.2f}"
        lines.append(f"| {label} | {s[key]:.2f} | {ns[key]:.2f} | {rr} |")
    ps = r["token_ratio_per_slice"]
    acc = r["accuracy_vs_float64"]
    small = r["small_batch_seconds"]
    lines += [
        "",
        f"**Token-level ratio: {ratio['token']:.2f}** (target <= {r['target_ratio']}; "
        f"{'met' if r['target_met'] else 'missed'}); per slice min {ps['min']:.2f}, "
        f"median {ps['median']:.2f}, max {ps['max']:.2f}. With one log per token (fold "
        f"disabled) it is {ratio['token_no_fold']:.2f}: the GEMM, the reduction and the "
        "tiling cost on top of the log, so the target is met only thanks to the fold.",
        "",
        "Why it can beat the log it is compared with: numpy's float32 `log` costs "
        f"{ns['np_log']:.1f} ns per element of wall time here with {r['threads']} threads "
        "(single-threaded it measured about 10x slower than numpy's SIMD `sqrt` on this AVX2 "
        "CPU), far more than the K-deep GEMM. The engine multiplies up to 16 mixture probabilities (each in "
        "[w_min, 1]) before taking one log, with the fold depth chosen per block of mixtures so "
        "the product stays a normal float32; the row without the fold shows the cost of one log "
        "per token. The windowed kind does two GEMMs and a division per token; the bayes kind "
        "telescopes to one term per sequence.",
        "",
        f"Accuracy on the full token set (4 mixtures, vs scipy float64 logsumexp): token "
        f"{acc['token_max_abs_err_nats']:.1e} nats, bayes {acc['bayes_max_abs_err_nats']:.1e} "
        "nats.",
        "",
        "Precompute (once per evaluation set): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in r["precompute_seconds"].items())
        + ".",
        "",
        "Small batches over all tokens (optimiser loops): "
        + ", ".join(f"{k[:-2]} {v * 1e3:.1f} ms" for k, v in small.items())
        + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
