"""Evidence users can trust: deterministic fits, no lost results, unbiased per-split metrics.

Each test reproduces a finding of issue 9 that failed before the fix.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.objective import Objective
from mixsurrogate.predictors import gp as gp_module
from mixsurrogate.predictors import make_predictor
from mixsurrogate.predictors.gp import GPPredictor
from mixsurrogate.predictors.multitarget import MultiTargetPredictor
from mixsurrogate.runs.builtin import regmix_runs
from mixsurrogate.runs.log import RunsLog
from mixsurrogate.simplex import sobol_simplex


def noisy_log(
    n: int = 30, k: int = 4, targets: int = 3, seed: int = 0, domain_target: bool = False
) -> RunsLog:
    """Losses s0, s1, ... (no domain has their name) and, optionally, d0 (a domain's own)."""
    rng = np.random.default_rng(seed)
    W = sobol_simplex(n, k, seed=seed)  # noqa: N806
    frame = pd.DataFrame(W, columns=[f"w:d{i}" for i in range(k)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(n)])
    for t in range(targets):
        slope = rng.normal(0, 1, k)
        frame[f"loss:s{t}"] = 3.0 + np.sqrt(W) @ slope + rng.normal(0, 0.05, n)
    if domain_target:
        frame["loss:d0"] = 2.0 / (W[:, 0] + 0.01) ** 0.1 + rng.normal(0, 0.01, n)
    return RunsLog(frame)


GP_FIT_SCRIPT = """
import numpy as np, sys
sys.path.insert(0, {tests!r})
from test_evidence import noisy_log
from mixsurrogate.predictors import make_predictor
log = noisy_log()
gp = make_predictor("gp", max_iter=40).fit(log.W[:20], log.loss("s0")[:20])
print(repr(gp.predict(log.W[20:]).tolist()))
"""


def test_gp_fit_is_deterministic_in_one_process_whatever_torch_did_before():
    log = noisy_log()
    first = (
        make_predictor("gp", max_iter=40).fit(log.W[:20], log.loss("s0")[:20]).predict(log.W[20:])
    )
    torch.rand(1000)  # move torch's global generator, as other work in the process would
    torch.manual_seed(12345)
    second = (
        make_predictor("gp", max_iter=40).fit(log.W[:20], log.loss("s0")[:20]).predict(log.W[20:])
    )
    np.testing.assert_array_equal(first, second)


def test_gp_fit_is_identical_in_two_processes(tmp_path):
    script = GP_FIT_SCRIPT.format(tests=str(__import__("pathlib").Path(__file__).parent))
    outputs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert outputs[0] == outputs[1] and outputs[0].startswith("[")


def test_gp_fit_forced_to_retry_stays_deterministic_and_says_so(monkeypatch):
    """BoTorch retries a failed attempt from priors drawn with torch's global generator; the
    fit now forks and seeds it, and counts the retry in ``fit_notes_``."""
    from linear_operator.utils.errors import NotPSDError

    real = gp_module.fit_gpytorch_mll_scipy
    calls = {"n": 0}

    def fail_first_attempt(mll, closure=None, **kwargs):
        calls["n"] += 1
        if calls["n"] % 2 == 1:  # the first attempt of every fit fails
            raise NotPSDError("forced failure")
        return real(mll, closure=closure, **kwargs)

    monkeypatch.setattr(gp_module, "fit_gpytorch_mll_scipy", fail_first_attempt)
    log = noisy_log()
    predictions, notes = [], []
    for state in (1, 2):
        torch.manual_seed(state)  # different global state before each fit
        gp = make_predictor("gp", max_iter=40).fit(log.W[:20], log.loss("s0")[:20])
        predictions.append(gp.predict(log.W[20:]))
        notes.append(gp.fit_notes_)
    np.testing.assert_array_equal(predictions[0], predictions[1])
    assert any(
        "first attempt failed (1 restart(s)); kept the best of 8 starts" in n for n in notes[0]
    )


def test_joint_gp_tuning_failure_falls_back_to_per_target_fits(monkeypatch):
    from botorch.exceptions.errors import ModelFittingError

    def broken(cls, members, W, Y, features):  # noqa: N803
        raise ModelFittingError("All attempts to fit the model have failed.")

    monkeypatch.setattr(GPPredictor, "tune_jointly", classmethod(broken))
    log = noisy_log()
    model = MultiTargetPredictor("gp", {"max_iter": 30}).fit(log.W, log.Y, log.targets, log.domains)
    assert model.fitted_targets_ == log.targets
    assert all("joint tuning failed (ModelFittingError)" in n[0] for n in model.notes_.values())


def test_one_failing_target_keeps_the_others(monkeypatch):
    real_fit = GPPredictor._fit

    def fail_on_constant(self, W, y, features):  # noqa: N803
        if np.ptp(y) > 10:
            raise RuntimeError("boom")
        return real_fit(self, W, y, features)

    monkeypatch.setattr(GPPredictor, "_fit", fail_on_constant)
    log = noisy_log()
    Y = log.Y.copy()  # noqa: N806
    Y[:, 1] *= 100  # noqa: N806
    model = MultiTargetPredictor("gp", {"max_iter": 30}).fit(log.W, Y, log.targets, log.domains)
    assert model.fitted_targets_ == ["s0", "s2"]
    assert model.reasons() == {"s1": ("failed", "RuntimeError: boom")}


def test_cv_marks_failed_cells_and_keeps_other_predictors(monkeypatch):
    def explode(self, W, y, features):  # noqa: N803
        raise RuntimeError("numerical trouble")

    monkeypatch.setattr(make_predictor("loglinear").__class__, "_fit", explode)
    log = noisy_log()
    result = evaluate.cross_validate(
        [evaluate.PredictorSpec("loglinear"), evaluate.PredictorSpec("linear")],
        log,
        folds=3,
        progress=False,
    )
    summary = result.summary().set_index(["predictor", "target"])
    assert (summary.loc["loglinear", "status"] == "failed").all()
    assert "RuntimeError: numerical trouble" in summary.loc[("loglinear", "s0"), "reason"]
    assert (summary.loc["linear", "status"] == "ok").all()


def test_mean_predictor_scores_zero_per_fold_while_pooled_is_biased():
    """Pooled out-of-fold Spearman penalises fitted models: each fold's intercept
    anti-correlates with the held-out fold, so the uninformative mean scored -0.30."""
    log = noisy_log(40)
    result = evaluate.cross_validate([evaluate.PredictorSpec("mean")], log, 5, progress=False)
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
        [evaluate.PredictorSpec("dml"), evaluate.PredictorSpec("linear")],
        log,
        None,
        [8, 30],
        draws=2,
        targets=["pile_cc"],
        progress=False,
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
            [evaluate.PredictorSpec("dml"), evaluate.PredictorSpec("mean")],
            log,
            folds=5 if k == 3 else 4,
            progress=False,
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
        [evaluate.PredictorSpec("bimix"), evaluate.PredictorSpec("linear")], log, 4,
        progress=False,
    )  # fmt: skip
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
        [evaluate.PredictorSpec("linear"), evaluate.PredictorSpec("mean")],
        log,
        5,
        ["s0"],
        repeats=2,
        progress=False,
    )
    row = evaluate.compare(result, "linear", "mean", "s0").iloc[0]
    per_split = result.scores[result.scores["target"] == "s0"].pivot_table(
        index=["repeat", "fold"], columns="predictor", values="spearman"
    )
    assert row["splits"] == 10
    assert row["difference"] == pytest.approx((per_split["linear"] - per_split["mean"]).mean())
    assert row["lo"] <= row["difference"] <= row["hi"] and row["lo"] > 0


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
    result = evaluate.cross_validate(
        [evaluate.PredictorSpec("bimix")], log, 4, ["pile_cc", "github"], objective=objective,
        progress=False,
    ).summary()  # fmt: skip
    cell = result.set_index("target").loc["objective"]
    assert cell["status"] == "ok"  # both are training domains of RegMix


