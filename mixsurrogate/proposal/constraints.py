"""Outcome constraints that keep a mixture from trading evaluation sets away, and the worst case.

``--no-worse-than REF:T`` asks that no constrained evaluation set be predicted worse at the
proposed mixture than at a reference mixture by more than ``T`` nats per token:
``L_s(w) <= L_s(ref) + T`` for every constrained set ``s``. ``REF`` is ``uniform`` (the uniform
mixture inside the bounds: equal shares except where a bound binds) or a logged run's id (that
run's mixture). The constrained sets are the objective's, or the ones named after ``@``
(``uniform:0.02@pile_cc,github``); they may lie outside the objective.

**The reference's losses are the surrogate's predictions at the reference mixture, never a
run's observed losses.** Both sides of ``L_s(w) - L_s(ref) <= T`` then come from the same model,
so its bias on set ``s`` (e.g. a GP that over-smooths a hard set) cancels instead of being read
as a gain or a loss, and the constraint does not inherit the noise of one run's evaluation
(seed noise on a proxy run is of the order of the tolerances people ask for). It also lets
``uniform``, which was rarely trained, and a logged run be treated alike.

Parsing (:func:`parse_no_worse_than`, :func:`parse_reference`) needs only the runs log, the
objective and the bounds; :func:`bind` then evaluates the references with a fitted predictor and
gives :class:`OutcomeConstraints`: rows ``L_{set_r}(w) <= limit_r`` with helpers for exploit
(SLSQP constraint dicts), for acquisition (probability of feasibility from per-set predictive
means and stds, or the ``(A, b)`` pair BoTorch's ``get_outcome_constraint_transforms`` takes), and
for reporting. The worst-case objective ``max_s L_s(w) - L_s(ref)`` is the same rows with
tolerance 0: its value is ``-min_r slack_r``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from ..errors import MixsurrogateError
from ..objective import Objective, expand_names
from ..runs.log import RunsLog
from ..simplex import Bounds

UNIFORM = "uniform"
#: a constraint holds when the predicted loss exceeds its limit by at most this (nats); SLSQP
#: meets its constraints to about 1e-9, and repairing the bounds moves a point by about as much
FEASIBILITY_TOLERANCE = 1e-6

#: the set losses and their Jacobian at one mixture: w (K,) -> (losses (S,), d losses / dw (S, K))
LossesAndJacobian = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def uniform_in_bounds(bounds: Bounds) -> np.ndarray:
    """The uniform mixture inside the bounds: ``clip(c, lower, upper)`` with the one common share
    ``c`` that makes the weights sum to 1 (the Euclidean projection of the uniform mixture onto
    the bounded simplex; the plain uniform mixture when it fits)."""
    lo, hi = 0.0, 1.0  # the sum of clip(c, lower, upper) is non-decreasing in c
    for _ in range(200):
        c = 0.5 * (lo + hi)
        if np.clip(c, bounds.lower, bounds.upper).sum() < 1.0:
            lo = c
        else:
            hi = c
    return bounds.repair(np.clip(0.5 * (lo + hi), bounds.lower, bounds.upper))[0]


@dataclass(frozen=True)
class Reference:
    """A mixture to compare against: ``uniform`` (inside the bounds) or a logged run's."""

    name: str
    mixture: np.ndarray  # (K,) in the runs log's domain order

    @property
    def label(self) -> str:
        return UNIFORM if self.name == UNIFORM else f"run {self.name}"


def parse_reference(
    name: str, log: RunsLog, bounds: Bounds | None = None, option: str = "--worst-case"
) -> Reference:
    """``uniform`` or a run id of ``log`` (``uniform`` wins if a run has that id)."""
    name = name.strip()
    if name == UNIFORM:
        return Reference(UNIFORM, uniform_in_bounds(bounds or Bounds.unbounded(len(log.domains))))
    ids = log.run_ids
    if name not in ids:
        shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
        raise MixsurrogateError(
            f"{option} names unknown run {name!r}; give {UNIFORM} or a run id of the log ({shown})"
        )
    return Reference(name, log.W[ids.index(name)].copy())


@dataclass(frozen=True)
class NoWorseThan:
    """``L_s(w) <= L_s(reference) + tolerance`` for each of ``sets`` (not yet evaluated)."""

    reference: Reference
    tolerance: float
    sets: tuple[str, ...]
    spec: str = ""


