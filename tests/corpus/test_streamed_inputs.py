"""Corpus at scale: Parquet and ``datasets`` folders read as streams, user tokenizers, uint32.

No network: the tables and tokenizers are made here (pyarrow and datasets write them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.corpus import corpus as corpus_cli
from mixsurrogate.corpus.build import build_corpus
from mixsurrogate.corpus.documents import Document
from mixsurrogate.corpus.prepare import (
    DigestSet,
    DomainStream,
    DomainText,
    prepare_domain,
    prepare_domain_streamed,
)
from mixsurrogate.corpus.store import Corpus, file_sha256
from mixsurrogate.corpus.table_readers import iter_text_batches
from mixsurrogate.corpus.tokenizer import (
    EOS_TOKEN,
    check_vocab_size,
    iter_encoded,
    train_tokenizer,
)
from mixsurrogate.corpus.user_folders import read_user_domains
from mixsurrogate.errors import CorpusError

from builders import FAST_BUILD, sentences, split_stream

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def write_parquet(path: Path, columns: dict, row_group_size: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)


def decoded_documents(corpus: Corpus, domain: str) -> list[str]:
    tokenizer = corpus.tokenizer()
    return [
        tokenizer.decode(doc)
        for split in ("train", "val")
        for doc in split_stream(np.asarray(corpus.tokens(domain, split)), corpus.eos_id)
    ]


# ---------------------------------------------------------------------------------------------
# Parquet and datasets folders


def test_build_from_parquet(tmp_path: Path) -> None:
    data = tmp_path / "data"
    texts = [f"row {k}: " + sentences(k, 6) for k in range(30)]
    write_parquet(
        data / "tables" / "part-0.parquet",
        {"content": texts[:20] + [None], "id": list(range(21))},
        row_group_size=7,
    )
    write_parquet(
        data / "tables" / "sub" / "part-1.parquet", {"content": texts[20:], "id": [0] * 10}
    )
    (data / "prose").mkdir()
    for k in range(6):  # a text-file domain beside it, read as before
        (data / "prose" / f"{k}.txt").write_text(sentences(100 + k, 20))
    out = tmp_path / "corpus"
    build_corpus(out, from_dir=data, text_field="content", batch_rows=8, **FAST_BUILD)
    corpus = Corpus.load(out)
    assert corpus.domains == ["prose", "tables"]
    assert corpus.token_dtype == "uint16"
    entry = corpus.manifest["domains"]["tables"]
    assert entry["documents"]["train"] + entry["documents"]["val"] == 30  # the null row skipped
    assert entry["extracted"]["documents"] == 30
    assert entry["sources"][0] == {
        "name": "user:tables",
        "kind": "user",
        "path": str(data / "tables"),
        "licence": "user data",
        "documents": 30,
        "bytes": sum(len(t.encode()) for t in texts),
    }
    assert sorted(decoded_documents(corpus, "tables")) == sorted(texts)  # byte-level round trip
    assert not (out / ".spill").exists()
    assert not list(tmp_path.glob(".corpus.building-*"))


def test_build_from_datasets_save_to_disk(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    data = tmp_path / "data"
    wiki = [f"article {k}: " + sentences(200 + k, 6) for k in range(25)]
    datasets.Dataset.from_dict({"text": wiki, "n": list(range(25))}).save_to_disk(
        str(data / "wiki")
    )
    code = [f"def f{k}():\n    return {k}  # " + sentences(300 + k, 3) for k in range(24)]
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": code[:16]}),
            "test": datasets.Dataset.from_dict({"text": code[16:]}),
        }
    ).save_to_disk(str(data / "code"))
    assert (data / "wiki" / "state.json").is_file()
    assert list((data / "wiki").glob("*.arrow"))
    out = tmp_path / "corpus"
    build_corpus(out, from_dir=data, batch_rows=5, **FAST_BUILD)
    corpus = Corpus.load(out)
    assert corpus.domains == ["code", "wiki"]
    assert sorted(decoded_documents(corpus, "wiki")) == sorted(wiki)
    assert sorted(decoded_documents(corpus, "code")) == sorted(code)  # every split of the dict


def test_missing_text_field_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_parquet(data / "t" / "a.parquet", {"body": ["x" * 40] * 3, "id": [1, 2, 3]})
    out = tmp_path / "o"
    with pytest.raises(CorpusError) as err:
        build_corpus(out, from_dir=data, **FAST_BUILD)
    message = str(err.value)
    assert "\n" not in message
    assert message.endswith("a.parquet: no text field 'text' (--text-field); its columns: body, id")
    assert not out.exists() and not list(tmp_path.glob(".o.building-*"))
    result = CliRunner().invoke(corpus_cli, ["build", str(out), "--from", str(data), "--quiet"])
    assert result.exit_code == 1
    assert "its columns: body, id" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()
    write_parquet(data / "t" / "a.parquet", {"body": [1, 2, 3]})
    with pytest.raises(CorpusError, match="column 'body' holds int64, not text"):
        build_corpus(out, from_dir=data, text_field="body", **FAST_BUILD)


def test_pyarrow_missing_is_one_clear_line(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    write_parquet(data / "t" / "a.parquet", {"text": ["x" * 40] * 3})
    for name in ("pyarrow", "pyarrow.ipc", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(CorpusError, match=r"needs pyarrow: pip install pyarrow"):
        read_user_domains(data)


# ---------------------------------------------------------------------------------------------
# bounded memory: what the readers and the encoder hold at once


def test_readers_and_encoder_keep_to_their_batch_size(tmp_path: Path) -> None:
    texts = [f"t{k} " + "ka" * (k % 7) for k in range(1000)]
    path = tmp_path / "a.parquet"
    write_parquet(path, {"text": texts}, row_group_size=300)
    batches = list(iter_text_batches(path, "text", batch_rows=64))
    assert max(len(b) for b in batches) <= 64
    assert [t for b in batches for t in b] == texts
    # an Arrow IPC stream with record batches bigger than batch_rows (datasets writes 1000)
    arrow = tmp_path / "b.arrow"
    with pa.ipc.new_stream(str(arrow), pa.schema([("text", pa.string())])) as writer:
        writer.write_table(pa.table({"text": texts}), max_chunksize=1000)
    batches = list(iter_text_batches(arrow, "text", batch_rows=64))
    assert max(len(b) for b in batches) <= 64
    assert [t for b in batches for t in b] == texts
    # the stream of a domain folder hands documents on in lists of at most batch_rows
    (tmp_path / "data" / "d").mkdir(parents=True)
    path.rename(tmp_path / "data" / "d" / "a.parquet")
    stream = read_user_domains(tmp_path / "data", batch_rows=50)["d"]
    assert isinstance(stream, DomainStream)
    sizes = [len(b) for b in stream.batches()]
    assert max(sizes) <= 50 and sum(sizes) == 1000
    # the encoder returns one chunk per batch of documents, never the whole stream
    tokenizer = train_tokenizer(texts, 300)
    chunks = list(iter_encoded(tokenizer, iter(texts), eos=0, batch_size=100))
    assert len(chunks) == 10
    eos = tokenizer.token_to_id(EOS_TOKEN)
    assert [int((c == eos).sum()) for c in chunks] == [99] + [100] * 9  # between documents


@pytest.mark.parametrize("pending", [4, 1 << 16])
def test_streamed_preparation_matches_the_in_memory_one(
    tmp_path: Path, monkeypatch, pending
) -> None:
    """Same documents in doc_id order: same dedup, long-document cuts, cap and split (with the
    digest store's runs merged often, and not at all)."""
    monkeypatch.setattr(DigestSet, "PENDING", pending)
    shared = "A shared paragraph that is long enough to be deduplicated, " + sentences(1, 3)
    docs = []
    for k in range(300):
        text = f"doc {k}. " + sentences(k, 1 + k % 9)
        if k % 10 == 0:
            text += "\n\n" + shared
        docs.append(Document(f"f:{k:04d}", text))
    docs.append(Document("f:0300", docs[5].text))  # an exact duplicate
    docs.append(Document("f:0301", "\n\n".join(sentences(900 + j, 40) for j in range(60))))  # cut
    for max_bytes in (None, 20_000, 5_000):
        memory = prepare_domain(
            DomainText("d", docs), max_bytes=max_bytes, val_fraction=0.2, seed=3
        )
        stream = DomainStream("d", lambda: (docs[i : i + 17] for i in range(0, len(docs), 17)))
        streamed = prepare_domain_streamed(
            stream, tmp_path / "spill", max_bytes=max_bytes, val_fraction=0.2, seed=3
        )
        for split in ("train", "val"):
            assert list(streamed.texts(split)) == list(memory.texts(split))
            assert streamed.bytes(split) == memory.bytes(split)
        assert streamed.stats == memory.stats
        assert memory.stats["deduplicated"]["documents_dropped"] == 1
        assert memory.stats["deduplicated"]["paragraphs_dropped"] == 29
        assert memory.stats["capped"] == (max_bytes is not None)


def test_digest_set_is_an_exact_set() -> None:
    rng = np.random.default_rng(1)
    store, reference = DigestSet(), set()
    store.PENDING = 50
    for _ in range(40):
        keys = rng.integers(0, 3000, 120).astype(np.uint64)  # many repeats
        old = store.in_runs(keys)
        for key, was in zip(keys.tolist(), old.tolist(), strict=True):
            assert (was or key in store.pending) == (key in reference)
            if not was:  # as the dedup does: a digest already in a run is not added again
                store.pending.add(key)
            reference.add(key)
        store.flush()
    store.flush(force=True)
    assert len(store) == len(reference) and not store.pending
    assert len(store.runs) <= 12  # merged: O(log n) runs
    assert np.array_equal(np.sort(np.concatenate(store.runs)), np.array(sorted(reference)))


def test_stream_option_reads_text_folders_as_streams(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "notes").mkdir(parents=True)
    with open(data / "notes" / "a.jsonl", "w") as handle:
        for k in range(40):
            handle.write(json.dumps({"body": f"note {k}: " + sentences(k, 8)}) + "\n")
    for k in range(5):
        (data / "notes" / f"{k}.txt").write_text(sentences(50 + k, 10))
    domains = read_user_domains(data, text_field="body", batch_rows=16, stream=True)
    assert isinstance(domains["notes"], DomainStream)
    assert max(len(b) for b in domains["notes"].batches()) <= 16
    assert isinstance(read_user_domains(data, text_field="body")["notes"], DomainText)
    build_corpus(tmp_path / "s", from_dir=data, text_field="body", stream=True, **FAST_BUILD)
    build_corpus(tmp_path / "m", from_dir=data, text_field="body", **FAST_BUILD)
    streamed, in_memory = Corpus.load(tmp_path / "s"), Corpus.load(tmp_path / "m")
    # no duplicates: the same corpus either way
    assert file_sha256(tmp_path / "s" / "tokenizer.json") == file_sha256(
        tmp_path / "m" / "tokenizer.json"
    )
    for split in ("train", "val"):
        assert np.array_equal(streamed.tokens("notes", split), in_memory.tokens("notes", split))


# ---------------------------------------------------------------------------------------------
# user tokenizers and uint32 streams


def word_level_tokenizer(path: Path, size: int) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {EOS_TOKEN: 0, "[UNK]": 1, **{f"w{k}": k + 2 for k in range(size - 2)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.add_special_tokens([EOS_TOKEN])
    tokenizer.save(str(path))
    return path


def test_large_vocabulary_tokenizer_gives_uint32_streams(tmp_path: Path) -> None:
    tok = word_level_tokenizer(tmp_path / "tokenizer.json", 70_000)
    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{w}" for w in rng.integers(60_000, 69_998, 20)) for _ in range(40)]
    write_parquet(tmp_path / "data" / "big" / "a.parquet", {"text": texts})
    said: list[str] = []
    out = tmp_path / "corpus"
    build_corpus(
        out,
        from_dir=tmp_path / "data",
        tokenizer=tok,
        vocab_size=512,
        min_train_tokens=64,
        progress=False,
        say=said.append,
    )
    assert any("--vocab-size 512 is ignored" in s for s in said)
    corpus = Corpus.load(out)
    assert corpus.token_dtype == "uint32" and corpus.manifest["token_dtype"] == "uint32"
    assert corpus.vocab_size == 70_000
    assert corpus.tokenizer_sha256 == file_sha256(tok)  # copied byte for byte
    assert corpus.manifest["build"]["vocab_size"] is None
    assert corpus.manifest["domains"]["big"]["files"]["train"] == "tokens/big.train.u32"
    stream = corpus.tokens("big", "train")
    assert stream.dtype == np.uint32 and int(stream.max()) > 65_535
    assert sorted(decoded_documents(corpus, "big")) == sorted(texts)  # exact round trip
    # the summary line says it
    result = CliRunner().invoke(
        corpus_cli,
        ["build", str(tmp_path / "c2"), "--from", str(tmp_path / "data"), "--tokenizer",
         str(tmp_path), "--min-train-tokens", "64", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "vocab 70000, eos id 0, uint32 streams" in result.output


def test_user_tokenizer_eos_and_errors(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"</s>": 0, "[UNK]": 1, "a": 2}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    (tmp_path / "tok").mkdir()
    tokenizer.save(str(tmp_path / "tok" / "tokenizer.json"))
    data = tmp_path / "data"
    for d in ("x", "y"):
        write_parquet(
            data / d / "a.parquet", {"text": [" ".join(["a"] * (40 + k)) for k in range(5)]}
        )
    build_corpus(
        tmp_path / "c",
        from_dir=data,
        tokenizer=tmp_path / "tok",
        min_train_tokens=8,
        progress=False,
    )
    corpus = Corpus.load(tmp_path / "c")
    assert corpus.manifest["tokenizer"]["eos_token"] == "</s>" and corpus.eos_id == 0
    assert corpus.token_dtype == "uint16"
    with pytest.raises(CorpusError, match="tokenizer has no '<eot>' token"):
        build_corpus(tmp_path / "d", from_dir=data, tokenizer=tmp_path / "tok", eos_token="<eot>")
    with pytest.raises(CorpusError, match="no tokenizer.json there"):
        build_corpus(tmp_path / "d", from_dir=data, tokenizer=tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CorpusError, match="not a Hugging Face tokenizer.json"):
        build_corpus(tmp_path / "d", from_dir=data, tokenizer=tmp_path / "bad.json")
    assert not (tmp_path / "d").exists()


def test_vocab_sizes_and_old_manifests(tmp_path: Path) -> None:
    check_vocab_size(70_000)  # trained vocabularies above 65536 are uint32 now
    check_vocab_size(1 << 32)
    with pytest.raises(CorpusError, match="vocab size"):
        check_vocab_size((1 << 32) + 1)
    with pytest.raises(CorpusError, match="vocab size"):
        check_vocab_size(100)
    data = tmp_path / "data"
    for d in ("x", "y"):
        (data / d).mkdir(parents=True)
        for k in range(4):
            (data / d / f"{k}.txt").write_text(sentences(k + (10 if d == "y" else 0), 12))
    out = tmp_path / "c"
    build_corpus(out, from_dir=data, **FAST_BUILD)
    manifest_path = out / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["token_dtype"] == "uint16"
    del manifest["token_dtype"]  # a corpus built before the field: uint16
    manifest_path.write_text(json.dumps(manifest))
    assert Corpus.load(out).tokens("x", "train").dtype == np.uint16
    manifest_path.write_text(json.dumps({**manifest, "token_dtype": "int8"}))
    with pytest.raises(CorpusError, match="token_dtype 'int8' is not one of uint16, uint32"):
        Corpus.load(out)
    manifest["tokenizer"]["vocab_size"] = 70_000
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(CorpusError, match="vocab size 70000 does not fit its uint16"):
        Corpus.load(out)