def test_test_log_with_domains_in_another_order_gives_the_same_numbers():
    train, test = noisy_log(30, seed=0), noisy_log(20, seed=1)
    permuted = test.frame[["run_id", "w:d3", "w:d1", "w:d0", "w:d2", "loss:s0"]]
    specs = [evaluate.PredictorSpec("linear")]
    same = evaluate.train_test(specs, train, test, ["s0"], progress=False).summary()
    other = evaluate.train_test(specs, train, RunsLog(permuted), ["s0"], progress=False).summary()
    assert same["spearman"].tolist() == other["spearman"].tolist()


def test_objectives_added_after_fitting_match_an_objective_given_up_front():
    log = noisy_log(30)
    objective = Objective.parse("s0=1,s1=2", log.targets)
    specs = [evaluate.PredictorSpec("linear"), evaluate.PredictorSpec("mean")]
    direct = evaluate.cross_validate(specs, log, 5, objective=objective, progress=False)
    later = evaluate.cross_validate(specs, log, 5, progress=False)
    evaluate.add_objective(later, objective)
    a, b = (e.summary().set_index(["predictor", "target"]) for e in (direct, later))
    pd.testing.assert_frame_equal(a.sort_index(), b.sort_index())


def test_merging_evaluations_run_apart_equals_one_evaluation():
    log = noisy_log(30)
    specs = [evaluate.PredictorSpec("linear"), evaluate.PredictorSpec("loglinear")]
    whole = evaluate.cross_validate(specs, log, 5, repeats=2, progress=False).summary()
    parts = [evaluate.cross_validate([s], log, 5, repeats=2, progress=False) for s in specs]
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
        [evaluate.PredictorSpec("dml")], log, None, [8, 30], draws=2,
        targets=["pile_cc", "github"], progress=False,
    )  # fmt: skip
    name = evaluate.add_set_mean(curve, ["pile_cc", "github"]).name
    cells = curve.summary(["size"]).set_index(["target", "size"])
    assert cells.loc[(name, 8), "status"] == "skipped"
    assert "needs pile_cc, github" in cells.loc[(name, 8), "reason"]
    assert cells.loc[(name, 30), "status"] == "ok" and np.isfinite(
        cells.loc[(name, 30), "spearman"]
    )


def test_joint_gp_tuning_whose_first_attempt_failed_is_redone_per_target(monkeypatch):
    """A batched fit's restarts keep the best *summed* likelihood, which can leave one target
    at a noise-only optimum; after a failed first attempt each target tunes on its own."""
    from linear_operator.utils.errors import NotPSDError

    real = gp_module.fit_gpytorch_mll_scipy
    calls = {"n": 0}

    def fail_the_joint_first_attempt(mll, closure=None, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise NotPSDError("forced failure")
        return real(mll, closure=closure, **kwargs)

    monkeypatch.setattr(gp_module, "fit_gpytorch_mll_scipy", fail_the_joint_first_attempt)
    log = noisy_log()
    model = MultiTargetPredictor("gp", {"max_iter": 30}).fit(log.W, log.Y, log.targets, log.domains)
    assert model.fitted_targets_ == log.targets
    notes = model.notes_
    assert all(
        "joint tuning failed (RuntimeError), so tuned per target" in n[0] for n in notes.values()
    )
    separate = GPPredictor(max_iter=30).fit(log.W, log.loss("s0"))
    np.testing.assert_allclose(model.members_["s0"].predict(log.W), separate.predict(log.W))
