"""``gp-hetero``: observation noise learnt from repeated runs, as a function of the mixture."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import norm, spearmanr

from mixsurrogate.cli.main import main
from mixsurrogate.errors import NotEnoughRunsError
from mixsurrogate.predictors import make_predictor
from mixsurrogate.runs.log import RunsLog, save_runs

from builders import cli_error_line, hetero_noise_log, one_line


def heldout_loglik(predictor, log: RunsLog) -> float:
    """Mean log density of held-out runs under the predictor's posterior predictive."""
    low, high = predictor.predict_interval(log.W, level=0.6826894921370859)
    centre, std = (low + high) / 2, (high - low) / 2
    return float(norm.logpdf(log.loss("x"), centre, std).mean())


@pytest.fixture(scope="module")
def fitted(one_torch_thread):
    train, _ = hetero_noise_log(seed=0)
    homo = make_predictor("gp", interval="posterior").fit(train.W, train.loss("x"))
    hetero = make_predictor("gp-hetero", interval="posterior").fit(train.W, train.loss("x"))
    return homo, hetero


def test_predicted_noise_is_higher_where_the_truth_is_noisier(fitted):
    _, hetero = fitted
    test, true_std = hetero_noise_log(seed=1)
    predicted = hetero.predict_noise_std(test.W)
    assert spearmanr(predicted, true_std).statistic > 0.8
    quiet, loud = np.argsort(true_std)[[0, -1]]
    assert predicted[loud] > 5 * predicted[quiet]


def test_heldout_loglik_beats_the_homoscedastic_gp(fitted):
    homo, hetero = fitted
    test, _ = hetero_noise_log(seed=1)
    # constant noise is too wide where the runs are quiet and too narrow where they are not
    assert heldout_loglik(hetero, test) > heldout_loglik(homo, test) + 0.3
    # the repeats explain most of the scatter: the learnt extra noise is below the seed noise
    assert hetero.extra_noise_variance() < np.median(hetero.predict_noise_std(test.W)) ** 2


def test_same_seed_same_model(one_torch_thread):
    train, _ = hetero_noise_log(repeated=6, single=10, seed=2)
    a = make_predictor("gp-hetero", seed=3).fit(train.W, train.loss("x"))
    b = make_predictor("gp-hetero", seed=3).fit(train.W, train.loss("x"))
    np.testing.assert_array_equal(a.predict(train.W), b.predict(train.W))
    np.testing.assert_array_equal(a.predict_noise_std(train.W), b.predict_noise_std(train.W))


def test_few_repeated_mixtures_give_pooled_noise_with_a_note(one_torch_thread):
    train, _ = hetero_noise_log(repeated=3, single=10, seed=0)
    model = make_predictor("gp-hetero", max_iter=20).fit(train.W, train.loss("x"))
    assert any("only 3 repeated mixtures" in n for n in model.fit_notes_)
    noise = model.predict_noise_std(train.W)
    assert np.ptp(noise) == 0 and noise[0] > 0


def test_no_repeats_is_refused_in_one_line(tmp_path):
    train, _ = hetero_noise_log(repeated=1, single=20, seed=0)
    with pytest.raises(NotEnoughRunsError) as err:
        make_predictor("gp-hetero").fit(train.W, train.loss("x"))
    assert "found 1" in one_line(err) and "at least 2 mixtures trained at least twice" in str(
        err.value
    )
    path = tmp_path / "runs.csv"
    save_runs(train, path)
    for command in (
        ["fit", str(path), "-p", "gp-hetero"],
        ["cv", str(path), "-p", "gp-hetero", "--folds", "3"],
        ["propose", str(path), "-p", "gp-hetero", "--objective", "x=1", "--no-ledger"],
    ):
        line = cli_error_line(main, command)
        assert "'gp-hetero' needs repeated runs" in line and "the log has 1" in line


@pytest.mark.slow
def test_fit_cv_and_propose_take_it(tmp_path, one_torch_thread):
    train, _ = hetero_noise_log(repeated=6, single=14, seed=0)
    path = tmp_path / "runs.csv"
    save_runs(train, path)
    runner = CliRunner()
    for args in (
        ["fit", str(path), "-p", "gp-hetero"],
        ["cv", str(path), "-p", "gp-hetero", "-p", "gp", "--folds", "3"],
        ["propose", str(path), "-p", "gp-hetero", "--objective", "x=1", "--no-ledger"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 0, (args, result.output)
        assert "gp-hetero" in result.output or args[0] == "propose", result.output
