"""--no-worse-than constraints and the worst-case objective on a problem built to trade a set away."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import norm

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.evaluation.protocol import PredictorSpec
from mixsurrogate.objective import Objective
from mixsurrogate.proposal.constraints import (
    OutcomeConstraints,
    bind,
    parse_no_worse_than,
    parse_reference,
    parse_worst_case,
    probability_feasible,
    uniform_in_bounds,
)
from mixsurrogate.proposal.exploit import propose_exploit
from mixsurrogate.proposal.optimiser import minimise_on_simplex
from mixsurrogate.runs.log import RunsLog
from mixsurrogate.simplex import Bounds, sobol_simplex

T = 0.02


def trade_off_log(n: int = 40) -> RunsLog:
    """Set a is steep around a d0-heavy mixture, set b shallow around a d1-heavy one, so the
    best mean of the two buys a's gain with b's loss: b ends ~0.46 nats worse than uniform."""
    W = sobol_simplex(n, 3, seed=0)  # noqa: N806
    frame = pd.DataFrame(W, columns=["w:d0", "w:d1", "w:d2"])
    frame.insert(0, "run_id", [f"r{i}" for i in range(n)])
    frame["loss:a"] = 2.0 + 4 * ((W - [0.9, 0.05, 0.05]) ** 2).sum(axis=1)
    frame["loss:b"] = 3.0 + 1 * ((W - [0.05, 0.9, 0.05]) ** 2).sum(axis=1)
    return RunsLog(frame)


@pytest.fixture(scope="module")
def log() -> RunsLog:
    return trade_off_log()


@pytest.fixture(scope="module")
def objective(log) -> Objective:
    return Objective.parse("a=1,b=1", log.targets)


def _excess(proposal) -> dict[str, float]:
    return {r["set"]: r["excess"] for r in proposal.constraint_report()[0]}


def _exploit(log, objective, predictor="gp", **kwargs):
    return propose_exploit(log, PredictorSpec(predictor), objective, interval_level=None, **kwargs)


@pytest.fixture(scope="module")
def proposals(log, objective):
    uniform = parse_no_worse_than(f"uniform:{T}", log, objective)
    return {
        "free": _exploit(log, objective, constraints=[parse_no_worse_than("uniform:10", log, objective)]),
        "held": _exploit(log, objective, constraints=[uniform]),
        "worst": _exploit(log, objective, worst_case=parse_worst_case("uniform", log, objective)),
    }  # fmt: skip


def test_unconstrained_optimum_trades_b_away_and_the_constraint_stops_it(proposals):
    free, held = proposals["free"], proposals["held"]
    assert _excess(free)["b"] > 0.3  # the problem does trade a set away
    excess = _excess(held)
    assert excess["b"] <= T + 1e-6 and excess["a"] <= T + 1e-6
    assert all(r["holds"] for r in held.constraint_report()[0])
    assert held.objective[0] > free.objective[0]  # the constraint costs objective
    assert held.objective[0] - free.objective[0] < 0.5


def test_worst_case_objective_gives_a_different_balanced_mixture(proposals):
    worst, held = proposals["worst"], proposals["held"]
    report = worst.worst_case_report()[0]
    by_set = report["excess_by_set"]
    assert report["excess"] <= 0  # uniform itself has excess 0, so the optimum is no worse
    assert abs(by_set["a"] - by_set["b"]) < 0.01  # balanced: the max is attained by both sets
    assert np.abs(worst.mixtures[0] - proposals["free"].mixtures[0]).sum() > 0.3
    assert np.abs(worst.mixtures[0] - held.mixtures[0]).sum() > 0.05


def test_same_call_twice_gives_the_same_numbers(log, objective, proposals):
    again = _exploit(
        log, objective, constraints=[parse_no_worse_than(f"uniform:{T}", log, objective)]
    )
    assert again.to_dict() == proposals["held"].to_dict()
    assert np.array_equal(again.mixtures, proposals["held"].mixtures)


def test_unconstrained_exploit_is_unchanged_by_a_slack_constraint(log, objective, proposals):
    plain = _exploit(log, objective)
    assert "constraints" not in plain.to_dict()["proposals"][0]
    np.testing.assert_allclose(plain.mixtures, proposals["free"].mixtures, atol=2e-3)


def test_tree_predictor_meets_the_constraint_by_candidate_search(log, objective):
    held = _exploit(
        log, objective, "lgbm", constraints=[parse_no_worse_than(f"uniform:{T}", log, objective)]
    )
    assert all(r["holds"] for r in held.constraint_report()[0])
    worst = _exploit(log, objective, "lgbm", worst_case=parse_worst_case("uniform", log, objective))
    assert worst.worst_case_report()[0]["excess"] <= 1e-9


def test_constraint_on_a_set_outside_the_objective(log):
    only_a = Objective.parse("a=1", log.targets)
    held = _exploit(log, only_a, constraints=[parse_no_worse_than(f"uniform:{T}@b", log, only_a)])
    assert set(held.set_losses) == {"a", "b"} and _excess(held)["b"] <= T + 1e-6
    assert held.objective[0] == pytest.approx(held.set_losses["a"][0])


def test_run_reference_and_uniform_inside_bounds(log, objective):
    bounds = Bounds.parse(["d2=:0.1"], log.domains)
    np.testing.assert_allclose(uniform_in_bounds(bounds), [0.45, 0.45, 0.1])
    np.testing.assert_allclose(uniform_in_bounds(Bounds.unbounded(3)), [1 / 3] * 3)
    np.testing.assert_allclose(parse_reference("uniform", log, bounds).mixture, [0.45, 0.45, 0.1])
    worst = parse_worst_case("r2@b", log, objective)
    assert worst.sets == ("b",) and worst.tolerance == 0 and worst.reference.name == "r2"
    c = parse_no_worse_than("r5:0@b,a", log, objective, bounds)
    assert c.sets == ("b", "a") and c.tolerance == 0
    np.testing.assert_array_equal(c.reference.mixture, log.W[5])
    rows = bind([c], lambda W: W[:, :2] * [10.0, 20.0], ["a", "b"])  # noqa: N803
    np.testing.assert_allclose(rows.reference_loss, [20 * log.W[5, 1], 10 * log.W[5, 0]])


def test_sets_after_at_take_globs_as_t_does(log, objective):
    assert parse_no_worse_than("uniform:0@'*'", log, objective).sets == ("a", "b")
    assert parse_no_worse_than("uniform:0@b,'a*',b", log, objective).sets == ("b", "a")


def test_probability_feasible_is_the_product_of_normal_cdfs():
    rows = OutcomeConstraints(("b", "a"), np.array([1.0, 2.0]), np.array([0.1, 0.0]), ("u", "u"))
    sets = ["a", "b", "c"]
    means = np.array([[2.0, 1.0, 9.0], [1.5, 1.3, 0.0]])
    stds = np.array([[0.5, 0.2, 1.0], [0.0, 0.1, 1.0]])
    expected = [norm.cdf(0.1 / 0.2) * 0.5, 1.0 * norm.cdf(-0.2 / 0.1)]
    np.testing.assert_allclose(probability_feasible(rows, means, stds, sets), expected)
    np.testing.assert_allclose(
        rows.log_probability_feasible(means, stds, sets), np.log(expected), rtol=1e-12
    )
    A, b = rows.linear(sets)  # noqa: N806
    assert A.tolist() == [[0, 1, 0], [1, 0, 0]] and b.ravel().tolist() == [1.1, 2.0]
    certain_break = probability_feasible(rows, [[2.5, 1.0, 0]], [[0.0, 0.0, 0.0]], sets)
    assert certain_break.tolist() == [0.0]
    with pytest.raises(MixsurrogateError, match="need predictions for set"):
        rows.slack(means[:, :1], ["a"])


def test_minimise_on_simplex_respects_an_extra_inequality():
    f = lambda W: np.atleast_2d(W) @ [0.0, 1.0, 2.0]  # noqa: E731, N803
    bounds = Bounds.unbounded(3)
    starts = np.full((1, 3), 1 / 3)
    np.testing.assert_allclose(minimise_on_simplex(f, bounds, starts), [1, 0, 0], atol=1e-6)
    cap = {"type": "ineq", "fun": lambda w: np.array([0.6 - w[0]]), "jac": lambda w: [[-1, 0, 0]]}
    held = minimise_on_simplex(f, bounds, starts, constraints=[cap])
    np.testing.assert_allclose(held, [0.6, 0.4, 0.0], atol=1e-6)


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory, log) -> str:
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    log.frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--no-worse-than", "uniform:0.02@nope"], "unknown set 'nope'"),
        (["--no-worse-than", "uniform:0.02@'z*'"], "--no-worse-than 'z*' matches no set"),
        (["--no-worse-than", "r999:0.02"], "unknown run 'r999'"),
        (["--no-worse-than", "uniform:-0.1"], "T must be a number >= 0"),
        (["--no-worse-than", "uniform:lots"], "T must be a number >= 0"),
        (["--no-worse-than", "uniform"], "expected REF:T"),
        (["--worst-case", "r999"], "--worst-case names unknown run 'r999'"),
        (["--worst-case", "uniform@nope"], "--worst-case names unknown set 'nope'"),
        (["--explore", "--worst-case", "uniform"], "with --explore use --no-worse-than"),
        (
            [
                "--fidelities",
                "1M:1B",
                "--target",
                "1B:20B",
                "--explore",
                "--no-worse-than",
                "uniform:0",
            ],
            "not --fidelities",
        ),
    ],
)
def test_cli_bad_constraint_is_one_line(log_csv, extra, message):
    result = CliRunner().invoke(
        main, ["propose", log_csv, "-p", "linear", "--objective", "a=1", *extra]
    )
    assert result.exit_code != 0
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_cli_shows_each_constraint_and_the_worst_case(log_csv):
    args = ["propose", log_csv, "-p", "linear", "--objective", "a=1,b=1"]
    result = CliRunner().invoke(
        main, [*args, "--no-worse-than", "uniform:0.02", "--worst-case", "r3"]
    )
    assert result.exit_code == 0, result.output
    assert "--no-worse-than: 2 of 2 hold" in result.output
    assert "worst-case excess over run r3" in result.output
    result = CliRunner().invoke(main, [*args, "--no-worse-than", "uniform:0.02@b", "--json"])
    row = json.loads(result.stdout)["proposals"][0]
    assert [c["set"] for c in row["constraints"]] == ["b"] and row["constraints"][0]["holds"]
