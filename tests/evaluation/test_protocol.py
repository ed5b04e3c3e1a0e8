"""Evaluation protocol and proposals on small slices of RegMix's runs and on synthetic laws."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.objective import Objective
from mixsurrogate.proposal.propose import propose_exploit
from mixsurrogate.runs.builtin import regmix_runs
from mixsurrogate.runs.log import RunsLog
from mixsurrogate.search.campaign import CampaignData, propose_next_runs
from mixsurrogate.simplex import Bounds, sobol_simplex


def synthetic_log(n: int = 40, k: int = 4, seed: int = 0) -> RunsLog:
    """Two losses with a known interior optimum: quadratic bowls around fixed mixtures."""
    W = sobol_simplex(n, k, seed=seed)
    centre_a = np.array([0.4, 0.3, 0.2, 0.1])[:k]
    centre_b = np.array([0.1, 0.2, 0.3, 0.4])[:k]
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(k)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(n)])
    frame["loss:a"] = 2.0 + 5 * ((W - centre_a) ** 2).sum(axis=1)
    frame["loss:b"] = 3.0 + 5 * ((W - centre_b) ** 2).sum(axis=1)
    return RunsLog(frame)


def test_metrics_regret_and_ranks():
    m = evaluate.metrics(np.array([1.0, 2.0, 3.0]), np.array([2.0, 1.0, 3.0]))
    assert m["regret"] == pytest.approx(1.0)  # predicted best is the run with true loss 2
    assert m["spearman"] == pytest.approx(0.5)
    assert m["mae"] == pytest.approx(2 / 3)


def test_cross_validation_never_sees_the_held_out_fold():
    """A predictor fitted on data containing the held-out rows would predict them perfectly;
    the out-of-fold predictions of a 1-nearest-neighbour-like model must not be exact."""
    log = synthetic_log()
    result = evaluate.cross_validate([evaluate.PredictorSpec("mean")], log, folds=4, progress=False)
    # mean predictor: each fold's prediction is the mean of the OTHER folds
    y = log.loss("a")
    for key, pred in result.predictions["mean"].items():
        held = result.split_rows[key]
        assert np.allclose(pred[:, 0], np.delete(y, held).mean())
    assert set(result.summary()["target"]) == {"a", "b"}


def test_linear_beats_mean_in_cv_and_curves_grow():
    rng = np.random.default_rng(0)
    W = sobol_simplex(60, 4, seed=2)
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(4)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(60)])
    frame["loss:a"] = 3.0 + W @ np.array([-1.0, 0.5, 0.2, 0.3]) + rng.normal(0, 0.01, 60)
    log = RunsLog(frame)
    specs = [evaluate.PredictorSpec("mean"), evaluate.PredictorSpec("linear")]
    table = evaluate.cross_validate(specs, log, folds=5, progress=False).summary()
    mse = table.set_index("predictor")["mse"]
    assert mse["linear"] < 0.05 * mse["mean"]
    curve = evaluate.learning_curve(
        [specs[1]], log, None, [6, 40], draws=3, targets=["a"], progress=False
    )
    by_n = curve.summary(["size"]).set_index("size")["mse"]
    assert by_n[40] < by_n[6]


def test_exploit_finds_the_known_optimum_within_bounds():
    log = synthetic_log(40)
    obj = Objective.parse("a=1", log.targets)
    proposal = propose_exploit(log, evaluate.PredictorSpec("gp"), obj)
    np.testing.assert_allclose(proposal.mixtures[0], [0.4, 0.3, 0.2, 0.1], atol=0.05)
    bounds = Bounds.parse(["d0=:0.2"], log.domains)
    bounded = propose_exploit(log, evaluate.PredictorSpec("linear"), obj, bounds)
    assert bounds.contains(bounded.mixtures).all()
    assert bounded.nearest_run[0][0] in log.run_ids


def test_exploit_tree_predictor_uses_top_k_average():
    log = synthetic_log(40)
    proposal = propose_exploit(
        log, evaluate.PredictorSpec("lgbm"), Objective.parse("a=1,b=1", log.targets)
    )
    assert "top" in proposal.notes[0]
    assert Bounds.unbounded(4).contains(proposal.mixtures).all()


def test_explore_design_phase_then_batch_qnei():
    log = synthetic_log(4)  # K + 1 = 5 runs before the model takes over
    obj = Objective.parse("a=1", log.targets)
    early, rec = propose_next_runs(CampaignData.from_log(log, obj), obj, q=3)
    assert "sobol design" in early.notes[0] and len(early.mixtures) == 3 and rec is None
    log = synthetic_log(30)
    bounds = Bounds.parse(["d3=0.05:0.5"], log.domains)
    late, rec = propose_next_runs(CampaignData.from_log(log, obj), obj, q=3, bounds=bounds)
    assert "qLogNEI" in late.notes[0]
    assert rec is not None and bounds.contains(rec.mixture[None]).all()
    assert bounds.contains(late.mixtures).all()
    assert len({tuple(w.round(6)) for w in late.mixtures}) == 3
    dist = np.linalg.norm(late.mixtures[:, None] - log.W[None], axis=2)
    assert dist.min() > 1e-3  # no logged mixture proposed again


def test_regmix_train_test_on_a_small_slice():
    train = regmix_runs("train-1m").subset(range(64))
    test = regmix_runs("test-1m").subset(range(64))
    table = evaluate.train_test(
        [evaluate.PredictorSpec("linear")], train, test, ["pile_cc"], progress=False
    ).summary()
    assert table.loc[0, "spearman"] > 0.6
    assert table.loc[0, "spearman_lo"] < table.loc[0, "spearman"] < table.loc[0, "spearman_hi"]


def test_cli_cv_json_and_propose(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "cv",
            "regmix:test-1b",
            "--folds",
            "4",
            "-p",
            "mean",
            "-p",
            "linear",
            "-t",
            "pile_cc",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert {r["predictor"] for r in payload["results"]} == {"mean", "linear"}
    plot = tmp_path / "p.png"
    result = runner.invoke(
        main,
        [
            "propose",
            "regmix:test-1b",
            "-p",
            "linear",
            "--objective",
            "pile_cc=1",
            "--bounds",
            "github=:0.05",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "nearest logged run" in result.output and plot.stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["propose", "regmix:test-1b", "--objective", "nope=1"], "unknown set 'nope'"),
        (
            ["propose", "regmix:test-1b", "--bounds", "github=0.6:1", "--bounds", "arxiv=0.6:1"],
            "lower bounds sum",
        ),
        (["cv", "regmix:test-1b", "-p", "nosuch"], "unknown predictor 'nosuch'"),
        (["cv", "regmix:nosuch"], "unknown RegMix split"),
        (["cv", "regmix:test-1b", "--folds", "1"], "--folds must be between 2"),
    ],
)
def test_cli_bad_input(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output


def test_laws_refuse_too_few_runs_as_a_skipped_cell():
    log = regmix_runs("test-1b").subset(range(10))
    outcome = evaluate.fit_predict(evaluate.PredictorSpec("dml"), log, log.W, ["pile_cc"])
    status, reason = outcome.status["pile_cc"]
    assert status == "skipped" and "dml needs at least 20 runs" in reason
    assert np.isnan(outcome.pred).all()


def _realtext():
    from mixsurrogate.demo import realtext_paths

    return realtext_paths()


def test_cli_zero_run_mode_beats_uniform_and_vertices_on_the_mde_objective():
    from mixsurrogate.mde.features import MDEFeatureMap
    from mixsurrogate.mde.store import load_scores

    _, scores = _realtext()
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


def test_cli_explore_with_mde_features_proposes_new_distinct_runs():
    runs, scores = _realtext()
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
    runs, _ = _realtext()
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


def test_mde_predictor_reads_its_own_sets_column_whatever_the_target_order():
    """A target that is not first among the log's sets must read its own MDE column (it read
    column j of the fitted targets, i.e. another set's, before)."""
    from mixsurrogate.cli.common import mde_features
    from mixsurrogate.predictors.multitarget import MultiTargetPredictor
    from mixsurrogate.runs.log import load_runs

    runs, scores = _realtext()
    log = load_runs(runs)
    feature_fn, _ = mde_features(str(scores), log, "token")
    target = log.targets[-1]
    alone = MultiTargetPredictor("mde-cal").fit(
        log.W, log.loss(target)[:, None], [target], log.domains,
        features=feature_fn(log.W), feature_sets=evaluate.feature_sets_of(feature_fn),
    )  # fmt: skip
    everything = MultiTargetPredictor("mde-cal").fit(
        log.W, log.Y, log.targets, log.domains, features=feature_fn(log.W)
    )
    W = log.W[:5]  # noqa: N806
    expected = everything.predict(W, features=feature_fn(W))[:, -1]
    assert np.allclose(alone.predict(W, features=feature_fn(W))[:, 0], expected)
    result = evaluate.cross_validate(
        [evaluate.PredictorSpec("mde-cal")], log, folds=3, targets=[target], feature_fn=feature_fn
    )
    full = evaluate.cross_validate(
        [evaluate.PredictorSpec("mde-cal")], log, folds=3, feature_fn=feature_fn
    )
    a = result.scores[result.scores.target == target].spearman.to_numpy()
    b = full.scores[full.scores.target == target].spearman.to_numpy()
    assert np.allclose(a, b)