def parse_no_worse_than(
    spec: str,
    log: RunsLog,
    objective: Objective,
    bounds: Bounds | None = None,
    option: str = "--no-worse-than",
) -> NoWorseThan:
    """Parse ``REF:T`` or ``REF:T@SET,SET`` against the runs log, the objective and the bounds.

    ``REF``: ``uniform`` or a run id; ``T``: nats per token, a number >= 0; the sets default to
    the objective's. One clear error for an unknown run or set, or a bad ``T``.
    """
    head, at, named = spec.rpartition("@") if "@" in spec else (spec, "", "")
    ref_name, colon, tol_text = head.rpartition(":")
    usage = f"expected REF:T (REF {UNIFORM} or a run id, T nats >= 0), e.g. {UNIFORM}:0.02"
    if not colon or not ref_name.strip():
        raise MixsurrogateError(f"{option} {spec!r}: {usage}")
    try:
        tolerance = float(tol_text)
    except ValueError:
        tolerance = float("nan")
    if not np.isfinite(tolerance) or tolerance < 0:
        raise MixsurrogateError(
            f"{option} {spec!r}: T must be a number >= 0 (nats per token), not {tol_text.strip()!r}"
        )
    sets = _named_sets(spec, named, log, option) if at else objective.sets
    reference = parse_reference(ref_name, log, bounds, option)
    return NoWorseThan(reference, tolerance, tuple(sets), spec)


def parse_worst_case(
    spec: str,
    log: RunsLog,
    objective: Objective,
    bounds: Bounds | None = None,
    option: str = "--worst-case",
) -> NoWorseThan:
    """Parse ``REF`` or ``REF@SET,SET`` for the worst-case objective: the reference and the
    sets (default the objective's) over which ``max_s L_s(w) - L_s(REF)`` is taken; its
    tolerance is 0."""
    ref, at, named = spec.rpartition("@") if "@" in spec else (spec, "", "")
    if not ref.strip():
        raise MixsurrogateError(f"{option} {spec!r}: expected REF or REF@SET,SET, e.g. {UNIFORM}")
    sets = _named_sets(spec, named, log, option) if at else objective.sets
    return NoWorseThan(parse_reference(ref, log, bounds, option), 0.0, tuple(sets), spec)


def _named_sets(spec: str, named: str, log: RunsLog, option: str) -> list[str]:
    """The sets after '@': names and globs, comma-separated (``@'arc_*',piqa``), as ``-t``."""
    if not named.strip():
        raise MixsurrogateError(f"{option} {spec!r}: name at least one set after '@'")
    return expand_names([named], log.targets, "set", option, prefix=f"{option} names ")


def required_sets(constraints: Sequence[NoWorseThan]) -> list[str]:
    """Every set some constraint needs predicted, in first-seen order."""
    return list(dict.fromkeys(s for c in constraints for s in c.sets))


