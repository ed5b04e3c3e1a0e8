"""Multi-task GP over evaluation sets (issue 12): determinism, missing cells, intervals, the
objective's variance with the between-set covariance, and the joint path through the
multi-target wrapper and the evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.predictors import make_predictor
from mixsurrogate.predictors.multitarget import MultiTargetPredictor
from mixsurrogate.runs.log import RunsLog
from mixsurrogate.simplex import dirichlet_simplex

K = 4


def three_sets(W: np.ndarray) -> np.ndarray:  # noqa: N803
    """Three correlated sets: a shared power law in every share plus a set-specific tilt."""
    base = np.log(1 + 1 / (W + 0.05)).sum(axis=1)
    return np.column_stack([base + 0.3 * W[:, 0], base - 0.2 * W[:, 1], 0.5 * base + W[:, 2]])


def data(n: int, seed: int, noise: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    W = dirichlet_simplex(n, K, seed=seed)  # noqa: N806
    return W, three_sets(W) + np.random.default_rng(seed).normal(0, noise, (n, 3))


@pytest.mark.slow
def test_same_fit_twice_after_moving_torchs_global_generator():
    W, Y = data(30, seed=1)  # noqa: N806
    Wt, _ = data(20, seed=2)  # noqa: N806
    first = make_predictor("mtgp", seed=3).fit(W, Y)
    torch.manual_seed(123)
    torch.rand(1000)  # moves the global generator the fit must not depend on
    second = make_predictor("mtgp", seed=3).fit(W, Y)
    np.testing.assert_array_equal(first.predict(Wt), second.predict(Wt))
    np.testing.assert_array_equal(first.predict_std(Wt), second.predict_std(Wt))


@pytest.mark.slow
@pytest.mark.parametrize("missing", [False, True])
def test_90_percent_intervals_cover_new_runs(missing):
    W, Y = data(60, seed=4)  # noqa: N806
    if missing:
        Y[:20, 1] = np.nan  # set 1 not evaluated on a third of the runs  # noqa: N806
    Wt, Yt = data(1000, seed=5)  # noqa: N806
    model = make_predictor("mtgp").fit(W, Y)
    assert model.layout_ == ("tasks" if missing else "kronecker")
    lo, hi = model.predict_interval(Wt, level=0.9)
    assert lo.shape == hi.shape == (1000, 3) and np.all(lo < hi)
    coverage = np.mean((Yt >= lo) & (Yt <= hi), axis=0)
    assert np.all((0.8 <= coverage) & (coverage <= 0.99)), coverage
    assert np.all(model.predict_std(Wt) > 0)


def test_objective_std_uses_the_between_set_covariance():
    """Positively correlated sets: the blend's std exceeds the independent-sets formula, its
    diagonal case is each set's own std, and (Kronecker) it equals a dense exact posterior."""
    W, Y = data(30, seed=6)  # noqa: N806
    Wt, _ = data(5, seed=7)  # noqa: N806
    model = make_predictor("mtgp").fit(W, Y)
    std = model.predict_std(Wt)
    blend = model.predict_objective_std(Wt, [0.5, 0.5, 0.0])
    independent = 0.5 * np.sqrt(std[:, 0] ** 2 + std[:, 1] ** 2)
    assert np.all(blend > 1.2 * independent)
    np.testing.assert_allclose(model.predict_objective_std(Wt, [0, 1, 0]), std[:, 1], rtol=1e-6)
    # dense check: (K (x) B + noise)^-1 written out
    gp = model.model_
    with torch.no_grad():
        x_train = gp.train_inputs[0]
        x = torch.as_tensor(np.sqrt(Wt), dtype=torch.float64)
        kernel = gp.covar_module.data_covar_module
        b = gp._task_covar_matrix.to_dense()
        a = torch.kron(kernel(x_train).to_dense(), b) + torch.kron(
            torch.eye(len(x_train), dtype=torch.float64), torch.diag(model._noise())
        )
        cross = torch.kron(kernel(x, x_train).to_dense(), b)
        cov = torch.kron(kernel(x).to_dense(), b) - cross @ torch.linalg.solve(a, cross.T)
        c = torch.as_tensor(np.tile([0.5, 0.5, 0.0], len(Wt)) * np.tile(model.y_scale_, len(Wt)))
        blocks = (c[:, None] * cov * c[None, :]).reshape(len(Wt), 3, len(Wt), 3)
        dense = torch.einsum("aiaj->a", blocks).sqrt().numpy()
    np.testing.assert_allclose(blend, dense, rtol=1e-6)


