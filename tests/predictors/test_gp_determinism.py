"""GP fits users can trust (issue 9): deterministic in and across processes whatever torch did
before, retries counted, and a failing joint tuning or target never loses the other targets."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from mixsurrogate.predictors import gp as gp_module
from mixsurrogate.predictors import make_predictor
from mixsurrogate.predictors.gp import GPPredictor
from mixsurrogate.predictors.multitarget import MultiTargetPredictor

from builders import REPO, noisy_log

GP_FIT_SCRIPT = """
import numpy as np, sys
sys.path.insert(0, {tests!r})
from builders import noisy_log
from mixsurrogate.predictors import make_predictor
log = noisy_log()
gp = make_predictor("gp", max_iter=40).fit(log.W[:20], log.loss("s0")[:20])
print(repr(gp.predict(log.W[20:]).tolist()))
"""


def test_gp_fit_is_deterministic_in_one_process_whatever_torch_did_before():
    log = noisy_log()
    first = (
        make_predictor("gp", max_iter=40).fit(log.W[:20], log.loss("s0")[:20]).predict(log.W[20:])
    )
    torch.rand(1000)  # move torch's global generator, as other work in the process would
    torch.manual_seed(12345)
    second = (
        make_predictor("gp", max_iter=40).fit(log.W[:20], log.loss("s0")[:20]).predict(log.W[20:])
    )
    np.testing.assert_array_equal(first, second)


@pytest.mark.slow
def test_gp_fit_is_identical_in_two_processes(tmp_path):
    script = GP_FIT_SCRIPT.format(tests=str(REPO / "tests"))
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert outputs[0] == outputs[1] and outputs[0].startswith("[")


def test_gp_fit_forced_to_retry_stays_deterministic_and_says_so(monkeypatch):
    """BoTorch retries a failed attempt from priors drawn with torch's global generator; the
    fit now forks and seeds it, and counts the retry in ``fit_notes_``."""
    from linear_operator.utils.errors import NotPSDError

    real = gp_module.fit_gpytorch_mll_scipy
    calls = {"n": 0}

    def fail_first_attempt(mll, closure=None, **kwargs):
        calls["n"] += 1
        if calls["n"] % 2 == 1:  # the first attempt of every fit fails
            raise NotPSDError("forced failure")
        return real(mll, closure=closure, **kwargs)

    monkeypatch.setattr(gp_module, "fit_gpytorch_mll_scipy", fail_first_attempt)
    log = noisy_log()
    predictions, notes = [], []
    for state in (1, 2):
        torch.manual_seed(state)  # different global state before each fit
        gp = make_predictor("gp", max_iter=40).fit(log.W[:20], log.loss("s0")[:20])
        predictions.append(gp.predict(log.W[20:]))
        notes.append(gp.fit_notes_)
    np.testing.assert_array_equal(predictions[0], predictions[1])
    assert any(
        "first attempt failed (1 restart(s)); kept the best of 8 starts" in n for n in notes[0]
    )


def test_joint_gp_tuning_failure_falls_back_to_per_target_fits(monkeypatch):
    from botorch.exceptions.errors import ModelFittingError

    def broken(cls, members, W, Y, features):  # noqa: N803
        raise ModelFittingError("All attempts to fit the model have failed.")

    monkeypatch.setattr(GPPredictor, "tune_jointly", classmethod(broken))
    log = noisy_log()
    model = MultiTargetPredictor("gp", {"max_iter": 30}).fit(log.W, log.Y, log.targets, log.domains)
    assert model.fitted_targets_ == log.targets
    assert all("joint tuning failed (ModelFittingError)" in n[0] for n in model.notes_.values())


def test_one_failing_target_keeps_the_others(monkeypatch):
    real_fit = GPPredictor._fit

    def fail_on_constant(self, W, y, features, **joint):  # noqa: N803
        if np.ptp(y) > 10:
            raise RuntimeError("boom")
        return real_fit(self, W, y, features, **joint)

    monkeypatch.setattr(GPPredictor, "_fit", fail_on_constant)
    log = noisy_log()
    Y = log.Y.copy()  # noqa: N806
    Y[:, 1] *= 100  # noqa: N806
    model = MultiTargetPredictor("gp", {"max_iter": 30}).fit(log.W, Y, log.targets, log.domains)
    assert model.fitted_targets_ == ["s0", "s2"]
    assert model.reasons() == {"s1": ("failed", "RuntimeError: boom")}


def test_joint_gp_tuning_whose_first_attempt_failed_is_redone_per_target(monkeypatch):
    """A batched fit's restarts keep the best *summed* likelihood, which can leave one target
    at a noise-only optimum; after a failed first attempt each target tunes on its own."""
    from linear_operator.utils.errors import NotPSDError

    real = gp_module.fit_gpytorch_mll_scipy
    calls = {"n": 0}

    def fail_the_joint_first_attempt(mll, closure=None, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise NotPSDError("forced failure")
        return real(mll, closure=closure, **kwargs)

    monkeypatch.setattr(gp_module, "fit_gpytorch_mll_scipy", fail_the_joint_first_attempt)
    log = noisy_log()
    model = MultiTargetPredictor("gp", {"max_iter": 30}).fit(log.W, log.Y, log.targets, log.domains)
    assert model.fitted_targets_ == log.targets
    notes = model.notes_
    assert all(
        "joint tuning failed (RuntimeError), so tuned per target" in n[0] for n in notes.values()
    )
    separate = GPPredictor(max_iter=30).fit(log.W, log.loss("s0"))
    np.testing.assert_allclose(model.members_["s0"].predict(log.W), separate.predict(log.W))
