"""LightGBM on the mixture rates (RegMix's regressor), with defaults for tens of runs.

LightGBM's defaults assume thousands of rows (``min_child_samples=20`` allows one split on 32
runs). With ``n_estimators="cv"`` the number of boosting rounds is chosen by k-fold early
stopping *inside the training runs*; RegMix's notebook early-stopped on its test set instead.
Defaults were compared on RegMix's training runs only (half fitted, half scored; see
``bench/predictor_probe.py --select``): 7 leaves beat 15 at n = 64 and 256.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import lightgbm as lgb
import numpy as np

from .base import MixturePredictor


class LGBMPredictor(MixturePredictor):
    """Gradient-boosted trees; deterministic (fixed seed, one thread, deterministic mode)."""

    name = "lgbm"
    capabilities = replace(MixturePredictor.capabilities, tree=True)

    def __init__(
        self,
        n_estimators: int | str = "cv",
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_child_samples: int = 3,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        max_rounds: int = 1000,
        cv_folds: int = 5,
        seed: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_rounds = max_rounds
        self.cv_folds = cv_folds
        self.seed = seed

    def n_parameters(self, n_domains: int, n_features: int = 0) -> int:
        # Trees add leaves only as the runs allow (too few runs give a constant, which the
        # evaluation shows); the internal CV needs a run per fold.
        return self.cv_folds if self.n_estimators == "cv" else 2

    def design_matrix(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return W

    def _params(self, n_rows: int) -> dict:
        return {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "min_child_weight": 0.0,
            "min_split_gain": 0.0,
            "subsample": self.subsample,
            "subsample_freq": 1 if self.subsample < 1 else 0,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            # a histogram bin per distinct value matters when there are only tens of runs
            "min_data_in_bin": 1,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 1,
            "verbose": -1,
        }

    def _rounds(self, X: np.ndarray, y: np.ndarray) -> int:  # noqa: N803
        if self.n_estimators != "cv":
            return int(self.n_estimators)
        folds = min(self.cv_folds, len(y))
        data = lgb.Dataset(X, y, params={"min_data_in_bin": 1, "verbose": -1})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = lgb.cv(
                self._params(len(y)),
                data,
                num_boost_round=self.max_rounds,
                nfold=folds,
                stratified=False,
                shuffle=True,
                seed=self.seed,
                callbacks=[lgb.early_stopping(50, verbose=False)],
            )
        return len(next(iter(result.values())))

    def _fit(self, W: np.ndarray, y: np.ndarray, features: np.ndarray | None) -> None:  # noqa: N803
        X = self.design_matrix(W, features)  # noqa: N806
        self.n_rounds_ = self._rounds(X, y)
        data = lgb.Dataset(X, y, params={"min_data_in_bin": 1, "verbose": -1})
        self.booster_ = lgb.train(self._params(len(y)), data, num_boost_round=self.n_rounds_)

    def _predict(self, W: np.ndarray, features: np.ndarray | None) -> np.ndarray:  # noqa: N803
        return self.booster_.predict(self.design_matrix(W, features))
