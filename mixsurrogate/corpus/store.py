"""The corpus directory contract, shared by the corpus builder, the trainers and the scorer.

Layout::

    manifest.json                 format, tokenizer facts, domains (sources, licences, bytes,
                                  documents, tokens per split), task sets (source, licence, items)
    tokenizer.json                HF tokenizers byte-level BPE trained on the training split,
                                  or a copy of the user's own (``corpus build --tokenizer``)
    tokens/<domain>.<split>.u16   uint16 token stream (split = train | val); documents are
                                  joined with the end-of-text id between them
    tokens/<domain>.<split>.u32   the same in uint32, when the vocabulary has more than 65,536
                                  ids: the manifest's ``token_dtype`` says which (a manifest
                                  without it is uint16, as every corpus before it)
    tasks/<task>.jsonl            end-task items, one {"prompt": str, "answer": str} per line

numpy-only on purpose: reading a corpus needs neither torch nor the builder.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from tokenizers import Tokenizer

from ..errors import CorpusError
from ..files import MANIFEST_FILE, escapes, read_manifest

CORPUS_FORMAT = "mixsurrogate-corpus/1"
SPLITS = ("train", "val")
TOKEN_DTYPE = np.uint16  # the default, and the only dtype of corpora without ``token_dtype``
TOKEN_DTYPES = {"uint16": ".u16", "uint32": ".u32"}  # manifest ``token_dtype`` -> file suffix


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def token_dtype_for(vocab_size: int) -> str:
    """``uint16`` while every id fits (vocab <= 65,536), else ``uint32``; larger is refused."""
    if vocab_size <= 1 << 16:
        return "uint16"
    if vocab_size <= 1 << 32:
        return "uint32"
    raise CorpusError(f"vocab size {vocab_size} does not fit uint32 token streams (at most 2**32)")


def token_path(root: Path, domain: str, split: str, dtype: str = "uint16") -> Path:
    if dtype not in TOKEN_DTYPES:
        raise CorpusError(
            f"unknown token dtype {dtype!r}; expected one of {', '.join(TOKEN_DTYPES)}"
        )
    return root / "tokens" / f"{domain}.{split}{TOKEN_DTYPES[dtype]}"


def _path_dtype(path: Path) -> str:
    return "uint32" if path.name.endswith(TOKEN_DTYPES["uint32"]) else "uint16"


class TokenStreamWriter:
    """Append token ids to a stream chunk by chunk (the dtype follows the file suffix), so a
    stream of any length is written without holding it in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.dtype = np.dtype(_path_dtype(path))
        self.tokens = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "wb")

    def write(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids)
        if ids.size and (int(ids.max()) > np.iinfo(self.dtype).max or int(ids.min()) < 0):
            raise CorpusError(
                f"token id {int(ids.max())} does not fit {self.dtype.name} ({self.path.name})"
            )
        self._handle.write(ids.astype(self.dtype, copy=False).tobytes())
        self.tokens += int(ids.size)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> TokenStreamWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_token_stream(path: Path, ids: np.ndarray) -> None:
    """Write a whole stream: uint16 for a ``.u16`` path, uint32 for ``.u32``."""
    with TokenStreamWriter(path) as writer:
        writer.write(ids)


def inside(root: Path, relative: object, what: str) -> Path:
    """``root / relative`` for a path read from a manifest, refused unless it stays in ``root``.

    A manifest can come from anyone: ``../x``, an absolute path or a link to a file elsewhere
    would make the tools read (and train on, or report) files the corpus does not hold.
    """
    if not isinstance(relative, str) or not relative:
        raise CorpusError(f"{root}: {what} must be a relative path, not {relative!r}")
    posix = PurePosixPath(relative.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or PureWindowsPath(relative).drive:
        raise CorpusError(
            f"{root}: {what} {relative!r} points outside the corpus folder; "
            "a corpus only reads files inside its own folder"
        )
    return check_no_link_out(root, root / posix, what)


def check_no_link_out(root: Path, path: Path, what: str) -> Path:
    """``path``, refused when it is a link to a file outside the corpus (see :mod:`mixsurrogate.files`)."""
    target = escapes(root, path)
    if target is not None:
        raise CorpusError(
            f"{path}: {what} is a link to {target}, outside the corpus folder; "
            "a corpus only reads files inside its own folder"
        )
    return path


def check_token_ids(ids: np.ndarray, vocab_size: int, where: str) -> None:
    """One clear line for token ids the corpus's tokenizer cannot have made.

    A model has ``vocab_size`` embeddings: a larger id (a stream written with another
    tokenizer, or damaged) would fail deep in torch as an index error.
    """
    if ids.size and int(ids.max()) >= vocab_size:
        raise CorpusError(
            f"{where}: token id {int(ids.max())} is beyond the vocabulary of {vocab_size} ids "
            "of the corpus's tokenizer; the stream was written with another tokenizer or is "
            "damaged"
        )


def check_file_name(name: object, what: str, source: Path) -> None:
    """A domain or task name becomes a file name (``tokens/<domain>.<split>.u16``/``.u32``)."""
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or any(c in name for c in "/\\\0")
    ):
        raise CorpusError(
            f"{source}: {what} name {name!r} is not a plain file name; "
            "a corpus only reads files inside its own folder"
        )


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


