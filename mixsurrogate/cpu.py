"""One cap on the CPU threads a command uses (``mixsurrogate --jobs N``, default: the CPUs this
process may use).

Our parallel work is inside libraries: torch's intra-op pool (training, scoring, GP algebra),
OpenMP (LightGBM), BLAS (numpy, scipy) and the tokenizers' Rayon pool (corpus builds). Each
reads its size once, when first started, so the cap is set in the environment before any of
them starts (the CLI imports torch and the tokenizers only where used) and applied to the
pools already loaded through threadpoolctl; a shared node then gets at most N busy cores.

Without a cap each pool sizes itself from the machine's core count, not from the process's
share of it (a container's CPU quota, a ``taskset`` mask): on a loaded machine the pools'
threads then outnumber the cores and spin against each other (issue 18: the demo took 9
minutes instead of 38 s, with 4x the CPU time). Hence the default cap.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
)
#: cgroup v2's CPU quota of this process's container ("max 100000" when there is none)
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")

#: the cap this process was given, once ``cap_cpu_threads`` ran
_cap: int | None = None


def cgroup_cpu_quota(path: Path = CGROUP_CPU_MAX) -> int | None:
    """CPUs a cgroup v2 quota allows (``docker --cpus 2`` -> 2, rounded up), None if unlimited
    or unknown."""
    try:
        quota, period = path.read_text().split()[:2]
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):  # no cgroup v2 file, or "max" (no quota)
        return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, lowered by a container's CPU quota (never
    the machine's count, which a container or ``taskset`` does not change)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cpus, quota) if quota else cpus)


def default_jobs() -> int:
    """The cap when ``--jobs`` is not given: the CPUs available, or a smaller
    ``OMP_NUM_THREADS`` the user set (a batch job's share of a node)."""
    cpus = available_cpus()
    try:
        asked = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return cpus
    return min(cpus, asked) if asked >= 1 else cpus


def thread_cap() -> int:
    """Workers our own thread pools may start (the MDE engine): the cap, else the default."""
    return _cap if _cap is not None else default_jobs()


def cap_cpu_threads(jobs: int) -> None:
    """At most ``jobs`` threads in every pool this process starts or has started."""
    global _cap
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(jobs)
    threadpool_limits(limits=jobs)  # called, not entered: the limit stays for the process
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(jobs)
    _cap = jobs


def exit_with_parent(parent_pid: int, poll_s: float = 1.0) -> threading.Thread:
    """In a worker process: exit as soon as ``parent_pid`` is no longer its parent.

    A process pool's workers outlive a parent killed by a signal (SIGTERM, SIGKILL), and a
    training worker left behind keeps writing the checkpoint that the restarted job resumes
    from, taking a core it no longer needs. A daemon thread polling ``os.getppid`` ends them.
    """

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)

    thread = threading.Thread(target=watch, name="exit-with-parent", daemon=True)
    thread.start()
    return thread
