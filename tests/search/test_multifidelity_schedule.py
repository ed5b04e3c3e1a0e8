"""Multi-fidelity search: the two-phase switch counted in runs, runs in flight as pending
inputs, and the per-size oracle's interpolation between RegMix sizes."""

from __future__ import annotations

import numpy as np
import pytest

from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.runs.fidelity import Fidelity, FidelityMenu
from mixsurrogate.search.multifidelity import (
    exploration_runs,
    fit_multifidelity_model,
    propose_multifidelity,
    target_posterior,
    with_pending,
)
from mixsurrogate.search.size_oracle import PerSizeOracle
from mixsurrogate.simplex import Bounds

from builders import MID, SMALL, TARGET, multiscale_runs

DOMAINS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def fitted(one_torch_thread):
    W, F, y = multiscale_runs()  # noqa: N806
    return W, F, y, fit_multifidelity_model(W, F, y)


def test_switch_runs_counts_runs_below_the_target(fitted):
    W, F, y, model = fitted  # noqa: N806
    assert exploration_runs(F, TARGET) == 16
    assert exploration_runs(np.vstack([F, TARGET.features()]), TARGET) == 16  # not counted
    menu = FidelityMenu.build([SMALL, MID], TARGET)
    args = (W, F, y, DOMAINS, menu)
    early = propose_multifidelity(*args, q=2, model=model, switch_runs=17)
    plain = propose_multifidelity(*args, q=2, model=model)
    np.testing.assert_array_equal(early.mixtures, plain.mixtures)
    assert plain.fidelities != [TARGET, TARGET]
    late = propose_multifidelity(*args, q=2, model=model, switch_runs=16)
    assert late.fidelities == [TARGET, TARGET]
    assert "16 runs below the target >= switch 16" in late.notes[0]
    with pytest.raises(MixsurrogateError, match="--switch-after"):
        propose_multifidelity(*args, q=1, model=model, switch_runs=-1)


def test_runs_in_flight_are_pending_inputs(fitted):
    W, F, y, model = fitted  # noqa: N806
    menu = FidelityMenu.build([SMALL, MID], TARGET)
    args = (W, F, y, DOMAINS, menu)
    first = propose_multifidelity(*args, q=1, model=model, seed=3)
    w, f = first.mixtures[0], first.fidelities[0]
    pending = (w[None], f.features()[None])
    # the believer keeps the mean and shrinks the uncertainty at the run in flight
    believer = with_pending(model, *pending)
    grid = np.vstack([w, Bounds.unbounded(3).sample(8, seed=1)])
    m0, s0 = target_posterior(model, grid, TARGET)
    m1, s1 = target_posterior(believer, grid, TARGET)
    np.testing.assert_allclose(m0, m1, atol=1e-6)
    assert (s1 <= s0 + 1e-12).all()
    again = propose_multifidelity(*args, q=1, model=model, seed=3, pending=pending)
    assert not (np.allclose(again.mixtures[0], w) and again.fidelities[0] == f)
    assert any("1 run(s) in flight" in n for n in again.notes)
    # a run in flight counts for the switch (it is paid for)
    switched = propose_multifidelity(*args, q=1, model=model, switch_runs=17, pending=pending)
    assert switched.fidelities == [TARGET]


def test_space_filling_start_skips_the_runs_in_flight():
    W, F, y = multiscale_runs(n_small=1, n_mid=0)  # noqa: N806
    menu = FidelityMenu.build([SMALL], TARGET)
    design = Bounds.unbounded(3).sample(4, seed=0)
    plain = propose_multifidelity(W, F, y, DOMAINS, menu, q=1)
    np.testing.assert_allclose(plain.mixtures[0], design[1])
    busy = propose_multifidelity(
        W, F, y, DOMAINS, menu, q=1, pending=(design[1:2], SMALL.features()[None])
    )
    np.testing.assert_allclose(busy.mixtures[0], design[2])


class _Size:
    """A stand-in for one size's GP: a constant loss."""

    def __init__(self, loss: float):
        self.loss = loss

    def predict(self, W):  # noqa: N803
        return np.full(len(np.atleast_2d(W)), self.loss)


def test_per_size_oracle_interpolates_log_loss_in_log_size():
    oracle = PerSizeOracle(
        name="stub", domains=DOMAINS, model=None, log_noise_std=0.01,
        log_sizes=np.array([6.0, 8.0]), size_models=[_Size(4.0), _Size(2.0)],
        size_noise=np.array([0.02, 0.01]),
    )  # fmt: skip
    w = np.array([[0.2, 0.3, 0.5]])
    assert oracle.mean(w, Fidelity(1e6, 1e9))[0] == pytest.approx(4.0)
    assert oracle.mean(w, Fidelity(1e8, 1e10))[0] == pytest.approx(2.0)
    assert oracle.mean(w, Fidelity(1e7, 1e9))[0] == pytest.approx(np.sqrt(8.0))  # geometric
    assert oracle.log_noise(Fidelity(1e7, 1e9)) == pytest.approx(0.015)
    assert oracle.noise_std(Fidelity(1e8, 1e10)) == pytest.approx(0.02)
    with pytest.raises(ValueError, match="outside the logged sizes"):
        oracle.mean(w, Fidelity(1e9, 1e10))
    draws = oracle.observe(np.repeat(w, 4000, axis=0), Fidelity(1e6, 1e9),
                           np.random.default_rng(0))  # fmt: skip
    assert np.std(np.log(draws)) == pytest.approx(0.02, rel=0.1)
