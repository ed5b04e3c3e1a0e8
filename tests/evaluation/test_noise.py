"""Seed-noise floor and the noise ceiling on correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixsurrogate.errors import RunsLogError
from mixsurrogate.evaluation.noise import noise_ceiling, seed_noise
from mixsurrogate.objective import Objective
from mixsurrogate.runs.log import RunsLog, validate_frame


def _log(weights: np.ndarray, losses: dict[str, np.ndarray]) -> RunsLog:
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(len(weights))]})
    frame["w:a"], frame["w:b"] = weights, 1 - weights
    for name, values in losses.items():
        frame[f"loss:{name}"] = values
    return RunsLog(validate_frame(frame))


def test_seed_noise_pools_groups_and_ignores_single_runs():
    # mixture 0.5: losses 1, 3 (var 2); mixture 0.2: 2, 2, 5 (var 3, 2 dof); 0.9 once
    seeds = _log(
        np.array([0.5, 0.5, 0.2, 0.2, 0.2, 0.9]),
        {"x": np.array([1.0, 3.0, 2.0, 2.0, 5.0, 100.0]), "y": np.array([1.0, 1, 4, 4, 4, 7])},
    )
    objective = Objective.parse("x=1,y=1", ["x", "y"])
    noise = seed_noise(seeds, objective)
    assert noise["x"] == pytest.approx(np.sqrt((2 * 1 + 3 * 2) / 3))
    assert noise["y"] == 0.0
    assert noise["objective"] == pytest.approx(noise["x"])  # y adds no noise to x + y


def test_seed_noise_needs_a_repeated_mixture():
    seeds = _log(np.array([0.1, 0.2]), {"x": np.array([1.0, 2.0])})
    with pytest.raises(RunsLogError, match="no mixture trained more than once"):
        seed_noise(seeds)


def test_noise_ceiling_matches_gaussian_spearman():
    # Gaussian truth with Pearson correlation rho to the observations: Spearman is
    # (6 / pi) arcsin(rho / 2)
    rng = np.random.default_rng(0)
    observed = rng.normal(3.0, np.sqrt(0.2**2 + 0.1**2), 3000)
    log = _log(rng.uniform(size=observed.size), {"x": observed})
    rho = np.sqrt(1 - 0.1**2 / np.var(observed, ddof=1))
    expected = 6 / np.pi * np.arcsin(rho / 2)
    assert noise_ceiling(log, {"x": 0.1}, draws=200)["x"] == pytest.approx(expected, abs=0.01)
    assert noise_ceiling(log, {"x": 10.0})["x"] == 0.0


def test_far_off_runs_do_not_inflate_the_ceiling():
    """40 runs within a few noise stds of each other plus 6 far-off ones: the variance is large,
    but ordering the 40 is hard, and the ceiling says so."""
    rng = np.random.default_rng(1)
    observed = np.concatenate([rng.normal(5.1, 0.05, 40), rng.normal(5.9, 0.1, 6)])
    log = _log(rng.uniform(size=observed.size), {"x": observed})
    ceiling = noise_ceiling(log, {"x": 0.025})["x"]
    pearson_formula = np.sqrt(1 - 0.025**2 / np.var(observed, ddof=1))
    assert pearson_formula > 0.99 and ceiling < 0.96
