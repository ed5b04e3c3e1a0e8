"""Predictors on schedule logs: inputs are the flattened schedules (``runs.inputs``), the mixing
laws refuse them, and MDE features are those of the recency-weighted mixture."""

import numpy as np
import pytest

from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.evaluation.protocol import (
    EvaluationContext,
    PredictorSpec,
    cross_validate,
    fit_predict,
)
from mixsurrogate.runs.inputs import InputSpace, recency_mixture, saturate
from mixsurrogate.runs.log import RunsLog, validate_frame
from mixsurrogate.runs.schedule import is_phase_column

from builders import schedule_log


def mixture_only(log: RunsLog) -> RunsLog:
    """The same runs with their schedule columns dropped: only the effective mixture left."""
    kept = [c for c in log.frame.columns if not is_phase_column(c)]
    return RunsLog(validate_frame(log.frame[kept]))


def cv_spearman(log: RunsLog, name: str = "linear") -> float:
    evaluation = cross_validate(
        EvaluationContext([PredictorSpec(name)], progress=False), log, folds=5
    )
    return float(evaluation.scores["spearman"].mean())


def test_a_schedule_surrogate_fits_what_a_mixture_surrogate_cannot():
    log = schedule_log(60)
    with_phases, effective_only = cv_spearman(log), cv_spearman(mixture_only(log))
    assert with_phases > 0.95
    assert effective_only < 0.75  # the loss depends on phase 2, which the mixture hides
    assert with_phases - effective_only > 0.2


def test_inputs_are_the_flat_schedule_and_exposure_follows():
    log = schedule_log(5)
    space = InputSpace.of(log)
    assert space.names()[-1] == "share@2" and len(space.names()) == 7
    X = space.inputs(log)  # noqa: N806
    np.testing.assert_allclose(space.effective(X), log.W, atol=1e-12)
    exposed = InputSpace.of(log, {"a": 250_000, "b": 1_000_000, "c": 4_000_000})
    Xe = exposed.inputs(log)  # noqa: N806
    epochs = log.W * 1_000_000 / np.array([250_000, 1_000_000, 4_000_000])
    np.testing.assert_allclose(Xe[:, 7:], epochs / (1 + epochs))
    assert exposed.names()[7:] == ["epochs:a", "epochs:b", "epochs:c"]
    assert saturate(np.array([1.0]))[0] == 0.5


def test_single_phase_inputs_are_the_mixtures_unchanged():
    log = mixture_only(schedule_log(5))
    space = InputSpace.of(log)
    assert space.is_mixture
    np.testing.assert_array_equal(space.inputs(log), log.W)


@pytest.mark.parametrize("name", ["dml", "bimix"])
def test_laws_of_the_mixture_refuse_a_schedule_log_in_one_line(name):
    log = schedule_log(20)
    with pytest.raises(MixsurrogateError, match="law of the mixture") as caught:
        fit_predict(PredictorSpec(name), log, InputSpace.of(log).inputs(log), ["web"])
    assert "\n" not in str(caught.value)


def test_recency_mixture_matches_its_definition_by_hand():
    rng = np.random.default_rng(3)
    weights = rng.dirichlet(np.ones(4), size=(6, 3))
    shares = rng.dirichlet(np.ones(3), size=6)
    for gamma in (1.0, 0.5, 0.1):
        expected = []
        for w, s in zip(weights, shares, strict=True):
            num = sum(s[p] * gamma ** (2 - p) * w[p] for p in range(3))
            expected.append(num / sum(s[p] * gamma ** (2 - p) for p in range(3)))
        np.testing.assert_allclose(recency_mixture(weights, shares, gamma), expected)
    effective = np.einsum("np,npk->nk", shares, weights)
    np.testing.assert_allclose(recency_mixture(weights, shares, 1.0), effective)
    np.testing.assert_allclose(recency_mixture(weights, shares, 1e-9), weights[:, -1], atol=1e-6)


class LinearMDE:
    """A stand-in for an MDE feature map: a known function of the mixture, one set."""

    eval_sets = ["web"]
    coefficients = np.array([2.0, 3.0, 5.0])

    def __call__(self, W):  # noqa: N803
        return (np.atleast_2d(W) @ self.coefficients)[:, None]


def test_mde_of_a_schedule_is_the_mde_of_its_recency_mixture():
    log = schedule_log(12)
    space = InputSpace.of(log)
    X = space.inputs(log)  # noqa: N806
    outcome = fit_predict(PredictorSpec("mde"), log, X, ["web"], LinearMDE(), space=space)
    frame = log.frame
    by_hand = []
    for _, row in frame.iterrows():  # the recency weights 0.5 (phase 1) and 1 (phase 2)
        a1, a2 = 0.5 * row["share@1"], 1.0 * row["share@2"]
        mix = [(a1 * row[f"w@1:{d}"] + a2 * row[f"w@2:{d}"]) / (a1 + a2) for d in "abc"]
        by_hand.append(float(np.dot(mix, LinearMDE.coefficients)))
    np.testing.assert_allclose(outcome.pred[:, 0], by_hand)


def test_a_single_phase_test_log_is_read_as_constant_schedules():
    log = schedule_log(8)
    space = InputSpace.of(log)
    flat = mixture_only(log)
    X = space.inputs(flat)  # noqa: N806
    np.testing.assert_allclose(X[:, :3], X[:, 3:6])
