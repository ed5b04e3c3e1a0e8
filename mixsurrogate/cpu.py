"""One cap on the CPU threads a command uses (``mixsurrogate --jobs N``).

Our parallel work is inside libraries: torch's intra-op pool (training, scoring, GP algebra),
OpenMP (LightGBM), BLAS (numpy, scipy) and the tokenizers' Rayon pool (corpus builds). Each
reads its size once, when first started, so the cap is set in the environment before any of
them starts (the CLI imports torch and the tokenizers only where used) and applied to the
pools already loaded through threadpoolctl; a shared node then gets at most N busy cores.
"""

from __future__ import annotations

import os
import sys

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",
)


def cap_cpu_threads(jobs: int) -> None:
    """At most ``jobs`` threads in every pool this process starts or has started."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(jobs)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=jobs)  # called, not entered: the limit stays for the process
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(jobs)
