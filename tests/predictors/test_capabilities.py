"""Capabilities are declared on each predictor class and agree with what it does; jointly
tuned hyper-parameters reach ``fit`` explicitly, and no call leaves state for the next fit."""

from __future__ import annotations

import numpy as np
import pytest

from mixsurrogate.predictors import (
    FIDELITY_PREDICTORS,
    MDE_PREDICTORS,
    OPT_IN_PREDICTORS,
    PREDICTORS,
    Capabilities,
    make_predictor,
)
from mixsurrogate.predictors.gp import GPPredictor
from mixsurrogate.predictors.multitarget import MultiTargetPredictor


def mixtures_and_losses(n: int, seed: int, sets: int = 2):
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(np.ones(4), n)  # noqa: N806
    slopes = rng.normal(size=(4, sets))
    return W, 3.0 + W @ slopes + 0.01 * rng.normal(size=(n, sets))


@pytest.mark.parametrize("name", list(PREDICTORS))
def test_capabilities_are_declared_on_the_class_and_match_its_methods(name):
    cls = PREDICTORS[name]
    caps = cls.capabilities
    assert isinstance(caps, Capabilities)
    assert caps.std == callable(getattr(cls, "predict_std", None))
    assert caps.objective_std == callable(getattr(cls, "predict_objective_std", None))
    assert not caps.shared_tuning or callable(getattr(cls, "tune_jointly", None))
    assert caps.features == (name in MDE_PREDICTORS)
    assert caps.fidelity == (name in FIDELITY_PREDICTORS)
    assert caps.tree == (name in ("lgbm", "lgbm+mde"))
    tags = make_predictor(name).__sklearn_tags__()
    assert tags.estimator_type == "regressor" and tags.input_tags.positive_only
    assert tags.target_tags.multi_output == caps.joint


def test_the_registry_lists_follow_the_declarations():
    # mde-ex: opt-in as it needs --mde-kind examples, not the default kind; gp-hetero needs
    # repeated runs (capabilities.repeats)
    assert set(OPT_IN_PREDICTORS) == {"mtgp", "mtgp+mde", "auto", "mde-ex", "gp-hetero"}
    assert {"dml", "bimix"} <= {n for n, c in PREDICTORS.items() if c.capabilities.positive_losses}


def test_multitarget_reads_the_member_class_capabilities():
    assert MultiTargetPredictor("gp").capabilities.std
    assert not hasattr(MultiTargetPredictor("lgbm"), "predict_std")
    assert hasattr(MultiTargetPredictor("mtgp"), "predict_objective_std")
    assert not hasattr(MultiTargetPredictor("gp"), "predict_objective_std")


@pytest.mark.parametrize("name", ["gp", "gp+mde-res"])
def test_joint_tuning_leaves_the_members_untouched_and_fit_takes_it_explicitly(name):
    W, Y = mixtures_and_losses(24, 0)  # noqa: N806
    F = Y + 0.05  # noqa: N806 - an MDE loss per set, close to the real one
    params = {"max_iter": 20} | ({"target_feature": 0} if name == "gp+mde-res" else {})
    members = [make_predictor(name, **params)]
    if name == "gp+mde-res":
        members.append(make_predictor(name, **(params | {"target_feature": 1})))
    else:
        members.append(make_predictor(name, **params))
    before = [dict(m.__dict__) for m in members]
    shares = type(members[0]).tune_jointly(members, W, Y, F)
    assert [m.__dict__ for m in members] == before  # no hidden state for the next fit
    Wt, _ = mixtures_and_losses(10, 1)  # noqa: N806
    for j, member in enumerate(members):
        joint = member.fit(W, Y[:, j], F, hyperparameters=shares[j]).predict(Wt, Wt[:, :2])
        again = member.fit(W, Y[:, j], F, hyperparameters=shares[j]).predict(Wt, Wt[:, :2])
        np.testing.assert_array_equal(joint, again)


def test_a_fit_after_joint_tuning_is_the_fit_of_a_fresh_predictor():
    """Before, ``tune_jointly`` left hyper-parameters on each member, which its next ``fit``
    used, whatever data that fit was given."""
    W, Y = mixtures_and_losses(24, 0)  # noqa: N806
    members = [make_predictor("gp", max_iter=20) for _ in range(2)]
    GPPredictor.tune_jointly(members, W, Y, None)
    W2, Y2 = mixtures_and_losses(24, 5)  # noqa: N806
    Wt, _ = mixtures_and_losses(10, 1)  # noqa: N806
    after = members[0].fit(W2, Y2[:, 0]).predict(Wt)
    fresh = make_predictor("gp", max_iter=20).fit(W2, Y2[:, 0]).predict(Wt)
    np.testing.assert_array_equal(after, fresh)


def test_hyperparameters_are_refused_by_a_predictor_without_shared_tuning():
    W, Y = mixtures_and_losses(12, 0)  # noqa: N806
    with pytest.raises(ValueError, match="takes no jointly tuned hyper-parameters"):
        make_predictor("linear").fit(W, Y[:, 0], hyperparameters={"any": 1})


def test_mtgp_objective_std_after_a_refit_is_the_new_fit_s():
    """Before, the Kronecker posterior cache of the first fit survived a refit."""
    W, Y = mixtures_and_losses(16, 0)  # noqa: N806
    W2, Y2 = mixtures_and_losses(16, 3)  # noqa: N806
    Wt, _ = mixtures_and_losses(5, 1)  # noqa: N806
    model = make_predictor("mtgp", max_iter=20, hyper_runs=16).fit(W, Y)
    model.predict_objective_std(Wt, [0.5, 0.5])
    refit = model.fit(W2, Y2).predict_objective_std(Wt, [0.5, 0.5])
    fresh = make_predictor("mtgp", max_iter=20, hyper_runs=16).fit(W2, Y2)
    np.testing.assert_allclose(refit, fresh.predict_objective_std(Wt, [0.5, 0.5]), rtol=1e-9)
