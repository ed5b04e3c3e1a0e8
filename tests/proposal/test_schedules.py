"""Schedule proposals (``propose --phases``): the minimiser, its bounds, caps and shares."""

import numpy as np
import pytest

from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.evaluation.protocol import PredictorSpec
from mixsurrogate.objective import Objective
from mixsurrogate.proposal.phased import propose_schedule
from mixsurrogate.proposal.request import ProposeRequest
from mixsurrogate.proposal.schedule import MIN_SHARE, ScheduleProblem
from mixsurrogate.runs.inputs import InputSpace
from mixsurrogate.simplex import Bounds

from builders import schedule_log, schedule_truth

OBJ = Objective.parse("web=1", ["web"])


def problem(log, share=0.2, bounds=(), caps=None) -> ScheduleProblem:
    space = InputSpace.of(log)
    return ScheduleProblem(space, Bounds.parse(list(bounds), log.domains), caps, share)


def test_exploit_finds_the_schedule_the_truth_prefers():
    log = schedule_log(40)
    result = propose_schedule(log, PredictorSpec("linear"), OBJ, problem(log), halvings=1)
    weights, shares = result.phase_weights[0], result.phase_shares[0]
    np.testing.assert_allclose(shares, [0.8, 0.2])
    assert weights[1, 0] > 0.95  # phase 2 all on domain a: what the truth rewards most
    np.testing.assert_allclose(result.mixtures[0], shares @ weights)
    truth = schedule_truth(result.phase_weights, result.phase_shares)[0]
    logged_best = log.loss("web").min()
    assert truth < logged_best  # better than every logged run, in truth
    row = result.to_dict()["proposals"][0]
    assert [p["share"] for p in row["schedule"]] == pytest.approx([0.8, 0.2])
    assert row["log_row"]["share@2"] == pytest.approx(0.2)
    assert "optimism_report" in result.to_dict()["recommendation"]


def test_bounds_hold_in_every_phase_and_caps_on_the_effective_mixture():
    log = schedule_log(40)
    caps = np.array([0.3, 1.0, 1.0])
    result = propose_schedule(
        log, PredictorSpec("linear"), OBJ, problem(log, None, ["a=:0.6"], caps), halvings=1
    )
    weights, shares = result.phase_weights[0], result.phase_shares[0]
    assert (weights[:, 0] <= 0.6 + 1e-6).all()
    assert shares @ weights[:, 0] <= 0.3 + 1e-6
    assert weights[1, 0] == pytest.approx(0.6, abs=1e-3)  # phase 2 at a's bound
    assert (shares >= MIN_SHARE - 1e-9).all() and shares.sum() == pytest.approx(1)


def test_explore_proposes_distinct_schedules_with_log_rows():
    log = schedule_log(30)
    result = propose_schedule(log, PredictorSpec("gp"), OBJ, problem(log, 0.3), explore=True, n=3)
    assert result.phase_weights.shape == (3, 2, 3)
    rows = result.schedule_rows()
    assert all(r["share@2"] == pytest.approx(0.3) for r in rows)
    flat = result.phase_weights.reshape(3, -1)
    assert np.abs(flat[0] - flat[1]).mean() > 0.05


def test_schedule_options_that_do_not_go_together_are_refused():
    with pytest.raises(MixsurrogateError, match="not with --kl"):
        ProposeRequest(log="x.csv", phases=2, prior="uniform", kl="0.1")
    with pytest.raises(MixsurrogateError, match="not with --strategy"):
        ProposeRequest(log="x.csv", phases=2, explore=True, strategy="sobol")
    with pytest.raises(MixsurrogateError, match="argmin or auto"):
        ProposeRequest(log="x.csv", phases=2, recommender="pessimistic")
    with pytest.raises(MixsurrogateError, match="between 0 and 1"):
        ScheduleProblem(InputSpace(("a", "b"), 2), Bounds.unbounded(2), share=1.0)
