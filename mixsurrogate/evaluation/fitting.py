"""One fit of one predictor on some runs, and its predictions of others: the unit every
protocol (``protocol.py``: CV, learning curves, test logs) repeats split by split.

A predictor that cannot be fitted to a target, or whose fit fails, yields that target's
``skipped`` or ``failed`` status with its reason; the other targets are still predicted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import MixsurrogateError
from ..predictors import Capabilities, make_predictor, predictor_class
from ..predictors.multitarget import MultiTargetPredictor
from ..predictors.noise_model import MIN_GROUPS
from ..runs.fidelity import fidelity_features
from ..runs.inputs import InputSpace
from ..runs.log import RunsLog
from ..runs.repeats import repeat_groups

FeatureFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class PredictorSpec:
    """A predictor to evaluate: registry name plus hyper-parameters (and a display label)."""

    name: str
    params: dict | None = None
    label: str | None = None

    def build(self) -> MultiTargetPredictor:
        make_predictor(self.name, **(self.params or {}))  # fail early on an unknown name
        return MultiTargetPredictor(self.name, self.params)

    @property
    def capabilities(self) -> Capabilities:
        """What the predictor declares it supports (``predictors.base.Capabilities``)."""
        return predictor_class(self.name).capabilities

    @property
    def uses_features(self) -> bool:
        """Whether the predictor needs MDE features (a score store)."""
        return self.capabilities.features

    @property
    def uses_fidelity(self) -> bool:
        """Whether the predictor takes the runs' fidelity columns (``fidelity.py``) as inputs."""
        return self.capabilities.fidelity

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass
class FitOutcome:
    """One fit's predictions of some rows: NaN columns for targets it could not fit."""

    pred: np.ndarray  # (rows, targets)
    status: dict[str, tuple[str, str]]  # target -> ("ok" | "skipped" | "failed", reason)
    notes: dict[str, list[str]] = field(default_factory=dict)
    lower: np.ndarray | None = None  # prediction interval bounds, like pred (interval_level)
    upper: np.ndarray | None = None
    n_runs: dict[str, int] = field(default_factory=dict)  # target -> runs fitted on (with it)

    @property
    def fitted(self) -> list[str]:
        return [t for t, (s, _) in self.status.items() if s == "ok"]


def _features(
    spec: PredictorSpec,
    feature_fn: FeatureFn | None,
    W: np.ndarray,  # noqa: N803
    rows: RunsLog | None = None,
):
    if spec.uses_fidelity:  # per-run inputs, not a function of the mixture: read from the rows
        predictor = make_predictor(spec.name, **(spec.params or {}))
        return fidelity_features(rows, predictor.fidelity_columns())
    if not spec.uses_features:
        return None
    if feature_fn is None:
        raise MixsurrogateError(
            f"predictor {spec.name!r} needs MDE features: pass a score store (--scores)"
        )
    return feature_fn(W)


def feature_sets_of(feature_fn: FeatureFn | None) -> list[str] | None:
    """The evaluation set of each column a feature function returns (an ``ExampleFeatureMap``'s
    ``column_sets``, an ``MDEFeatureMap``'s ``eval_sets``), or None when it does not say
    (columns then follow the targets)."""
    sets = getattr(feature_fn, "column_sets", None) or getattr(feature_fn, "eval_sets", None)
    return None if sets is None else list(sets)


def check_specs(
    specs: Sequence[PredictorSpec],
    feature_fn: FeatureFn | None,
    space: InputSpace | None = None,
    log: RunsLog | None = None,
) -> None:
    """Configuration errors (unknown names, MDE without a store, a mixture-only predictor on
    schedules, a predictor that needs repeated runs on a ``log`` without them) stop before any
    fitting."""
    labels = [s.display for s in specs]
    if len(set(labels)) != len(labels):
        raise MixsurrogateError(f"predictor names repeat: {', '.join(labels)}")
    for spec in specs:
        spec.build()
        if space is not None:
            check_space(spec, space)
        if spec.uses_features and feature_fn is None:
            raise MixsurrogateError(
                f"predictor {spec.name!r} needs MDE features: pass a score store (--scores)"
            )
        if spec.capabilities.repeats and log is not None:
            found = len(repeat_groups(log.completed().W))
            if found < MIN_GROUPS:
                raise MixsurrogateError(
                    f"predictor {spec.name!r} needs repeated runs to learn the noise: at least "
                    f"{MIN_GROUPS} mixtures trained at least twice (same weights, other seeds); "
                    f"the log has {found}"
                )


