"""The user's own text (``corpus build --from DIR``): one folder per domain, read as documents."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from ..errors import CorpusError
from .corpus_store import check_name
from .documents import Document
from .jsonl import json_lines
from .prepare import DomainText

USER_SUFFIXES = (".txt", ".jsonl", ".jsonl.gz")


def _user_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name.endswith(USER_SUFFIXES)
    )


def _read_jsonl(path: Path, rel: str) -> Iterator[Document]:
    for lineno, record in json_lines(path):
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise CorpusError(f"{path}:{lineno}: expected an object with a string 'text' field")
        yield Document(f"{rel}:{lineno}", text)


def read_user_domain(folder: Path, name: str) -> DomainText:
    """One domain folder: ``.txt`` files (one document each; form feeds separate several
    documents in one file) and ``.jsonl``/``.jsonl.gz`` files (one ``{"text": ...}`` per line)."""
    check_name(name)
    documents: list[Document] = []
    for path in _user_files(folder):
        rel = path.relative_to(folder).as_posix()
        if path.name.endswith(".txt"):
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as err:
                raise CorpusError(f"{path}: not UTF-8 text ({err.reason})") from err
            pieces = text.split("\f")
            for k, piece in enumerate(pieces):
                documents.append(Document(rel if len(pieces) == 1 else f"{rel}#{k}", piece))
        else:
            documents.extend(_read_jsonl(path, rel))
    documents = [replace(d, source=f"user:{name}") for d in documents if d.text.strip()]
    if not documents:
        raise CorpusError(
            f"domain {name!r} is empty: no text in {folder} ({', '.join(USER_SUFFIXES)} files)"
        )
    source = {"name": f"user:{name}", "kind": "user", "path": str(folder), "licence": "user data"}
    return DomainText(name, documents, [source])


def read_user_domains(root: Path) -> dict[str, DomainText]:
    """A folder of domain folders (``--from DIR``)."""
    if not root.is_dir():
        raise CorpusError(f"--from {root}: not a directory")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise CorpusError(f"--from {root}: no domain folders inside (one folder per domain)")
    return {p.name: read_user_domain(p, p.name) for p in folders}
