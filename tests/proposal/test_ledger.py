"""The predicted-vs-realised ledger: propose records, audit matches the runs that arrive."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.proposal.ledger import (
    PACKAGE_DIR,
    LedgerEntry,
    append_entries,
    audit,
    keeps_ledger,
    ledger_path,
    read_ledger,
)
from mixsurrogate.runs.log import load_runs
from mixsurrogate.simplex import sobol_simplex

DOMAINS = ["d0", "d1", "d2", "d3"]


def write_log(path, n: int = 16) -> str:
    w = sobol_simplex(n, 4, seed=0)
    frame = pd.DataFrame(w, columns=[f"w:{d}" for d in DOMAINS])
    frame.insert(0, "run_id", [f"r{i}" for i in range(n)])
    noise = np.random.default_rng(0).normal(0, 0.01, n)
    frame["loss:a"] = 2.0 + 3 * ((w - [0.4, 0.3, 0.2, 0.1]) ** 2).sum(axis=1) + noise
    frame.to_csv(path, index=False)
    return str(path)


def add_run(log: str, run_id: str, mixture, loss) -> None:
    frame = pd.read_csv(log)
    row = {"run_id": run_id, **{f"w:{d}": v for d, v in zip(DOMAINS, mixture, strict=True)}}
    row["loss:a"] = loss
    pd.concat([frame, pd.DataFrame([row])]).to_csv(log, index=False)


def entry(mixture, run_id=None, known=(), predicted=2.0, domains=DOMAINS) -> LedgerEntry:
    return LedgerEntry(
        role="explore", mode="explore", domains=list(domains), mixture=list(mixture),
        objective={"a": 1.0}, predicted=predicted, losses={}, level=0.9, lower=predicted - 0.1,
        upper=predicted + 0.1, predictor="gp", recommender=None, judged=None, log_sha256="x",
        known_runs=list(known), run_id=run_id,
    )  # fmt: skip


def test_propose_records_and_audit_shows_the_realised_run(tmp_path):
    log = write_log(tmp_path / "runs.csv")
    result = CliRunner().invoke(main, ["propose", log, "-p", "linear", "--objective", "a=1"])
    assert result.exit_code == 0, result.output
    (recorded,) = read_ledger(ledger_path(log))
    assert recorded.role == "recommendation" and recorded.predictor == "linear"
    assert recorded.recommender is not None and recorded.judged is not None
    assert len(recorded.log_sha256) == 64 and len(recorded.known_runs) == 16
    before = json.loads(CliRunner().invoke(main, ["audit", log, "--json"]).stdout)
    assert before["entries"] == 1 and before["arrived"] == 0  # nothing trained yet
    realised = recorded.predicted + 0.05
    add_run(log, "new", recorded.mixture, realised)
    out = CliRunner().invoke(main, ["audit", log, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["arrived"] == 1 and data["rows"][0]["matched_runs"] == ["new"]
    assert data["rows"][0]["realised"] == pytest.approx(realised)
    assert data["mean_optimism"] == pytest.approx(-0.05)
    covered = recorded.lower <= realised <= recorded.upper
    assert data["coverage"] == (1.0 if covered else 0.0) and data["intervals_checked"] == 1
    text = CliRunner().invoke(main, ["audit", log])
    assert "1 of 1 proposed mixtures realised" in text.output
    assert "mean predicted - realised: -0.0500" in text.output


@pytest.mark.slow
def test_explore_records_every_next_run(tmp_path):
    log = write_log(tmp_path / "runs.csv", n=12)
    result = CliRunner().invoke(
        main, ["propose", log, "--explore", "-n", "2", "--objective", "a=1", "--initial", "4"]
    )
    assert result.exit_code == 0, result.output
    entries = read_ledger(ledger_path(log))
    assert [e.role for e in entries] == ["explore", "explore", "recommendation"]
    assert all(e.lower is not None and e.lower < e.predicted < e.upper for e in entries)


def test_audit_matches_by_run_id_then_mixture_never_an_old_run(tmp_path):
    log = write_log(tmp_path / "runs.csv")
    runs = load_runs(log)
    old = runs.W[3]
    entries = [
        entry(old, known=runs.run_ids),  # equals a run known at proposal time: not matched
        entry([0.25, 0.25, 0.25, 0.25], run_id="pending-1", predicted=2.1),
        entry([0.7, 0.1, 0.1, 0.1], predicted=2.2),  # its runs arrive twice (two seeds)
    ]
    add_run(log, "pending-1", [0.3, 0.3, 0.2, 0.2], 2.05)  # the run id decides, not the mixture
    add_run(log, "s1", [0.7, 0.1, 0.1, 0.1], 2.4)
    add_run(log, "s2", [0.7 + 1e-5, 0.1, 0.1 - 1e-5, 0.1], 2.6)
    result = audit(load_runs(log), entries)
    assert result.rows[0].realised is None
    assert result.rows[1].matched_runs == ["pending-1"] and result.rows[1].realised == 2.05
    assert result.rows[2].matched_runs == ["s1", "s2"]
    assert result.rows[2].realised == pytest.approx(2.5)
    assert result.rows[1].covered is True and result.rows[2].covered is False
    assert result.coverage == 0.5
    assert result.mean_optimism == pytest.approx(((2.1 - 2.05) + (2.2 - 2.5)) / 2)


def test_a_ledger_of_another_log_is_one_line(tmp_path):
    log = write_log(tmp_path / "runs.csv")
    other = ledger_path(log)
    append_entries(other, [entry([0.5, 0.5, 0.0], domains=["x", "y", "z"])])
    result = CliRunner().invoke(main, ["audit", log])
    assert result.exit_code == 1 and "not this log's ledger" in result.output
    assert result.output.strip().count("\n") == 0
    missing = CliRunner().invoke(main, ["audit", write_log(tmp_path / "b.csv")])
    assert missing.exit_code == 1 and "no ledger at" in missing.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(MixsurrogateError, match="line 1: not valid JSON"):
        read_ledger(bad)


def test_concurrent_appends_all_land(tmp_path):
    path = tmp_path / "runs.csv.ledger.jsonl"
    threads = [
        threading.Thread(target=append_entries, args=(path, [entry([1, 0, 0, 0], run_id=f"t{i}")]))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(e.run_id for e in read_ledger(path)) == [f"t{i}" for i in range(8)]


def test_no_ledger_is_written_beside_a_built_in_log():
    """A proposal on a log shipped inside the package, or on regmix:, writes nothing there."""
    builtin = PACKAGE_DIR / "data" / "realtext" / "runs.csv"
    assert builtin.exists()
    assert not keeps_ledger(str(builtin))
    assert not keeps_ledger("regmix:train-1m")
    assert keeps_ledger("my-runs.csv")
