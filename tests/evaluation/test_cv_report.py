"""``cv`` reports on logs shaped like real ones: set means, units, markers, curves, intervals.

Logs here are named like a W&B export (``loss:eval_web_loss``, ``loss:hellaswag_acc``, with
``runs import``'s ``.meta.json`` beside them), not like domains, or are RegMix's own runs.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.evaluation import protocol as evaluate
from mixsurrogate.evaluation.metrics import BATCH_METRIC_FUNCTIONS, METRIC_FUNCTIONS
from mixsurrogate.runs.builtin import regmix_runs
from mixsurrogate.runs.metadata import LogMetadata, save_log_metadata
from mixsurrogate.simplex import sobol_simplex

DOMAINS = ["web", "code", "books", "wiki"]


def wandb_log(tmp_path, n: int = 30, sets: tuple[str, ...] = ("eval_web_loss", "eval_code_loss"),
              accuracy: bool = False, seed: int = 0):  # fmt: skip
    """A log as ``runs import`` writes a W&B export: eval losses named like no domain, and
    with ``accuracy`` a ``hellaswag_acc`` column stored as ``1 - value`` (said in the
    sidecar)."""
    rng = np.random.default_rng(seed)
    W = sobol_simplex(n, len(DOMAINS), seed=seed + 1)  # noqa: N806
    frame = pd.DataFrame(W, columns=[f"w:{d}" for d in DOMAINS])
    frame.insert(0, "run_id", [f"wandb-{i}" for i in range(n)])
    for j, name in enumerate(sets):
        frame[f"loss:{name}"] = 3.0 + 4 * (W[:, j % 4] - 0.3) ** 2 + rng.normal(0, 0.01, n)
    targets = {}
    if accuracy:
        frame["loss:hellaswag_acc"] = 0.7 - 0.2 * W[:, 0] + rng.normal(0, 0.005, n)
        targets["hellaswag_acc"] = {
            "units": "1 - value", "source_column": "hellaswag/acc",
            "source_direction": "higher", "transform": "1 - value",
        }  # fmt: skip
    path = tmp_path / "wandb.csv"
    frame.to_csv(path, index=False)
    save_log_metadata(path, LogMetadata(targets=targets))
    return path


def cv_json(*args: str) -> dict:
    result = CliRunner().invoke(main, ["cv", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def cells(payload: dict) -> dict[tuple[str, str], dict]:
    return {(r["predictor"], r["target"]): r for r in payload["results"]}


# --- item 3: a predictor that cannot score keeps no one from their means ---------------------


def test_bimix_skipping_every_wandb_set_keeps_the_others_means_and_comparisons(tmp_path):
    """Before: 'mean of 0 sets', no headline table, "comparisons": [] and exit 0."""
    path = str(wandb_log(tmp_path))
    args = [path, "-p", "linear", "-p", "mean", "-p", "bimix", "--compare", "linear,mean"]
    payload = cv_json(*args, "--folds", "4")
    (mean,) = payload["set_means"]
    assert mean["name"] == "mean of 2 sets" and mean["sets"] == ["eval_web_loss", "eval_code_loss"]
    got = cells(payload)
    assert got[("linear", "mean of 2 sets")]["status"] == "ok"
    assert np.isfinite(got[("linear", "mean of 2 sets")]["spearman"])
    assert got[("bimix", "mean of 2 sets")]["status"] == "skipped"
    assert "scored none of the 2 sets" in got[("bimix", "mean of 2 sets")]["reason"]
    (comparison,) = payload["comparisons"]
    assert comparison["target"] == "mean of 2 sets" and comparison["difference"] is not None
    text = CliRunner().invoke(main, ["cv", *args, "--folds", "4"])
    assert text.exit_code == 0 and "on 30 runs: mean of 2 sets" in text.output
    assert "paired comparisons" in text.output


def test_bimix_reason_names_what_a_cli_user_can_change(tmp_path):
    """Before: 'give domain_index', which no CLI option does."""
    path = str(wandb_log(tmp_path))
    text = CliRunner().invoke(main, ["cv", path, "-p", "linear", "-p", "bimix", "--folds", "4"])
    assert text.exit_code == 0, text.output
    flat = " ".join(text.output.split())
    assert "domain_index" not in flat
    assert "loss:<domain> beside w:<domain>" in flat
    # the footnote names the sets that matched no domain
    assert "from that domain's share (eval_web_loss, eval_code_loss)" in flat


# --- item 7: no mean over different units --------------------------------------------------


def test_set_means_never_average_nats_with_one_minus_accuracy(tmp_path):
    """Before: one 'mean of 3 sets' averaged nats and 1 - accuracy, MSE and regret included."""
    path = str(wandb_log(tmp_path, accuracy=True))
    payload = cv_json(path, "-p", "linear", "-p", "mean", "--folds", "4")
    means = {m["name"]: m for m in payload["set_means"]}
    assert set(means) == {"mean of 2 sets (nats)", "mean of 1 sets (1 - value)"}
    assert means["mean of 2 sets (nats)"]["sets"] == ["eval_web_loss", "eval_code_loss"]
    assert means["mean of 1 sets (1 - value)"]["units"] == "1 - value"
    got = cells(payload)
    own = got[("linear", "hellaswag_acc")]["mse"]
    assert got[("linear", "mean of 1 sets (1 - value)")]["mse"] == pytest.approx(own)
    text = CliRunner().invoke(main, ["cv", path, "-p", "linear", "--folds", "4"])
    assert "never averaged together" in text.output


# --- item 9: a mean over fewer sets is marked and footnoted --------------------------------


def test_a_mean_over_fewer_sets_is_marked_and_its_sets_named(tmp_path):
    """bimix scores the set named like a domain (web) only: its mean covers 1 of 2 sets,
    the table marks it and a footnote names the set it left out; linear keeps both sets, and
    the pair is compared on the set both scored."""
    path = str(wandb_log(tmp_path, sets=("web", "eval_hellaswag_loss")))
    args = [path, "-p", "linear", "-p", "bimix", "--folds", "4", "--compare", "linear,bimix"]
    text = CliRunner().invoke(main, ["cv", *args])
    assert text.exit_code == 0, text.output
    assert "bimix *" in text.output
    flat = " ".join(text.output.split())
    assert "* mean of 2 sets: bimix: mean of 1 of the 2 sets, left out eval_hellaswag_loss" in flat
    payload = cv_json(*args)
    (mean,) = payload["set_means"]
    assert list(mean["left_out"]) == ["bimix"]
    assert list(mean["left_out"]["bimix"]) == ["eval_hellaswag_loss"]
    got = cells(payload)
    both = [got[("linear", t)]["spearman"] for t in ("web", "eval_hellaswag_loss")]
    assert got[("linear", "mean of 2 sets")]["spearman"] == pytest.approx(np.mean(both))
    assert got[("bimix", "mean of 2 sets")]["spearman"] == pytest.approx(
        got[("bimix", "web")]["spearman"]
    )
    (comparison,) = payload["comparisons"]
    assert comparison["reason"] == "over the 1 of 2 sets both scored"
    web = [got[(p, "web")]["spearman"] for p in ("linear", "bimix")]
    assert comparison["difference"] == pytest.approx(web[0] - web[1])


# --- item 14: curves keep the interval level, and can run alone ----------------------------


def test_curve_keeps_coverage_and_curve_only_skips_the_evaluation(tmp_path):
    path = str(wandb_log(tmp_path, n=40))
    args = [path, "-p", "linear", "--curve", "12,24", "--draws", "2", "--coverage", "0.9"]
    payload = cv_json(*args)
    assert "results" in payload
    rows = payload["learning_curve"]
    assert rows and all(r["coverage"] is not None and r["width"] > 0 for r in rows)
    only = cv_json(*args, "--curve-only")
    assert "results" not in only and "per_split" not in only
    assert only["learning_curve"] == rows  # the same draws and fits
    refused = CliRunner().invoke(main, ["cv", path, "-p", "linear", "--curve-only"])
    assert refused.exit_code != 0 and "--curve-only needs --curve" in refused.output


# --- item 15: vectorised, seeded bootstrap with a chosen number of resamples ----------------


def loop_bootstrap(evaluation, key, target, metric, a, resamples):
    """The former one-resample-at-a-time interval, as a reference."""
    rows = evaluation.split_rows[key]
    j = evaluation.targets.index(target)
    pred = evaluation.predictions[a][key][:, j]
    draws = np.random.default_rng(evaluation.seed).integers(0, len(rows), (resamples, len(rows)))
    stats = []
    for i in draws:
        true = evaluation.truth[rows[i], j]
        have = np.isfinite(true)
        stats.append(METRIC_FUNCTIONS[metric](true[have], pred[i][have]))
    stats = np.array(stats)
    stats = stats[np.isfinite(stats)]
    return np.quantile(stats, 0.025), np.quantile(stats, 0.975)


def test_resamples_option_is_deterministic_and_matches_the_loop():
    train = regmix_runs("test-1b").subset(range(26, 64))
    test = regmix_runs("test-1b").subset(range(26))
    result = evaluate.train_test(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("linear")], targets=["pile_cc", "github"], progress=False
        ),
        train,
        test,
    )
    result.resamples = 300
    key = next(iter(result.split_rows))
    for metric in ("spearman", "regret", "mse", "pearson"):
        fast = evaluate.row_bootstrap(result, key, "pile_cc", metric, "linear")
        assert fast == pytest.approx(loop_bootstrap(result, key, "pile_cc", metric, "linear", 300))
    first = result.summary()
    assert first.equals(result.summary())  # same seed, same intervals
    args = ["cv", "regmix:test-1b", "-p", "linear", "-t", "pile_cc", "--folds", "4", "--json"]
    runs = [CliRunner().invoke(main, [*args, "--resamples", n]) for n in ("200", "200", "5000")]
    lows = [json.loads(r.stdout)["results"][0]["spearman_lo"] for r in runs]
    assert lows[0] == lows[1] and lows[0] != lows[2]
    bad = CliRunner().invoke(main, [*args, "--resamples", "3"])
    assert bad.exit_code != 0 and "--resamples" in bad.output


def test_batch_metrics_match_the_metric_functions_row_by_row():
    rng = np.random.default_rng(0)
    true = np.round(rng.normal(size=(200, 7)), 1)  # ties, as resamples have
    pred = np.round(rng.normal(size=(200, 7)), 1)
    pred[:20] = 1.0  # constant predictions
    true[20:30] = 2.0  # constant truth
    have = rng.random((200, 7)) > 0.15
    for metric, fn in BATCH_METRIC_FUNCTIONS.items():
        got = fn(true, pred, have)
        want = [METRIC_FUNCTIONS[metric](t[h], p[h]) if h.any() else np.nan
                for t, p, h in zip(true, pred, have, strict=True)]  # fmt: skip
        np.testing.assert_allclose(got, want, atol=1e-12, err_msg=metric)


# --- item 16 (part): a curve says what auto chose at each size ------------------------------


def test_auto_curve_says_its_choice_per_size():
    log = regmix_runs("test-1b")
    spec = evaluate.PredictorSpec("auto", {"candidates": ("mean", "linear"), "folds": 3})
    curve = evaluate.learning_curve(
        evaluate.EvaluationContext([spec], targets=["pile_cc"], progress=False),
        log,
        None,
        [12, 48],
        draws=2,
    )
    notes = curve.summary(["size"]).set_index("size")["notes"]
    assert all("fits, over every size" not in n for n in notes)
    assert "chose linear by 3-fold inner CV [2 of 2 fits]" in notes[48]


def test_set_mean_of_a_log_whose_sets_all_match_domains_is_unchanged():
    """RegMix: every set is a domain's, so bimix and linear share the mean's 2 sets."""
    log = regmix_runs("test-1b")
    result = evaluate.cross_validate(
        evaluate.EvaluationContext(
            [evaluate.PredictorSpec("linear"), evaluate.PredictorSpec("bimix")],
            targets=["pile_cc", "github"],
            progress=False,
        ),
        log,
        folds=4,
    )
    (mean,) = evaluate.add_set_means(result, {"pile_cc": "nats", "github": "nats"})
    assert mean.name == "mean of 2 sets" and mean.left_out() == {} and mean.footnotes() == []
