"""The user's own text (``corpus build --from DIR``): one folder per domain, read as documents.

``DIR/<domain>/`` (any depth below it; names starting with "." are skipped) may hold:

- ``.txt``: one document per file; form feeds separate several documents in one file;
- ``.jsonl`` / ``.jsonl.gz``: one ``{"<text field>": ...}`` object per line;
- ``.parquet``: one document per row, from the string column named by ``--text-field``;
- ``.arrow``: the same for Arrow files, e.g. a Hugging Face ``datasets`` folder written by
  ``save_to_disk`` (its ``data-*.arrow`` shards; every split of a ``DatasetDict`` below the
  domain folder belongs to the domain).

Empty and null texts are skipped. A domain with only ``.txt``/``.jsonl`` files is read into
memory, as it always was (unless ``stream``); a domain with a ``.parquet`` or ``.arrow`` file is
read as a stream (lists of at most ``batch_rows`` documents) and prepared by
:func:`.prepare.prepare_domain_streamed`, in bounded memory. The two differ only in which copy
of a duplicate document survives: the first by document id in memory, the first read in a
stream (files in path order, rows in order; document ids are ``<path>:<row>`` with rows from 0,
``<path>:<line>`` for JSON lines, ``<path>`` or ``<path>#<k>`` for text files).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from ..errors import CorpusError
from .documents import Document
from .jsonl import json_lines
from .prepare import DomainStream, DomainText
from .store import check_name
from .table_readers import DEFAULT_BATCH_ROWS, TABLE_SUFFIXES, check_text_field, iter_text_batches

TEXT_SUFFIXES = (".txt", ".jsonl", ".jsonl.gz")
USER_SUFFIXES = TEXT_SUFFIXES + TABLE_SUFFIXES
DEFAULT_TEXT_FIELD = "text"


def _user_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name.endswith(USER_SUFFIXES)
    )


def _read_jsonl(path: Path, rel: str, text_field: str = DEFAULT_TEXT_FIELD) -> Iterator[Document]:
    for lineno, record in json_lines(path):
        text = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise CorpusError(
                f"{path}:{lineno}: expected an object with a string {text_field!r} field"
            )
        yield Document(f"{rel}:{lineno}", text)


def _read_txt(path: Path, rel: str) -> list[Document]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(f"{path}: not UTF-8 text ({err.reason})") from err
    pieces = text.split("\f")
    return [Document(rel if len(pieces) == 1 else f"{rel}#{k}", p) for k, p in enumerate(pieces)]


def _file_batches(
    path: Path, rel: str, text_field: str, batch_rows: int
) -> Iterator[list[Document]]:
    """One file's documents in lists of at most ``batch_rows`` (a .txt file is one list)."""
    if path.name.endswith(".txt"):
        yield _read_txt(path, rel)
    elif path.name.endswith(TABLE_SUFFIXES):
        row = 0
        for texts in iter_text_batches(path, text_field, batch_rows):
            yield [Document(f"{rel}:{row + k}", t) for k, t in enumerate(texts) if t is not None]
            row += len(texts)
    else:
        batch: list[Document] = []
        for doc in _read_jsonl(path, rel, text_field):
            batch.append(doc)
            if len(batch) == batch_rows:
                yield batch
                batch = []
        if batch:
            yield batch


def read_user_domain(
    folder: Path,
    name: str,
    text_field: str = DEFAULT_TEXT_FIELD,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    stream: bool = False,
) -> DomainText | DomainStream:
    """One domain folder (see the module docstring): a :class:`DomainText` for text files only,
    a :class:`DomainStream` as soon as it holds a table file (or with ``stream``)."""
    check_name(name)
    files = _user_files(folder)
    source = {"name": f"user:{name}", "kind": "user", "path": str(folder), "licence": "user data"}
    tables = [p for p in files if p.name.endswith(TABLE_SUFFIXES)]
    if not files:
        raise CorpusError(
            f"domain {name!r} is empty: no text in {folder} ({', '.join(USER_SUFFIXES)} files)"
        )
    if tables or stream:
        for path in tables:  # every schema before any row: a missing field is found first
            check_text_field(path, text_field)
        return DomainStream(
            name,
            lambda: _stream_batches(folder, files, name, text_field, batch_rows),
            [source],
        )
    documents: list[Document] = []
    for path in files:
        for batch in _file_batches(path, path.relative_to(folder).as_posix(), text_field, 1 << 30):
            documents.extend(batch)
    documents = [replace(d, source=f"user:{name}") for d in documents if d.text.strip()]
    if not documents:
        raise CorpusError(
            f"domain {name!r} is empty: no text in {folder} ({', '.join(USER_SUFFIXES)} files)"
        )
    return DomainText(name, documents, [source])


def _stream_batches(
    folder: Path, files: list[Path], name: str, text_field: str, batch_rows: int
) -> Iterator[list[Document]]:
    for path in files:
        rel = path.relative_to(folder).as_posix()
        for batch in _file_batches(path, rel, text_field, batch_rows):
            kept = [replace(d, source=f"user:{name}") for d in batch if d.text.strip()]
            if kept:
                yield kept


def read_user_domains(
    root: Path,
    text_field: str = DEFAULT_TEXT_FIELD,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    stream: bool = False,
) -> dict[str, DomainText | DomainStream]:
    """A folder of domain folders (``--from DIR``)."""
    if not root.is_dir():
        raise CorpusError(f"--from {root}: not a directory")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise CorpusError(f"--from {root}: no domain folders inside (one folder per domain)")
    return {p.name: read_user_domain(p, p.name, text_field, batch_rows, stream) for p in folders}
