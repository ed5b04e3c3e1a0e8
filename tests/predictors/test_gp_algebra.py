"""The closed-form GP posterior equals GPyTorch's, and a refit with given hyper-parameters
keeps them (the robust recommendation's cheap half fits)."""

from __future__ import annotations

import numpy as np
import torch

from mixsurrogate.predictors.gp import GPPredictor, hyper_parameters
from mixsurrogate.predictors.gp_algebra import ClosedFormGP
from mixsurrogate.search.model import ObjectiveModel
from mixsurrogate.simplex import sobol_simplex

K = 5


def runs(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    W = sobol_simplex(n, K, seed=seed)  # noqa: N806
    noise = np.random.default_rng(seed).normal(0, 0.01, n)
    return W, 3.0 + np.log1p(((W - 0.2) ** 2).sum(axis=1) * 10) + noise


def test_closed_form_matches_gpytorch_mean_and_std():
    W, y = runs()  # noqa: N806
    gp = GPPredictor(seed=0).fit(W, y)
    closed = ClosedFormGP.of(gp.model_)
    assert closed is not None
    query = np.random.default_rng(1).dirichlet(np.ones(K), 300)
    design = gp.design_matrix(query, None)
    np.testing.assert_allclose(closed.mean(design), gp.predict(query), rtol=0, atol=1e-10)
    np.testing.assert_allclose(closed.std(design), gp.predict_std(query), rtol=0, atol=1e-10)


def test_objective_model_uses_it_and_refits_with_given_hyper_parameters():
    W, y = runs()  # noqa: N806
    model = ObjectiveModel(W, y, seed=0)
    assert model.closed_form is not None
    query = np.random.default_rng(2).dirichlet(np.ones(K), 50)
    np.testing.assert_allclose(model.mean(query), -model.gp.predict(query), atol=1e-10)
    half = ObjectiveModel(W[:20], y[:20], seed=0, hypers=model.hyper_parameters())
    ours, theirs = hyper_parameters(half.gp.model_), model.hyper_parameters()
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key
    tuned = ObjectiveModel(W[:20], y[:20], seed=0)  # tuning on 20 runs finds others
    assert not all(torch.equal(v, theirs[k]) for k, v in hyper_parameters(tuned.gp.model_).items())
    assert not np.allclose(half.mean(query), model.mean(query))
