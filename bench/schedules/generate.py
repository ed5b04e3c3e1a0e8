"""Generate issue 22's benchmark data: single-phase and two-phase proxy runs on a corpus with one
domain too small for the budget (so it repeats), seed repeats for the noise floor, and
repetition-matched vs unmatched proxies at a quarter of the tokens.

Plan (every run trains with the same cap: ``--cap books=60000`` keeps the first 60k unique
tokens of ``books``' training stream, recorded in each row's ``unique:books`` cell; at the
``bench-cpu`` budget of 1M tokens a run with books weight w sees it about 17 w times):

1. ``runs.csv``: ``--sobol`` (20) single-phase Sobol mixtures ``sobol-000..`` (seed j) and
   ``--schedules`` (20) two-phase Sobol schedules ``sched-000..`` (last phase ``--share`` 0.2 of
   the tokens, rounded to whole steps; seed 1000 + j), in the runs log's schedule format
   (single-phase rows leave the phase cells empty);
2. ``seeds.csv``: the noise floor: the uniform mixture x ``--seeds`` (3) seeds and schedule
   ``sched-000`` x ``--seeds`` seeds (seed 0 of it is its row of ``runs.csv``, copied);
3. ``proxy-unmatched.csv`` and ``proxy-matched.csv``: the first ``--proxies`` (8) Sobol mixtures
   (a subset of step 1, whose rows are their full-budget truth, same run ids and seeds) trained
   at ``--proxy-fraction`` (1/4) of the tokens, on the capped data (unmatched) or on each
   domain's data subsampled by that fraction (``--match-repetition``: the proxy repeats every
   domain as often as the full run does; ``unique:<domain>`` cells record what it kept).

Rows go in this order, so that any prefix of the output is useful: the first proxies' truth,
the proxies, the uniform seeds, then the remaining single-phase runs, schedules and schedule seeds
interleaved. ``corpus.json`` (the corpus manifest) and ``plan.json`` (caps, budgets, presets)
go beside the logs: exposure features (``mixsurrogate.runs.exposure``) need the manifest.

Cost with the defaults: 45 full runs + 16 quarter runs (= 49 full runs); about 30 s each with one
thread, so ~15-20 min on 2 free cores (``--workers 2 --threads 1``), well under 40 min.

Resumable like ``bench/realtext/generate.py``: rows already in an output log are skipped, an
interrupted training resumes from its checkpoint in ``--work``; jobs run in ``--workers``
processes of ``--threads`` torch threads, and this process alone appends rows, in plan order,
atomically (:func:`mixsurrogate.runs.log.append_run`).

Example (the corpus of bench/realtext, built with --vocab-size 1024):
  nice -n 15 python bench/schedules/generate.py --corpus /tmp/corpus-v1024 \\
      --work /tmp/schedules-work --out mixsurrogate/data/schedules
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from mixsurrogate.cpu import exit_with_parent
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.repetition import parse_unique_caps
from mixsurrogate.runs.design import design_frame, schedule_design_frame
from mixsurrogate.runs.log import LOSS_PREFIX, WEIGHT_PREFIX, append_run, read_frame

LOG = logging.getLogger("schedules")
REPEAT_SEED_BASE = 10_000
SCHEDULE_SEED_BASE = 1_000
REPO = Path(__file__).resolve().parents[2]
LOGS = ("runs", "seeds", "proxy-unmatched", "proxy-matched")


# --- jobs (run in worker processes) -----------------------------------------------------------


def _init_worker(threads: int, parent_pid: int) -> None:
    import torch

    torch.set_num_threads(threads)
    exit_with_parent(parent_pid)  # no worker left training after the job is killed


def job_run(
    corpus: str,
    preset: str,
    work: str,
    log: str,
    run_id: str,
    cells: dict[str, float],
    seed: int,
    caps: dict[str, int],
    match: int | None,
    device: str,
) -> dict:
    """Train and evaluate one run (a mixture or a schedule) into its own part log; its row."""
    from mixsurrogate.experts.proxy_runs import train_proxy_runs

    began = time.perf_counter()
    work_dir = Path(work)
    mixtures = work_dir / "mixtures" / log / f"{run_id}.csv"
    part = work_dir / "parts" / log / f"{run_id}.csv"
    mixtures.parent.mkdir(parents=True, exist_ok=True)
    part.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"run_id": run_id, **cells, "seed": seed}]).to_csv(mixtures, index=False)
    train_proxy_runs(
        corpus, mixtures, load_preset(preset), part, seed, work_dir / "checkpoints" / log,
        device, False, unique_caps=caps, match_repetition=match,
    )  # fmt: skip
    rows = read_frame(part)
    row = rows[rows["run_id"].astype(str) == run_id].iloc[0].to_dict()
    return {"row": row, "seconds": round(time.perf_counter() - began, 1)}


# --- the plan -----------------------------------------------------------------------------------


@dataclass
class Item:
    """One row of an output log: trained by a job, or copied from an earlier row."""

    log: str  # one of LOGS
    run_id: str
    kind: str  # "run" or "copy"
    cells: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    source: str = ""  # the run a "copy" item copies (from runs.csv)


def cells_of(frame: pd.DataFrame) -> list[dict[str, float]]:
    """Each design row's mixture or schedule cells (empty phase cells left out)."""
    rows = frame.drop(columns="run_id").to_dict("records")
    return [{k: float(v) for k, v in r.items() if pd.notna(v)} for r in rows]