@dataclass(frozen=True)
class OutcomeConstraints:
    """Rows ``L_{sets[r]}(w) <= reference_loss[r] + tolerance[r]``, evaluated references.

    Every method takes ``sets``, the column order of the losses (or means and stds) it is given,
    e.g. a ``MultiTargetPredictor``'s ``fitted_targets_``; each row's set must be among them.
    """

    sets: tuple[str, ...]  # per row
    reference_loss: np.ndarray  # (R,) predicted loss of the row's reference on the row's set
    tolerance: np.ndarray  # (R,)
    references: tuple[str, ...]  # per row, the reference's label (for output)

    def __len__(self) -> int:
        return len(self.sets)

    @property
    def limit(self) -> np.ndarray:
        return self.reference_loss + self.tolerance

    def columns(self, sets: Sequence[str]) -> np.ndarray:
        """Each row's column in ``sets``."""
        sets = list(sets)
        missing = [s for s in self.sets if s not in sets]
        if missing:
            raise MixsurrogateError(
                f"the constraints need predictions for set(s) {', '.join(dict.fromkeys(missing))}"
            )
        return np.array([sets.index(s) for s in self.sets], dtype=int)

    def slack(self, losses: np.ndarray, sets: Sequence[str]) -> np.ndarray:
        """(n, R) ``limit - loss``: >= 0 where a row holds."""
        return self.limit - np.atleast_2d(losses)[:, self.columns(sets)]

    def excess(self, losses: np.ndarray, sets: Sequence[str]) -> np.ndarray:
        """(n, R) ``loss - reference loss`` (positive: worse than the reference)."""
        return np.atleast_2d(losses)[:, self.columns(sets)] - self.reference_loss

    def worst_excess(self, losses: np.ndarray, sets: Sequence[str]) -> np.ndarray:
        """(n,) ``max_r loss_r - reference_r``: the worst-case objective (tolerances ignored)."""
        return self.excess(losses, sets).max(axis=1)

    def satisfied(
        self, losses: np.ndarray, sets: Sequence[str], tol: float = FEASIBILITY_TOLERANCE
    ) -> np.ndarray:
        """(n,) whether every row holds (within ``tol`` nats)."""
        return (self.slack(losses, sets) >= -tol).all(axis=1)

    def violation(self, losses: np.ndarray, sets: Sequence[str]) -> np.ndarray:
        """(n,) total amount (nats) by which rows are broken; 0 where all hold."""
        return np.maximum(-self.slack(losses, sets), 0.0).sum(axis=1)

    def linear(self, sets: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(A, b)`` with ``A @ y <= b`` for outputs ``y`` in ``sets`` order: A is (R, S), b is
        (R, 1), the form of BoTorch's ``get_outcome_constraint_transforms``."""
        A = np.zeros((len(self), len(sets)))  # noqa: N806
        A[np.arange(len(self)), self.columns(sets)] = 1.0
        return A, self.limit[:, None].copy()

    def log_probability_feasible(
        self, means: np.ndarray, stds: np.ndarray, sets: Sequence[str]
    ) -> np.ndarray:
        """(n,) log P(every row holds) under independent normal predictive marginals:
        ``sum_r log Phi((limit_r - mean_r) / std_r)``. A zero std counts as certain.

        The reference losses are fixed numbers (the posterior mean at the reference), so only
        the candidate's uncertainty counts; the sets' errors are treated as independent.
        """
        cols = self.columns(sets)
        mean = np.atleast_2d(means)[:, cols]
        std = np.atleast_2d(stds)[:, cols]
        gap = self.limit - mean
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(
                std > 0, gap / np.where(std > 0, std, 1.0), np.where(gap >= 0, np.inf, -np.inf)
            )
        return norm.logcdf(z).sum(axis=1)

    def probability_feasible(
        self, means: np.ndarray, stds: np.ndarray, sets: Sequence[str]
    ) -> np.ndarray:
        """(n,) P(every row holds): the product of the rows' normal CDFs (see the log form)."""
        return np.exp(self.log_probability_feasible(means, stds, sets))

    def slsqp(self, losses_at: LossesAndJacobian, sets: Sequence[str]) -> dict:
        """One vector-valued SLSQP inequality on w: ``limit - L(w) >= 0``."""
        cols = self.columns(sets)
        return {
            "type": "ineq",
            "fun": lambda w: self.limit - losses_at(w)[0][cols],
            "jac": lambda w: -losses_at(w)[1][cols],
        }

    def slsqp_epigraph(self, losses_at: LossesAndJacobian, sets: Sequence[str]) -> dict:
        """The epigraph rows on z = (w, t): ``t - (L(w) - reference) >= 0`` (tolerances are
        added to t's side, so with tolerance 0 minimising t minimises the worst excess)."""
        cols = self.columns(sets)

        def fun(z: np.ndarray) -> np.ndarray:
            return z[-1] + self.limit - losses_at(z[:-1])[0][cols]

        def jac(z: np.ndarray) -> np.ndarray:
            d = -losses_at(z[:-1])[1][cols]
            return np.hstack([d, np.ones((len(cols), 1))])

        return {"type": "ineq", "fun": fun, "jac": jac}

    def report(self, losses: np.ndarray, sets: Sequence[str]) -> list[list[dict]]:
        """Per mixture, one dict per row: reference, set, losses, excess, tolerance, holds."""
        excess = self.excess(losses, sets)
        holds = self.slack(losses, sets) >= -FEASIBILITY_TOLERANCE
        return [
            [
                {
                    "reference": self.references[r],
                    "set": self.sets[r],
                    "reference_loss": float(self.reference_loss[r]),
                    "loss": float(self.reference_loss[r] + excess[i, r]),
                    "excess": float(excess[i, r]),
                    "tolerance": float(self.tolerance[r]),
                    "holds": bool(holds[i, r]),
                }
                for r in range(len(self))
            ]
            for i in range(len(excess))
        ]


def bind(
    constraints: Sequence[NoWorseThan],
    predict: Callable[[np.ndarray], np.ndarray],
    sets: Sequence[str],
) -> OutcomeConstraints:
    """Evaluate each constraint's reference with ``predict`` (mixtures (n, K) -> losses (n, S)
    in ``sets`` order, e.g. a fitted ``MultiTargetPredictor.predict``): the rows to enforce."""
    sets = list(sets)
    rows_set, rows_ref, rows_tol, rows_label = [], [], [], []
    for c in constraints:
        missing = [s for s in c.sets if s not in sets]
        if missing:
            raise MixsurrogateError(
                f"the constraint {c.spec or c.reference.label} needs predictions for set(s) "
                + ", ".join(missing)
            )
        predicted = np.atleast_2d(predict(c.reference.mixture[None]))[0]
        for s in c.sets:
            rows_set.append(s)
            rows_ref.append(float(predicted[sets.index(s)]))
            rows_tol.append(c.tolerance)
            rows_label.append(c.reference.label)
    return OutcomeConstraints(
        tuple(rows_set), np.array(rows_ref), np.array(rows_tol), tuple(rows_label)
    )


def probability_feasible(
    constraints: OutcomeConstraints, means: np.ndarray, stds: np.ndarray, sets: Sequence[str]
) -> np.ndarray:
    """(n,) probability that each candidate satisfies every row; see
    :meth:`OutcomeConstraints.log_probability_feasible` (use the log form to combine with a
    log-acquisition such as qLogNEI)."""
    return constraints.probability_feasible(means, stds, sets)
