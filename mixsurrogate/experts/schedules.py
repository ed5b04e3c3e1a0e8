"""Training multi-phase runs: the sampler switches mixture at whole optimiser steps.

Rounding rule (documented because the runs log depends on it): phase ``p`` of a run of ``S``
steps ends after step ``b_p = floor(c_p * S + 1/2)``, where ``c_p`` is the cumulative share of
phases ``1..p`` (the last phase ends at ``S``). Every phase must get at least one step. The log
records the *realised* shares ``(b_p - b_{p-1}) / S`` and the effective mixture they give, which
is what the model saw, not the shares asked for (at 512 steps a last-phase share of 0.2 is
102 steps, 0.1992).

One learning-rate schedule for the whole run: the learning rate is a function of the global step
(see :func:`.train.learning_rate`), and so is each batch (see :mod:`.batches`): the batch of step
``s`` is drawn by the sampler of the phase that holds ``s``, seeded with ``(seed, s)``. A resumed
run therefore needs no phase state, and a schedule whose phases are all the same mixture trains
bit-identically to the single-phase run of that mixture.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from dataclasses import replace

import numpy as np
import torch

from ..corpus.store import Corpus
from ..errors import MixsurrogateError
from .batches import WindowSampler, mixture_sampler
from .mixtures import Mixture


def phase_boundaries(shares: tuple[float, ...] | list[float], steps: int) -> list[int]:
    """The step after which each phase but the last ends (``len(shares) - 1`` numbers)."""
    cumulative = np.cumsum(np.asarray(shares, dtype=float))[:-1]
    ends = [int(np.floor(c * steps + 0.5)) for c in cumulative]
    return ends


def realised(m: Mixture, steps: int) -> Mixture:
    """``m`` with its shares rounded to whole steps and its effective mixture recomputed from
    them; a phase left without a step is one clear error."""
    if m.phases is None or m.shares is None:
        return m
    ends = [0, *phase_boundaries(m.shares, steps), steps]
    counts = np.diff(ends)
    if (counts < 1).any():
        phase = int(np.flatnonzero(counts < 1)[0]) + 1
        raise MixsurrogateError(
            f"run {m.run_id}: phase {phase}'s share {m.shares[phase - 1]:.4g} rounds to no "
            f"optimiser step of the preset's {steps} (each phase needs >= 1/{steps})"
        )
    shares = tuple((counts / steps).tolist())
    domains = list(m.weights)
    effective = np.asarray(shares) @ np.array([[p[d] for d in domains] for p in m.phases])
    return replace(m, weights=dict(zip(domains, effective.tolist(), strict=True)), shares=shares)


def seen_by(m: Mixture, steps: int, step: int) -> Mixture:
    """What a run (as :func:`realised` returns it) has trained on after its first ``step`` steps:
    the phases begun so far, with their shares of those steps; one phase is a single-phase run.
    The mixture an intermediate checkpoint of a schedule is logged with."""
    if m.phases is None or m.shares is None:
        return m
    ends = np.minimum([0, *phase_boundaries(m.shares, steps), steps], step)
    counts = np.diff(ends)
    kept = [p for p, c in zip(m.phases, counts, strict=True) if c > 0]
    if len(kept) == 1:
        return replace(m, weights=dict(kept[0]), phases=None, shares=None)
    shares = counts[counts > 0] / step
    domains = list(m.weights)
    effective = shares @ np.array([[p[d] for d in domains] for p in kept])
    weights = dict(zip(domains, effective.tolist(), strict=True))
    return replace(m, weights=weights, phases=tuple(kept), shares=tuple(shares.tolist()))


class ScheduleSampler:
    """The batches of a multi-phase run: the sampler of the phase holding each step."""

    def __init__(self, samplers: list[WindowSampler], boundaries: list[int]) -> None:
        if len(samplers) != len(boundaries) + 1:
            raise MixsurrogateError("a schedule needs one sampler per phase")
        self.samplers = samplers
        self.boundaries = boundaries

    def phase(self, step: int) -> int:
        """The 0-based phase of optimiser step ``step``."""
        return bisect_right(self.boundaries, step)

    def windows(self, step: int) -> np.ndarray:
        return self.samplers[self.phase(step)].windows(step)

    def batch(self, step: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        return self.samplers[self.phase(step)].batch(step, rank, world)


def run_sampler(
    corpus: Corpus,
    m: Mixture,
    context: int,
    batch_size: int,
    seed: int,
    steps: int,
    limits: dict[str, int] | None = None,
) -> WindowSampler | ScheduleSampler:
    """The sampler of one run (``m`` as :func:`realised` returns it): one mixture's, or one per
    phase, all with the same seed; ``limits`` caps each domain's training stream (a subsample)."""
    if m.phases is None or m.shares is None:
        return mixture_sampler(corpus, m.weights, context, batch_size, seed, limits)
    samplers = [mixture_sampler(corpus, p, context, batch_size, seed, limits) for p in m.phases]
    return ScheduleSampler(samplers, phase_boundaries(m.shares, steps))


def training_target(m: Mixture, steps: int, limits: dict[str, int] | None = None) -> str:
    """What a checkpoint of this run must have trained on (its ``run_identity`` target).

    A single-phase run on the full data keeps the target it always had, so its checkpoints
    written before schedules existed still resume.
    """
    target = "mixture:" + json.dumps(m.weights, sort_keys=True)
    if m.phases is not None and m.shares is not None:
        target = "schedule:" + json.dumps(
            {"phases": list(m.phases), "ends": phase_boundaries(m.shares, steps)}, sort_keys=True
        )
    if limits:
        target += "; unique:" + json.dumps(limits, sort_keys=True)
    return target


def schedule_note(m: Mixture, steps: int) -> str:
    """The notes' words for a schedule: its phases' step boundaries."""
    if m.phases is None or m.shares is None:
        return ""
    ends = phase_boundaries(m.shares, steps)
    return f"; {len(m.phases)}-phase schedule, phases end after steps {[*ends, steps]}"
