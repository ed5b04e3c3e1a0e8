"""The multi-fidelity GP: predicts the large scale from small runs and a few large ones,
deterministically, with intervals; stratified subsampling keeps rare fidelities."""

from __future__ import annotations

import numpy as np
import pytest

from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.predictors import RATE_PREDICTORS, make_predictor
from mixsurrogate.predictors.mfgp import stratified_rows
from mixsurrogate.runs.fidelity import (
    fidelity_features,
)

from builders import two_scale_log


def test_mfgp_predicts_the_large_scale_from_small_runs_and_a_few_large_ones():
    from scipy.stats import spearmanr

    from mixsurrogate.evaluation import protocol as evaluate

    log = two_scale_log(n_small=40, n_large=20)
    train = np.arange(48)  # 40 small runs and 8 large ones
    test = np.arange(48, 60)
    spec = evaluate.PredictorSpec("mfgp")
    outcome = evaluate.fit_predict(
        spec, log.subset(train), log.W[test], ["x"], test_rows=log.subset(test)
    )
    assert outcome.status["x"][0] == "ok"
    truth = log.loss("x")[test]
    # the large scale's level (3 nats), not the small one's (5); a stationary kernel keeps the
    # small runs' amplitude, so the errors are a fraction of the mixture effect, not ~0
    assert abs(outcome.pred[:, 0] - truth).max() < 0.5
    assert spearmanr(truth, outcome.pred[:, 0]).statistic > 0.9


def test_mfgp_is_deterministic_and_has_std_and_intervals():
    log = two_scale_log()
    F = fidelity_features(log)  # noqa: N806
    a = make_predictor("mfgp", seed=3).fit(log.W, log.loss("x"), F)
    b = make_predictor("mfgp", seed=3).fit(log.W, log.loss("x"), F)
    np.testing.assert_array_equal(a.predict(log.W, F), b.predict(log.W, F))
    std = a.predict_std(log.W[:5], F[:5])
    lo, hi = a.predict_interval(log.W[:5], F[:5], 0.9)
    assert (std > 0).all() and (lo < hi).all()
    with pytest.raises(MixsurrogateError, match="fidelity"):
        a.predict(log.W[:5])
    assert "mfgp" not in RATE_PREDICTORS  # needs fidelity columns: not a default cv predictor


def test_stratified_rows_keep_rare_fidelities():
    groups = np.r_[np.zeros(500), np.ones(8), np.full(20, 2.0)][:, None]
    rows = stratified_rows(groups, 100, seed=0)
    assert len(rows) == 100 and len(set(rows)) == 100
    kept = groups[rows, 0]
    assert (kept == 1).sum() == 8 and (kept == 2).sum() == 20
