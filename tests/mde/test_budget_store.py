"""Score stores with budget snapshots (issue 21): written and read back, old stores unchanged,
inconsistent budgets refused in one line, and the budget feature kinds in fit and propose."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import ScoreStoreError
from mixsurrogate.mde.features import MDEFeatureMap, log_features
from mixsurrogate.mde.store import load_scores

from builders import (
    STORE_BUDGETS,
    STORE_EXPERTS,
    budget_score_store,
    cli_error_line,
    one_line,
    random_log,
    score_store,
)


def _edit_budgets(store: Path, edit) -> None:
    path = store / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["budgets"] = edit(manifest["budgets"])
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_budget_store_round_trip(tmp_path, dtype):
    store = load_scores(budget_score_store(tmp_path / "s", dtype))
    assert store.budgets == STORE_BUDGETS
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["budgets"][0] == {"fraction": 0.125, "tokens": 512}
    assert manifest["budgets"][-1] == {"fraction": 1.0, "tokens": 4096}
    assert (tmp_path / "s" / "qa.budget-512.logp.npy").is_file()
    assert np.load(tmp_path / "s" / "qa.budget-512.logp.npy").dtype == np.dtype(dtype)
    qa = store.eval_sets["qa"]
    assert len(qa.budget_logp) == 3 and all(b.dtype == np.float32 for b in qa.budget_logp)
    assert (qa.budget_logp[0] < qa.logp + 1e-6).mean() > 0.9  # early snapshots are worse


def test_store_without_budgets_is_unchanged_and_refused_for_budget_kinds(tmp_path):
    path = score_store(tmp_path / "plain")
    assert "budgets" not in json.loads((path / "manifest.json").read_text())
    store = load_scores(path)
    assert store.budgets == () and store.eval_sets["qa"].budget_logp == ()
    with pytest.raises(ScoreStoreError) as err:
        MDEFeatureMap(store, ["qa"], kind="budget")
    assert str(path) in one_line(err) and "no budget snapshots" in one_line(err)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda b: b[::-1], "not in ascending order"),
        (lambda b: [b[0], b[0], *b[1:]], "listed twice"),
        (lambda b: [{**b[0], "fraction": 0}, *b[1:]], "fraction 0 is not in (0, 1]"),
        (lambda b: [{**b[0], "fraction": -0.5}, *b[1:]], "fraction -0.5 is not in (0, 1]"),
        (lambda b: [{**b[0], "tokens": 0}, *b[1:]], "tokens 0 is not a positive integer"),
        (lambda b: b[:-1], "the last budget must be the full one"),
        (lambda b: b[-1:], "at least two budgets"),
        (lambda b: "1/8,1", "at least two budgets"),
    ],
    ids=["unsorted", "duplicate", "zero", "negative", "tokens", "no-full", "one", "string"],
)
def test_inconsistent_budgets_are_one_line(tmp_path, edit, message):
    store = budget_score_store(tmp_path / "s")
    _edit_budgets(store, edit)
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    assert message in one_line(err) and "inconsistent 'budgets'" in one_line(err)


def test_missing_or_misshapen_budget_file_is_one_line(tmp_path):
    store = budget_score_store(tmp_path / "s")
    (store / "val_code.budget-1024.logp.npy").unlink()
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    assert "val_code.budget-1024.logp.npy: missing from the score store" in one_line(err)
    np.save(store / "val_code.budget-1024.logp.npy", np.zeros((3, 4, 5), np.float32))
    with pytest.raises(ScoreStoreError, match="shape \\(3, 4, 5\\)"):
        load_scores(store)


def test_reordered_store_keeps_snapshots_with_their_expert(tmp_path):
    store = load_scores(budget_score_store(tmp_path / "s"))
    order = STORE_EXPERTS[::-1]
    W = np.random.default_rng(0).dirichlet(np.ones(3), size=5)  # noqa: N806
    direct = MDEFeatureMap(store, ["qa", "val_code"], kind="budget").transform(W)
    flipped = MDEFeatureMap(store.reordered(order), ["qa", "val_code"], kind="budget")
    np.testing.assert_allclose(flipped.transform(W[:, ::-1]), direct, rtol=1e-6)
    assert flipped.names == ["mde_budget:qa", "mde_budget:val_code"]


def test_budget_features_differ_from_token_features(tmp_path):
    store = load_scores(budget_score_store(tmp_path / "s"))
    W = np.random.default_rng(1).dirichlet(np.ones(3), size=8)  # noqa: N806
    token = MDEFeatureMap(store, ["qa"], kind="token").transform(W)
    budget = MDEFeatureMap(store, ["qa"], kind="budget").transform(W)
    assert (budget > token).all()  # experts at the budget their domain gets are worse
    both = MDEFeatureMap(store, ["qa"], kind="budget-bayes").loss_and_grad(W)
    assert both[0].shape == (8, 1) and both[1].shape == (8, 1, 3)


def test_cli_fit_budget_kind_with_a_plain_store_is_one_line(tmp_path):
    plain = score_store(tmp_path / "plain")
    log = random_log(STORE_EXPERTS, ["val_code", "qa"], n=6)
    log_path = tmp_path / "runs.csv"
    log.frame.to_csv(log_path, index=False)
    line = cli_error_line(
        main,
        ["fit", str(log_path), "-p", "mde-cal", "--scores", str(plain), "--mde-kind", "budget"],
    )
    assert str(plain) in line and "no budget snapshots" in line
    rich = budget_score_store(tmp_path / "rich")
    fmap, _ = log_features(str(rich), log, "budget")
    assert fmap.names == ["mde_budget:val_code", "mde_budget:qa"]


def test_zero_run_with_budget_kind(tmp_path):
    rich = budget_score_store(tmp_path / "rich")
    args = ["propose", "--scores", str(rich), "--objective", "val=0.5,task=0.5", "--json"]
    token = CliRunner().invoke(main, args)
    budget = CliRunner().invoke(main, [*args, "--mde-kind", "budget"])
    assert token.exit_code == 0 and budget.exit_code == 0, budget.output
    got = json.loads(budget.stdout)
    assert got["mode"] == "zero-run"
    w = np.array(list(got["proposals"][0]["mixture"].values()))
    store = load_scores(rich)
    fmap = MDEFeatureMap(store, ["val_code", "qa"], kind="budget")
    value = fmap.transform(w[None]) @ [0.5, 0.5]
    uniform = fmap.transform(np.full((1, 3), 1 / 3)) @ [0.5, 0.5]
    assert value[0] <= uniform[0] + 1e-9
    assert w.tolist() != list(json.loads(token.stdout)["proposals"][0]["mixture"].values())
    line = cli_error_line(
        main,
        [
            *args[:1],
            "--scores",
            str(score_store(tmp_path / "plain")),
            *args[3:],
            "--mde-kind",
            "budget",
        ],
    )
    assert "no budget snapshots" in line
