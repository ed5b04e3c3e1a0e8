"""Errors that the CLI turns into one clear line and a non-zero exit."""

from __future__ import annotations


class MixsurrogateError(Exception):
    """A user-facing problem with the input; its message is the one line the CLI prints."""


class MixtureError(MixsurrogateError, ValueError):
    """Mixture weights are malformed (NaN, negative, wrong shape); also a ``ValueError``, as
    scikit-learn's estimator contract asks of bad input to ``fit`` and ``predict``."""


class RunsLogError(MixsurrogateError):
    """The runs log is malformed (missing columns, bad weights, bad losses, duplicates)."""


class ScoreStoreError(MixsurrogateError):
    """The score store is missing, malformed, or does not match the runs log or corpus."""


class CorpusError(MixsurrogateError):
    """The corpus directory is missing, malformed, or cannot serve the request."""


class NotEnoughRunsError(MixsurrogateError):
    """A predictor has more parameters than there are runs to fit them."""


class UnsupportedTargetError(MixsurrogateError):
    """A predictor cannot model this evaluation set (e.g. BiMix without a matching domain)."""


class ExpertError(MixsurrogateError):
    """A trained model folder (an expert, or a user's own LM) is missing or damaged."""