def check_name(name: str, kind: str = "domain") -> None:
    """A name the builder will write (``tokens/<domain>.<split>.u16``): stricter than
    :func:`check_file_name`, so a built corpus never holds a name that needs quoting."""
    if not _SAFE_NAME.match(name):
        raise CorpusError(f"bad {kind} name {name!r}: use letters, digits, '_' and '-'")


def _check_manifest(manifest: dict, source: Path) -> None:
    """One clear line for a manifest that lacks what the readers index without checking."""
    tokenizer = manifest.get("tokenizer")
    needed = ("file", "sha256", "vocab_size", "eos_id")
    if not isinstance(tokenizer, dict) or any(k not in tokenizer for k in needed):
        raise CorpusError(f"{source}: 'tokenizer' must hold {', '.join(needed)}")
    inside(source.parent, tokenizer["file"], "tokenizer file")
    dtype = manifest.get("token_dtype", "uint16")
    if dtype not in TOKEN_DTYPES:
        raise CorpusError(
            f"{source}: token_dtype {dtype!r} is not one of {', '.join(TOKEN_DTYPES)}"
        )
    vocab = tokenizer["vocab_size"]
    if isinstance(vocab, int) and vocab > np.iinfo(dtype).max + 1:
        raise CorpusError(f"{source}: vocab size {vocab} does not fit its {dtype} token streams")
    domains, tasks = manifest.get("domains"), manifest.get("tasks", {})
    if not isinstance(domains, dict) or not domains:
        raise CorpusError(f"{source}: 'domains' must map each domain's name to its facts")
    if not isinstance(tasks, dict) or not all(isinstance(t, dict) for t in tasks.values()):
        raise CorpusError(f"{source}: 'tasks' must map each task set's name to its facts")
    for name in domains:
        check_file_name(name, "domain", source)
    for name, task in tasks.items():
        check_file_name(name, "task set", source)
        inside(source.parent, task.get("file", f"tasks/{name}.jsonl"), f"file of task set {name!r}")


@dataclass
class Corpus:
    """A built corpus directory, read-only."""

    root: Path
    manifest: dict

    @classmethod
    def load(cls, root: str | Path) -> Corpus:
        root = Path(root)
        manifest = read_manifest(
            root,
            CORPUS_FORMAT,
            CorpusError,
            missing=f"not a corpus directory (no {MANIFEST_FILE}); "
            "build one with 'mixsurrogate corpus build'",
            check_link=lambda file: check_no_link_out(root, file, "manifest"),
        )
        _check_manifest(manifest, root / MANIFEST_FILE)
        return cls(root, manifest)

    @property
    def domains(self) -> list[str]:
        return list(self.manifest["domains"])

    @property
    def tasks(self) -> list[str]:
        return list(self.manifest.get("tasks", {}))

    @property
    def tokenizer_path(self) -> Path:
        return inside(self.root, self.manifest["tokenizer"]["file"], "tokenizer file")

    @property
    def tokenizer_sha256(self) -> str:
        return str(self.manifest["tokenizer"]["sha256"])

    @property
    def vocab_size(self) -> int:
        return int(self.manifest["tokenizer"]["vocab_size"])

    @property
    def eos_id(self) -> int:
        return int(self.manifest["tokenizer"]["eos_id"])

    @property
    def token_dtype(self) -> str:
        """``uint16`` or ``uint32`` (corpora built before the field existed are uint16)."""
        return str(self.manifest.get("token_dtype", "uint16"))

    def tokenizer(self):
        """The corpus's HF ``tokenizers.Tokenizer``."""
        return Tokenizer.from_file(str(self.tokenizer_path))

    def check_domains(self, names: list[str]) -> None:
        missing = [n for n in names if n not in self.domains]
        if missing:
            raise CorpusError(
                f"domains not in the corpus: {', '.join(missing)}; the corpus has: {', '.join(self.domains)}"
            )

    def tokens(self, domain: str, split: str) -> np.ndarray:
        """Memory-mapped stream of one domain and split (uint16 or uint32: ``token_dtype``)."""
        self.check_domains([domain])
        if split not in SPLITS:
            raise CorpusError(f"unknown split {split!r}; expected one of {SPLITS}")
        path = token_path(self.root, domain, split, self.token_dtype)
        check_no_link_out(self.root, path, "token stream")
        if not path.is_file():
            raise CorpusError(f"{path}: token stream missing from the corpus")
        size, width = path.stat().st_size, np.dtype(self.token_dtype).itemsize
        if size == 0:
            raise CorpusError(f"domain {domain!r} has no {split} tokens")
        if size % width:  # np.memmap would raise a bare ValueError
            raise CorpusError(
                f"{path}: {size} bytes is not a whole number of {self.token_dtype} token ids "
                f"({width} bytes each); the stream is cut short or not a {self.token_dtype} stream"
            )
        return np.memmap(path, dtype=self.token_dtype, mode="r")

    def _task_file(self, task: str) -> str:
        return self.manifest["tasks"][task].get("file", f"tasks/{task}.jsonl")

    def task_items(self, task: str) -> list[dict]:
        if task not in self.tasks:
            raise CorpusError(
                f"unknown task set {task!r}; the corpus has: {', '.join(self.tasks) or 'none'}"
            )
        path = inside(self.root, self._task_file(task), f"file of task set {task!r}")
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
