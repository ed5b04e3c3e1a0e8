"""The corpus directory contract, shared by the corpus builder, the trainers and the scorer.

Layout::

    manifest.json                 format, tokenizer facts, domains (sources, licences, bytes,
                                  documents, tokens per split), task sets (source, licence, items)
    tokenizer.json                HF tokenizers byte-level BPE trained on the training split
    tokens/<domain>.<split>.u16   uint16 token stream (split = train | val); documents are
                                  joined with the end-of-text id between them
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

from ..errors import CorpusError

CORPUS_FORMAT = "mixsurrogate-corpus/1"
SPLITS = ("train", "val")
TOKEN_DTYPE = np.uint16


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def token_path(root: Path, domain: str, split: str) -> Path:
    return root / "tokens" / f"{domain}.{split}.u16"


def write_token_stream(path: Path, ids: np.ndarray) -> None:
    """Write a uint16 stream (vocabularies above 65535 ids are refused)."""
    ids = np.asarray(ids)
    if ids.size and int(ids.max()) > np.iinfo(TOKEN_DTYPE).max:
        raise CorpusError(f"token id {int(ids.max())} does not fit uint16; use a vocab <= 65536")
    path.parent.mkdir(parents=True, exist_ok=True)
    ids.astype(TOKEN_DTYPE).tofile(path)


def inside(root: Path, relative: object, what: str) -> Path:
    """``root / relative`` for a path read from a manifest, refused unless it stays in ``root``.

    A manifest can come from anyone: ``../x`` or an absolute path would make the tools read
    (and train on, or report) files the corpus does not hold.
    """
    if not isinstance(relative, str) or not relative:
        raise CorpusError(f"{root}: {what} must be a relative path, not {relative!r}")
    posix = PurePosixPath(relative.replace("\\", "/"))
    if posix.is_absolute() or ".." in posix.parts or PureWindowsPath(relative).drive:
        raise CorpusError(
            f"{root}: {what} {relative!r} points outside the corpus folder; "
            "a corpus only reads files inside its own folder"
        )
    return root / posix


def check_file_name(name: object, what: str, source: Path) -> None:
    """A domain or task name becomes a file name (``tokens/<domain>.<split>.u16``)."""
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
        manifest_path = root / "manifest.json"
        if not manifest_path.is_file():
            raise CorpusError(
                f"{root}: not a corpus directory (no manifest.json); build one with 'mixsurrogate corpus build'"
            )
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CorpusError(f"{manifest_path}: invalid JSON ({err})") from err
        if not isinstance(manifest, dict):
            raise CorpusError(
                f"{manifest_path}: expected a JSON object, found a {type(manifest).__name__}"
            )
        if manifest.get("format") != CORPUS_FORMAT:
            raise CorpusError(
                f"{manifest_path}: format {manifest.get('format')!r}, expected {CORPUS_FORMAT!r}"
            )
        _check_manifest(manifest, manifest_path)
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

    def tokenizer(self):
        """The HF ``tokenizers.Tokenizer`` (imported lazily: surrogate code never needs it)."""
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.tokenizer_path))

    def check_domains(self, names: list[str]) -> None:
        missing = [n for n in names if n not in self.domains]
        if missing:
            raise CorpusError(
                f"domains not in the corpus: {', '.join(missing)}; the corpus has: {', '.join(self.domains)}"
            )

    def tokens(self, domain: str, split: str) -> np.ndarray:
        """Memory-mapped uint16 stream of one domain and split."""
        self.check_domains([domain])
        if split not in SPLITS:
            raise CorpusError(f"unknown split {split!r}; expected one of {SPLITS}")
        path = token_path(self.root, domain, split)
        if not path.is_file():
            raise CorpusError(f"{path}: token stream missing from the corpus")
        if path.stat().st_size == 0:
            raise CorpusError(f"domain {domain!r} has no {split} tokens")
        return np.memmap(path, dtype=TOKEN_DTYPE, mode="r")

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
