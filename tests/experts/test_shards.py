"""Sharded proxy runs: ``runs train --shard I/N`` workers started at once share one runs log."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.experts import runs_train
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.proxy_runs import Mixture, Shard, train_proxy_runs
from mixsurrogate.runs.log import load_runs

from builders import make_corpus, tiny_preset

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

MIXTURES = [(f"m{i}", w) for i, w in enumerate((0.1, 0.3, 0.5, 0.7, 0.9, 0.2))]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    corpus = make_corpus(root / "corpus", docs={"words": 60, "sums": 60}, val_docs=6, tasks=4)
    preset = tiny_preset(
        root / "fast.toml",
        model={"n_layer": 1, "n_head": 2, "n_embd": 16, "context": 32},
        train={"tokens": 8 * 32 * 3, "warmup_steps": 1, "checkpoint_every": 2},
        eval={"val_sequences": 2, "task_items": 4, "batch_size": 4},
    )
    mixtures = root / "mix.csv"
    mixtures.write_text(
        "run_id,w:words,w:sums\n" + "".join(f"{r},{w},{1 - w:.1f}\n" for r, w in MIXTURES)
    )
    return {"root": root, "corpus": corpus, "preset": preset, "mixtures": mixtures}


def _args(world, log: Path, *extra: str) -> list[str]:
    return [
        str(world["corpus"]), str(world["mixtures"]), str(log), "--preset", str(world["preset"]),
        "--device", "cpu", "--quiet", *extra,
    ]  # fmt: skip


def test_round_robin_shares_cover_every_row_once():
    rows = [Mixture(f"r{i}", {"a": 1.0}, None) for i in range(6)]
    shares = [[m.run_id for m in Shard(i, 4).select(rows)] for i in range(1, 5)]
    assert shares == [["r0", "r4"], ["r1", "r5"], ["r2"], ["r3"]]
    assert Shard.parse(" 2/4 ") == Shard(2, 4) and str(Shard(2, 4)) == "2/4"
    for bad, why in (("3/2", "between 1 and 2"), ("0/2", "between 1 and 2"),
                     ("a/b", "expected I/N"), ("1/0", "must be >= 1"), ("2", "expected I/N")):  # fmt: skip
        with pytest.raises(MixsurrogateError, match=why):
            Shard.parse(bad)


def _worker(args: list[str], queue) -> None:
    """One shard, as the CLI runs it: (shard, exit code, stdout, error) back to the test."""
    import torch

    torch.set_num_threads(1)
    result = CliRunner().invoke(runs_train, args)
    queue.put((args[-1], result.exit_code, result.stdout, str(result.exception)))


@pytest.mark.slow
def test_four_shards_at_once_log_every_run_exactly_once(world, tmp_path):
    log = tmp_path / "runs.csv"
    # four real processes started together; a fork server that imported torch and the trainer
    # once forks them, so the test does not pay four torch imports
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "mixsurrogate.experts.proxy_runs"])
    queue = context.Queue()
    workers = [
        context.Process(
            target=_worker, args=(_args(world, log, "--json", "--shard", f"{i}/4"), queue)
        )
        for i in range(1, 5)
    ]
    for worker in workers:
        worker.start()
    results = sorted(queue.get(timeout=600) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
    assert [r[1] for r in results] == [0] * 4, results
    trained = [[r["run_id"] for r in json.loads(out)] for _, _, out, _ in results]
    ids = [r for r, _ in MIXTURES]
    assert trained == [ids[0::4], ids[1::4], ids[2::4], ids[3::4]]
    frame = load_runs(log).frame
    assert sorted(frame["run_id"]) == sorted(ids)  # every run exactly once
    assert not frame.filter(like="loss:").isna().any().any()  # none left pending
    by_id = frame.set_index("run_id")
    for run_id, w in MIXTURES:
        assert by_id.loc[run_id, "w:words"] == pytest.approx(w)
    assert not (tmp_path / ".runs.csv.checkpoints").exists()
    # the same runs as one worker trains them (training is a function of mixture and seed)
    alone = tmp_path / "alone.csv"
    train_proxy_runs(
        world["corpus"], world["mixtures"], load_preset(world["preset"]), alone, device="cpu",
        progress=False,
    )  # fmt: skip
    single = load_runs(alone).frame.set_index("run_id").filter(like="loss:")
    pd.testing.assert_frame_equal(by_id.filter(like="loss:").loc[single.index], single)

    # reruns skip what is logged: the same shard, and the whole file
    again = CliRunner().invoke(runs_train, _args(world, log, "--shard", "2/4"))
    assert again.exit_code == 0, again.output
    assert "nothing to train: every run of shard 2/4" in again.output
    whole = CliRunner().invoke(runs_train, _args(world, log, "--json"))
    assert whole.exit_code == 0 and json.loads(whole.output) == []
    assert sorted(load_runs(log).frame["run_id"]) == sorted(ids)


@pytest.mark.slow
def test_bad_shards_are_one_line_and_write_nothing(world, tmp_path):
    log = tmp_path / "runs.csv"
    for bad, why in (("3/2", "between 1 and 2"), ("0/2", "between 1 and 2"),
                     ("a/b", "expected I/N")):  # fmt: skip
        result = CliRunner().invoke(runs_train, _args(world, log, "--shard", bad))
        assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
        lines = [line for line in result.output.strip().splitlines() if line]
        assert len(lines) == 1 and lines[0].startswith("Error: --shard") and why in lines[0]
    assert list(tmp_path.iterdir()) == []
