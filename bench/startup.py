"""Start-up time of the CLI: ``mixsurrogate --help`` and a ``runs import`` of RegMix's shipped
pair, against the bare interpreter and (with ``--before REV``) the same commands at an older
commit, interleaved in one run (medians and interquartile ranges; a shared machine's absolute
times drift, the ratios less). Writes bench/results/startup.{json,md}.

    python bench/startup.py --out bench/results --before 76ad47a   # the committed results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "mixsurrogate" / "data" / "regmix"


def commands(out_dir: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "mixsurrogate.cli.main"]
    pair = [str(DATA / "train_mixture_1m.csv"), str(DATA / "train_pile_loss_1m.csv")]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "mixsurrogate --help": [*cli, "--help"],
        "mixsurrogate runs import (512 RegMix runs)": [
            *cli,
            "runs",
            "import",
            "--format",
            "regmix",
            *pair,
            str(out_dir / "runs.csv"),
        ],  # fmt: skip
    }


def seconds(argv: list[str], source: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, cwd=tempfile.gettempdir())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--before", help="a git revision to compare with (a temporary worktree)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="startup-"))
    out.mkdir(parents=True, exist_ok=True)
    sources = {"now": ROOT}
    work = Path(tempfile.mkdtemp(prefix="startup-work-"))
    if args.before:
        old = work / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                        args.before], check=True, capture_output=True)  # fmt: skip
        sources[f"at {args.before}"] = old
    try:
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):  # interleaved: every command and version in each round
            for version, source in sources.items():
                for name, argv in commands(work).items():
                    if name == "python -c pass" and version != "now":
                        continue
                    times.setdefault((name, version), []).append(seconds(argv, source))
    finally:
        if args.before:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(work / "before")], check=False)  # fmt: skip
    rows = []
    for (name, version), values in times.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        rows.append({"command": name, "version": version, "median_s": round(median, 3),
                     "q1_s": round(q1, 3), "q3_s": round(q3, 3), "runs": len(values)})  # fmt: skip
    (out / "startup.json").write_text(
        json.dumps({"repeats": args.repeats, "rows": rows}, indent=1) + "\n"
    )
    lines = [
        "# CLI start-up time",
        "",
        f"`python bench/startup.py --out bench/results{' --before ' + args.before if args.before else ''}`: "
        f"{args.repeats} interleaved rounds, wall seconds per process (median [q1, q3]), "
        "on this project's shared 2-core machine.",
        "",
        "| command | version | median s [q1, q3] |",
        "|---|---|---:|",
        *[
            f"| {r['command']} | {r['version']} | {r['median_s']:.2f} [{r['q1_s']:.2f}, {r['q3_s']:.2f}] |"
            for r in rows
        ],  # fmt: skip
    ]
    (out / "startup.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
