"""Cross-validation cells users can trust: no lost results (failed or skipped cells say why),
unbiased per-split metrics, identical numbers however the evaluation is run.

Each test reproduces a finding of issue 9 that failed before the fix.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.objective import Objective
from mixsurrogate.predictors import make_predictor
from mixsurrogate.runs.builtin import regmix_runs
from mixsurrogate.runs.log import RunsLog
from mixsurrogate.simplex import sobol_simplex

from builders import noisy_log


def test_cv_marks_failed_cells_and_keeps_other_predictors(monkeypatch):
    def explode(self, W, y, features):  # noqa: N803
        raise RuntimeError("numerical trouble")

    monkeypatch.setattr(make_predictor("loglinear").__class__, "_fit", explode)
    log = noisy_log()
    result = evaluate.cross_validate(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("loglinear"), evaluate.PredictorSpec("linear")], progress=False
        ),
        log,
        folds=3,
    )
    summary = result.summary().set_index(["predictor", "target"])
    assert (summary.loc["loglinear", "status"] == "failed").all()
    assert "RuntimeError: numerical trouble" in summary.loc[("loglinear", "s0"), "reason"]
    assert (summary.loc["linear", "status"] == "ok").all()


def test_mean_predictor_scores_zero_per_fold_while_pooled_is_biased():
    """Pooled out-of-fold Spearman penalises fitted models: each fold's intercept
    anti-correlates with the held-out fold, so the uninformative mean scored -0.30."""
    log = noisy_log(40)
    result = evaluate.cross_validate(
        evaluate.EvaluationContext([evaluate.PredictorSpec("mean")], progress=False), log, folds=5
    )
    summary = result.summary()
    assert (summary["spearman"] == 0).all()
    assert (summary["spearman_pooled"] < -0.1).all()


def test_bimix_without_a_matching_domain_is_a_cell_with_its_reason(tmp_path):
    path = tmp_path / "runs.csv"
    noisy_log().frame.to_csv(path, index=False)
    runner = CliRunner()
    table = runner.invoke(main, ["cv", str(path), "-p", "bimix", "-t", "s0"])
    assert "KeyError" not in table.output
    assert "matches no training domain" in table.output and table.exit_code == 1
    assert "no predictor could be scored" in table.output
    both = runner.invoke(
        main, ["cv", str(path), "-p", "bimix", "-p", "linear", "-t", "s0", "--json"]
    )
    assert both.exit_code == 0, both.output
    payload = json.loads(both.stdout)  # valid JSON: no NaN anywhere
    assert "NaN" not in both.stdout
    cells = {(r["predictor"], r["target"]): r for r in payload["results"]}
    assert cells[("bimix", "s0")]["status"] == "skipped"
    assert cells[("linear", "s0")]["status"] == "ok"
    assert cells[("bimix", "s0")]["spearman"] is None


def test_learning_curve_shows_a_size_a_law_cannot_fit_instead_of_dropping_it():
    log = regmix_runs("test-1b").subset(range(40))
    curve = evaluate.learning_curve(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("dml"), evaluate.PredictorSpec("linear")],
            targets=["pile_cc"],
            progress=False,
        ),
        log,
        None,
        [8, 30],
        draws=2,
    ).summary(["size"])
    cell = curve.set_index(["predictor", "size"]).loc[("dml", 8)]
    assert cell["status"] == "skipped" and "needs at least 20 runs" in cell["reason"]
    assert curve.set_index(["predictor", "size"]).loc[("linear", 8), "status"] == "ok"


def test_law_at_its_parameter_count_is_refused_per_cell_not_for_the_whole_cv():
    """3 domains, 4 runs per fold: dml reported MSE 4e19 and ranked first; with 6 domains the
    refusal aborted the whole CV."""
    for k in (3, 6):
        log = noisy_log(n=5 if k == 3 else 8, k=k, targets=1)
        result = evaluate.cross_validate(
            evaluate.EvaluationContext(
                [evaluate.PredictorSpec("dml"), evaluate.PredictorSpec("mean")], progress=False
            ),
            log,
            folds=5 if k == 3 else 4,
        ).summary()
        cells = result.set_index("predictor")
        assert cells.loc["dml", "status"] == "skipped"
        assert np.isnan(cells.loc["dml", "mse"])
        assert cells.loc["mean", "status"] == "ok"


def test_mean_over_sets_says_which_sets_each_predictor_covers():
    """The summary once said "mean over 4 evaluation set(s)" but quietly averaged bimix over
    3; then every predictor's mean shrank to the one set bimix could fit. Now linear keeps
    all 4 sets and bimix's mean over its 1 set says which 3 it left out."""
    log = noisy_log(domain_target=True)
    result = evaluate.cross_validate(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("bimix"), evaluate.PredictorSpec("linear")], progress=False
        ),
        log,
        folds=4,
    )
    mean = evaluate.add_set_mean(result)
    assert mean.name == "mean of 4 sets" and mean.sets == ["s0", "s1", "s2", "d0"]
    assert mean.left_out() == {"bimix": ["s0", "s1", "s2"]}
    assert mean.sets_of("bimix") == ["d0"]
    summary = result.summary().set_index(["predictor", "target"])
    bimix_d0 = summary.loc[("bimix", "d0"), "spearman"]
    assert summary.loc[("bimix", mean.name), "spearman"] == pytest.approx(bimix_d0)
    linear = [summary.loc[("linear", t), "spearman"] for t in mean.sets]
    assert summary.loc[("linear", mean.name), "spearman"] == pytest.approx(np.mean(linear))


