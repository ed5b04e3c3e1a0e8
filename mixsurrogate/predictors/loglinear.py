"""Ridge regression on the rates and their logarithms.

A domain's own share acts on its loss roughly like a power law (``L ~ A / w^alpha``, BiMix),
which is linear in ``log w``; the plain rates keep the cross-domain transfer. ``eps`` keeps
``log(0)`` finite for domains a run did not use.

Defaults (``eps=3e-3``, log-loss target) were chosen on RegMix's training runs only: fit on
half of the 512 runs, scored on the other half (``bench/predictor_probe.py --select``);
eps 1e-4 / 1e-3 / 3e-3 / 1e-2 / 3e-2 gave mean Spearman 0.940 / 0.961 / 0.965 / 0.963 / 0.952
over n = 32, 64, 256 on Pile-CC.
"""

from __future__ import annotations

import numpy as np

from .linear import LinearPredictor


class LogLinearPredictor(LinearPredictor):
    """``loss (or log loss) ~ b + a . w + c . log(w + eps)``, ridge penalty by leave-one-out."""

    name = "loglinear"

    def __init__(
        self,
        eps: float = 3e-3,
        log_target: bool = True,
        alphas: tuple[float, ...] | None = None,
    ):
        self.eps = eps
        self.log_target = log_target
        self.alphas = alphas

    def design_matrix(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return np.hstack([W, np.log(W + self.eps)])
