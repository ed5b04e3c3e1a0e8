"""Corpus folders that are safe to load (issues 10, 18): manifest paths and links stay inside the
folder, token streams of a partial id say so, and a built corpus gets the umask mode."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from mixsurrogate.corpus.build import assemble_corpus
from mixsurrogate.corpus.documents import Document
from mixsurrogate.corpus.prepare import DomainText
from mixsurrogate.corpus.store import Corpus, token_path
from mixsurrogate.errors import CorpusError

from builders import copy_corpus, one_line


def _copy_with(corpus_dir: Path, tmp_path: Path, edit) -> Path:
    copy = copy_corpus(corpus_dir, tmp_path)
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
    assert message in one_line(err)


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


def test_corpus_refuses_a_token_stream_that_links_outside(corpus_dir, tmp_path):
    """Before: ``tokens/words.train.u16`` -> a file elsewhere was trained on."""
    copy = copy_corpus(corpus_dir, tmp_path)
    stream = token_path(copy, "words", "train")
    elsewhere = tmp_path / "other.u16"
    shutil.move(stream, elsewhere)
    stream.symlink_to(elsewhere)
    with pytest.raises(CorpusError) as err:
        Corpus.load(copy).tokens("words", "train")
    assert "token stream is a link to" in one_line(err) and "outside the corpus" in str(err.value)


def test_corpus_refuses_a_tokenizer_that_links_outside(corpus_dir, tmp_path):
    copy = copy_corpus(corpus_dir, tmp_path)
    elsewhere = tmp_path / "tokenizer.json"
    shutil.move(copy / "tokenizer.json", elsewhere)
    (copy / "tokenizer.json").symlink_to(elsewhere)
    with pytest.raises(CorpusError) as err:
        Corpus.load(copy)
    assert "tokenizer file is a link to" in one_line(err)


def test_token_stream_of_a_partial_id_is_one_line(corpus_dir, tmp_path):
    """Before: np.memmap's ValueError ('Size of available data is not a multiple of ...')."""
    copy = copy_corpus(corpus_dir, tmp_path)
    with open(token_path(copy, "words", "val"), "ab") as handle:
        handle.write(b"\x01")  # half a uint16
    with pytest.raises(CorpusError) as err:
        Corpus.load(copy).tokens("words", "val")
    assert "not a whole number of uint16 token ids" in one_line(err)
