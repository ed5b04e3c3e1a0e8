"""One predictor per evaluation set, fitted and queried together.

Column convention for ``features``: the caller orders the first ``len(targets)`` feature
columns as ``targets`` (column j = MDE loss of ``targets[j]``); more columns (e.g. another MDE
kind, or sets that are not targets) may follow. MDE predictors get ``target_feature=j``
(and, if they take it, ``target_columns``: every column of the target's set, e.g. its
example-level MDE columns);
BiMix gets ``domain_index`` = the training domain named like the target, or None.

A NaN in ``Y`` is a loss the run was not evaluated on: each target is fitted on the rows that
have it (``n_runs_`` says how many), so a pending run (no loss at all) is fitted on by none.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if

from ..errors import MixsurrogateError, NotEnoughRunsError, UnsupportedTargetError
from . import make_predictor, predictor_class
from .base import Capabilities, MixturePredictor


def _has_std(self: MultiTargetPredictor) -> bool:
    return self.capabilities.std


def _has_objective_std(self: MultiTargetPredictor) -> bool:
    return self.capabilities.objective_std


def runs_note(n_runs: int, n_total: int) -> str:
    """The note of a target fitted on fewer runs than were given (the others lack its loss)."""
    return f"fitted on the {n_runs} of {n_total} runs evaluated on it"


def _rows(features: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if features is None else np.asarray(features)[rows]


def _groups_by_rows(has: np.ndarray) -> dict[bytes, list[int]]:
    """Target columns grouped by the rows that have them (mask bytes -> column indices)."""
    groups: dict[bytes, list[int]] = {}
    for j in range(has.shape[1]):
        if has[:, j].any():
            groups.setdefault(np.ascontiguousarray(has[:, j]).tobytes(), []).append(j)
    return groups


class MultiTargetPredictor(BaseEstimator):
    """Fits ``make_predictor(name, **params)`` to every target column it can model.

    One target's trouble never loses the others: a target the predictor cannot model
    (``UnsupportedTargetError``, or too few runs for its parameters: ``NotEnoughRunsError``)
    is kept in ``skipped_`` with the reason, a fit that fails for any other reason (e.g. a
    GP whose every attempt fails) in ``failed_``. ``notes_`` lists, per fitted target, what
    its fit had to work around. ``predict`` needs at least one fitted target. A NaN in ``Y``
    is a loss not measured: each target is fitted on its own rows, counted in ``n_runs_``.
    """

    def __init__(self, name: str, params: dict | None = None):
        self.name = name
        self.params = params

    @property
    def capabilities(self) -> Capabilities:
        """The member predictor's declared capabilities (an unknown name: the registry's
        error listing valid names)."""
        return predictor_class(self.name).capabilities

    def _member(
        self,
        target_index: int | None,
        target: str,
        domains: list[str],
        own_columns: list[int] | None = None,
    ) -> MixturePredictor:
        accepted = predictor_class(self.name)._get_param_names()
        params = dict(self.params or {})
        if "domain_index" in accepted:
            params.setdefault("domain_index", domains.index(target) if target in domains else None)
        if "target_feature" in accepted:
            params.setdefault("target_feature", target_index)
        if "target_columns" in accepted:
            params.setdefault("target_columns", own_columns or None)
        return make_predictor(self.name, **params)

    def fit(
        self,
        W: np.ndarray,  # noqa: N803
        Y: np.ndarray,  # noqa: N803
        targets: list[str],
        domains: list[str],
        features: np.ndarray | None = None,
        feature_sets: list[str] | None = None,
    ) -> MultiTargetPredictor:
        """``feature_sets``: the evaluation set of each MDE feature column (a feature map's
        ``eval_sets``), so each target reads its own column; None means the columns follow
        ``targets``."""
        Y = np.atleast_2d(np.asarray(Y, dtype=float))  # noqa: N806
        if Y.shape[1] != len(targets):
            raise ValueError(f"Y has {Y.shape[1]} columns but {len(targets)} targets are named")
        W = np.asarray(W, dtype=float)  # noqa: N806
        self.members_: dict[str, MixturePredictor] = {}
        self.skipped_: dict[str, str] = {}
        self.failed_: dict[str, str] = {}
        has = ~np.isnan(Y)
        self.n_runs_ = {t: int(has[:, j].sum()) for j, t in enumerate(targets)}
        self.n_total_ = len(W)
        self.joint_notes_: dict[str, str] = {}
        self.joint_: MixturePredictor | None = None
        if self.capabilities.joint:
            return self._fit_joint(W, Y, targets, features)
        columns = (
            list(range(len(targets)))
            if feature_sets is None
            else [list(feature_sets).index(t) if t in feature_sets else None for t in targets]
        )
        own = [
            [j] if feature_sets is None else [c for c, s in enumerate(feature_sets) if s == t]
            for j, t in enumerate(targets)
        ]
        members = [
            self._member(columns[j], t, list(domains), own[j]) for j, t in enumerate(targets)
        ]
        # targets evaluated on the same runs can share one tuning (GPs); others tune apart
        hypers: dict[int, object] = {}  # target column -> its share, for its fit only
        for rows, group in _groups_by_rows(has).items():
            rows = np.frombuffer(rows, dtype=bool)
            tuned, note = self._tune_jointly(
                [members[j] for j in group], W[rows], Y[np.ix_(rows, group)], _rows(features, rows)
            )
            hypers |= dict(zip(group, tuned, strict=True)) if tuned else {}
            if note:
                self.joint_notes_ |= {targets[j]: note for j in group}
        for j, (target, member) in enumerate(zip(targets, members, strict=True)):
            rows = has[:, j]
            if not rows.any():
                self.skipped_[target] = "no run has this loss"
                continue
            try:
                member.fit(
                    W[rows], Y[rows, j], _rows(features, rows), hyperparameters=hypers.get(j)
                )
            except (UnsupportedTargetError, NotEnoughRunsError) as err:
                self.skipped_[target] = str(err)
                continue
            except Exception as err:  # noqa: BLE001 - one target's failure must not lose the rest
                self.failed_[target] = f"{type(err).__name__}: {err}"
                continue
            self.members_[target] = member
        self.fitted_targets_ = list(self.members_)
        return self

    def _fit_joint(self, W, Y, targets, features) -> MultiTargetPredictor:  # noqa: N803
        """A joint predictor (``capabilities.joint``, e.g. ``mtgp``): one model of every target that
        has a loss, fitted once on the runs x targets matrix (NaN cells allowed); every fitted
        target's member is that model, ``predict`` reads its columns."""
        cols = [j for j in range(len(targets)) if self.n_runs_[targets[j]]]
        self.skipped_ |= {t: "no run has this loss" for t in targets if not self.n_runs_[t]}
        model = make_predictor(self.name, **(self.params or {}))
        try:
            model.fit(W, Y[:, cols], features)
        except (UnsupportedTargetError, NotEnoughRunsError) as err:
            self.skipped_ |= {targets[j]: str(err) for j in cols}
        except Exception as err:  # noqa: BLE001 - reported per target, like a member's failure
            self.failed_ |= {targets[j]: f"{type(err).__name__}: {err}" for j in cols}
        else:
            self.joint_ = model
            self.members_ = {targets[j]: model for j in cols}
        self.fitted_targets_ = list(self.members_)
        return self

    @staticmethod
    def _tune_jointly(
        members: list[MixturePredictor],
        W: np.ndarray,  # noqa: N803
        Y: np.ndarray,  # noqa: N803
        features: np.ndarray | None,
    ) -> tuple[list | None, str | None]:
        """Members that can share one hyper-parameter fit (``capabilities.shared_tuning``:
        GPs) get it here: (each member's share for its ``fit(..., hyperparameters=...)``, or
        None; a note).

        If the batched fit fails, each member tunes its own hyper-parameters in its ``fit``
        (slower, and one target's failure then stays that target's); the note says so.
        """
        if not members[0].capabilities.shared_tuning or len(members) < 2:
            return None, None
        n_features = 0 if features is None else np.shape(features)[1]
        if len(W) < members[0].min_runs(np.shape(W)[1], n_features):
            return None, None  # each member's fit raises the clear error
        try:
            return type(members[0]).tune_jointly(members, W, Y, features), None
        except Exception as err:  # noqa: BLE001 - fall back to per-target tuning
            return None, f"joint tuning failed ({type(err).__name__}), so tuned per target"

    @property
    def notes_(self) -> dict[str, list[str]]:
        """Per fitted target, what its fit worked around, read from the members (so notes
        added later, e.g. by interval calibration, are included), and how many runs it was
        fitted on when some runs lack its loss."""
        joint = {t: [note] for t, note in self.joint_notes_.items()}
        return {
            t: joint.get(t, []) + self._runs_note(t) + list(m.fit_notes_)
            for t, m in self.members_.items()
        }

    def _runs_note(self, target: str) -> list[str]:
        n = self.n_runs_[target]
        return [] if n == self.n_total_ else [runs_note(n, self.n_total_)]

    def reasons(self) -> dict[str, tuple[str, str]]:
        """Targets not fitted: target -> (status 'skipped' or 'failed', reason)."""
        self._check_fitted()
        return {t: ("skipped", r) for t, r in self.skipped_.items()} | {
            t: ("failed", r) for t, r in self.failed_.items()
        }

    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise MixsurrogateError(f"the {self.name} predictors are not fitted yet; call fit")

    def require_fitted(self, targets: list[str] | None = None) -> None:
        """Raise one clear error if no target (or any of ``targets``) could be fitted."""
        self._check_fitted()
        missing = self.reasons()
        needed = [t for t in (targets or []) if t in missing]
        if needed or not self.members_:
            shown = needed or list(missing)
            detail = "; ".join(f"{t}: {missing[t][1]}" for t in shown)
            raise UnsupportedTargetError(f"{self.name} could not be fitted to {detail}")

    def predict(self, W: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
        """Predicted losses, shape (mixtures, fitted targets), columns as ``fitted_targets_``."""
        self.require_fitted()
        if self.joint_ is not None:
            return self.joint_.predict(W, features).reshape(len(W), -1)
        return np.column_stack([m.predict(W, features) for m in self.members_.values()])

    @available_if(_has_std)
    def predict_std(self, W: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
        """Posterior std per target, same shape as ``predict`` (``capabilities.std`` only)."""
        self.require_fitted()
        if self.joint_ is not None:
            return self.joint_.predict_std(W, features).reshape(len(W), -1)
        return np.column_stack([m.predict_std(W, features) for m in self.members_.values()])

    def predict_interval(
        self,
        W: np.ndarray,  # noqa: N803
        features: np.ndarray | None = None,
        level: float = 0.9,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) per target, each shaped like ``predict``; see the members'."""
        self.require_fitted()
        if self.joint_ is not None:
            lo, hi = self.joint_.predict_interval(W, features, level)
            return lo.reshape(len(W), -1), hi.reshape(len(W), -1)
        bounds = [m.predict_interval(W, features, level) for m in self.members_.values()]
        return np.column_stack([b[0] for b in bounds]), np.column_stack([b[1] for b in bounds])

    @available_if(_has_objective_std)
    def predict_objective_std(
        self,
        W: np.ndarray,  # noqa: N803
        weights: dict[str, float],
        features: np.ndarray | None = None,
    ) -> np.ndarray:
        """Posterior std of ``sum_t weights[t] * loss_t`` per mixture, with the sets' posterior
        covariance (joint predictors only, e.g. ``mtgp``); a set not in ``weights`` has weight
        0, a weighted set that was not fitted is an error."""
        self.require_fitted([t for t, a in weights.items() if a])
        vector = [float(weights.get(t, 0.0)) for t in self.fitted_targets_]
        return self.joint_.predict_objective_std(W, vector, features)
