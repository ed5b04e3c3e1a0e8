"""Predictor inputs of a runs log: one object that maps runs to ``X`` and ``X`` back to mixtures.

A single-phase log's inputs are its mixtures ``W`` (unchanged). A schedule log's inputs are the
flattened schedule (:meth:`Schedules.flat`: every phase's mixture, then the shares of phases
2..P), so a surrogate can tell *when* a domain was seen, not only how much of it. Optionally,
``K`` exposure features follow: the epochs each run trains on each domain (effective weight x
run tokens / the domain's unique training tokens, ``schedule.exposure``), saturated as
``e / (1 + e)`` so every input stays in [0, 1] as the GP kernels expect (0 epochs -> 0,
1 epoch -> 0.5, many -> 1).

Why one object: every predictor, every evaluation split and every proposal must agree on the
columns of ``X``; building them in one place (and decoding a proposal's ``X`` back to phase
mixtures) keeps them from drifting apart.

MDE for a schedule (``mde_mixture``): the experts' mixture that stands for a schedule is the
*recency-weighted* mixture ``m = sum_p s_p g^(P-p) w_p / sum_p s_p g^(P-p)`` with
``g = MDE_RECENCY``: each phase counts by its token share, and a token seen one phase earlier
counts ``g`` times a token of the next phase (a model remembers what it saw last best). It is an
approximation, not a law: ``g = 1`` is the effective mixture, ``g -> 0`` the last phase alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import RunsLogError
from .log import RunsLog
from .names import WEIGHT_PREFIX
from .schedule import Schedules, exposure, read_schedules

#: the name prefix of the exposure feature columns (``epochs:<domain>``)
EXPOSURE_PREFIX = "epochs:"
#: the weight of a token of phase p-1 relative to one of phase p in the MDE of a schedule
MDE_RECENCY = 0.5

FeatureFn = Callable[[np.ndarray], np.ndarray]


def recency_mixture(weights: np.ndarray, shares: np.ndarray, gamma: float = MDE_RECENCY):
    """``sum_p s_p g^(P-p) w_p`` normalised (runs x domains): see the module docstring."""
    weights, shares = np.asarray(weights, float), np.asarray(shares, float)
    n_phases = shares.shape[1]
    scaled = shares * gamma ** np.arange(n_phases - 1, -1, -1)[None, :]
    scaled = scaled / scaled.sum(axis=1, keepdims=True)
    return np.einsum("np,npk->nk", scaled, weights)


def saturate(epochs: np.ndarray) -> np.ndarray:
    """``e / (1 + e)``: epochs as an input in [0, 1), monotone."""
    return epochs / (1.0 + epochs)


@dataclass(frozen=True)
class InputSpace:
    """How runs become predictor inputs: mixtures or schedules, with or without exposure."""

    domains: tuple[str, ...]
    #: 0 for a single-phase log (X = W), else the number of phases
    n_phases: int = 0
    #: each domain's unique training tokens, when exposure features are wanted
    unique_tokens: tuple[float, ...] | None = None
    recency: float = MDE_RECENCY

    @classmethod
    def of(cls, log: RunsLog, unique_tokens: Mapping[str, float] | None = None) -> InputSpace:
        """The space of ``log`` (schedules when it has phase columns); ``unique_tokens``
        (domain -> tokens, e.g. a corpus manifest's ``tokens.train``) adds exposure features."""
        schedules = read_schedules(log.frame)
        tokens = None
        if unique_tokens is not None:
            missing = [d for d in log.domains if d not in unique_tokens]
            if missing:
                raise RunsLogError(
                    f"exposure features: the corpus has no training token count for domain "
                    f"{missing[0]!r}"
                )
            tokens = tuple(float(unique_tokens[d]) for d in log.domains)
        return cls(tuple(log.domains), 0 if schedules is None else schedules.n_phases, tokens)

    @property
    def is_schedule(self) -> bool:
        return self.n_phases > 0

    @property
    def has_exposure(self) -> bool:
        return self.unique_tokens is not None

    @property
    def is_mixture(self) -> bool:
        """Whether ``X`` is exactly the mixture (a single-phase log, no exposure)."""
        return not self.is_schedule and not self.has_exposure

    def unique_tokens_map(self) -> dict[str, float] | None:
        """``unique_tokens`` by domain (what ``of`` takes), or None without exposure."""
        if self.unique_tokens is None:
            return None
        return dict(zip(self.domains, self.unique_tokens, strict=True))

    def names(self) -> list[str]:
        """Column names of ``X`` (the log's column names for schedules and mixtures)."""
        if self.is_schedule:
            probe = Schedules(np.zeros((0, self.n_phases, len(self.domains))),
                              np.zeros((0, self.n_phases)), self.domains)  # fmt: skip
            names = probe.flat_names()
        else:
            names = [WEIGHT_PREFIX + d for d in self.domains]
        return names + ([EXPOSURE_PREFIX + d for d in self.domains] if self.has_exposure else [])

    def describe(self) -> str:
        """One line saying what the inputs are (for notes)."""
        what = (
            f"{self.n_phases}-phase schedules (each phase's mixture and share)"
            if self.is_schedule
            else "mixtures"
        )
        return what + (" and per-domain exposure (epochs)" if self.has_exposure else "")

    # ----------------------------------------------------------------- runs -> X

    def schedules(self, log: RunsLog) -> Schedules:
        """``log``'s schedules in this space's domain order (a single-phase log's runs as
        constant schedules of equal shares)."""
        log = log.with_domain_order(list(self.domains))
        schedules = read_schedules(log.frame)
        n_phases = max(self.n_phases, 1)
        if schedules is None:
            W = log.W  # noqa: N806
            weights = np.repeat(W[:, None, :], n_phases, axis=1)
            return Schedules(weights, np.full((len(W), n_phases), 1 / n_phases), self.domains)
        if schedules.n_phases != n_phases:
            raise RunsLogError(
                f"the log has {schedules.n_phases}-phase schedules; the surrogate's runs have "
                f"{n_phases} phase(s)"
            )
        return schedules

    def inputs(self, log: RunsLog) -> np.ndarray:
        """``X`` of every run of ``log`` (runs x ``len(names())``)."""
        if self.is_mixture:
            return log.with_domain_order(list(self.domains)).W
        schedules = self.schedules(log)
        tokens = None
        if self.has_exposure:
            column = log.frame["tokens"] if "tokens" in log.frame.columns else None
            tokens = (
                None if column is None else pd.to_numeric(column, errors="coerce").to_numpy(float)
            )
            if tokens is None or np.isnan(tokens).any() or (tokens <= 0).any():
                raise RunsLogError(
                    "exposure features need every run's training tokens: fill the log's "
                    "'tokens' column (or leave out --corpus)"
                )
        return self.encode(schedules.weights, schedules.shares, tokens)

    def encode(
        self, weights: np.ndarray, shares: np.ndarray, tokens: np.ndarray | float | None = None
    ) -> np.ndarray:
        """``X`` of schedules (runs x phases x domains, runs x phases) trained on ``tokens``
        (one per run, or one for all; needed with exposure features only)."""
        weights, shares = np.asarray(weights, float), np.asarray(shares, float)
        n = len(weights)
        if self.is_schedule:
            base = np.hstack([weights.reshape(n, -1), shares[:, 1:]])
        else:
            base = np.einsum("np,npk->nk", shares, weights)
        if not self.has_exposure:
            return base
        if tokens is None:
            raise RunsLogError("exposure features need the run's training tokens (--budget-tokens)")
        effective = np.einsum("np,npk->nk", shares, weights)
        run_tokens = np.broadcast_to(np.asarray(tokens, float), (n,))
        epochs = exposure(effective, run_tokens, np.asarray(self.unique_tokens))
        return np.hstack([base, saturate(epochs)])

    # ----------------------------------------------------------------- X -> mixtures

    def decode(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
        """(weights runs x phases x domains, shares runs x phases) of inputs ``X``."""
        X = np.atleast_2d(np.asarray(X, float))  # noqa: N806
        k, n = len(self.domains), len(X)
        if not self.is_schedule:
            return X[:, None, :k], np.ones((n, 1))
        p = self.n_phases
        weights = X[:, : p * k].reshape(n, p, k)
        rest = X[:, p * k : p * k + p - 1]
        return weights, np.hstack([1.0 - rest.sum(axis=1, keepdims=True), rest])

    def effective(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """The token-weighted mixture of each row of ``X``."""
        weights, shares = self.decode(X)
        return np.einsum("np,npk->nk", shares, weights)

    def mde_mixture(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        """The mixture whose MDE stands for each row's schedule (the module docstring)."""
        weights, shares = self.decode(X)
        return recency_mixture(weights, shares, self.recency)

    def features(self, feature_fn: FeatureFn | None) -> FeatureFn | None:
        """``feature_fn`` (MDE features of mixtures) as a function of ``X``; unchanged for a
        mixture space. Keeps the function's ``eval_sets``."""
        if feature_fn is None or self.is_mixture:
            return feature_fn
        return ScheduleFeatures(feature_fn, self)


class ScheduleFeatures:
    """MDE features of inputs ``X``: the features of their ``mde_mixture``."""

    def __init__(self, feature_fn: FeatureFn, space: InputSpace):
        self.feature_fn, self.space = feature_fn, space
        sets = getattr(feature_fn, "eval_sets", None)
        if sets is not None:
            self.eval_sets = sets

    def __call__(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return self.feature_fn(self.space.mde_mixture(X))
