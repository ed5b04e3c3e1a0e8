"""What the GP predictors here share (``gp``, ``mtgp``, ``mfgp``, and the search's acquisition):
the kernel's input transform of the weights, the lengthscale floor of a fallback fit, one torch
thread for small fits, stable labels for fit warnings, Gaussian intervals.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from botorch.models import SingleTaskGP
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import Kernel
from scipy.stats import norm

from ..errors import MixsurrogateError

#: ``sqrt``: the Hellinger embedding of the simplex (distances between distributions,
#: stretched near zero shares); ``log``: log(w + eps) rescaled to [0, 1]; ``raw``: w itself.
INPUT_TRANSFORMS = ("sqrt", "log", "raw")
#: the lengthscale floor of the fallback fit when every attempt failed: the floor BoTorch's own
#: default kernels carry "for numerical stability" (see ``floor_lengthscales``)
LENGTHSCALE_FLOOR = 2.5e-2
#: below this many runs a GP runs on one torch thread (see ``one_thread_if_small``)
SMALL_GP_ROWS = 2048


@contextmanager
def one_thread_if_small(n_rows: int) -> Iterator[None]:
    """Run small GP algebra on one thread, restoring the caller's setting afterwards.

    At a few hundred runs a step is dominated by thread hand-offs, not arithmetic: on 2 busy
    cores a 60-run fit took 3x longer (wall and CPU) with two threads than with one.
    """
    if n_rows > SMALL_GP_ROWS:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def transform_weights(W: np.ndarray, kind: str, eps: float) -> np.ndarray:  # noqa: N803
    """Map simplex weights to the kernel's input space (all kinds land in [0, 1])."""
    if kind == "sqrt":
        return np.sqrt(np.clip(W, 0.0, None))
    if kind == "log":
        lo = math.log(eps)
        return (np.log(np.clip(W, 0.0, None) + eps) - lo) / (math.log(1.0 + eps) - lo)
    if kind == "raw":
        return W
    raise MixsurrogateError(
        f"unknown GP input transform {kind!r}; choose from {', '.join(INPUT_TRANSFORMS)}"
    )


def floor_lengthscales(model: torch.nn.Module, floor: float = LENGTHSCALE_FLOOR) -> None:
    """Bound every kernel lengthscale of ``model`` below by ``floor`` (as L-BFGS-B bounds).

    Our kernels leave lengthscales free, as fitted on RegMix. But an L-BFGS step can send one
    towards 0 (1e-16 to 1e-49 seen on RegMix's pubmed_abstracts), where the kernel's distances
    lose every digit and the Cholesky fails even with added jitter; which attempts do so hangs
    on round-off (weights re-read from RegMix's own files, 3e-16 apart from the built-in log,
    failed every attempt on one machine). BoTorch's default kernels carry this floor.
    """
    for module in model.modules():
        if isinstance(module, Kernel) and module.has_lengthscale:
            start = module.lengthscale.detach().clamp_min(floor)
            module.register_constraint("raw_lengthscale", GreaterThan(floor, transform=None))
            module.lengthscale = start


def warning_label(warning: warnings.WarningMessage) -> str:
    """A short, stable label for a fit warning (so repeats across folds can be counted)."""
    text = str(warning.message)
    if "ITERATIONS REACHED LIMIT" in text.upper() or "maxiter" in text:
        return "L-BFGS stopped at its iteration cap"
    if "added jitter" in text:  # GPyTorch's Cholesky retries with growing jitter: one event
        return "Cholesky needed added jitter (kernel matrix not p.d.)"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{warning.category.__name__}: {first[:120]}"


def gaussian_interval(
    mean: np.ndarray, std: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` interval of independent Gaussians."""
    if not 0 < level < 1:
        raise ValueError(f"interval level must be in (0, 1), got {level}")
    z = float(norm.ppf(0.5 + level / 2))
    return mean - z * std, mean + z * std


def hyper_parameters(model: SingleTaskGP) -> dict[str, torch.Tensor]:
    """The model's state without its outcome transform (which belongs to the data it saw)."""
    return {k: v for k, v in model.state_dict().items() if "outcome_transform" not in k}
