"""One predictor per evaluation set, fitted and queried together.

Column convention for ``features``: the caller orders the first ``len(targets)`` feature
columns as ``targets`` (column j = MDE loss of ``targets[j]``); more columns (e.g. another MDE
kind, or sets that are not targets) may follow. MDE predictors get ``target_feature=j``;
BiMix gets ``domain_index`` = the training domain named like the target, or None.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if

from ..errors import MixsurrogateError, UnsupportedTargetError
from . import PREDICTORS, make_predictor
from .base import MixturePredictor


def _all_members_have_std(self: MultiTargetPredictor) -> bool:
    members = getattr(self, "members_", None)
    return bool(members) and all(hasattr(m, "predict_std") for m in members.values())


class MultiTargetPredictor(BaseEstimator):
    """Fits ``make_predictor(name, **params)`` to every target column it can model.

    Targets the predictor cannot model (``UnsupportedTargetError``) are skipped and the reason
    kept in ``skipped_``; too few runs (``NotEnoughRunsError``) concerns every target and is
    raised.
    """

    def __init__(self, name: str, params: dict | None = None):
        self.name = name
        self.params = params

    def _member(self, target_index: int, target: str, domains: list[str]) -> MixturePredictor:
        if self.name not in PREDICTORS:
            make_predictor(self.name)  # raises the registry's error listing valid names
        accepted = PREDICTORS[self.name]._get_param_names()
        params = dict(self.params or {})
        if "domain_index" in accepted:
            params.setdefault("domain_index", domains.index(target) if target in domains else None)
        if "target_feature" in accepted:
            params.setdefault("target_feature", target_index)
        return make_predictor(self.name, **params)

    def fit(
        self,
        W: np.ndarray,  # noqa: N803
        Y: np.ndarray,  # noqa: N803
        targets: list[str],
        domains: list[str],
        features: np.ndarray | None = None,
    ) -> MultiTargetPredictor:
        Y = np.atleast_2d(np.asarray(Y, dtype=float))  # noqa: N806
        if Y.shape[1] != len(targets):
            raise ValueError(f"Y has {Y.shape[1]} columns but {len(targets)} targets are named")
        self.members_: dict[str, MixturePredictor] = {}
        self.skipped_: dict[str, str] = {}
        members = [self._member(j, target, list(domains)) for j, target in enumerate(targets)]
        self._tune_jointly(members, W, Y, features)
        for j, (target, member) in enumerate(zip(targets, members, strict=True)):
            try:
                member.fit(W, Y[:, j], features)
            except UnsupportedTargetError as err:
                self.skipped_[target] = str(err)
                continue
            self.members_[target] = member
        if not self.members_:
            reasons = "; ".join(f"{t}: {r}" for t, r in self.skipped_.items())
            raise UnsupportedTargetError(f"{self.name} can model none of the targets ({reasons})")
        self.fitted_targets_ = list(self.members_)
        return self

    @staticmethod
    def _tune_jointly(members: list[MixturePredictor], W, Y, features) -> None:  # noqa: N803
        """Members that can share one hyper-parameter fit (GPs) get it here, before ``fit``."""
        tune = getattr(type(members[0]), "tune_jointly", None)
        if tune is None or len(members) < 2:
            return
        n_params = members[0].n_parameters(
            np.shape(W)[1], 0 if features is None else np.shape(features)[1]
        )
        if len(W) >= n_params:  # with fewer runs each member's fit raises the clear error
            tune(members, W, Y, features)

    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise MixsurrogateError(f"the {self.name} predictors are not fitted yet; call fit")

    def predict(self, W: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
        """Predicted losses, shape (mixtures, fitted targets), columns as ``fitted_targets_``."""
        self._check_fitted()
        return np.column_stack([m.predict(W, features) for m in self.members_.values()])

    @available_if(_all_members_have_std)
    def predict_std(self, W: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:  # noqa: N803
        """Posterior std per target, same shape as ``predict``; only if every member has one."""
        return np.column_stack([m.predict_std(W, features) for m in self.members_.values()])
