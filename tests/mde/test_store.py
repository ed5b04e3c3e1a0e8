"""Score store and corpus reliability (issue 10): bad manifests, paths out of the folder, folder
modes, and the same domains in another order."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from builders import make_corpus

from mixsurrogate.corpus.build import assemble_corpus
from mixsurrogate.corpus.documents import Document
from mixsurrogate.corpus.prepare import DomainText
from mixsurrogate.corpus.store import Corpus
from mixsurrogate.errors import CorpusError, RunsLogError, ScoreStoreError
from mixsurrogate.mde.features import MDEFeatureMap
from mixsurrogate.mde.store import EvalSetScores, load_scores, write_scores
from mixsurrogate.runs.log import RunsLog, validate_frame

EXPERTS = ["code", "books", "web"]


def _store(path: Path) -> Path:
    rng = np.random.default_rng(0)
    sets = {}
    for name, kind in (("val_code", "val"), ("qa", "task")):
        logp = -rng.gamma(2.0, 1.0, size=(len(EXPERTS), 4, 6)).astype(np.float32)
        mask = rng.random((4, 6)) < 0.8
        sets[name] = EvalSetScores(name, kind, logp, mask)
    return write_scores(path, EXPERTS, sets, seq_len=6, tokenizer_sha256="t", eval_id="e")


def _edit_manifest(store: Path, edit) -> None:
    manifest_path = store / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(edit(manifest)))


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.fixture
def umask_022():
    before = os.umask(0o022)
    yield
    os.umask(before)


# --- score store manifests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: {k: v for k, v in m.items() if k != "experts"}, "missing 'experts'"),
        (lambda m: {k: v for k, v in m.items() if k != "seq_len"}, "missing 'seq_len'"),
        (lambda m: [m], "expected a JSON object, found a list"),
        (lambda m: {**m, "experts": "code"}, "'experts' must be a non-empty list"),
        (lambda m: {**m, "seq_len": "six"}, "'seq_len' must be a positive integer"),
        (lambda m: {**m, "eval_sets": ["qa"]}, "'eval_sets' must map"),
        (lambda m: {**m, "provenance": [1]}, "'provenance' must be a JSON object"),
    ],
    ids=["no-experts", "no-seq_len", "list", "experts-str", "seq_len-str", "sets-list", "prov"],
)
def test_bad_score_store_manifest_is_one_clear_line(tmp_path, edit, message):
    """Before: KeyError ('experts', 'seq_len') or AttributeError (a list has no .get)."""
    store = _store(tmp_path / "scores")
    _edit_manifest(store, edit)
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    assert message in _one_line(err)
    assert str(store / "manifest.json") in str(err.value)


@pytest.mark.parametrize("name", ["../outside", "/abs/outside", "sub/inner", "..\\outside"])
def test_score_store_refuses_set_names_that_leave_its_folder(tmp_path, name):
    """A set named ``../outside`` read ``../outside.logp.npy``: arrays from outside the store."""
    store = _store(tmp_path / "scores")
    target = store / f"{name}.logp.npy" if not name.startswith("/") else Path(f"{name}.logp.npy")
    if not name.startswith("/") and "\\" not in name:  # plant the arrays the name points at
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, np.load(store / "qa.logp.npy"))
        np.save(store / f"{name}.mask.npy", np.load(store / "qa.mask.npy"))

    def rename(manifest: dict) -> dict:
        manifest["eval_sets"][name] = manifest["eval_sets"].pop("qa")
        return manifest

    _edit_manifest(store, rename)
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    assert "is not a plain file name" in _one_line(err)


def test_write_scores_refuses_a_set_name_with_a_path(tmp_path):
    sets = {"../x": EvalSetScores("../x", "val", np.zeros((1, 1, 1), np.float32), np.ones((1, 1)))}
    with pytest.raises(ScoreStoreError, match="not a plain file name"):
        write_scores(tmp_path / "s", ["a"], sets, 1, "t", "e")
    assert not (tmp_path / "x.logp.npy").exists()


def test_score_store_folder_gets_the_umask_mode(tmp_path, umask_022):
    """Before: mkdtemp's 0700 survived the rename, so the store was private to its writer."""
    store = _store(tmp_path / "scores")
    assert stat.S_IMODE(store.stat().st_mode) == 0o755
    made = tmp_path / "made"
    made.mkdir(mode=0o770)
    made.chmod(0o770)
    assert stat.S_IMODE(_store(made).stat().st_mode) == 0o770  # an empty folder keeps its mode


# --- the same domains in another order ------------------------------------------------------


