"""A statsmodels OLS table of per-domain effects, for ``fit --predictor linear --summary``."""

from __future__ import annotations

import numpy as np
import statsmodels.api as sm

from ..errors import NotEnoughRunsError

NOTE = (
    "Note: no intercept. The shares of a run sum to 1, so an intercept would be collinear "
    "with them; without one, each coefficient is the loss the linear model predicts for a run "
    "trained on that domain alone, with its confidence interval."
)


def ols_summary(W: np.ndarray, y: np.ndarray, domains: list[str], alpha: float = 0.05) -> str:  # noqa: N803
    """OLS of the loss on the shares (no intercept), as statsmodels' text table plus a note.

    Domains no run uses have no estimable effect; they are left out and named in the note.
    """
    W = np.asarray(W, dtype=float)  # noqa: N806
    y = np.asarray(y, dtype=float).ravel()
    used = [j for j in range(W.shape[1]) if np.any(W[:, j] > 0)]
    if len(y) <= len(used):
        raise NotEnoughRunsError(
            f"the OLS summary estimates {len(used)} domain effects and needs more runs than "
            f"that for confidence intervals; the log has {len(y)}"
        )
    names = [domains[j] for j in used]
    result = sm.OLS(y, W[:, used]).fit()
    text = result.summary(yname="loss", xname=names, alpha=alpha).as_text()
    unused = [d for j, d in enumerate(domains) if j not in used]
    note = NOTE if not unused else f"{NOTE} Left out (no run uses them): {', '.join(unused)}."
    return f"{text}\n{note}"
