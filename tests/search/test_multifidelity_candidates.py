"""Multi-fidelity candidates (issue 18): seeded per (seed, logged runs) as the single-fidelity
strategies are, and local candidates centred on the mixtures best at the target fidelity."""

from __future__ import annotations

import numpy as np
import pytest

from mixsurrogate.runs.fidelity import FidelityMenu
from mixsurrogate.search import multifidelity as mf
from mixsurrogate.simplex import Bounds

from builders import MID, SMALL, TARGET, multiscale_truth

OPTIMUM = np.array([0.6, 0.3, 0.1])
#: the larger runs sit at poor mixtures: their raw losses are the lowest only by their size
MID_MIXTURES = np.array([[0.05, 0.05, 0.9], [0.05, 0.9, 0.05], [0.1, 0.1, 0.8], [0.0, 0.5, 0.5]])
N_SOBOL = 64


def _runs():
    small = Bounds.unbounded(3).sample(12, seed=0)
    W = np.vstack([small, MID_MIXTURES])  # noqa: N806
    fids = [SMALL] * len(small) + [MID] * len(MID_MIXTURES)
    F = np.array([f.features() for f in fids])  # noqa: N806
    y = np.concatenate([multiscale_truth(W[i : i + 1], f) for i, f in enumerate(fids)])
    return W, F, y


@pytest.fixture(scope="module")
def fitted():
    W, F, y = _runs()  # noqa: N806
    return W, F, y, mf.fit_multifidelity_model(W, F, y)


@pytest.fixture
def seen_candidates(monkeypatch) -> list[np.ndarray]:
    """Each candidate set the acquisition is evaluated on."""
    seen: list[np.ndarray] = []
    original = mf.augmented_ei

    def spy(model, W, *args, **kwargs):  # noqa: N803
        seen.append(np.array(W))
        return original(model, W, *args, **kwargs)

    monkeypatch.setattr(mf, "augmented_ei", spy)
    return seen


def test_nearby_seeds_do_not_share_candidates(fitted, seen_candidates):
    """Before: seed + len(W) seeded both calls alike (seed 1 with n runs = seed 0 with n + 1)."""
    W, F, y, model = fitted  # noqa: N806
    menu = FidelityMenu.build([SMALL, MID], TARGET)
    n = len(W) - 1
    for seed, rows in ((1, n), (0, n + 1)):
        mf.propose_multifidelity(W[:rows], F[:rows], y[:rows], ["a", "b", "c"], menu,
                                 n_candidates=N_SOBOL, seed=seed, model=model)  # fmt: skip
    first, second = (c[:N_SOBOL] for c in seen_candidates)
    assert not np.allclose(first, second)
    # and the same seed and runs give the same candidates
    mf.propose_multifidelity(W[:n], F[:n], y[:n], ["a", "b", "c"], menu,
                             n_candidates=N_SOBOL, seed=1, model=model)  # fmt: skip
    np.testing.assert_array_equal(seen_candidates[0], seen_candidates[2])


def test_local_candidates_centre_on_the_best_mixtures_at_the_target(fitted, seen_candidates):
    """Before: centred on the lowest raw losses, i.e. on the larger runs' poor mixtures."""
    W, F, y, model = fitted  # noqa: N806
    assert set(np.argsort(y)[:4]) == set(range(12, 16))  # the larger runs have the lowest losses
    menu = FidelityMenu.build([SMALL, MID], TARGET)
    mf.propose_multifidelity(W, F, y, ["a", "b", "c"], menu, n_candidates=N_SOBOL, model=model)
    local = seen_candidates[0][N_SOBOL:]
    near_poor = np.linalg.norm(local[:, None] - MID_MIXTURES[None], axis=2).min(axis=1) < 0.15
    assert near_poor.mean() < 0.05
    # nearer the optimum than the logged mixtures are
    distance = np.median(np.linalg.norm(local - OPTIMUM, axis=1))
    assert distance < np.median(np.linalg.norm(W - OPTIMUM, axis=1))
