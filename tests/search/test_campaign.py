"""The search library: campaign design, candidates, trust regions, strategies, the noise-aware
recommendation, the global optimum and the closed loop, on small synthetic problems."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.objective import Objective
from mixsurrogate.search.campaign import CampaignData, propose_next_runs
from mixsurrogate.search.candidates import dedupe, local_candidates, sparse_candidates
from mixsurrogate.search.design import campaign_points, default_initial_size
from mixsurrogate.search.loop import near_duplicate_share, run_campaign
from mixsurrogate.search.model import ObjectiveModel
from mixsurrogate.search.optimum import global_minimum
from mixsurrogate.search.oracle import Oracle
from mixsurrogate.search.recommend import recommend
from mixsurrogate.search.strategies import SearchState, make_strategy
from mixsurrogate.search.trust_region import TrustRegion, replay
from mixsurrogate.simplex import Bounds

from builders import two_bowls_log

CENTRE = np.array([0.5, 0.3, 0.2])


class Bowl:
    """A quadratic bowl on the 3-simplex, minimum 1.0 at CENTRE (an oracle's model)."""

    def predict(self, W):  # noqa: N803
        return 1.0 + 4 * ((np.atleast_2d(W) - CENTRE) ** 2).sum(axis=1)


def bowl_oracle(noise: float = 0.01) -> Oracle:
    return Oracle("bowl", ["a", "b", "c"], Bowl(), noise)


def test_campaign_design_continues_one_sequence_by_position():
    bounds = Bounds.unbounded(4)
    whole = campaign_points(bounds, 0, 8, seed=3)
    parts = np.vstack(
        [campaign_points(bounds, 0, 3, seed=3), campaign_points(bounds, 3, 5, seed=3)]
    )
    assert np.allclose(whole, parts)
    other = campaign_points(bounds, 0, 8, seed=4)
    assert np.abs(whole - other).min() > 0  # another campaign seed: another design
    assert default_initial_size(17) == 18


def test_candidates_sparse_local_and_dedupe():
    rng = np.random.default_rng(0)
    bounds = Bounds.unbounded(6)
    sparse = sparse_candidates(bounds, 50, rng)
    assert ((sparse == 0).sum(axis=1) >= 3).all() and bounds.contains(sparse).all()
    local = local_candidates(np.full((1, 6), 1 / 6), 0.05, 50, rng, bounds)
    assert bounds.contains(local).all() and np.abs(local - 1 / 6).max() < 0.1
    assert len(dedupe(local, local[:10])) == 40


def test_trust_region_grows_on_success_shrinks_on_failure_and_restarts():
    region = TrustRegion(success_tolerance=2, failure_tolerance=2)
    region.update(True), region.update(True)
    assert region.length == pytest.approx(1.6)
    for _ in range(2 * 8):
        region.update(False)
    assert region.restarts == 1 and region.length <= region.length_init
    # replayed from a log: every batch improves, so the region grew
    grown = replay(np.array([5, 5, 5, 4, 4, 3, 3, 2, 2.0]), initial=3, q=2, n_domains=2)
    assert grown.length > TrustRegion().length_init


def test_global_minimum_finds_an_interior_optimum():
    w, v = global_minimum(Bowl().predict, Bounds.unbounded(3), n_candidates=1024)
    assert v == pytest.approx(1.0, abs=1e-6) and np.allclose(w, CENTRE, atol=1e-3)


def _state(n: int = 12, seed: int = 0, pending=None) -> SearchState:
    bounds = Bounds.unbounded(3)
    W = campaign_points(bounds, 0, n, seed=seed)  # noqa: N806
    y = bowl_oracle().observe(W, np.random.default_rng(seed))
    return SearchState(W, y, bounds, seed=seed, pending=pending)


@pytest.mark.parametrize("name", ["qlognei", "turbo", "exploit"])
def test_strategies_are_deterministic_and_never_repeat_logged_or_pending(name, one_torch_thread):
    pending = np.array([[0.5, 0.3, 0.2], [0.45, 0.35, 0.2]])
    strategy = make_strategy(name, 3)
    first = strategy.propose(_state(pending=pending), 4)
    torch.manual_seed(123)  # moving torch's global generator changes nothing
    torch.rand(10)
    again = strategy.propose(_state(pending=pending), 4)
    assert first.phase == "model" and np.array_equal(first.mixtures, again.mixtures)
    held = np.vstack([_state().W, pending])
    assert np.linalg.norm(first.mixtures[:, None] - held[None], axis=2).min() > 1e-3
    assert len({tuple(w.round(6)) for w in first.mixtures}) == 4


def test_design_phase_counts_pending_runs():
    strategy = make_strategy("qlognei", 3)
    bounds = Bounds.unbounded(3)
    state = SearchState(
        np.empty((0, 3)), np.empty(0), bounds, seed=1, pending=campaign_points(bounds, 0, 2, 1)
    )
    step = strategy.propose(state, 2)
    assert step.phase == "design"
    assert np.allclose(step.mixtures, campaign_points(bounds, 2, 2, seed=1))  # next positions


def test_recommendation_shrinks_the_lucky_best_observed_run(one_torch_thread):
    bounds = Bounds.unbounded(3)
    W = np.repeat(campaign_points(bounds, 0, 10, seed=0), 3, axis=0)  # noqa: N806
    y = bowl_oracle(noise=0.1).observe(W, np.random.default_rng(0))
    rec = recommend(ObjectiveModel(W, y), bounds)
    assert rec.best_observed_value < rec.best_observed_predicted  # the lowest draw was lucky
    assert rec.lower < rec.predicted < rec.upper
    truth = Bowl().predict(rec.mixture[None])[0]
    assert truth - 1.0 < Bowl().predict(W[rec.best_observed][None])[0] - 1.0 + 0.05


@pytest.mark.slow
def test_closed_loop_regret_is_measured_and_search_beats_its_design(one_torch_thread):
    oracle = bowl_oracle()
    runs = {}
    for name in ("sobol", "qlognei"):
        runs[name] = run_campaign(
            oracle, make_strategy(name, 3), 1.0, budget=16, q=4, seed=0,
            checkpoints=[8, 16], recommenders=("best-observed", "posterior-mean"),
        )  # fmt: skip
    for campaign in runs.values():
        assert all(r >= 0 for rs in campaign.regret.values() for r in rs)
    assert runs["qlognei"].regret["posterior-mean"][-1] < 0.02
    assert runs["qlognei"].regret["posterior-mean"][-1] <= runs["sobol"].regret["best-observed"][-1]
    assert near_duplicate_share(np.vstack([CENTRE, CENTRE + 1e-4, [0, 0, 1.0]])) == pytest.approx(
        1 / 3
    )


@pytest.mark.slow
def test_cli_explore_empty_log_pending_rows_and_strategy(tmp_path, one_torch_thread):
    log = tmp_path / "runs.csv"
    first = CliRunner().invoke(
        main,
        [
            "propose",
            str(log),
            "--explore",
            "-n",
            "3",
            "--domains",
            "a,b,c",
            "--objective",
            "x=1",
            "--json",
        ],
    )
    assert first.exit_code == 0, first.output
    designed = np.array(
        [list(p["mixture"].values()) for p in json.loads(first.stdout)["proposals"]]
    )
    assert np.allclose(designed, campaign_points(Bounds.unbounded(3), 0, 3, seed=0))
    # log 10 runs of the bowl, and two runs in flight (weights, no loss)
    W = campaign_points(Bounds.unbounded(3), 0, 12, seed=0)  # noqa: N806
    frame = pd.DataFrame(W, columns=["w:a", "w:b", "w:c"])
    frame.insert(0, "run_id", [f"r{i}" for i in range(12)])
    frame["loss:x"] = Bowl().predict(W)
    frame.loc[10:, "loss:x"] = np.nan
    frame.to_csv(log, index=False)
    result = CliRunner().invoke(
        main,
        [
            "propose",
            str(log),
            "--explore",
            "--strategy",
            "turbo",
            "-n",
            "2",
            "--objective",
            "x=1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    proposed = np.array([list(p["mixture"].values()) for p in payload["proposals"]])
    assert np.linalg.norm(proposed[:, None] - W[None], axis=2).min() > 1e-3
    assert any("in flight" in n for n in payload["notes"])
    rec = payload["recommendation"]
    assert rec["best_observed_run"]["run_id"] in frame.run_id.tolist()[:10]
    assert rec["interval"]["lower"] < rec["predicted_objective"] < rec["interval"]["upper"]
    top = CliRunner().invoke(
        main,
        [
            "propose",
            str(log),
            "--explore",
            "-n",
            "2",
            "--objective",
            "x=1",
            "--recommend",
            "top-k",
            "--json",
        ],
    )
    assert top.exit_code == 0, top.output
    assert "mean of the 100 lowest" in json.loads(top.stdout)["recommendation"]["notes"][0]
    bad = CliRunner().invoke(
        main, ["propose", str(tmp_path / "none.csv"), "--explore", "--objective", "x=1"]
    )
    assert bad.exit_code != 0 and "--domains" in bad.output
    zero = CliRunner().invoke(
        main, ["propose", str(log), "--explore", "--initial", "0", "--objective", "x=1"]
    )
    assert zero.exit_code != 0 and "--initial" in zero.output


@pytest.mark.slow
def test_cli_explore_with_no_worse_than_keeps_proposals_near_the_constrained_set(
    tmp_path, one_torch_thread
):
    W = campaign_points(Bounds.unbounded(3), 0, 16, seed=0)  # noqa: N806
    frame = pd.DataFrame(W, columns=["w:a", "w:b", "w:c"])
    frame.insert(0, "run_id", [f"r{i}" for i in range(16)])

    def loss_a(X):  # noqa: N803
        return 1 + 4 * ((X - [0.8, 0.1, 0.1]) ** 2).sum(axis=1)

    def loss_b(X):  # noqa: N803
        return 1 + 4 * ((X - [0.1, 0.1, 0.8]) ** 2).sum(axis=1)

    frame["loss:a"], frame["loss:b"] = loss_a(W), loss_b(W)
    log = tmp_path / "runs.csv"
    frame.to_csv(log, index=False)
    base = ["propose", str(log), "--explore", "-n", "3", "--objective", "a=1", "--json"]
    free = CliRunner().invoke(main, base)
    held = CliRunner().invoke(main, [*base, "--no-worse-than", "uniform:0@b"])
    assert free.exit_code == 0 and held.exit_code == 0, held.output
    mix = {k: np.array([list(p["mixture"].values()) for p in json.loads(r.stdout)["proposals"]])
           for k, r in (("free", free), ("held", held))}  # fmt: skip
    assert any("outcome constraint" in n for n in json.loads(held.stdout)["notes"])
    uniform_b = loss_b(np.full((1, 3), 1 / 3))[0]
    assert (loss_b(mix["held"]) <= uniform_b + 0.05).mean() > (
        loss_b(mix["free"]) <= uniform_b + 0.05
    ).mean()
    worst = CliRunner().invoke(main, [*base, "--worst-case", "uniform"])
    assert worst.exit_code != 0 and "--worst-case" in worst.output


@pytest.mark.slow
def test_cli_exploit_also_says_what_to_train_and_how_the_best_observed_run_compares(tmp_path):
    W = np.repeat(campaign_points(Bounds.unbounded(3), 0, 8, seed=0), 2, axis=0)  # noqa: N806
    frame = pd.DataFrame(W, columns=["w:a", "w:b", "w:c"])
    frame.insert(0, "run_id", [f"r{i}" for i in range(16)])
    frame["loss:x"] = bowl_oracle(noise=0.05).observe(W, np.random.default_rng(1))
    log = tmp_path / "runs.csv"
    frame.to_csv(log, index=False)
    out = CliRunner().invoke(
        main, ["propose", str(log), "-p", "gp", "--objective", "x=1", "--json"]
    )
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    rec = payload["recommendation"]
    assert rec["mixture"] == payload["proposals"][0]["mixture"]
    best = rec["best_observed_run"]
    assert best["observed"] == pytest.approx(frame["loss:x"].min())
    assert best["posterior_mean"] > best["observed"]  # the lowest noisy run was lucky
    text = CliRunner().invoke(main, ["propose", str(log), "-p", "gp", "--objective", "x=1"])
    assert "best observed run" in text.output and "train the proposal above" in text.output


def test_explore_design_phase_then_batch_qnei():
    log = two_bowls_log(4)  # K + 1 = 5 runs before the model takes over
    obj = Objective.parse("a=1", log.targets)
    early, rec = propose_next_runs(CampaignData.from_log(log, obj), obj, q=3)
    assert "sobol design" in early.notes[0] and len(early.mixtures) == 3 and rec is None
    log = two_bowls_log(30)
    bounds = Bounds.parse(["d3=0.05:0.5"], log.domains)
    late, rec = propose_next_runs(CampaignData.from_log(log, obj), obj, q=3, bounds=bounds)
    assert "qLogNEI" in late.notes[0]
    assert rec is not None and bounds.contains(rec.mixture[None]).all()
    assert bounds.contains(late.mixtures).all()
    assert len({tuple(w.round(6)) for w in late.mixtures}) == 3
    dist = np.linalg.norm(late.mixtures[:, None] - log.W[None], axis=2)
    assert dist.min() > 1e-3  # no logged mixture proposed again


def test_propose_next_runs_refuses_q_below_one():
    obj = Objective.parse("a=1", ["a"], {"a": "val"})
    with pytest.raises(MixsurrogateError, match="-n .* must be >= 1, got 0"):
        propose_next_runs(CampaignData.from_log(None, obj, ["a", "b"]), obj, q=0)
