"""Proposals: exploit on synthetic laws, the zero-run mode and explore on MDE features, --max-epochs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.demo import realtext_paths
from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.objective import Objective
from mixsurrogate.proposal.exploit import propose_exploit
from mixsurrogate.runs.log import RunsLog
from mixsurrogate.simplex import Bounds

from builders import two_bowls_log


def test_exploit_finds_the_known_optimum_within_bounds():
    log = two_bowls_log(40)
    obj = Objective.parse("a=1", log.targets)
    proposal = propose_exploit(log, evaluate.PredictorSpec("gp"), obj)
    np.testing.assert_allclose(proposal.mixtures[0], [0.4, 0.3, 0.2, 0.1], atol=0.05)
    bounds = Bounds.parse(["d0=:0.2"], log.domains)
    bounded = propose_exploit(log, evaluate.PredictorSpec("linear"), obj, bounds)
    assert bounds.contains(bounded.mixtures).all()
    assert bounded.nearest_run[0][0] in log.run_ids


def test_exploit_tree_predictor_uses_top_k_average():
    log = two_bowls_log(40)
    proposal = propose_exploit(
        log, evaluate.PredictorSpec("lgbm"), Objective.parse("a=1,b=1", log.targets)
    )
    assert "top" in proposal.notes[0]
    assert Bounds.unbounded(4).contains(proposal.mixtures).all()


def test_cli_zero_run_mode_beats_uniform_and_vertices_on_the_mde_objective():
    from mixsurrogate.mde.features import MDEFeatureMap
    from mixsurrogate.mde.store import load_scores

    _, scores = realtext_paths()
    result = CliRunner().invoke(
        main,
        [
            "propose",
            "--scores",
            str(scores),
            "--objective",
            "val=0.5,task=0.5",
            "--bounds",
            "code=:0.2",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["mode"] == "zero-run"
    mixture = payload["proposals"][0]["mixture"]
    w = np.array(list(mixture.values()))
    assert w.sum() == pytest.approx(1.0) and mixture["code"] <= 0.2 + 1e-6
    store = load_scores(scores)
    kinds = store.kinds
    obj = Objective.parse("val=0.5,task=0.5", list(kinds), kinds)
    fmap = MDEFeatureMap(store, obj.sets)
    k = len(store.experts)
    refs = np.vstack(
        [np.full(k, 1 / k), Bounds.parse(["code=:0.2"], store.experts).repair(np.eye(k))]
    )
    ref_values = fmap.transform(refs) @ obj.vector(obj.sets)
    assert payload["proposals"][0]["objective"] <= ref_values.min() + 1e-6


@pytest.mark.slow
def test_cli_explore_with_mde_features_proposes_new_distinct_runs():
    runs, scores = realtext_paths()
    result = CliRunner().invoke(
        main,
        [
            "propose",
            str(runs),
            "--scores",
            str(scores),
            "--explore",
            "-n",
            "2",
            "--objective",
            "val=0.5,task=0.5",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    W = np.array([list(p["mixture"].values()) for p in payload["proposals"]])
    assert W.shape[0] == 2 and np.abs(W[0] - W[1]).sum() > 1e-3
    assert all(p["nearest_run"]["distance"] > 1e-3 for p in payload["proposals"])


def test_cli_propose_max_epochs_needs_corpus_and_caps_shares(tmp_path):
    runs, _ = realtext_paths()
    result = CliRunner().invoke(
        main, ["propose", str(runs), "-p", "linear", "--objective", "code=1", "--max-epochs", "1"]
    )
    assert result.exit_code != 0 and "--max-epochs needs --corpus" in result.output
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    log = RunsLog(pd.read_csv(runs))
    manifest = {
        "format": "mixsurrogate-corpus/1",
        "tokenizer": {"file": "tokenizer.json", "sha256": "", "vocab_size": 1024, "eos_id": 0},
        "domains": {
            d: {"tokens": {"train": 1000 if d == "code" else 100000, "val": 10}}
            for d in log.domains
        },
        "tasks": {},
    }
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(
        main,
        [
            "propose",
            str(runs),
            "-p",
            "linear",
            "--objective",
            "code=1",
            "--max-epochs",
            "2",
            "--corpus",
            str(corpus),
            "--budget-tokens",
            "20000",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["proposals"][0]["mixture"]["code"] <= 0.1 + 1e-6
