"""fit, cv and propose on a log grown by a domain (issue 21): the runs from before it have empty
``w:web`` cells; refused in one line by default, read as weight 0 with --missing-domains zero."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main

from builders import STORE_EXPERTS, cli_error_line, score_store


def _grown_log(tmp_path: Path, n_old: int = 10, n_new: int = 6) -> Path:
    """Old runs on code and books only (empty w:web), new runs on all three experts."""
    rng = np.random.default_rng(3)
    old = np.column_stack([rng.dirichlet(np.ones(2), size=n_old), np.full(n_old, np.nan)])
    new = rng.dirichlet(np.ones(3), size=n_new)
    W = np.vstack([old, new])  # noqa: N806
    frame = pd.DataFrame({"run_id": [f"old{i}" for i in range(n_old)]
                          + [f"new{i}" for i in range(n_new)]})  # fmt: skip
    for j, d in enumerate(STORE_EXPERTS):
        frame[f"w:{d}"] = W[:, j]
    zero = np.nan_to_num(W)
    frame["loss:val_code"] = 3.0 - zero[:, 0] + 0.3 * zero[:, 2] + 0.01 * rng.random(len(W))
    frame["loss:qa"] = 3.0 - 0.5 * zero[:, 2] + 0.01 * rng.random(len(W))
    frame["eval_id"] = "e"
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)  # NaN -> empty cell
    assert ",," in path.read_text()
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["fit", "-p", "linear"],
        ["cv", "-p", "linear", "--folds", "3"],
        ["propose", "-p", "linear", "--objective", "val=1", "--no-ledger"],
    ],
)
def test_refused_by_default_in_one_line_naming_the_option(tmp_path, args):
    path = _grown_log(tmp_path)
    line = cli_error_line(main, [args[0], str(path), *args[1:]], exit_code=1)
    assert "10 run(s) (first: old0) have no weight for w:web" in line
    assert "--missing-domains zero" in line


def test_fit_and_cv_with_mde_features_accept_it_with_the_option(tmp_path):
    path = _grown_log(tmp_path)
    scores = str(score_store(tmp_path / "scores"))
    common = ["--scores", scores, "--missing-domains", "zero", "--json"]
    fit = CliRunner().invoke(main, ["fit", str(path), "-p", "linear+mde", *common])
    assert fit.exit_code == 0, fit.output
    assert json.loads(fit.stdout)["n_runs"] == 16
    cv = CliRunner().invoke(main, ["cv", str(path), "-p", "mde", "-p", "linear", "--folds", "4",
                                   *common])  # fmt: skip
    assert cv.exit_code == 0, cv.output
    report = json.dumps(json.loads(cv.stdout))
    assert '"mde"' in report and '"linear"' in report
    text = CliRunner().invoke(main, ["cv", str(path), "-p", "linear", "--folds", "4",
                                     "--missing-domains", "zero"])  # fmt: skip
    assert text.exit_code == 0 and "linear" in text.output, text.output


def test_propose_accepts_it_with_the_option_and_may_use_the_new_domain(tmp_path):
    path = _grown_log(tmp_path)
    args = ["propose", str(path), "-p", "linear", "--objective", "qa=1", "--no-ledger",
            "--missing-domains", "zero", "--json"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    weights = json.loads(result.stdout)["proposals"][0]["mixture"]
    assert set(weights) == set(STORE_EXPERTS)
    assert weights["web"] > 0.5  # qa improves with web, which only the new runs show


def _with_repeats(path: Path) -> Path:
    """The grown log plus a second seed of two mixtures (one old, one new), for ``noise``."""
    frame = pd.read_csv(path)
    repeats = frame.iloc[[0, 12]].copy()
    repeats["run_id"] = repeats["run_id"] + "-s1"
    repeats["loss:val_code"] += 0.02
    pd.concat([frame, repeats]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("command", ["noise", "audit"])
def test_the_other_log_readers_offer_the_option_they_name(tmp_path, command):
    path = _with_repeats(_grown_log(tmp_path))
    Path(f"{path}.ledger.jsonl").write_text("")  # a ledger with no proposals yet
    line = cli_error_line(main, [command, str(path)], exit_code=1)
    assert "--missing-domains zero" in line
    result = CliRunner().invoke(main, [command, str(path), "--missing-domains", "zero", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    if command == "noise":
        assert report["runs"] == 18
    else:
        assert report["entries"] == 0 and report["arrived"] == 0