def _log(domains: list[str], targets: list[str]) -> RunsLog:
    rng = np.random.default_rng(1)
    W = rng.dirichlet(np.ones(len(domains)), size=5)  # noqa: N806
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(5)]})
    for j, d in enumerate(domains):
        frame[f"w:{d}"] = W[:, j]
    for t in targets:
        frame[f"loss:{t}"] = 3.0 + rng.random(5)
    return RunsLog(validate_frame(frame))


def test_store_in_another_order_is_named_as_such_and_reordered_safely(tmp_path):
    store = load_scores(_store(tmp_path / "scores"))
    log = _log(["web", "code", "books"], ["val_code", "qa"])
    with pytest.raises(ScoreStoreError) as err:
        store.check_matches_runs(log.domains, log.targets)
    assert "another order" in _one_line(err)  # before: "differ from", as if other domains
    aligned = store.reordered(log.domains)
    aligned.check_matches_runs(log.domains, log.targets)
    # the MDE features of a mixture do not depend on which order the experts are listed in
    natural = log.with_domain_order(EXPERTS)
    np.testing.assert_allclose(
        MDEFeatureMap(aligned, log.targets).transform(log.W),
        MDEFeatureMap(store, log.targets).transform(natural.W),
        rtol=1e-6,
    )
    with pytest.raises(ScoreStoreError, match="differ from the runs log domains"):
        store.reordered(["web", "code", "law"])


def test_runs_log_reorders_its_weight_columns(tmp_path):
    log = _log(["a", "b", "c"], ["x"])
    other = log.with_domain_order(["c", "a", "b"])
    assert other.domains == ["c", "a", "b"]
    np.testing.assert_array_equal(other.W, log.W[:, [2, 0, 1]])
    assert other.targets == log.targets and other.run_ids == log.run_ids
    assert log.with_domain_order(["a", "b", "c"]) is log
    with pytest.raises(RunsLogError, match="not a, b, d"):
        log.with_domain_order(["a", "b", "d"])


# --- corpus manifests -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus") / "corpus", tasks=4)


def _copy_with(corpus_dir: Path, tmp_path: Path, edit) -> Path:
    import shutil

    copy = tmp_path / "corpus"
    shutil.copytree(corpus_dir, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps(edit(manifest)))
    return copy


def _tokenizer_file(value: str):
    def edit(manifest: dict) -> dict:
        manifest["tokenizer"]["file"] = value
        return manifest

    return edit


def _task_file(value: str):
    def edit(manifest: dict) -> dict:
        manifest["tasks"]["qa"]["file"] = value
        return manifest

    return edit


def _domain_name(value: str):
    def edit(manifest: dict) -> dict:
        manifest["domains"][value] = manifest["domains"].pop("words")
        return manifest

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_tokenizer_file("../tokenizer.json"), "tokenizer file '../tokenizer.json' points outside"),
        (_tokenizer_file("/etc/hostname"), "tokenizer file '/etc/hostname' points outside"),
        (_task_file("../qa.jsonl"), "file of task set 'qa' '../qa.jsonl' points outside"),
        (_task_file("tasks/../../qa.jsonl"), "points outside the corpus folder"),
        (_domain_name("../words"), "domain name '../words' is not a plain file name"),
        (lambda m: [m], "expected a JSON object, found a list"),
        (lambda m: {k: v for k, v in m.items() if k != "tokenizer"}, "'tokenizer' must hold"),
    ],
    ids=["tok-up", "tok-abs", "task-up", "task-up-deep", "domain-up", "list", "no-tokenizer"],
)
def test_corpus_manifest_paths_stay_inside(corpus_dir, tmp_path, edit, message):
    """Before: the tokenizer, task file or token stream was read from wherever it pointed."""
    copy = _copy_with(corpus_dir, tmp_path, edit)
    with pytest.raises(CorpusError) as err:
        Corpus.load(copy)
    assert message in _one_line(err)


def test_a_valid_corpus_still_loads(corpus_dir):
    corpus = Corpus.load(corpus_dir)
    assert corpus.tokenizer_path == corpus_dir / "tokenizer.json"
    assert len(corpus.task_items("qa")) == 4


def test_built_corpus_folder_gets_the_umask_mode(tmp_path, umask_022):
    """Before: the corpus folder kept mkdtemp's 0700."""
    words = "ka lo mi ne ru sa to vi ze po qua fen dor gil".split()
    rng = np.random.default_rng(0)
    docs = {
        name: DomainText(
            name,
            [Document(f"{name}{k}", " ".join(rng.choice(words, 60)) + ".") for k in range(12)],
        )
        for name in ("one", "two")
    }
    out = assemble_corpus(tmp_path / "c", docs, vocab_size=300, min_train_tokens=16)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