def test_multitarget_fits_one_joint_model_and_handles_missing_cells():
    W, Y = data(40, seed=8)  # noqa: N806
    Y[:10, 2] = np.nan  # noqa: N806
    Y[:, 1] = np.nan  # a set no run has  # noqa: N806
    wrapper = MultiTargetPredictor("mtgp").fit(W, Y, ["a", "b", "c"], [f"d{i}" for i in range(K)])
    assert wrapper.fitted_targets_ == ["a", "c"] and "b" in wrapper.skipped_
    assert wrapper.joint_ is wrapper.members_["a"] is wrapper.members_["c"]
    assert wrapper.n_runs_ == {"a": 40, "b": 0, "c": 30}
    Wt, Yt = data(200, seed=9)  # noqa: N806
    pred = wrapper.predict(Wt)
    assert pred.shape == (200, 2) and wrapper.predict_std(Wt).shape == (200, 2)
    assert np.corrcoef(pred[:, 1], Yt[:, 2])[0, 1] > 0.9
    std = wrapper.predict_objective_std(Wt, {"a": 1.0, "c": 1.0})
    assert std.shape == (200,) and np.all(std > 0)


@pytest.mark.slow
def test_mtgp_mde_through_the_evaluation():
    W, Y = data(40, seed=10)  # noqa: N806
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(K)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(40)])
    for j, name in enumerate("abc"):
        frame[f"loss:{name}"] = Y[:, j]
    log = RunsLog(frame)

    def feature_fn(W):  # noqa: N803 - a biased view of each set's loss, like MDE
        return 0.8 * three_sets(W) + 0.3

    result = evaluate.cross_validate(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("mtgp+mde"), evaluate.PredictorSpec("mtgp")],
            feature_fn=feature_fn,
            interval_level=0.9,
            progress=False,
        ),
        log,
        folds=4,
    )
    scores = result.scores
    assert (scores["status"] == "ok").all()
    assert scores["spearman"].min() > 0.8 and scores["coverage"].between(0.5, 1).all()


def test_a_proposal_with_mtgp_carries_the_objectives_std_with_the_set_covariance():
    """propose's objective std for a joint model is its predict_objective_std (correlated sets
    add up), not the independent-sets formula the per-set predictors use."""
    from mixsurrogate.objective import Objective
    from mixsurrogate.proposal.exploit import propose_exploit

    W, Y = data(24, seed=8)  # noqa: N806
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(K)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(len(W))])
    for j in range(3):
        frame[f"loss:s{j}"] = Y[:, j]
    log = RunsLog(frame)
    objective = Objective.parse("s0=0.5,s1=0.5", log.targets)
    proposal = propose_exploit(log, evaluate.PredictorSpec("mtgp"), objective, interval_level=None)
    # propose fits the objective's sets only
    model = MultiTargetPredictor("mtgp").fit(log.W, log.Y[:, :2], ["s0", "s1"], log.domains)
    expected = model.predict_objective_std(proposal.mixtures, {"s0": 0.5, "s1": 0.5})
    np.testing.assert_allclose(proposal.objective_std, expected, rtol=1e-9)
    per_set = model.predict_std(proposal.mixtures)
    independent = 0.5 * np.sqrt(per_set[:, 0] ** 2 + per_set[:, 1] ** 2)
    assert proposal.objective_std[0] > independent[0]