def make_plan(
    domains: list[str], sobol: int, schedules: int, proxies: int, seeds: int, share: float
) -> list[Item]:
    """Every row of every output log, in the order they are appended (see the docstring)."""
    single = cells_of(design_frame(domains, sobol, vertices=False, seed=0, prefix="sobol"))
    sched = cells_of(schedule_design_frame(domains, schedules, 2, last_share=share, seed=1))
    runs = [Item("runs", f"sobol-{j:03d}", "run", c, j) for j, c in enumerate(single)]
    scheds = [
        Item("runs", f"sched-{j:03d}", "run", c, SCHEDULE_SEED_BASE + j)
        for j, c in enumerate(sched)
    ]
    proxy = [
        Item(log, runs[j].run_id, "run", runs[j].cells, runs[j].seed)
        for log in ("proxy-unmatched", "proxy-matched")
        for j in range(proxies)
    ]
    uniform = {WEIGHT_PREFIX + d: 1 / len(domains) for d in domains}
    uniform_seeds = [
        Item("seeds", f"uniform-s{s}", "run", uniform, REPEAT_SEED_BASE + s) for s in range(seeds)
    ]
    sched_seeds = []
    if scheds:
        first = scheds[0]
        sched_seeds.append(Item("seeds", f"{first.run_id}-s0", "copy", first.cells, first.seed,
                                first.run_id))  # fmt: skip
        sched_seeds += [
            Item("seeds", f"{first.run_id}-s{s}", "run", first.cells, REPEAT_SEED_BASE + 100 + s)
            for s in range(1, seeds)
        ]
    rest = runs[proxies:]
    interleaved = [i for pair in zip(rest, scheds, strict=False) for i in pair]
    interleaved += rest[len(scheds) :] + scheds[len(rest) :]
    # a copy waits for its source's row, so the schedule seeds come after sched-000
    return runs[:proxies] + proxy + uniform_seeds + interleaved + sched_seeds


