"""The CPU thread cap when ``--jobs`` is not given (issue 18: on a loaded machine the demo took
9 minutes instead of 38 s, its pools sized from the machine and spinning against each other)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mixsurrogate import cpu

PROBE = """
import json, os, sys

if sys.argv[2] == "one-cpu":  # this process may use one CPU
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from mixsurrogate.cli.main import main
main(["runs", "design", "--domains", "a,b", "-n", "2", sys.argv[1]], standalone_mode=False)
import torch
from threadpoolctl import threadpool_info
from mixsurrogate.cpu import THREAD_VARIABLES
from mixsurrogate.mde.evaluator import default_threads
print(json.dumps({
    "env": {v: os.environ.get(v) for v in THREAD_VARIABLES},
    "torch": torch.get_num_threads(),
    "pools": sorted({p["num_threads"] for p in threadpool_info()}),
    "mde": default_threads(),
}))
"""


def _probe(tmp_path, cpus: str, **env) -> dict:
    clean = {
        k: v for k, v in os.environ.items() if k not in {*cpu.THREAD_VARIABLES, "MIXSURROGATE_JOBS"}
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "mix.csv"), cpus], env={**clean, **env},
        cwd=tmp_path, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs an affinity mask")
def test_without_jobs_every_pool_is_capped_to_the_cpus_available(tmp_path):
    """Before: no cap at all without --jobs (the variables unset, each pool its own size)."""
    seen = _probe(tmp_path, "one-cpu")
    assert seen["env"] == dict.fromkeys(cpu.THREAD_VARIABLES, "1")
    assert seen["torch"] == 1 and seen["pools"] == [1] and seen["mde"] == 1


def test_jobs_from_the_environment_still_wins(tmp_path):
    seen = _probe(tmp_path, "all", MIXSURROGATE_JOBS="1")
    assert seen["env"]["OMP_NUM_THREADS"] == "1" and seen["torch"] == 1 and seen["mde"] == 1


@pytest.mark.parametrize(
    ("text", "cpus"), [("200000 100000", 2), ("150000 100000", 2), ("max 100000", None), ("", None)]
)
def test_cgroup_quota(tmp_path, text, cpus):
    path = tmp_path / "cpu.max"
    path.write_text(text)
    assert cpu.cgroup_cpu_quota(path) == cpus
    assert cpu.cgroup_cpu_quota(tmp_path / "absent") is None


def test_default_is_the_smaller_of_the_cpus_and_a_set_omp_num_threads(monkeypatch):
    monkeypatch.setattr(cpu, "available_cpus", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu.default_jobs() == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert cpu.default_jobs() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "32")
    assert cpu.default_jobs() == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    assert cpu.default_jobs() == 8


def test_a_worker_exits_once_its_parent_is_gone():
    """exit_with_parent ends a process whose parent is no longer the one it was started under
    (here: told a pid that is not its parent), and leaves one with that parent running."""
    code = (
        "import os, sys, time\n"
        "from mixsurrogate.cpu import exit_with_parent\n"
        "exit_with_parent(int(sys.argv[1]), poll_s=0.05)\n"
        "time.sleep(float(sys.argv[2]))\n"
        "print('still running')\n"
    )
    orphaned = subprocess.run(
        [sys.executable, "-c", code, "1", "30"], capture_output=True, text=True, timeout=60
    )
    assert orphaned.returncode == 1 and "still running" not in orphaned.stdout
    kept = subprocess.run(
        [sys.executable, "-c", code, str(os.getpid()), "0.3"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert kept.returncode == 0 and "still running" in kept.stdout