def check_space(spec: PredictorSpec, space: InputSpace) -> None:
    """Refuse, in one line, a predictor whose fixed functional form lives in mixture space
    (``capabilities.schedules`` False: the mixing laws, auto) on a schedule log: fitted on the
    effective mixture it would be blind to phase order, and a schedule proposal from it wrong."""
    if space.is_schedule and not spec.capabilities.schedules:
        raise MixsurrogateError(
            f"predictor {spec.name!r} is a law of the mixture and cannot take a "
            f"{space.n_phases}-phase schedule log; use a schedule predictor (linear, loglinear, "
            "lgbm, gp, mtgp, or one with +mde)"
        )


def fit_predict(
    spec: PredictorSpec,
    train: RunsLog,
    W_test: np.ndarray,  # noqa: N803
    targets: Sequence[str],
    feature_fn: FeatureFn | None = None,
    interval_level: float | None = None,
    test_rows: RunsLog | None = None,
    space: InputSpace | None = None,
) -> FitOutcome:
    """Fit on ``train`` and predict ``W_test`` for every target that could be fitted (and,
    with ``interval_level``, each prediction's interval, calibrated on ``train`` alone).
    A fidelity predictor (``mfgp``) also needs the rows of ``W_test`` as ``test_rows``.

    ``W_test`` are inputs of ``space`` (default ``InputSpace.of(train)``: the mixtures of a
    single-phase log, the flattened schedules of a schedule log, ``space.inputs(rows)``);
    ``feature_fn`` is a function of mixtures, applied to the MDE mixture of each input.

    Never raises for a target's trouble: it is in ``status`` with its reason. Pending runs of
    ``train`` (no loss yet) are left out; each target is fitted on the runs that have its loss
    (``n_runs`` counts them).
    """
    targets = list(targets)
    space = space or InputSpace.of(train)
    check_space(spec, space)
    feature_fn = space.features(feature_fn)
    pred = np.full((len(W_test), len(targets)), np.nan)
    lower, upper = (pred.copy(), pred.copy()) if interval_level else (None, None)
    model = spec.build()
    train = train.completed()
    Y = np.column_stack([train.loss(t) for t in targets])  # noqa: N806
    n_runs = {t: int(np.isfinite(Y[:, j]).sum()) for j, t in enumerate(targets)}
    try:
        X = space.inputs(train)  # noqa: N806
        train_features = _features(spec, feature_fn, X, train)
        model.fit(
            X, Y, targets, space.names() if not space.is_mixture else train.domains,
            features=train_features,
            feature_sets=feature_sets_of(feature_fn),
        )  # fmt: skip
        reasons = model.reasons()
        if model.fitted_targets_:
            test_features = _features(spec, feature_fn, W_test, test_rows)
            got = model.predict(W_test, features=test_features)
            cols = [targets.index(t) for t in model.fitted_targets_]
            pred[:, cols] = got
            if interval_level:
                lo, hi = model.predict_interval(W_test, test_features, interval_level)
                lower[:, cols], upper[:, cols] = lo, hi
    except MixsurrogateError:
        raise  # configuration errors (no score store) are the user's to fix
    except Exception as err:  # noqa: BLE001 - one predictor's failure must not lose the others
        reason = f"{type(err).__name__}: {err}"
        return FitOutcome(pred, {t: ("failed", reason) for t in targets}, n_runs=n_runs)
    status = {t: reasons.get(t, ("ok", "")) for t in targets}
    return FitOutcome(pred, status, model.notes_, lower, upper, n_runs)
