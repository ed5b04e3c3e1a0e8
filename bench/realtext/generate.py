"""Generate the real-text benchmark data: data experts and their score store, designed proxy runs,
and repeated seeds, all trained with one preset so every model spends the same token budget.

Plan (in this order, so that any prefix of the output is useful):
1. one expert per corpus domain (expert ``i`` with seed ``i``), then the score store of all
   experts (float16);
2. proxy runs in design order: the K vertices, the uniform mixture, then Sobol points on the
   simplex in their sequence order (a prefix of a Sobol sequence is itself space-filling);
   after ``--seed-after`` runs, ``--seeds`` seeds of ``--repeated`` mixtures (uniform and the
   first Sobol points) go to a separate log for the seed-noise floor; the remaining Sobol points
   follow. Every model has its own seed (see :func:`make_plan`), so run-to-run noise is
   independent, as the noise floor and ceiling assume.

A vertex run is the expert of that domain: the same preset, seed and sampler (the sampler draws
the same windows for ``{d: 1}`` as for a one-domain expert), so the expert is evaluated instead of
trained twice; MDE is therefore exact at the vertices, and the benchmark scores mixing runs only.
Likewise seed 0 of a repeated mixture is the row of that mixture in the main log.

Resumable: finished experts, the score store and logged runs are skipped, an interrupted training
resumes from its checkpoint in the work folder. Jobs run in ``--workers`` processes of
``--threads`` torch threads each (on a shared 2-core machine, two one-thread processes train
faster than one two-thread process); rows are appended to the logs in plan order by this process
alone, atomically (:func:`mixsurrogate.runs.log.append_run`).

Budget-matched MDE: ``--checkpoints geometric:6`` also keeps each expert's snapshots at 1/32 ..
1 of its budget (same run, same final expert) and scores them into the store; with a new
``--work`` and ``--scores`` folder, an existing OUT's runs logs are kept (their rows are skipped)
and only the experts and the store are made again.

Example (the bench-cpu preset expects a corpus with a 1024-id vocabulary; a validation fraction
of 0.15 gives every domain >= 30 validation documents):
  mixsurrogate corpus build /tmp/corpus-v1024 --preset pypi --vocab-size 1024 --val-fraction 0.15
  python bench/realtext/generate.py --corpus /tmp/corpus-v1024 --work /tmp/realtext-work
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

from mixsurrogate.cpu import exit_with_parent
from mixsurrogate.runs.log import LOSS_PREFIX, WEIGHT_PREFIX, append_run, read_frame

LOG = logging.getLogger("realtext")
REPEAT_SEED_BASE = 10_000
REPO = Path(__file__).resolve().parents[2]


# --- jobs (run in worker processes) -----------------------------------------------------------


def _init_worker(threads: int, parent_pid: int) -> None:
    import torch

    torch.set_num_threads(threads)
    exit_with_parent(parent_pid)  # no worker left training after the job is killed


def job_expert(
    corpus: str,
    preset: str,
    experts_dir: str,
    domain: str,
    seed: int,
    device: str,
    checkpoints: tuple[float, ...] | None = None,
) -> dict:
    """Train (or resume, or skip) the expert of one domain (with budget snapshots at the
    ``checkpoints`` fractions, for budget-matched MDE)."""
    from mixsurrogate.experts.presets import load_preset
    from mixsurrogate.experts.train import train_experts

    (result,) = train_experts(
        corpus, load_preset(preset), experts_dir, [domain], seed, device, progress=False,
        checkpoints=checkpoints,
    )  # fmt: skip
    return {k: result.get(k) for k in ("domain", "skipped", "seconds", "final_train_loss")}


def job_score(corpus: str, experts_dir: str, scores_dir: str, device: str) -> dict:
    """Score every expert on every evaluation set into the (float16) score store; experts with
    budget snapshots (``--checkpoints``) have every snapshot scored into it too."""
    from mixsurrogate.experts.score import score_experts

    began = time.perf_counter()
    score_experts(experts_dir, corpus, scores_dir, device, "float16", progress=False)
    return {"seconds": round(time.perf_counter() - began, 1)}


def job_run(
    corpus: str,
    preset: str,
    work: str,
    run_id: str,
    weights: dict[str, float],
    seed: int,
    device: str,
) -> dict:
    """Train and evaluate one proxy run into its own part log; return its row.

    A vertex run is evaluated from its expert (``train_proxy_runs(experts_dir=...)``).
    """
    from mixsurrogate.experts.presets import load_preset
    from mixsurrogate.experts.proxy_runs import train_proxy_runs

    began = time.perf_counter()
    work_dir = Path(work)
    mixtures = work_dir / "mixtures" / f"{run_id}.csv"
    part = work_dir / "parts" / f"{run_id}.csv"
    mixtures.parent.mkdir(parents=True, exist_ok=True)
    part.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([{"run_id": run_id, **{WEIGHT_PREFIX + d: w for d, w in weights.items()}}])
    frame["seed"] = seed
    frame.to_csv(mixtures, index=False)
    train_proxy_runs(
        corpus,
        mixtures,
        load_preset(preset),
        part,
        seed,
        work_dir / "checkpoints",
        device,
        False,
        experts_dir=work_dir / "experts",
    )
    rows = read_frame(part)
    row = rows[rows["run_id"].astype(str) == run_id].iloc[0].to_dict()
    return {"row": row, "seconds": round(time.perf_counter() - began, 1)}


# --- the plan -----------------------------------------------------------------------------------


@dataclass
class Item:
    """One row of an output log: produced by a job, or copied from an earlier row."""

    log: str  # "runs" or "seeds"
    run_id: str
    kind: str  # "vertex", "run" or "copy"
    weights: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    source: str = ""  # the run copied by a "copy" item


def design(corpus: str, work: Path, n: int) -> pd.DataFrame:
    """Vertices, uniform and ``n`` Sobol points, by ``mixsurrogate runs design`` itself."""
    path = work / "design.csv"
    if not path.is_file():
        subprocess.run(
            [str(Path(sys.executable).with_name("mixsurrogate")), "runs", "design", "--corpus", corpus,
             "-n", str(n), "--vertices", "--seed", "0", str(path)],
            check=True,
        )  # fmt: skip
    return pd.read_csv(path)


def make_plan(
    frame: pd.DataFrame, sobol: int, seed_after: int, seeds: int, repeated: int
) -> list[Item]:
    """Every model gets its own seed (initial weights and batch draws), recorded in its row.

    Seeds: expert/vertex ``i`` gets ``i``, the uniform run ``K``, Sobol point ``j`` ``K + 1 + j``;
    the repeats of mixture ``m`` get ``REPEAT_SEED_BASE + m * seeds + s``. Seed 0 of a repeated
    mixture is its main-log row (same model, copied), so each repeated mixture has ``seeds``
    independent models.
    """
    domains = [c[len(WEIGHT_PREFIX) :] for c in frame.columns if c.startswith(WEIGHT_PREFIX)]
    k = len(domains)
    weights = [dict(zip(domains, map(float, r), strict=True)) for r in frame.iloc[:, 1:].values]
    main = [Item("runs", f"vertex-{d}", "vertex", weights[i], i) for i, d in enumerate(domains)]
    main.append(Item("runs", "uniform", "run", weights[k], k))
    main += [
        Item("runs", f"sobol-{j:03d}", "run", weights[k + 1 + j], k + 1 + j) for j in range(sobol)
    ]
    repeats = []
    for m, source in enumerate(main[k : k + repeated]):  # uniform and the first Sobol points
        repeats.append(
            Item("seeds", f"{source.run_id}-s0", "copy", source.weights, source.seed, source.run_id)
        )
        repeats += [
            Item("seeds", f"{source.run_id}-s{s}", "run", source.weights,
                 REPEAT_SEED_BASE + m * seeds + s)
            for s in range(1, seeds)
        ]  # fmt: skip
    return main[:seed_after] + repeats + main[seed_after:]


def logged(path: Path) -> pd.DataFrame | None:
    return read_frame(path) if path.exists() else None


# --- orchestration ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", default="/tmp/corpus-v1024")
    ap.add_argument("--work", default="/tmp/realtext-work", help="experts and checkpoints")
    ap.add_argument("--out", default=str(REPO / "mixsurrogate" / "data" / "realtext"))
    ap.add_argument("--preset", default="bench-cpu", help="preset name or .toml path")
    ap.add_argument("--sobol", type=int, default=48, help="Sobol mixtures to train")
    ap.add_argument("--design-n", type=int, default=64, help="Sobol points designed (>= --sobol)")
    ap.add_argument("--seed-after", type=int, default=24, help="main-log runs before the seeds")
    ap.add_argument("--seeds", type=int, default=4, help="seeds per repeated mixture (0..N-1)")
    ap.add_argument(
        "--repeated", type=int, default=6, help="mixtures repeated: uniform, then Sobol points"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (one GPU: use --workers 1)")
    ap.add_argument("--log", default="/tmp/realtext-gen.log")
    ap.add_argument(
        "--checkpoints",
        help="budget snapshots of the experts for budget-matched MDE, as 'experts train "
        "--checkpoints' (e.g. geometric:6); default off. Experts already finished without them "
        "are refused: use a new --work folder",
    )
    ap.add_argument("--scores", help="score store folder to write [default: OUT/scores]")
    args = ap.parse_args(argv)
    checkpoints = None
    if args.checkpoints:
        from mixsurrogate.errors import MixsurrogateError
        from mixsurrogate.experts.snapshots import parse_checkpoints

        try:
            checkpoints = parse_checkpoints(args.checkpoints)
        except MixsurrogateError as err:
            ap.error(str(err))
    if args.sobol > args.design_n:
        ap.error("--sobol must be <= --design-n")
    if not 1 <= args.repeated <= args.sobol + 1:
        ap.error("--repeated must be between 1 and --sobol + 1")

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
    (out / "corpus.json").write_text(json.dumps(manifest, indent=2) + "\n")
    experts_dir = work / "experts"
    scores_dir = Path(args.scores) if args.scores else out / "scores"
    domains = list(manifest["domains"])
    plan = make_plan(
        design(corpus, work, args.design_n), args.sobol, args.seed_after, args.seeds, args.repeated
    )
    logs = {"runs": out / "runs.csv", "seeds": out / "seeds.csv"}
    LOG.info(
        "plan: %d experts, score store, %d rows (%d trainings); preset %s, %d workers x %d threads",
        len(domains), len(plan), sum(i.kind == "run" for i in plan), args.preset,
        args.workers, args.threads,
    )  # fmt: skip

    def done_ids(name: str) -> set[str]:
        frame = logged(logs[name])
        return set() if frame is None else set(frame["run_id"].astype(str))

    began = time.perf_counter()
    failures = 0
    pool = ProcessPoolExecutor(
        args.workers, mp_context=get_context("spawn"), initializer=_init_worker,
        initargs=(args.threads, os.getpid()),
    )  # fmt: skip
    with pool:
        experts = [
            pool.submit(
                job_expert, corpus, args.preset, str(experts_dir), d, i, args.device, checkpoints
            )
            for i, d in enumerate(domains)
        ]
        for fut in experts:
            try:
                r = fut.result()
                LOG.info(
                    "expert %-13s %s loss %.3f in %.0fs (elapsed %.0fs)",
                    r["domain"], "skipped" if r["skipped"] else "trained",
                    r["final_train_loss"], r["seconds"], time.perf_counter() - began,
                )  # fmt: skip
            except Exception:
                failures += 1
                LOG.error("expert failed:\n%s", traceback.format_exc())
        if failures:
            return 1

        pending: dict[Future, str] = {}
        if not (scores_dir / "manifest.json").is_file():
            job = pool.submit(job_score, corpus, str(experts_dir), str(scores_dir), args.device)
            pending[job] = "score"
        have = {name: done_ids(name) for name in logs}
        results: dict[str, dict] = {}
        todo = [i for i in plan if i.run_id not in have[i.log] and i.kind != "copy"]
        for item in todo:
            fut = pool.submit(
                job_run, corpus, args.preset, str(work), item.run_id, item.weights, item.seed,
                args.device,
            )  # fmt: skip
            pending[fut] = item.run_id
        trainings = sum(i.kind == "run" for i in todo)
        trained = 0
        train_seconds = 0.0

        def flush() -> None:
            """Append finished rows in plan order (a later row waits for the earlier ones)."""
            for item in plan:
                if item.run_id in have[item.log]:
                    continue
                if item.kind == "copy":
                    frame = logged(logs["runs"])
                    src = (
                        frame[frame["run_id"].astype(str) == item.source]
                        if frame is not None
                        else []
                    )
                    if len(src) == 0:
                        return
                    row = src.iloc[0].to_dict()
                    row["run_id"] = item.run_id
                    row["notes"] = f"{row.get('notes', '')}; the model of run {item.source}"
                elif item.run_id in results:
                    row = results.pop(item.run_id)
                else:
                    return
                append_run(logs[item.log], row)
                have[item.log].add(item.run_id)

        flush()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                name = pending.pop(fut)
                try:
                    r = fut.result()
                except Exception:
                    failures += 1
                    LOG.error("%s failed:\n%s", name, traceback.format_exc())
                    continue
                elapsed = time.perf_counter() - began
                if name == "score":
                    LOG.info("score store written in %.0fs (elapsed %.0fs)", r["seconds"], elapsed)
                    continue
                results[name] = r["row"]
                losses = [v for k, v in r["row"].items() if k.startswith(LOSS_PREFIX)]
                line = (
                    f"{name:<16} {r['seconds']:>6.0f}s  loss mean {sum(losses) / len(losses):.3f}"
                )
                if not name.startswith("vertex-"):
                    trained += 1
                    train_seconds += r["seconds"]
                    left = (trainings - trained) * train_seconds / trained / args.workers
                    line += f"  [{trained}/{trainings} trained, ETA {left / 60:.0f} min]"
                LOG.info("%s (elapsed %.0f min)", line, elapsed / 60)
            flush()
    LOG.info(
        "finished: %d runs, %d seed rows, %d failures, %.1f min",
        len(done_ids("runs")), len(done_ids("seeds")), failures,
        (time.perf_counter() - began) / 60,
    )  # fmt: skip
    shutil.rmtree(work / "checkpoints", ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
