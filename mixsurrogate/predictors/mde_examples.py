"""``mde-ex``: the target's own example-level MDE columns, weighted on the training runs.

``mde-cal`` fits ``y ~ a + b * mde`` on the target's set-level MDE loss. ``mde-ex`` reads the
target's own columns of ``--mde-kind examples`` (:mod:`mixsurrogate.mde.examples`) and fits
one family of models that all contain ``mde-cal``:

* ``clusters`` / ``quantiles``: ``y ~ a + b * mde + sum_c d_c * z_c`` with the ``z_c`` (cluster
  losses, or quantiles of per-example losses) standardised and a ridge penalty on ``d`` only,
  so a large penalty is ``mde-cal`` and the data decide how far to move from it;
* ``power``: ``y ~ a + b * mde(w^p / sum w^p)``, one tempering ``p`` of the target's mixture
  (``p = 1`` is ``mde-cal``);
* ``set``: ``mde-cal`` itself (the same numbers, fitted by the same code: a control);
* ``auto`` (default): every candidate above.

The candidate (variant, penalty or power) is chosen by exact leave-one-out error on the
training runs only (the hat matrix of penalised least squares), ties to ``mde-cal``; each fit
notes what it chose (``fit_notes_``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import MixsurrogateError, UnsupportedTargetError
from ..mde.examples import CLUSTERS, POWERS, QUANTILES, ExampleLayout
from .base import MixturePredictor
from .mde import own_mde_column

VARIANTS = ("set", "clusters", "quantiles", "power", "auto")
#: ridge penalties on the example columns, times the number of runs (standardised columns)
PENALTIES = tuple(np.logspace(-3, 3, 13))


@dataclass(frozen=True)
class Candidate:
    """One model: its unpenalised MDE column, penalised example columns and penalty."""

    label: str
    base: int
    extra: tuple[int, ...] = ()
    penalty: float = 0.0


def design(features: np.ndarray, c: Candidate, mean, scale) -> np.ndarray:
    """``[1, mde, standardised example columns]`` for one candidate."""
    z = (features[:, list(c.extra)] - mean) / scale
    return np.column_stack([np.ones(len(features)), features[:, c.base], z])


def penalised_fit(X: np.ndarray, y: np.ndarray, n_free: int, penalty: float):  # noqa: N803
    """Coefficients and leave-one-out mean squared error of ``y ~ X`` with ``penalty * n``
    on every coefficient after the first ``n_free`` (exact LOO from the hat matrix)."""
    n, p = X.shape
    ridge = np.diag([0.0] * n_free + [penalty * n] * (p - n_free))
    A = X.T @ X + ridge  # noqa: N806
    try:
        solved = np.linalg.solve(A, np.column_stack([X.T, X.T @ y]))
    except np.linalg.LinAlgError:
        return None, np.inf
    coef = solved[:, -1]
    leverage = np.einsum("ij,ji->i", X, solved[:, :-1])
    residual = y - X @ coef
    if np.any(1.0 - leverage < 1e-10):
        return coef, np.inf
    return coef, float(np.mean((residual / (1.0 - leverage)) ** 2))


class MDEExamplesPredictor(MixturePredictor):
    """``mde-cal`` widened to the target's example-level MDE columns (see the module)."""

    name = "mde-ex"
    #: opt-in: it needs ``--mde-kind examples``, not the default kind's one column per set
    capabilities = replace(MixturePredictor.capabilities, features=True, opt_in=True)

    def __init__(
        self,
        target_feature: int | None = None,
        target_columns: tuple[int, ...] | None = None,
        variant: str = "auto",
        clusters: int = CLUSTERS,
        quantiles: tuple[float, ...] = QUANTILES,
        powers: tuple[float, ...] = POWERS,
    ):
        self.target_feature = target_feature
        self.target_columns = target_columns
        self.variant = variant
        self.clusters = clusters
        self.quantiles = quantiles
        self.powers = powers

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        # regularised and chosen by leave-one-out, as ``linear``: three runs at the least
        return 3

    def candidates(self) -> list[Candidate]:
        """Every model this variant may choose, ``mde-cal`` first."""
        if self.variant not in VARIANTS:
            raise UnsupportedTargetError(
                f"mde-ex variant {self.variant!r}: choose one of {', '.join(VARIANTS)}"
            )
        if self.target_columns is None:
            raise UnsupportedTargetError(
                "mde-ex needs the target's example-level MDE columns (--mde-kind examples)"
            )
        layout = ExampleLayout(self.clusters, tuple(self.quantiles), tuple(self.powers))
        try:
            cols = layout.split(self.target_columns)
        except MixsurrogateError as err:  # features of another kind: this target is not modelled
            raise UnsupportedTargetError(str(err)) from err
        base = cols["set"][0]
        out = [Candidate("set", base)]
        for variant in ("clusters", "quantiles"):
            if self.variant in (variant, "auto") and cols[variant]:
                out += [
                    Candidate(f"{variant} penalty {lam:.3g}", base, tuple(cols[variant]), lam)
                    for lam in PENALTIES
                ]
        if self.variant in ("power", "auto"):
            out += [
                Candidate(f"power {a:g}", c)
                for a, c in zip(self.powers, cols["powers"], strict=True)
            ]
        return out

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray) -> None:  # noqa: N803
        own = own_mde_column(features, self.target_feature, self.name)
        if np.ptp(own) == 0:
            raise UnsupportedTargetError(f"{self.name}: the MDE feature is constant over the runs")
        best, best_loo = None, np.inf
        for c in self.candidates():
            if np.ptp(features[:, c.base]) == 0:
                continue
            extra = features[:, list(c.extra)]
            mean, scale = extra.mean(axis=0), extra.std(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
            coef, loo = penalised_fit(design(features, c, mean, scale), y, 2, c.penalty)
            if coef is not None and (best is None or loo < best_loo):
                best, best_loo = (c, coef, mean, scale), loo
        if best is None:
            raise UnsupportedTargetError(f"{self.name}: no candidate model could be fitted")
        self.choice_, self.coef_, self.mean_, self.scale_ = best
        self.loo_mse_ = best_loo
        self.fit_notes_.append(f"chose {self.choice_.label.split(' penalty')[0]}")

    def _predict(self, W: np.ndarray, features: np.ndarray) -> np.ndarray:  # noqa: N803
        return design(features, self.choice_, self.mean_, self.scale_) @ self.coef_
