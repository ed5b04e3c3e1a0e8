"""``auto``: the predictor chosen by cross-validation on the training runs alone.

Which predictor ranks mixtures best depends on how many runs there are and on the set (on
RegMix, gp leads from 16 runs, loglinear is close from 64, dml gains at 1B scale). ``auto``
runs k-fold CV of every candidate *inside its own training runs* (nested inside any outer
evaluation: the outer held-out runs never reach it), scores each candidate's out-of-fold
predictions by Spearman (ranking mixtures is the job; MSE as the tie-break), refits the best
on all training runs and predicts with it. ``fit_notes_`` says what was chosen,
``inner_scores_`` each candidate's inner (Spearman, MSE); intervals are the chosen predictor's.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.stats import spearmanr
from sklearn.model_selection import KFold

from ..errors import MixsurrogateError
from .base import MixturePredictor, check_weights
from .registry import PREDICTORS, make_predictor

#: rates-only predictors that need no per-target parameters
DEFAULT_CANDIDATES = ("loglinear", "lgbm", "gp", "dml")


class AutoPredictor(MixturePredictor):
    """The candidate with the best inner-CV Spearman, refitted on every training run."""

    name = "auto"
    #: an inner cross-validation of every candidate per fit
    capabilities = replace(MixturePredictor.capabilities, opt_in=True, schedules=False)

    def __init__(
        self,
        candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
        folds: int = 5,
        seed: int = 0,
    ):
        self.candidates = candidates
        self.folds = folds
        self.seed = seed

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        return 2  # the smallest candidate's; a candidate that cannot fit is left out

    def min_runs(self, n_domains: int, n_features: int = 0) -> int:
        return 2 * self.folds  # two runs per inner fold at least

    def _make(self, name: str) -> MixturePredictor:
        if name == self.name:
            raise MixsurrogateError("auto cannot be its own candidate")
        params = {"seed": self.seed} if "seed" in _param_names(name) else {}
        return make_predictor(name, **params)

    def inner_scores(self, W: np.ndarray, y: np.ndarray) -> dict[str, tuple[float, float]]:  # noqa: N803
        """Candidate -> (out-of-fold Spearman, MSE) on k folds of ``W, y`` (these runs only);
        a candidate that fails on some fold scores (-inf, inf)."""
        folds = KFold(min(self.folds, len(y)), shuffle=True, random_state=self.seed)
        splits = list(folds.split(W))
        scores = {}
        for name in self.candidates:
            oof = np.full(len(y), np.nan)
            try:
                for train, test in splits:
                    oof[test] = self._make(name).fit(W[train], y[train]).predict(W[test])
            except Exception:  # noqa: BLE001 - e.g. too few runs for this candidate's parameters
                scores[name] = (-np.inf, np.inf)
                continue
            rho = spearmanr(oof, y)[0] if np.ptp(oof) > 0 else 0.0
            scores[name] = (float(np.nan_to_num(rho, nan=0.0)), float(np.mean((oof - y) ** 2)))
        return scores

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        if not self.candidates:
            raise MixsurrogateError("auto needs at least one candidate predictor")
        self.inner_scores_ = self.inner_scores(W, y)
        ranked = sorted(self.inner_scores_, key=lambda n: (-self.inner_scores_[n][0],
                                                           self.inner_scores_[n][1]))  # fmt: skip
        usable = [n for n in ranked if np.isfinite(self.inner_scores_[n][0])]
        if not usable:
            raise MixsurrogateError("auto: no candidate could be fitted on the inner folds")
        self.chosen_ = usable[0]
        self.model_ = self._make(self.chosen_).fit(W, y)
        # the scores stay in inner_scores_: a note without them counts alike across folds
        self.fit_notes_.append(f"chose {self.chosen_} by {self.folds}-fold inner CV")
        self.fit_notes_ += list(self.model_.fit_notes_)

    def _predict(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return self.model_.predict(W)

    def predict_interval(
        self,
        W: np.ndarray,  # noqa: N803
        features: np.ndarray | None = None,
        level: float = 0.9,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The chosen predictor's interval (its posterior, or its conformal calibration on
        these training runs)."""
        return self.model_.predict_interval(check_weights(W), None, level)


def _param_names(name: str) -> list[str]:
    return PREDICTORS[name]._get_param_names() if name in PREDICTORS else []