def quarter_preset(preset: str, fraction: float, work: Path) -> Path:
    """A copy of ``preset`` with ``fraction`` of its token budget (the proxies' preset)."""
    data = load_preset(preset).to_dict()
    data["train"]["tokens"] = max(1, round(data["train"]["tokens"] * fraction))
    name = f"{data['name']}-x{fraction:g}"
    lines = [f"name = {json.dumps(name)}", f"description = {json.dumps(data['description'])}"]
    for section in ("model", "train", "eval"):
        lines.append(f"[{section}]")
        lines += [f"{k} = {v!r}" for k, v in data[section].items()]
    path = work / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- orchestration ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", default="/tmp/corpus-v1024")
    ap.add_argument("--work", default="/tmp/schedules-work", help="part logs and checkpoints")
    ap.add_argument("--out", default=str(REPO / "mixsurrogate" / "data" / "schedules"))
    ap.add_argument("--preset", default="bench-cpu", help="preset name or .toml path")
    ap.add_argument("--cap", action="append", default=None, help="DOMAIN=TOKENS, repeatable")
    ap.add_argument("--sobol", type=int, default=20, help="single-phase Sobol mixtures")
    ap.add_argument("--schedules", type=int, default=20, help="two-phase Sobol schedules")
    ap.add_argument("--share", type=float, default=0.2, help="the schedules' last-phase share")
    ap.add_argument("--proxies", type=int, default=8, help="Sobol mixtures trained as proxies")
    ap.add_argument("--proxy-fraction", type=float, default=0.25, help="proxies' token share")
    ap.add_argument("--seeds", type=int, default=3, help="seeds of uniform and of sched-000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (one GPU: use --workers 1)")
    ap.add_argument("--log", default="/tmp/schedules-gen.log")
    args = ap.parse_args(argv)
    caps = parse_unique_caps(args.cap if args.cap is not None else ["books=60000"])
    if not 0 <= args.proxies <= args.sobol:
        ap.error("--proxies must be between 0 and --sobol (the proxies' truth is in the Sobol set)")
    if not 0 < args.proxy_fraction <= 1:
        ap.error("--proxy-fraction must be in (0, 1]")

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.FileHandler(args.log), logging.StreamHandler()],
    )
    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    corpus = str(Path(args.corpus).resolve())
    manifest = json.loads((Path(corpus) / "manifest.json").read_text())
    domains = list(manifest["domains"])
    full = load_preset(args.preset)
    proxy_preset = quarter_preset(args.preset, args.proxy_fraction, work)
    target_tokens = full.steps * full.tokens_per_step
    plan = make_plan(domains, args.sobol, args.schedules, args.proxies, args.seeds, args.share)
    (out / "corpus.json").write_text(json.dumps(manifest, indent=2) + "\n")
    facts = {
        "preset": args.preset, "proxy_preset": load_preset(proxy_preset).to_dict(),
        "caps": caps, "target_tokens": target_tokens, "proxy_fraction": args.proxy_fraction,
        "share": args.share, "logs": {name: f"{name}.csv" for name in LOGS},
    }  # fmt: skip
    (out / "plan.json").write_text(json.dumps(facts, indent=2) + "\n")
    logs = {name: out / f"{name}.csv" for name in LOGS}
    LOG.info(
        "plan: %d rows (%d trainings); preset %s, caps %s, %d workers x %d threads",
        len(plan), sum(i.kind == "run" for i in plan), args.preset, caps, args.workers,
        args.threads,
    )  # fmt: skip

    def done_ids(name: str) -> set[str]:
        return set(read_frame(logs[name])["run_id"].astype(str)) if logs[name].exists() else set()

    began = time.perf_counter()
    failures = 0
    have = {name: done_ids(name) for name in LOGS}
    results: dict[tuple[str, str], dict] = {}
    pool = ProcessPoolExecutor(
        args.workers, mp_context=get_context("spawn"), initializer=_init_worker,
        initargs=(args.threads, os.getpid()),
    )  # fmt: skip
    with pool:
        pending: dict[Future, tuple[str, str]] = {}
        todo = [i for i in plan if i.run_id not in have[i.log] and i.kind == "run"]
        for item in todo:
            proxy = item.log.startswith("proxy-")
            fut = pool.submit(
                job_run, corpus, str(proxy_preset) if proxy else args.preset, str(work),
                item.log, item.run_id, item.cells, item.seed, caps,
                target_tokens if item.log == "proxy-matched" else None, args.device,
            )  # fmt: skip
            pending[fut] = (item.log, item.run_id)
        cost = {
            (i.log, i.run_id): args.proxy_fraction if i.log.startswith("proxy-") else 1.0
            for i in todo
        }
        total, done, seconds = sum(cost.values()), 0.0, 0.0

        def flush() -> None:
            """Append finished rows in plan order (a later row waits for the earlier ones)."""
            for item in plan:
                if item.run_id in have[item.log]:
                    continue
                if item.kind == "copy":
                    frame = read_frame(logs["runs"]) if logs["runs"].exists() else None
                    src = [] if frame is None else frame[frame["run_id"].astype(str) == item.source]
                    if len(src) == 0:
                        return
                    row = src.iloc[0].to_dict()
                    row["run_id"] = item.run_id
                    row["notes"] = f"{row.get('notes', '')}; the model of run {item.source}"
                elif (item.log, item.run_id) in results:
                    row = results.pop((item.log, item.run_id))
                else:
                    return
                append_run(logs[item.log], row)
                have[item.log].add(item.run_id)

        flush()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                log, name = pending.pop(fut)
                try:
                    r = fut.result()
                except Exception:
                    failures += 1
                    LOG.error("%s/%s failed:\n%s", log, name, traceback.format_exc())
                    continue
                results[(log, name)] = r["row"]
                done += cost[(log, name)]
                seconds += r["seconds"]
                losses = [v for k, v in r["row"].items() if k.startswith(LOSS_PREFIX)]
                left = (total - done) * seconds / done / args.workers
                LOG.info(
                    "%-16s %-15s %5.0fs  loss mean %.3f  [%.1f/%.1f run-equivalents, ETA %.0f "
                    "min] (elapsed %.0f min)", log, name, r["seconds"], float(np.mean(losses)),
                    done, total, left / 60, (time.perf_counter() - began) / 60,
                )  # fmt: skip
            flush()
    LOG.info(
        "finished: %s rows, %d failures, %.1f min",
        {name: len(done_ids(name)) for name in LOGS}, failures,
        (time.perf_counter() - began) / 60,
    )  # fmt: skip
    if not failures:
        shutil.rmtree(work / "checkpoints", ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
