"""Repetition-aware proxies: each domain's unique data subsampled so a small run repeats it as
often as its target would, recorded in the log, and the epochs counted from it."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.experts import runs_train
from mixsurrogate.corpus.store import Corpus
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.experts.batches import mixture_sampler
from mixsurrogate.experts.presets import load_preset
from mixsurrogate.experts.repetition import parse_unique_caps, unique_limits
from mixsurrogate.runs.exposure import exposure_features
from mixsurrogate.runs.log import load_runs

from builders import cli_error_line, make_corpus, tiny_preset

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("repetition")
    corpus = make_corpus(root / "corpus", docs={"words": 80, "sums": 80}, val_docs=6, tasks=4)
    preset = tiny_preset(
        root / "fast.toml",
        model={"n_layer": 1, "n_head": 2, "n_embd": 16, "context": 32},
        train={"tokens": 8 * 32 * 4, "warmup_steps": 1, "checkpoint_every": 2},
        eval={"val_sequences": 2, "task_items": 4, "batch_size": 4},
    )
    return {"root": root, "corpus": corpus, "preset": preset}


def test_matching_keeps_unique_times_proxy_over_target_tokens(world):
    corpus = Corpus.load(world["corpus"])
    domains = ["words", "sums"]
    limits = unique_limits(corpus, domains, 1_000, match_tokens=4_000)
    for d in domains:  # a quarter of each stream, by hand
        assert limits[d] == len(corpus.tokens(d, "train")) * 1_000 // 4_000
    capped = unique_limits(corpus, domains, 1_000, caps={"words": 2_001}, match_tokens=2_000)
    assert capped["words"] == 1_000  # the cap, then half of it (floor)
    assert capped["sums"] == len(corpus.tokens("sums", "train")) // 2
    assert unique_limits(corpus, domains, 1_000) is None


@pytest.mark.parametrize(
    ("caps", "match", "message"),
    [
        ({}, 500, "must train at least the proxy's 1,000 tokens"),
        ({"books": 10}, None, "--unique-tokens books=...: no such domain"),
    ],
)
def test_bad_subsamples_are_refused(world, caps, match, message):
    with pytest.raises(MixsurrogateError, match=message):
        unique_limits(Corpus.load(world["corpus"]), ["words", "sums"], 1_000, caps, match)


@pytest.mark.parametrize("spec", ["books", "books=", "books=-3", "books=1e5"])
def test_bad_unique_token_specs_are_one_line(spec):
    with pytest.raises(MixsurrogateError, match="expected DOMAIN=TOKENS"):
        parse_unique_caps([spec])
    assert parse_unique_caps(["books=60_000"]) == {"books": 60_000}


def test_a_matched_run_draws_only_from_the_subsample_and_logs_it(world, tmp_path):
    corpus = Corpus.load(world["corpus"])
    preset = load_preset(world["preset"])
    run_tokens = preset.steps * preset.tokens_per_step
    target = 8 * run_tokens
    limits = unique_limits(corpus, ["words", "sums"], run_tokens, match_tokens=target)
    sampler = mixture_sampler(corpus, {"words": 0.5, "sums": 0.5}, 32, 8, 0, limits)
    assert [len(s) for s in sampler.streams] == [limits["words"], limits["sums"]]

    (tmp_path / "mix.csv").write_text("run_id,w:words,w:sums\nr1,0.25,0.75\n")
    args = [str(world["corpus"]), str(tmp_path / "mix.csv"), str(tmp_path / "log.csv"),
            "--preset", str(world["preset"]), "--quiet"]  # fmt: skip
    result = CliRunner().invoke(runs_train, [*args, "--match-repetition", str(target)])
    assert result.exit_code == 0, result.output
    log = load_runs(tmp_path / "log.csv")
    assert log.frame["unique:words"][0] == limits["words"]
    assert f"repetition matched to {target:,} tokens" in log.frame["notes"][0]
    names, epochs = exposure_features(log, world["corpus"])
    assert names == ["epochs:words", "epochs:sums"]
    # by hand: tokens seen of each domain over the unique tokens it was drawn from
    by_hand = [0.25 * run_tokens / limits["words"], 0.75 * run_tokens / limits["sums"]]
    np.testing.assert_allclose(epochs[0], by_hand)
    # as often as the same mixture at 8x the tokens on the full data (up to the floor)
    full = [0.25 * target / len(corpus.tokens("words", "train")),
            0.75 * target / len(corpus.tokens("sums", "train"))]  # fmt: skip
    np.testing.assert_allclose(epochs[0], full, rtol=1e-3)
    # a pending row of the full-data run is not trained as the matched run (nor the reverse)
    (tmp_path / "pending.csv").write_text(
        "run_id,w:words,w:sums,loss:words,loss:sums,loss:qa\nr1,0.25,0.75,,,\n"
    )
    other = [*args[:2], str(tmp_path / "pending.csv"), *args[3:]]
    line = cli_error_line(runs_train, [*other, "--match-repetition", str(target)])
    assert "run r1 is pending there with other weights than this run" in line
    assert "nope" in cli_error_line(runs_train, [*args, "--unique-tokens", "nope=5"])
