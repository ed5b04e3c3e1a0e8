"""The robust recommendation: recommenders chosen by cross-fitting halves of the logged runs
(the default kept unless another is judged reliably better), the prior recommended only by a
clear margin and otherwise named in one warning line, and the optimism report."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.proposal.recommenders import (
    PRIOR,
    RECOMMENDERS,
    RecommenderSettings,
    recommend_all,
    total_variation,
)
from mixsurrogate.proposal.robust import (
    HALVINGS,
    check_recommender,
    choose,
    robust_recommendation,
)
from mixsurrogate.simplex import Bounds, sobol_simplex

K = 4
CENTRE = np.array([0.4, 0.3, 0.2, 0.1])


class DippedBowl:
    """A surrogate: a smooth bowl around ``centre`` minus a spurious dip at ``dip`` (a fitted
    model's error that only the half it was fitted on makes), with a constant std."""

    def __init__(self, centre, dip, depth: float = 0.5, width: float = 0.02):
        self.centre, self.dip, self.depth, self.width = centre, dip, depth, width

    def mean(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        W = np.atleast_2d(W)  # noqa: N806
        bowl = 2.0 + 3.0 * ((W - self.centre) ** 2).sum(axis=1)
        if self.dip is None:
            return bowl
        return bowl - self.depth * np.exp(-((W - self.dip) ** 2).sum(axis=1) / self.width)

    def std(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.full(len(np.atleast_2d(W)), 0.05)


def halves_with_dips(centre: np.ndarray, depth: float, width: float = 0.02):
    """fit(rows): each half gets a dip at its own vertex (e0 for the half with run 0, else e1)."""

    def fit(rows: np.ndarray) -> DippedBowl:
        return DippedBowl(centre, np.eye(K)[0 if 0 in rows else 1], depth, width)

    return fit


def settings(prior=None) -> RecommenderSettings:
    prior = np.full(K, 1 / K) if prior is None else prior
    return RecommenderSettings(Bounds.unbounded(K), prior, 0.05, n_candidates=256)


W_LOGGED = sobol_simplex(24, K, seed=0)
IDS = [f"r{i}" for i in range(24)]


def test_every_recommender_gives_a_mixture_inside_the_bounds():
    bounds = Bounds.parse(["d0=:0.5"], [f"d{i}" for i in range(K)])
    s = RecommenderSettings(bounds, np.full(K, 1 / K), 0.05, n_candidates=256)
    out = recommend_all(DippedBowl(CENTRE, None), W_LOGGED, s, RECOMMENDERS, seed=0)
    assert list(out) == list(RECOMMENDERS)
    for name, w in out.items():
        assert bounds.contains(w[None])[0], name
    assert out["argmin"] == pytest.approx(CENTRE, abs=0.02)  # the bowl's centre is inside
    near = total_variation(out["trust-region"], W_LOGGED).min()
    assert near <= 0.2 + 1e-9  # within the trust region of a logged run


def test_auto_avoids_a_spurious_dip_the_judge_does_not_share():
    fit = halves_with_dips(CENTRE, depth=2.0)
    full = DippedBowl(CENTRE, np.eye(K)[0], depth=2.0)
    choice = robust_recommendation(
        full, fit, W_LOGGED, IDS, settings(), None, 0.9, "auto", "uniform", seed=0
    )
    judged = {r.name: r.judged for r in choice.reports}
    assert choice.chosen != "argmin" and choice.chosen != PRIOR
    assert judged[choice.chosen] == min(v for k, v in judged.items() if k != PRIOR)
    assert judged[choice.chosen] <= judged["argmin"]
    argmin = choice.report("argmin")
    # the full-data argmin sits in its dip: it promises much more than the judges expect
    assert argmin.optimism < -0.2 and argmin.optimism == argmin.predicted - argmin.judged
    assert choice.warning is None
    assert [r.name for r in choice.reports] == [*RECOMMENDERS, PRIOR]


def test_the_prior_wins_and_is_said_when_every_recommender_is_judged_worse():
    uniform = np.full(K, 1 / K)
    # the truth's best is the prior; wide dips mislead every recommender, even near the runs
    fit = halves_with_dips(uniform, depth=3.0, width=0.3)
    full = DippedBowl(uniform, np.eye(K)[0], depth=3.0, width=0.3)
    choice = robust_recommendation(
        full, fit, W_LOGGED, IDS, settings(), None, 0.9, "auto", "uniform", seed=0
    )
    assert choice.chosen == PRIOR
    np.testing.assert_allclose(choice.chosen_report.mixture, uniform)
    assert "the prior (uniform) to beat the " in choice.warning
    assert " recommendation in every halving (" in choice.warning
    assert choice.warning.endswith("recommending the prior itself")
    assert "\n" not in choice.warning
    forced = robust_recommendation(
        full, fit, W_LOGGED, IDS, settings(), None, 0.9, "argmin", "uniform", seed=0
    )
    assert forced.chosen == "argmin"
    assert forced.warning.startswith("warning: the cross-fitted judges expect the argmin")


class Bowl:
    """A plain bowl around ``centre`` (no dip)."""

    def __init__(self, centre):
        self.centre = centre

    def mean(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return 2.0 + 3.0 * ((np.atleast_2d(W) - self.centre) ** 2).sum(axis=1)

    def std(self, W: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.full(len(np.atleast_2d(W)), 0.05)


def noisy_judges(seed: int, scale: float = 0.1):
    """fit(rows): a bowl whose centre is the uniform mixture plus noise drawn per half (judges
    fitted on a few noisy runs): on average the prior is judged better than every recommender,
    but not in every halving."""
    uniform = np.full(K, 1 / K)

    def fit(rows: np.ndarray) -> Bowl:
        rng = np.random.default_rng([seed, zlib.crc32(np.asarray(rows).tobytes())])
        tilt = scale * rng.standard_normal(K) * np.array([1, 1, 1, 0.3])
        return Bowl(np.clip(uniform + tilt, 0.01, None))

    return fit


def test_noisy_judges_keep_the_recommendation_and_say_the_prior_looks_better():
    choice = robust_recommendation(
        Bowl(CENTRE), noisy_judges(0), W_LOGGED, IDS, settings(), None, 0.9, "auto", "uniform"
    )
    judged = {r.name: r.judged for r in choice.reports}
    # the first rule (best mean; the prior when every recommender is judged worse) took the prior
    assert judged[PRIOR] < min(v for name, v in judged.items() if name != PRIOR)
    assert choice.chosen != PRIOR and choice.halvings == HALVINGS >= 4
    kept = choice.chosen_report
    assert choice.warning == (
        f"warning: the cross-fitted judges expect the {choice.chosen} recommendation to be "
        f"worse than the prior (uniform): {kept.judged:.4f} vs {judged[PRIOR]:.4f}; not by a "
        "clear margin across halvings, so it is kept"
    )
    assert "\n" not in choice.warning


def test_auto_keeps_the_default_unless_another_is_judged_better_beyond_the_spread():
    # two halvings: top-k better in the mean but not beyond the spread; kl beyond it
    crossed = {
        "argmin": [5.0, 5.0, 5.0, 5.0],
        "top-k": [4.90, 4.90, 5.06, 5.06],  # per halving -0.10, +0.06: mean -0.02, std 0.11
        "kl": [4.97, 4.97, 4.98, 4.98],  # -0.03, -0.02: mean -0.025, std 0.007
        PRIOR: [5.5, 5.5, 5.5, 5.5],
    }
    assert choose("auto", crossed, "uniform", "argmin") == ("kl", None)
    del crossed["kl"]
    assert choose("auto", crossed, "uniform", "argmin") == ("argmin", None)
    # a forced recommender is kept whatever the judges say, with the line when it looks worse
    crossed[PRIOR] = [4.0, 4.0, 5.2, 5.2]
    chosen, warning = choose("top-k", crossed, "uniform", "argmin")
    assert chosen == "top-k" and warning.startswith("warning: the cross-fitted judges expect")
    # auto: the prior better in the mean (4.6 < 5.0) but not in every halving: kept, said
    chosen, warning = choose("auto", crossed, "uniform", "argmin")
    assert chosen == "argmin" and "so it is kept" in warning


def test_optimism_report_fields_and_stability():
    fit = halves_with_dips(CENTRE, depth=2.0)
    full = DippedBowl(CENTRE, None)

    def interval(W):  # noqa: N803
        m = full.mean(W)
        return m - 0.1, m + 0.1

    choice = robust_recommendation(
        full, fit, W_LOGGED, IDS, settings(), interval, 0.9, "auto", "uniform", seed=0
    )
    for r in choice.reports:
        assert r.lower == pytest.approx(r.predicted - 0.1) and r.upper == pytest.approx(
            r.predicted + 0.1
        )
        assert 0 <= r.nearest_distance <= 1 and r.nearest_run in IDS
        assert 0 <= r.stability <= 1
    assert choice.report(PRIOR).stability == 0
    # argmin optima of the halvings sit in different dips: unstable; the prior never moves
    assert choice.report("argmin").stability > 0.3
    payload = choice.to_dict([f"d{i}" for i in range(K)])
    row = payload["recommenders"][0]
    assert set(row) >= {"predicted_objective", "judged_objective", "optimism", "interval",
                        "nearest_run", "stability_tv"}  # fmt: skip
    assert json.dumps(payload)  # serialisable


def test_cross_fitting_is_deterministic_given_the_seed():
    fit = halves_with_dips(CENTRE, depth=0.5)
    full = DippedBowl(CENTRE, None)
    runs = [
        robust_recommendation(full, fit, W_LOGGED, IDS, settings(), None, 0.9, seed=s)
        for s in (3, 3, 4)
    ]
    same = [[r.judged for r in c.reports] for c in runs]
    assert same[0] == same[1]
    assert same[0] != same[2]  # another seed halves the runs differently


def test_unknown_recommender_and_too_few_runs():
    with pytest.raises(MixsurrogateError, match="unknown recommender 'best'"):
        check_recommender("best")
    fit = halves_with_dips(CENTRE, depth=0.5)
    with pytest.raises(MixsurrogateError, match="at least 8 completed runs"):
        robust_recommendation(
            DippedBowl(CENTRE, None), fit, W_LOGGED[:6], IDS[:6], settings(), None, 0.9
        )


def bowl_log(path, n: int = 16, seed: int = 0):
    w = sobol_simplex(n, K, seed=seed)
    frame = pd.DataFrame(w, columns=[f"w:d{i}" for i in range(K)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(n)])
    noise = np.random.default_rng(seed).normal(0, 0.01, n)
    frame["loss:a"] = 2.0 + 3 * ((w - CENTRE) ** 2).sum(axis=1) + noise
    frame.to_csv(path, index=False)
    return path


def _numbers(text: str) -> dict:
    data = json.loads(text)
    data["robust"].pop("seconds")
    data["robust"].pop("cross_fit_seconds")
    return data


def test_cli_exploit_shows_the_choice_and_repeats_exactly(tmp_path):
    log = str(bowl_log(tmp_path / "runs.csv"))
    args = ["propose", log, "-p", "linear", "--objective", "a=1", "--no-ledger"]
    first = CliRunner().invoke(main, [*args, "--json"])
    second = CliRunner().invoke(main, [*args, "--json"])
    assert first.exit_code == 0, first.output
    assert _numbers(first.stdout) == _numbers(second.stdout)
    data = json.loads(first.stdout)
    robust = data["robust"]
    names = [r["recommender"] for r in robust["recommenders"]]
    assert names == ["argmin", "top-k", "kl", "trust-region", PRIOR]  # linear: no std
    chosen = next(r for r in robust["recommenders"] if r["recommender"] == robust["chosen"])
    assert data["proposals"][0]["mixture"] == pytest.approx(chosen["mixture"])
    assert data["recommendation"]["recommender"] == robust["chosen"]
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0 and "recommender: " + robust["chosen"] in text.output
    assert not (tmp_path / "runs.csv.ledger.jsonl").exists()


def test_cli_unknown_recommender_is_one_line(tmp_path):
    log = str(bowl_log(tmp_path / "runs.csv"))
    result = CliRunner().invoke(
        main, ["propose", log, "-p", "linear", "--objective", "a=1", "--recommender", "best"]
    )
    assert result.exit_code == 1 and "unknown recommender 'best'" in result.output
    assert result.output.strip().count("\n") == 0
    assert not (tmp_path / "runs.csv.ledger.jsonl").exists()  # nothing half-written


@pytest.mark.slow
def test_cli_forced_recommender_and_explore(tmp_path):
    log = str(bowl_log(tmp_path / "runs.csv", n=12))
    forced = CliRunner().invoke(
        main, ["propose", log, "-p", "linear", "--objective", "a=1", "--recommender",
               "trust-region", "--json", "--no-ledger"],
    )  # fmt: skip
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout)["robust"]["chosen"] == "trust-region"
    explore = CliRunner().invoke(
        main, ["propose", log, "--explore", "-n", "2", "--objective", "a=1", "--initial", "4",
               "--json", "--no-ledger"],
    )  # fmt: skip
    assert explore.exit_code == 0, explore.output
    data = json.loads(explore.stdout)
    chosen = data["robust"]["chosen"]
    assert data["recommendation"]["recommender"] == chosen
    report = next(r for r in data["robust"]["recommenders"] if r["recommender"] == chosen)
    assert data["recommendation"]["mixture"] == pytest.approx(report["mixture"])
    assert all(p["interval"] is not None for p in data["proposals"])
