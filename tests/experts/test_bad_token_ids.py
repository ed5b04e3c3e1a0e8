"""Issue 18 (items 11-13): links out of a score store or corpus, token streams the model cannot
read, a failed ``runs train``'s pending rows, and messages that misled or spanned many lines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from builders import make_corpus, tiny_preset
from click.testing import CliRunner

from mixsurrogate.cli.common import ErrorLineGroup
from mixsurrogate.cli.main import main
from mixsurrogate.corpus.store import Corpus, token_path
from mixsurrogate.errors import CorpusError, MixsurrogateError, ScoreStoreError
from mixsurrogate.mde.store import EvalSetScores, load_scores, write_scores
from mixsurrogate.objective import read_objective_file
from mixsurrogate.runs.log import append_run, load_runs, remove_pending_runs
from mixsurrogate.simplex import Bounds

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

EXPERTS = ["code", "books", "web"]
STEPS = 4


def _store(path: Path) -> Path:
    rng = np.random.default_rng(0)
    logp = -rng.gamma(2.0, 1.0, size=(len(EXPERTS), 4, 6)).astype(np.float32)
    sets = {"val_code": EvalSetScores("val_code", "val", logp, rng.random((4, 6)) < 0.8)}
    return write_scores(path, EXPERTS, sets, seq_len=6, tokenizer_sha256="t", eval_id="e")


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def _cli_one_line(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


# --- item 11: links out of the folder ---------------------------------------------------------


def test_score_store_refuses_an_array_that_links_outside(tmp_path):
    """Before: ``val_code.logp.npy`` -> a file elsewhere was read as the store's scores."""
    store = _store(tmp_path / "store")
    elsewhere = tmp_path / "elsewhere.npy"
    shutil.move(store / "val_code.logp.npy", elsewhere)
    (store / "val_code.logp.npy").symlink_to(elsewhere)
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    assert "outside the score store" in _one_line(err)
    assert str(elsewhere.resolve()) in str(err.value)


def test_score_store_accepts_links_inside_it_and_a_linked_folder(tmp_path):
    store = _store(tmp_path / "store")
    shutil.move(store / "val_code.mask.npy", store / "mask-data.npy")
    (store / "val_code.mask.npy").symlink_to("mask-data.npy")
    (tmp_path / "alias").symlink_to(store)
    assert load_scores(tmp_path / "alias").eval_sets["val_code"].mask.shape == (4, 6)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("robust") / "corpus", tasks=4)


