"""Seed-noise floor and the noise ceiling on correlation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixsurrogate.errors import RunsLogError
from mixsurrogate.noise import noise_ceiling, seed_noise
from mixsurrogate.objective import Objective
from mixsurrogate.runs import RunsLog, validate_frame


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


def test_noise_ceiling_matches_simulated_correlation():
    rng = np.random.default_rng(0)
    truth = rng.normal(3.0, 0.2, 20000)
    observed = truth + rng.normal(0, 0.1, truth.size)
    log = _log(rng.uniform(size=truth.size), {"x": observed})
    ceiling = noise_ceiling(log, {"x": 0.1})["x"]
    assert ceiling == pytest.approx(np.corrcoef(truth, observed)[0, 1], abs=0.01)
    assert noise_ceiling(log, {"x": 10.0})["x"] == 0.0
