"""MDE features when a domain joins the log (issue 21): the store has K experts, the runs from
before K-1 nonzero weights, and every run's eval_id is checked, not only the first run's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from mixsurrogate.errors import ScoreStoreError
from mixsurrogate.mde.features import MDEFeatureMap, log_features
from mixsurrogate.mde.store import load_scores
from mixsurrogate.runs.log import RunsLog, validate_frame

from builders import STORE_EXPERTS, one_line, score_store


@pytest.mark.parametrize("kind", ["token", "bayes"])
def test_a_zero_weight_is_the_mde_of_the_other_experts_alone(tmp_path, kind):
    store = load_scores(score_store(tmp_path / "scores"))  # experts code, books, web
    old = replace(
        store,
        experts=STORE_EXPERTS[:2],
        eval_sets={n: replace(s, logp=s.logp[:2]) for n, s in store.eval_sets.items()},
    )  # the store before "web" was added: its experts' scores are the same arrays
    W_old = np.array([[0.7, 0.3], [0.2, 0.8], [1.0, 0.0]])  # noqa: N806
    W_new = np.column_stack([W_old, np.zeros(len(W_old))])  # noqa: N806
    sets = list(store.eval_sets)
    new_features = MDEFeatureMap(store, sets, kind=kind).transform(W_new)
    old_features = MDEFeatureMap(old, sets, kind=kind).transform(W_old)
    np.testing.assert_allclose(new_features, old_features, rtol=1e-6, atol=1e-9)
    assert np.isfinite(new_features).all()


def _log(eval_ids: list[str]) -> RunsLog:
    n = len(eval_ids)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)]})
    for j, w in enumerate(rng.dirichlet(np.ones(3), size=n).T):
        frame[f"w:{STORE_EXPERTS[j]}"] = w
    frame["loss:val_code"] = 3 + rng.random(n)
    frame["eval_id"] = eval_ids
    return RunsLog(validate_frame(frame))


def test_every_runs_eval_id_is_checked_not_only_the_first(tmp_path):
    scores = str(score_store(tmp_path / "scores"))  # eval_id "e"
    fmap, _ = log_features(scores, _log(["e", "e", "e"]), "token")
    assert fmap.n_features == 1
    with pytest.raises(ScoreStoreError) as err:
        log_features(scores, _log(["e", "e", "old", "old"]), "token")
    line = one_line(err)
    assert "2 run(s) of the runs log (first: r2)" in line and "eval_id old" in line