def _copy(corpus_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "corpus"
    shutil.copytree(corpus_dir, copy)
    return copy


def test_corpus_refuses_a_token_stream_that_links_outside(corpus_dir, tmp_path):
    """Before: ``tokens/words.train.u16`` -> a file elsewhere was trained on."""
    copy = _copy(corpus_dir, tmp_path)
    stream = token_path(copy, "words", "train")
    elsewhere = tmp_path / "other.u16"
    shutil.move(stream, elsewhere)
    stream.symlink_to(elsewhere)
    with pytest.raises(CorpusError) as err:
        Corpus.load(copy).tokens("words", "train")
    assert "token stream is a link to" in _one_line(err) and "outside the corpus" in str(err.value)


def test_corpus_refuses_a_tokenizer_that_links_outside(corpus_dir, tmp_path):
    copy = _copy(corpus_dir, tmp_path)
    elsewhere = tmp_path / "tokenizer.json"
    shutil.move(copy / "tokenizer.json", elsewhere)
    (copy / "tokenizer.json").symlink_to(elsewhere)
    with pytest.raises(CorpusError) as err:
        Corpus.load(copy)
    assert "tokenizer file is a link to" in _one_line(err)


# --- item 12: token streams the model cannot read, and runs train's pending rows --------------


def test_token_stream_of_a_partial_id_is_one_line(corpus_dir, tmp_path):
    """Before: np.memmap's ValueError ('Size of available data is not a multiple of ...')."""
    copy = _copy(corpus_dir, tmp_path)
    with open(token_path(copy, "words", "val"), "ab") as handle:
        handle.write(b"\x01")  # half a uint16
    with pytest.raises(CorpusError) as err:
        Corpus.load(copy).tokens("words", "val")
    assert "not a whole number of uint16 token ids" in _one_line(err)


def _ids_beyond_vocabulary(copy: Path, domain: str, split: str) -> None:
    path = token_path(copy, domain, split)
    ids = np.fromfile(path, dtype=np.uint16)
    ids[::3] = 60_000  # the tokenizer has 300 ids
    ids.tofile(path)


@pytest.fixture
def preset(tmp_path) -> Path:
    return tiny_preset(
        tmp_path / "short.toml",
        train={"tokens": STEPS * 8 * 32, "warmup_steps": 1, "checkpoint_every": 2},
        eval={"val_sequences": 2, "task_items": 4, "batch_size": 4},
    )


def test_runs_train_with_ids_beyond_the_vocabulary_is_one_line_and_leaves_no_pending_row(
    corpus_dir, tmp_path, preset
):
    """Before: torch's IndexError (a traceback), and r2 stayed in the log 'in flight' for ever."""
    copy = _copy(corpus_dir, tmp_path)
    _ids_beyond_vocabulary(copy, "words", "train")
    mixtures = tmp_path / "mix.csv"
    mixtures.write_text("run_id,w:words,w:sums\nr1,0,1\nr2,0.5,0.5\n")
    log = tmp_path / "runs.csv"
    line = _cli_one_line(
        ["runs", "train", str(copy), str(mixtures), str(log), "--preset", str(preset), "--quiet"]
    )
    assert "token id 60000 is beyond the vocabulary" in line
    assert "training stream of domain 'words'" in line
    logged = load_runs(log)
    assert logged.run_ids == ["r1"]  # trained before r2 failed: kept, and finished
    assert not logged.pending_mask.any()


def test_runs_train_failing_on_its_only_run_leaves_no_log(corpus_dir, tmp_path, preset):
    copy = _copy(corpus_dir, tmp_path)
    _ids_beyond_vocabulary(copy, "words", "train")
    mixtures = tmp_path / "mix.csv"
    mixtures.write_text("run_id,w:words,w:sums\nr2,0.5,0.5\n")
    log = tmp_path / "runs.csv"
    _cli_one_line(
        ["runs", "train", str(copy), str(mixtures), str(log), "--preset", str(preset), "--quiet"]
    )
    assert not log.exists()


def test_experts_train_with_ids_beyond_the_vocabulary_is_one_line(corpus_dir, tmp_path, preset):
    copy = _copy(corpus_dir, tmp_path)
    _ids_beyond_vocabulary(copy, "sums", "train")
    out = tmp_path / "experts"
    line = _cli_one_line(
        ["experts", "train", str(copy), str(out), "--preset", str(preset), "--quiet"]
    )
    assert "training stream of domain 'sums'" in line and "beyond the vocabulary" in line
    assert not (out / "sums").exists()


def test_validation_ids_beyond_the_vocabulary_fail_before_anything_is_logged(
    corpus_dir, tmp_path, preset
):
    copy = _copy(corpus_dir, tmp_path)
    _ids_beyond_vocabulary(copy, "sums", "val")
    mixtures = tmp_path / "mix.csv"
    mixtures.write_text("run_id,w:words,w:sums\nr1,1,0\n")
    log = tmp_path / "runs.csv"
    line = _cli_one_line(
        ["runs", "train", str(copy), str(mixtures), str(log), "--preset", str(preset), "--quiet"]
    )
    assert "validation stream of domain 'sums'" in line
    assert not log.exists()


def _row(run_id: str, loss: float | None) -> dict:
    return {"run_id": run_id, "w:a": 0.5, "w:b": 0.5, "loss:x": loss, "notes": "n"}


def test_remove_pending_runs_takes_out_only_rows_without_a_loss(tmp_path):
    log = tmp_path / "runs.csv"
    for run_id, loss in (("done", 2.5), ("mine", None), ("proposal", None)):
        append_run(log, _row(run_id, loss))
    assert remove_pending_runs(log, ["mine", "done"]) == ["mine"]
    assert load_runs(log).run_ids == ["done", "proposal"]
    assert remove_pending_runs(log, ["mine"]) == []
    frame = pd.read_csv(log)
    assert frame["loss:x"].tolist()[0] == 2.5 and frame["notes"].tolist() == ["n", "n"]


def test_remove_pending_runs_deletes_a_log_it_empties(tmp_path):
    log = tmp_path / "runs.jsonl"
    append_run(log, _row("mine", None))
    assert remove_pending_runs(log, ["mine"]) == ["mine"]
    assert not log.exists()


# --- item 13: messages that misled ------------------------------------------------------------


@pytest.mark.parametrize("spec", ["pile_cc=nan:0.5", "pile_cc=0.1:nan", "pile_cc=NaN:"])
def test_nan_bounds_name_the_bound(spec):
    """Before: 'row 0: weight 0 is missing or NaN', about no row the user wrote."""
    with pytest.raises(MixsurrogateError) as err:
        Bounds.parse([spec], ["pile_cc", "github"])
    assert f"bad bound {spec!r}" in _one_line(err)


def test_nan_bounds_through_the_cli():
    line = _cli_one_line(
        ["propose", "regmix:train-1m", "-p", "linear", "--objective", "pile_cc=1",
         "--bounds", "github=nan:0.1"]
    )  # fmt: skip
    assert "bad bound 'github=nan:0.1'" in line


def test_bounds_built_with_nan_are_impossible():
    with pytest.raises(MixsurrogateError) as err:
        Bounds(np.array([np.nan, 0.0]), np.ones(2)).check(["a", "b"])
    assert "bound for a is impossible" in _one_line(err)


def test_random_bytes_in_an_array_file_say_so(tmp_path):
    """Before: numpy's advice to load the file with allow_pickle=True (never, for a file handed
    in by someone else)."""
    store = _store(tmp_path / "store")
    (store / "val_code.logp.npy").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    message = _one_line(err)
    assert "val_code.logp.npy: not a valid .npy array file" in message
    assert "pickle" not in message


def test_a_truncated_array_file_says_so(tmp_path):
    store = _store(tmp_path / "store")
    data = (store / "val_code.logp.npy").read_bytes()
    (store / "val_code.logp.npy").write_bytes(data[: len(data) - 10])
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    assert "val_code.logp.npy: not a valid .npy array file" in _one_line(err)


BAD_YAML = "sets:\n  pile_cc: 0.5\n  bad: [1, 2\n  x: : y\n"


def test_bad_yaml_objective_file_is_one_line(tmp_path):
    """Before: PyYAML's report, eight lines with the offending lines and carets."""
    path = tmp_path / "objective.yaml"
    path.write_text(BAD_YAML)
    with pytest.raises(MixsurrogateError) as err:
        read_objective_file(str(path))
    assert "not valid YAML (line 4, column 4: expected ',' or ']'" in _one_line(err)
    line = _cli_one_line(["propose", "regmix:train-1m", "-p", "linear", "--objective", f"@{path}"])
    assert "not valid YAML (line 4" in line


def test_objective_file_of_random_bytes_is_one_line(tmp_path):
    path = tmp_path / "objective.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MixsurrogateError) as err:
        read_objective_file(str(path))
    assert "not UTF-8 text" in _one_line(err)


def test_error_line_group_prints_one_line_for_a_multi_line_message():
    @click.group(cls=ErrorLineGroup)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        raise MixsurrogateError("bad input (a parser said:\n  line 1\n    ^\nexpected x)")

    result = CliRunner().invoke(group, ["fail"])
    assert result.exit_code == 1
    assert result.output == "Error: bad input (a parser said: line 1 ^ expected x)\n"


def test_a_store_manifest_read_as_json_still_works(tmp_path):
    store = _store(tmp_path / "store")
    manifest = json.loads((store / "manifest.json").read_text())
    assert load_scores(store).experts == manifest["experts"]
