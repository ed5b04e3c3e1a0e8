"""Olmix's KL-to-prior proposals: objective + lambda * KL(w || prior), lambda given or chosen by
cross-fitting on the logged runs only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate import predictors
from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.evaluation.protocol import PredictorSpec
from mixsurrogate.objective import Objective
from mixsurrogate.predictors.linear import LinearPredictor
from mixsurrogate.proposal import kl_auto, optimiser
from mixsurrogate.proposal.exploit import propose_exploit
from mixsurrogate.proposal.kl_prior import KLSetting, Prior, kl_divergence, parse_kl, resolve_prior
from mixsurrogate.proposal.surrogate import FittedObjective
from mixsurrogate.runs.log import RunsLog
from mixsurrogate.simplex import Bounds, sobol_simplex

from builders import SpyPredictor

DOMAINS = ["d0", "d1", "d2", "d3"]
PRIOR = np.array([0.1, 0.2, 0.3, 0.4])


def bowl_frame(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """One loss, a quadratic bowl around (0.6, 0.2, 0.1, 0.1) plus a little noise."""
    W = sobol_simplex(n, 4, seed=seed)  # noqa: N806
    noise = np.random.default_rng(seed).normal(0, 0.005, n)
    frame = pd.DataFrame(W, columns=[f"w:{d}" for d in DOMAINS])
    frame.insert(0, "run_id", [f"r{i}" for i in range(n)])
    frame["loss:a"] = 2.0 + 3 * ((W - [0.6, 0.2, 0.1, 0.1]) ** 2).sum(axis=1) + noise
    return frame


def setting(lam, prior=PRIOR) -> KLSetting:
    return KLSetting(Prior("file", prior, "test prior"), lam)


def test_kl_divergence_and_parse_kl():
    assert kl_divergence(PRIOR, PRIOR)[0] == pytest.approx(0.0)
    assert kl_divergence(np.eye(4)[3], PRIOR)[0] == pytest.approx(np.log(1 / 0.4))
    assert parse_kl("auto") == "auto" and parse_kl("0.05") == 0.05 and parse_kl(None) is None
    for bad in ("-1", "x", "inf"):
        with pytest.raises(MixsurrogateError, match="--kl"):
            parse_kl(bad)


@pytest.mark.parametrize("name", ["linear", pytest.param("gp", marks=pytest.mark.slow), "lgbm"])
def test_lambda_zero_is_todays_proposal(name):
    log = RunsLog(bowl_frame())
    obj = Objective.parse("a=1", log.targets)
    plain = propose_exploit(log, PredictorSpec(name), obj, interval_level=None)
    zero = propose_exploit(log, PredictorSpec(name), obj, interval_level=None, kl=setting(0.0))
    np.testing.assert_array_equal(plain.mixtures, zero.mixtures)
    assert zero.kl.lam == 0 and zero.kl.kl[0] == pytest.approx(
        kl_divergence(zero.mixtures, PRIOR)[0]
    )


@pytest.mark.parametrize("name", ["linear", "gp", "lgbm"])
def test_a_large_lambda_returns_the_prior(name):
    log = RunsLog(bowl_frame())
    obj = Objective.parse("a=1", log.targets)
    result = propose_exploit(log, PredictorSpec(name), obj, interval_level=None, kl=setting(1e3))
    tol = 0.05 if name == "lgbm" else 1e-2  # trees: the mean of top-k candidates near the prior
    np.testing.assert_allclose(result.mixtures[0], PRIOR, atol=tol)
    assert result.kl.kl[0] < (0.02 if name == "lgbm" else 1e-3)


@pytest.mark.slow
def test_kl_moves_the_proposal_towards_the_prior_monotonically():
    log = RunsLog(bowl_frame())
    obj = Objective.parse("a=1", log.targets)
    kls = [
        propose_exploit(log, PredictorSpec("gp"), obj, interval_level=None, kl=setting(lam)).kl.kl[
            0
        ]
        for lam in (0.0, 0.01, 0.1, 1.0)
    ]
    assert all(a >= b - 1e-6 for a, b in zip(kls, kls[1:], strict=False)) and kls[0] > kls[-1] + 0.1


def _affine_optimum(log, obj, lam, prior):
    """The closed form of min c @ w + lam KL(w || prior) on the simplex: w ~ prior exp(-c/lam)."""
    f = FittedObjective(PredictorSpec("linear"), log, obj, None)
    c = f(np.eye(4))
    w = prior * np.exp(-(c - c.min()) / lam)
    return w / w.sum()


@pytest.mark.parametrize("solver", ["default", "slsqp"])
def test_affine_objectives_are_solved_exactly(monkeypatch, solver):
    """Linear predictor: cvxpy when installed, else SLSQP; both reach the closed form."""
    if solver == "slsqp":
        monkeypatch.setattr(optimiser, "solve_affine", lambda *a, **k: None)
    log = RunsLog(bowl_frame())
    obj = Objective.parse("a=1", log.targets)
    result = propose_exploit(
        log, PredictorSpec("linear"), obj, interval_level=None, kl=setting(0.2)
    )
    np.testing.assert_allclose(result.mixtures[0], _affine_optimum(log, obj, 0.2, PRIOR), atol=2e-3)
    assert ("solved exactly by cvxpy" in result.kl.solver) == (solver == "default" and _has_cvxpy())


def _has_cvxpy() -> bool:
    try:
        import cvxpy  # noqa: F401
    except ImportError:
        return False
    return True


def test_bounds_hold_with_the_penalty():
    log = RunsLog(bowl_frame())
    obj = Objective.parse("a=1", log.targets)
    bounds = Bounds.parse(["d3=:0.2"], DOMAINS)
    for name in ("linear", "gp"):
        w = propose_exploit(
            log, PredictorSpec(name), obj, bounds, interval_level=None, kl=setting(1e3)
        ).mixtures[0]
        assert w[3] <= 0.2 + 1e-6 and w.sum() == pytest.approx(1.0)
        # the KL projection of the prior onto d3 <= 0.2: d3 at its bound, the rest scaled
        np.testing.assert_allclose(w, [0.8 / 6, 1.6 / 6, 2.4 / 6, 0.2], atol=1e-2)


@pytest.mark.slow
def test_kl_auto_is_deterministic_and_sees_only_the_training_runs(monkeypatch):
    monkeypatch.setitem(predictors.PREDICTORS, "spy", SpyPredictor)
    frame = bowl_frame(60, seed=3)
    train, held = np.arange(40), np.arange(40, 60)
    held_losses = set(np.round(frame["loss:a"].to_numpy()[held], 12).tolist())
    changed = frame.copy()
    changed.loc[held, "loss:a"] += 5.0  # only the held-out runs differ
    results = []
    for f in (frame, frame, changed):
        SpyPredictor.seen = []
        log = RunsLog(f).subset(train)
        obj = Objective.parse("a=1", log.targets)
        results.append(
            propose_exploit(log, PredictorSpec("spy"), obj, interval_level=None, kl=setting("auto"))
        )
        assert SpyPredictor.seen and not held_losses & set(SpyPredictor.seen)
        assert not {v + 5.0 for v in held_losses} & set(SpyPredictor.seen)
    first = results[0]
    assert first.kl.how.startswith("auto") and set(first.kl.grid) == set(kl_auto.KL_GRID)
    assert first.kl.lam in kl_auto.KL_GRID
    for other in results[1:]:
        assert other.kl.lam == first.kl.lam and other.kl.grid == first.kl.grid
        np.testing.assert_array_equal(other.mixtures, first.mixtures)


def test_choose_lambda_judges_each_half_by_the_other(monkeypatch):
    """Every fit inside --kl auto sees one half of the runs: proposer and judge disjoint."""
    fits: list[frozenset] = []

    class HalfSpy(LinearPredictor):
        name = "halfspy"

        def _fit(self, W, y, features):  # noqa: N803
            fits.append(frozenset(np.round(y, 12).tolist()))
            super()._fit(W, y, features)

    monkeypatch.setitem(predictors.PREDICTORS, "halfspy", HalfSpy)
    log = RunsLog(bowl_frame(40, seed=5))
    obj = Objective.parse("a=1", log.targets)
    lam, grid, _ = kl_auto.choose_lambda(
        log, PredictorSpec("halfspy"), obj, Bounds.unbounded(4), PRIOR, repeats=2
    )
    assert len(fits) == 4 and all(len(s) == 20 for s in fits)
    assert not fits[0] & fits[1] and not fits[2] & fits[3]
    assert lam in grid


# ------------------------------------------------------------------ priors and the CLI


def _write_log(tmp_path) -> str:
    path = tmp_path / "runs.csv"
    bowl_frame().to_csv(path, index=False)
    return str(path)


def test_prior_files_csv_json_and_wide(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"d0": 1, "d1": 2, "d2": 3, "d3": 4}))
    (tmp_path / "m.json").write_text(
        json.dumps({"mixture": dict(zip(DOMAINS, PRIOR, strict=True))})
    )
    (tmp_path / "p.csv").write_text("domain,weight\nd0,0.1\nd1,0.2\nd2,0.3\nd3,0.4\n")
    (tmp_path / "w.csv").write_text("w:d0,w:d1,w:d2,w:d3\n10,20,30,40\n")
    for name in ("p.json", "m.json", "p.csv", "w.csv"):
        prior = resolve_prior(str(tmp_path / name), DOMAINS)
        np.testing.assert_allclose(prior.mixture, PRIOR)
    assert resolve_prior("uniform", DOMAINS).mixture == pytest.approx([0.25] * 4)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.json", '{"d0": 1, "d1": 1, "d2": 1}', "no weight for domain\\(s\\): d3"),
        ("b.json", '{"d0": 1, "d1": 1, "d2": 1, "d3": 0}', "weight of 'd3' is 0; a prior needs"),
        (
            "c.json",
            '{"d0": 1, "d1": 1, "d2": 1, "d3": "x"}',
            "weight of 'd3' \\('x'\\) is not a number",
        ),
        ("d.json", "{nope", "not valid JSON"),
        ("e.json", "[1, 2]", "expected a JSON object"),
        (
            "f.csv",
            "domain,weight\nd0,1\nd1,1\nd2,1\nd3,1\nzz,1\n",
            "names domain\\(s\\) the runs log lacks: zz",
        ),
        ("g.csv", "a,b,c\n1,2,3\n4,5,6\n", "expected columns domain,weight"),
    ],
)
def test_bad_prior_files_are_one_line(tmp_path, name, text, message):
    import re

    path = tmp_path / name
    path.write_text(text)
    result = CliRunner().invoke(
        main, ["propose", _write_log(tmp_path), "-p", "linear", "--objective", "a=1",
               "--prior", str(path), "--kl", "0.1"],
    )  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert re.search(message, result.output), result.output
    assert result.output.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prior", "nofile.csv", "--kl", "0.1"], "give natural, uniform or a mixture file"),
        (["--prior", "natural", "--kl", "0.1"], "--prior natural needs --corpus DIR"),
        (["--kl", "0.1"], "--kl needs --prior"),
        (["--prior", "uniform", "--kl", "-2"], "lambda must be finite and >= 0"),
        (["--prior", "uniform", "--kl", "0.1", "--explore"], "not with --explore"),
        (["--prior", "uniform", "--kl", "0.1", "--worst-case", "uniform"], "not with --worst-case"),
    ],
)
def test_prior_and_kl_option_errors(tmp_path, args, message):
    result = CliRunner().invoke(
        main, ["propose", _write_log(tmp_path), "-p", "linear", "--objective", "a=1", *args]
    )
    assert result.exit_code == 1 and message in result.output, result.output


@pytest.mark.slow
def test_natural_prior_is_the_corpus_token_shares(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    manifest = {
        "format": "mixsurrogate-corpus/1",
        "tokenizer": {"file": "tokenizer.json", "sha256": "", "vocab_size": 1024, "eos_id": 0},
        "domains": {
            d: {"tokens": {"train": int(1000 * p), "val": 10}}
            for d, p in zip(DOMAINS, PRIOR, strict=True)
        },
        "tasks": {},
    }
    (corpus / "manifest.json").write_text(json.dumps(manifest))
    prior = resolve_prior("natural", DOMAINS, str(corpus))
    np.testing.assert_allclose(prior.mixture, PRIOR)
    result = CliRunner().invoke(
        main, ["propose", _write_log(tmp_path), "-p", "gp", "--objective", "a=1", "--prior",
               "natural", "--corpus", str(corpus), "--kl", "1000", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["kl"]["prior"] == "natural" and payload["kl"]["lambda"] == 1000
    mixture = np.array(list(payload["proposals"][0]["mixture"].values()))
    np.testing.assert_allclose(mixture, PRIOR, atol=1e-2)
    assert payload["proposals"][0]["kl_to_prior"] < 1e-3


@pytest.mark.slow
def test_cli_prints_prior_lambda_and_kl_and_auto_is_deterministic(tmp_path):
    log = _write_log(tmp_path)
    args = ["propose", log, "-p", "linear", "--objective", "a=1", "--prior", "uniform"]
    text = CliRunner().invoke(main, [*args, "--kl", "0.1"])
    assert text.exit_code == 0, text.output
    assert "prior: uniform (1/4 per domain)" in text.output
    assert "lambda 0.1 (given by --kl)" in text.output
    assert "KL(proposal || prior) = " in text.output
    runs = [CliRunner().invoke(main, [*args, "--kl", "auto", "--json"]) for _ in range(2)]
    assert all(r.exit_code == 0 for r in runs), runs[0].output
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["kl"] == second["kl"] and first["proposals"] == second["proposals"]
    assert first["kl"]["lambda_chosen_by"].startswith("auto")
    assert len(first["kl"]["auto_grid"]) == len(kl_auto.KL_GRID)
    assert first["kl"]["lambda"] in kl_auto.KL_GRID
    assert first["proposals"][0]["kl_to_prior"] == pytest.approx(first["kl"]["kl_to_prior"][0])


@pytest.mark.slow
def test_kl_with_no_worse_than_holds_the_rows(tmp_path):
    result = CliRunner().invoke(
        main, ["propose", _write_log(tmp_path), "-p", "gp", "--objective", "a=1", "--prior",
               "uniform", "--kl", "0.05", "--no-worse-than", "uniform:0", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["proposals"][0]
    assert all(c["holds"] for c in row["constraints"]) and row["kl_to_prior"] > 0
    assert "0.05 x KL" in " ".join(json.loads(result.stdout)["notes"])
