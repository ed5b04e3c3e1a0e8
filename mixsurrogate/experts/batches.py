"""Training batches: random windows of ``context + 1`` tokens from the memory-mapped streams.

Sampling rule (documented because the runs log depends on it): for optimiser step ``s`` a fresh
``numpy`` generator is seeded with ``(seed, s)``; each batch row draws a domain with probability
equal to its mixture weight, then a window start uniformly among the windows of that domain's
training stream. An expert is the mixture with all its weight on one domain.

Because the batch of step ``s`` is a pure function of ``(seed, s)``, a resumed run needs no
sampler state to reproduce an uninterrupted one, and two mixtures trained with the same seed
share their random numbers (same uniform draws), which lowers the noise between their losses.
"""

from __future__ import annotations

import numpy as np
import torch

from ..corpus.store import Corpus, check_token_ids
from ..errors import CorpusError


class WindowSampler:
    """Batches of windows drawn from several token streams in proportion to ``weights``."""

    def __init__(
        self,
        streams: dict[str, np.ndarray],
        weights: dict[str, float],
        context: int,
        batch_size: int,
        seed: int,
        vocab_size: int | None = None,
    ) -> None:
        active = [d for d in weights if weights[d] > 0]
        if not active:
            raise CorpusError("the mixture has no domain with a positive weight")
        w = np.array([weights[d] for d in active], dtype=np.float64)
        if (w < 0).any() or not np.isfinite(w).all():
            raise CorpusError("mixture weights must be finite and >= 0")
        self.domains = active
        self.cumulative = np.cumsum(w / w.sum())
        self.streams = [streams[d] for d in active]
        self.context = context
        self.batch_size = batch_size
        self.seed = seed
        self.vocab_size = vocab_size
        need = batch_size * (context + 1)
        for name, stream in zip(active, self.streams, strict=True):
            if len(stream) < need:
                raise CorpusError(
                    f"domain {name!r} has {len(stream)} training tokens, less than one batch "
                    f"({batch_size} x {context + 1} = {need})"
                )

    def windows(self, step: int) -> np.ndarray:
        """(batch_size, context + 1) int64 token ids of optimiser step ``step``."""
        rng = np.random.default_rng([self.seed, step])
        pick = rng.random(self.batch_size)
        place = rng.random(self.batch_size)
        which = np.minimum(
            np.searchsorted(self.cumulative, pick, side="right"), len(self.streams) - 1
        )
        span = self.context + 1
        out = np.empty((self.batch_size, span), dtype=np.int64)
        for row, (d, u) in enumerate(zip(which, place, strict=True)):
            stream = self.streams[d]
            start = int(u * (len(stream) - span + 1))
            out[row] = stream[start : start + span]
        if self.vocab_size is not None:  # a batch's max is cheap next to the step it feeds
            for d in np.unique(which):
                where = f"training stream of domain {self.domains[d]!r} (step {step})"
                check_token_ids(out[which == d], self.vocab_size, where)
        return out

    def batch(self, step: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        """This rank's rows of the global batch (rows ``rank::world``), as a torch tensor."""
        return torch.from_numpy(self.windows(step)[rank::world])


def mixture_sampler(
    corpus: Corpus,
    weights: dict[str, float],
    context: int,
    batch_size: int,
    seed: int,
    limits: dict[str, int] | None = None,
) -> WindowSampler:
    """Sampler over the corpus training streams; unknown domains and token ids beyond the
    tokenizer's vocabulary (checked batch by batch) are one clear error. ``limits`` keeps only
    the first ``limits[d]`` tokens of domain ``d``'s stream (a subsample of its unique data)."""
    corpus.check_domains(list(weights))
    limits = limits or {}
    streams = {d: corpus.tokens(d, "train")[: limits.get(d)] for d, w in weights.items() if w > 0}
    return WindowSampler(streams, weights, context, batch_size, seed, corpus.vocab_size)