def test_scoring_mask_fits_on_excluded_rows_but_never_scores_them():
    log = noisy_log(30)
    ids = pd.Series(log.run_ids)
    mask = evaluate.scoring_mask(log, exclude=["r1*"])  # r1, r10..r19
    assert not mask[ids.str.startswith("r1")].any() and mask.sum() == 19
    for split in evaluate.cv_splits(len(log), 4, 2, 0, mask):
        assert mask[split.test].all()
        assert set(np.flatnonzero(~mask)) <= set(split.train)
    with pytest.raises(Exception, match="matches no run id"):
        evaluate.scoring_mask(log, exclude=["vertex-*"])


def test_paired_comparison_uses_the_same_splits_and_gives_an_interval():
    log = noisy_log(40)
    result = evaluate.cross_validate(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("linear"), evaluate.PredictorSpec("mean")],
            targets=["s0"],
            progress=False,
        ),
        log,
        folds=5,
        repeats=2,
    )
    row = evaluate.compare(result, "linear", "mean", "s0").iloc[0]
    per_split = result.scores[result.scores["target"] == "s0"].pivot_table(
        index=["repeat", "fold"], columns="predictor", values="spearman"
    )
    assert row["splits"] == 10
    assert row["difference"] == pytest.approx((per_split["linear"] - per_split["mean"]).mean())
    assert row["lo"] <= row["difference"] <= row["hi"] and row["lo"] > 0


@pytest.mark.slow
def test_cv_twice_gives_identical_numbers():
    args = ["cv", "regmix:test-1b", "-p", "gp", "-p", "lgbm", "-t", "pile_cc", "-t", "github",
            "--folds", "4", "--json"]  # fmt: skip
    runs = [CliRunner().invoke(main, args) for _ in range(2)]
    assert runs[0].exit_code == 0, runs[0].output
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["results"] == second["results"]


def test_objective_cell_needs_every_set():
    log = regmix_runs("test-1b").subset(range(40))
    objective = Objective.parse("pile_cc=1,github=1", ["pile_cc", "github"])
    result = evaluate.cross_validate(evaluate.EvaluationContext([evaluate.PredictorSpec("bimix")], targets=["pile_cc", "github"], objective=objective, progress=False), log, folds=4).summary()  # fmt: skip
    cell = result.set_index("target").loc["objective"]
    assert cell["status"] == "ok"  # both are training domains of RegMix


def test_test_log_with_domains_in_another_order_gives_the_same_numbers():
    train, test = noisy_log(30, seed=0), noisy_log(20, seed=1)
    permuted = test.frame[["run_id", "w:d3", "w:d1", "w:d0", "w:d2", "loss:s0"]]
    specs = [evaluate.PredictorSpec("linear")]
    same = evaluate.train_test(
        evaluate.EvaluationContext(specs, targets=["s0"], progress=False), train, test
    ).summary()
    other = evaluate.train_test(
        evaluate.EvaluationContext(specs, targets=["s0"], progress=False), train, RunsLog(permuted)
    ).summary()
    assert same["spearman"].tolist() == other["spearman"].tolist()


def test_objectives_added_after_fitting_match_an_objective_given_up_front():
    log = noisy_log(30)
    objective = Objective.parse("s0=1,s1=2", log.targets)
    specs = [evaluate.PredictorSpec("linear"), evaluate.PredictorSpec("mean")]
    direct = evaluate.cross_validate(
        evaluate.EvaluationContext(specs, objective=objective, progress=False), log, folds=5
    )
    later = evaluate.cross_validate(evaluate.EvaluationContext(specs, progress=False), log, folds=5)
    evaluate.add_objective(later, objective)
    a, b = (e.summary().set_index(["predictor", "target"]) for e in (direct, later))
    pd.testing.assert_frame_equal(a.sort_index(), b.sort_index())


def test_merging_evaluations_run_apart_equals_one_evaluation():
    log = noisy_log(30)
    specs = [evaluate.PredictorSpec("linear"), evaluate.PredictorSpec("loglinear")]
    whole = evaluate.cross_validate(
        evaluate.EvaluationContext(specs, progress=False), log, folds=5, repeats=2
    ).summary()
    parts = [
        evaluate.cross_validate(
            evaluate.EvaluationContext([s], progress=False), log, folds=5, repeats=2
        )
        for s in specs
    ]
    merged = evaluate.merge(parts).summary()
    pd.testing.assert_frame_equal(whole, merged)


def test_noise_floor_interval_widens_with_few_repeats():
    from mixsurrogate.evaluation.noise import noise_floor

    rng = np.random.default_rng(0)
    W = np.repeat(sobol_simplex(3, 2, seed=0), 4, axis=0)  # noqa: N806 - 3 mixtures x 4 seeds
    frame = pd.DataFrame(W, columns=["w:a", "w:b"])
    frame.insert(0, "run_id", [f"r{i}" for i in range(12)])
    frame["loss:x"] = 3.0 + rng.normal(0, 0.05, 12)
    floor = noise_floor(RunsLog(frame))["x"]
    assert floor.dof == 9 and floor.lo < floor.std < floor.hi
    assert floor.hi / floor.lo > 2  # 9 degrees of freedom leave a wide interval


def test_set_mean_of_a_curve_size_a_law_cannot_fit_is_skipped_not_nan():
    log = regmix_runs("test-1b").subset(range(40))
    curve = evaluate.learning_curve(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("dml")], targets=["pile_cc", "github"], progress=False
        ),
        log,
        None,
        [8, 30],
        draws=2,
    )
    name = evaluate.add_set_mean(curve, ["pile_cc", "github"]).name
    cells = curve.summary(["size"]).set_index(["target", "size"])
    assert cells.loc[(name, 8), "status"] == "skipped"
    assert "needs pile_cc, github" in cells.loc[(name, 8), "reason"]
    assert cells.loc[(name, 30), "status"] == "ok" and np.isfinite(
        cells.loc[(name, 30), "spearman"]
    )
