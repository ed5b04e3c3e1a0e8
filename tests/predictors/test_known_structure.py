"""Predictors on small synthetic problems with known structure (fast: no RegMix fits here)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone

from mixsurrogate.errors import MixsurrogateError, NotEnoughRunsError, UnsupportedTargetError
from mixsurrogate.predictors import (
    FIDELITY_PREDICTORS,
    MDE_PREDICTORS,
    PREDICTORS,
    RATE_PREDICTORS,
    make_predictor,
    predictor_class,
)
from mixsurrogate.predictors.laws import DMLPredictor
from mixsurrogate.predictors.mde import fit_mde_calibration
from mixsurrogate.predictors.multitarget import MultiTargetPredictor
from mixsurrogate.predictors.summary import ols_summary

K = 4
DOMAINS = ["web", "code", "books", "math"]


def mixtures(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(K, 0.7), n)


def true_losses(W: np.ndarray) -> np.ndarray:  # noqa: N803
    """Two targets: 'web' driven mostly by its own share (a power law), 'qa' a mixing law."""
    web = 2.5 / (W[:, 0] + 0.05) ** 0.2 + 0.3 * W[:, 1]
    qa = 3.0 + 1.2 * np.exp(-1.5 * W[:, 1] + 0.8 * W[:, 2] - 0.5 * W[:, 3])
    return np.column_stack([web, qa])


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    W, Wt = mixtures(60, 1), mixtures(80, 2)  # noqa: N806
    Y = true_losses(W) + rng.normal(0, 0.01, (60, 2))  # noqa: N806
    Yt = true_losses(Wt)  # noqa: N806
    # MDE-like features: a biased, noisy but monotone view of each target's true loss
    F = 0.8 * true_losses(W) + 0.4 + rng.normal(0, 0.01, (60, 2))  # noqa: N806
    Ft = 0.8 * Yt + 0.4 + rng.normal(0, 0.01, (80, 2))  # noqa: N806
    return W, Y, Wt, Yt, F, Ft


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def test_registry_lists_and_unknown_name():
    assert set(RATE_PREDICTORS) | set(MDE_PREDICTORS) | set(FIDELITY_PREDICTORS) == set(PREDICTORS)
    assert {"mean", "linear", "loglinear", "lgbm", "gp", "dml", "bimix"} <= set(RATE_PREDICTORS)
    mde = {"mde", "mde-cal", "linear+mde", "lgbm+mde", "gp+mde", "gp+mde-res", "mtgp+mde"}
    assert mde | {"mde-ex"} == set(MDE_PREDICTORS)
    with pytest.raises(MixsurrogateError, match="choose from.*loglinear"):
        make_predictor("ridge")


@pytest.mark.parametrize("name", [n for n in RATE_PREDICTORS if n != "mean"])
def test_rate_predictors_beat_mean(problem, name):
    W, Y, Wt, Yt, _, _ = problem  # noqa: N806
    target = 1 if name == "dml" else 0  # dml's own law on 'qa'; the rest on the power law
    params = {"domain_index": 0} if name == "bimix" else {}
    base = mse(make_predictor("mean").fit(W, Y[:, target]).predict(Wt), Yt[:, target])
    y = Y[:, target]
    if predictor_class(name).capabilities.repeats:  # gp-hetero: 4 mixtures trained twice
        W = np.vstack([W, W[:4]])  # noqa: N806
        y = np.concatenate([y, y[:4] + np.random.default_rng(0).normal(0, 0.01, 4)])
    pred = make_predictor(name, **params).fit(W, y).predict(Wt)
    assert pred.shape == (len(Wt),)
    assert mse(pred, Yt[:, target]) < 0.5 * base


@pytest.mark.parametrize("name", ["mde-cal", "linear+mde", "lgbm+mde", "gp+mde", "gp+mde-res"])
def test_mde_predictors_beat_mean(problem, name):
    W, Y, Wt, Yt, F, Ft = problem  # noqa: N806
    params = {"target_feature": 0} if name in ("mde-cal", "gp+mde-res") else {}
    base = mse(make_predictor("mean").fit(W, Y[:, 0]).predict(Wt), Yt[:, 0])
    pred = make_predictor(name, **params).fit(W, Y[:, 0], F).predict(Wt, Ft)
    assert mse(pred, Yt[:, 0]) < 0.5 * base


def test_mde_raw_is_the_feature_and_cal_removes_its_bias(problem):
    W, Y, Wt, Yt, F, Ft = problem  # noqa: N806
    raw = make_predictor("mde", target_feature=1).fit(W, Y[:, 1], F)
    np.testing.assert_array_equal(raw.predict(Wt, Ft), Ft[:, 1])
    cal = make_predictor("mde-cal", target_feature=1).fit(W, Y[:, 1], F)
    assert cal.slope_ == pytest.approx(1 / 0.8, rel=0.05)
    assert mse(cal.predict(Wt, Ft), Yt[:, 1]) < 0.1 * mse(raw.predict(Wt, Ft), Yt[:, 1])
    with pytest.raises(UnsupportedTargetError, match="target_feature"):
        make_predictor("mde").fit(W, Y[:, 0], F)
    with pytest.raises(ValueError, match="needs features"):
        make_predictor("linear+mde").fit(W, Y[:, 0])


def test_gp_residual_learns_what_mde_misses(problem):
    """MDE that sees only part of the loss: the residual GP recovers the part that depends on
    the rates, which calibration alone cannot."""
    W, Y, Wt, Yt, F, Ft = problem  # noqa: N806
    missing, missing_t = 0.4 * W[:, 2] ** 2, 0.4 * Wt[:, 2] ** 2  # what the experts miss
    partial, partial_t = F[:, :1] - 0.8 * missing[:, None], Ft[:, :1] - 0.8 * missing_t[:, None]
    cal = make_predictor("mde-cal", target_feature=0).fit(W, Y[:, 0], partial)
    res = make_predictor("gp+mde-res", target_feature=0).fit(W, Y[:, 0], partial)
    err_cal = mse(cal.predict(Wt, partial_t), Yt[:, 0])
    err_res = mse(res.predict(Wt, partial_t), Yt[:, 0])
    assert err_res < 0.3 * err_cal
    assert res.slope_ == pytest.approx(cal.slope_) and np.all(res.predict_std(Wt, partial_t) > 0)
    with pytest.raises(UnsupportedTargetError, match="gp\\+mde-res needs the column"):
        make_predictor("gp+mde-res").fit(W, Y[:, 0], F)


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_clone_and_params_round_trip(name):
    pred = make_predictor(name)
    params = pred.get_params()
    twin = clone(pred)
    assert twin.get_params() == params and twin is not pred
    key = next(iter(params), None)
    if key is not None:
        assert twin.set_params(**{key: params[key]}).get_params() == params


def test_gp_std_positive_and_larger_away_from_data():
    rng = np.random.default_rng(3)
    W = rng.dirichlet(np.full(K, 30.0), 30)  # runs clustered around the uniform mixture  # noqa: N806
    gp = make_predictor("gp").fit(W, true_losses(W)[:, 0])
    centre, vertex = np.full((1, K), 1 / K), np.eye(K)[:1]
    std = gp.predict_std(np.vstack([centre, vertex]))
    assert np.all(std > 0)
    assert std[1] > 3 * std[0]


def test_gp_hyper_subset_matches_full_fit():
    W = mixtures(50, 4)  # noqa: N806
    y = true_losses(W)[:, 0]
    Wt = mixtures(40, 5)  # noqa: N806
    full = make_predictor("gp").fit(W, y).predict(Wt)
    sub = make_predictor("gp", hyper_runs=35).fit(W, y).predict(Wt)
    assert spearmanr(full, sub)[0] > 0.97


def test_mde_calibration_is_one_least_squares_fit(problem):
    """mde-cal and gp+mde-res share one calibration: polyfit on the own column, constant refused."""
    W, Y, _, _, F, _ = problem  # noqa: N806
    slope, intercept = fit_mde_calibration(F, Y[:, 1], 1, "mde-cal")
    assert (slope, intercept) == tuple(float(v) for v in np.polyfit(F[:, 1], Y[:, 1], 1))
    for name in ("mde-cal", "gp+mde-res"):
        fitted = make_predictor(name, target_feature=1).fit(W, Y[:, 1], F)
        assert (fitted.slope_, fitted.intercept_) == (slope, intercept)
        flat = np.column_stack([F[:, 0], np.full(len(F), 2.0)])
        with pytest.raises(
            UnsupportedTargetError, match=re.escape(f"{name}: the MDE feature is constant")
        ):
            make_predictor(name, target_feature=1).fit(W, Y[:, 1], flat)


@pytest.mark.parametrize("name", ["gp", "gp+mde", "gp+mde-res"])
def test_gp_joint_tuning_matches_separate_fits(problem, name, monkeypatch):
    """One batched hyper-parameter fit over both targets predicts like one fit per target, and
    each member keeps a one-output BoTorch model (what the acquisition functions use)."""
    W, Y, Wt, Yt, F, Ft = problem  # noqa: N806
    joint = MultiTargetPredictor(name).fit(W, Y, ["web", "qa"], DOMAINS, F)
    monkeypatch.setattr(
        MultiTargetPredictor, "_tune_jointly", staticmethod(lambda *a: (None, None))
    )
    separate = MultiTargetPredictor(name).fit(W, Y, ["web", "qa"], DOMAINS, F)
    a, b = joint.predict(Wt, Ft), separate.predict(Wt, Ft)
    for j in range(2):
        assert spearmanr(a[:, j], b[:, j])[0] > 0.99
        assert mse(a[:, j], Yt[:, j]) < 1.5 * mse(b[:, j], Yt[:, j]) + 1e-4
    inputs = W.shape[1] + (F.shape[1] if name == "gp+mde" else 0)
    lengthscales = [m.model_.covar_module.base_kernel.lengthscale for m in joint.members_.values()]
    assert all(ls.shape == (1, inputs) for ls in lengthscales)
    assert not np.allclose(lengthscales[0].detach(), lengthscales[1].detach())
    assert joint.predict_std(Wt, Ft).shape == (len(Wt), 2)


def test_dml_recovers_known_law():
    W = mixtures(40, 6)  # noqa: N806
    c, k, t = 2.0, 1.5, np.array([-2.0, 1.0, 0.5, -1.0])
    y = c + k * np.exp(W @ t)
    fit = DMLPredictor(ridge=0.0).fit(W, y)  # the exact optimum (the default ridge shrinks t)
    assert fit.c_ == pytest.approx(c, rel=1e-2)
    # t is identified up to a shift absorbed by k; the loss at each vertex is not
    np.testing.assert_allclose(fit.k_ * np.exp(fit.t_), k * np.exp(t), rtol=1e-2)
    np.testing.assert_allclose(
        fit.predict(mixtures(20, 7)), c + k * np.exp(mixtures(20, 7) @ t), rtol=1e-4
    )


def test_dml_smart_starts_match_published_many_start_fit():
    rng = np.random.default_rng(8)
    W = mixtures(30, 9)  # noqa: N806
    y = 3.0 + 0.8 * np.exp(W @ np.array([-1.0, 2.0, 0.3, -0.7])) + rng.normal(0, 0.02, 30)
    smart = DMLPredictor(huber_delta=0.01).fit(W, y)
    brute = DMLPredictor(huber_delta=0.01, starts=100).fit(W, y)
    assert smart.loss_ <= brute.loss_ * (1 + 1e-4) + 1e-12


def test_bimix_needs_a_matching_domain(problem):
    W, Y, *_ = problem  # noqa: N806
    with pytest.raises(UnsupportedTargetError, match="matches no training domain"):
        make_predictor("bimix").fit(W, Y[:, 0])
    fit = make_predictor("bimix", domain_index=0, eps=0.05).fit(W, Y[:, 0])
    assert fit.alpha_ == pytest.approx(0.2, abs=0.05)


def test_laws_refuse_with_fewer_runs_than_parameters_plus_two(problem):
    """At exactly its parameter count dml interpolated the runs and reported MSE 4e19; laws
    now need two runs more than they have parameters."""
    W, Y, *_ = problem  # noqa: N806
    with pytest.raises(NotEnoughRunsError, match=r"dml needs at least 7 runs \(its 5 parameters"):
        make_predictor("dml").fit(W[:5], Y[:5, 1])
    make_predictor("dml").fit(W[:7], Y[:7, 1])
    with pytest.raises(NotEnoughRunsError, match="bimix needs at least 4 runs"):
        make_predictor("bimix", domain_index=0).fit(W[:3], Y[:3, 0])


def test_multitarget_skips_what_it_cannot_model(problem):
    W, Y, Wt, Yt, F, Ft = problem  # noqa: N806
    targets = ["web", "qa"]
    bimix = MultiTargetPredictor("bimix").fit(W, Y, targets, DOMAINS)
    assert bimix.fitted_targets_ == ["web"] and "matches no training domain" in bimix.skipped_["qa"]
    assert bimix.predict(Wt).shape == (len(Wt), 1)
    assert not hasattr(bimix, "predict_std")

    cal = MultiTargetPredictor("mde-cal").fit(W, Y, targets, DOMAINS, features=F)
    assert cal.fitted_targets_ == targets and cal.skipped_ == {}
    assert [m.target_feature for m in cal.members_.values()] == [0, 1]
    assert cal.predict(Wt, Ft).shape == (len(Wt), 2)

    gp = MultiTargetPredictor("gp", {"max_iter": 30}).fit(W[:30], Y[:30], targets, DOMAINS)
    assert gp.predict_std(Wt).shape == (len(Wt), 2)
    none = MultiTargetPredictor("bimix").fit(W, Y[:, 1:], ["qa"], DOMAINS)
    assert none.fitted_targets_ == [] and none.reasons()["qa"][0] == "skipped"
    with pytest.raises(UnsupportedTargetError, match="could not be fitted to qa"):
        none.predict(Wt)


def test_ols_summary_names_domains(problem):
    W, Y, *_ = problem  # noqa: N806
    W = np.column_stack([W, np.zeros(len(W))])  # noqa: N806
    text = ols_summary(W, Y[:, 0], [*DOMAINS, "unused"])
    assert all(d in text for d in DOMAINS) and "[0.025" in text
    assert "no intercept" in text and "Left out (no run uses them): unused" in text
    with pytest.raises(NotEnoughRunsError):
        ols_summary(W[:3], Y[:3, 0], [*DOMAINS, "unused"])
