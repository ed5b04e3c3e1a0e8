"""One domain's raw documents -> cleaned, deduplicated, cut, capped and split by document.

Deterministic given the seed: documents are ordered by hashes of their ids, never by
file-system or set order, so the same inputs always give the same splits and streams.

Two ways through the same steps: :func:`prepare_domain` holds a :class:`DomainText` in memory;
:func:`prepare_domain_streamed` reads a :class:`DomainStream` batch by batch, twice, and keeps
only per-document numbers (33 bytes each) and the dedup digests (8 bytes per distinct
document and paragraph) in memory; the text it keeps
(the capped sample) goes to a spill file that the tokenizer and the streams read back.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import CorpusError
from .documents import Document, clean_text

MIN_DOC_CHARS = 32  # shorter documents (after dedup) carry no context worth training on
MIN_DEDUP_PARAGRAPH_CHARS = 64  # short repeats ("Exit.", "}") are language, not boilerplate
MAX_DOC_BYTES = 64 * 1024  # longer documents are cut at blank lines (parts keep their group)


@dataclass
class DomainText:
    """The raw documents of one domain and where they came from."""

    name: str
    documents: list[Document]
    sources: list[dict] = field(default_factory=list)


@dataclass
class DomainStream:
    """The raw documents of one domain, read in batches: ``batches()`` starts from the beginning
    each call (the streamed preparation reads twice) and yields lists of documents."""

    name: str
    batches: Callable[[], Iterable[list[Document]]]
    sources: list[dict] = field(default_factory=list)


@dataclass
class PreparedDomain:
    """A domain after cleaning, dedup, the size cap and the split by document."""

    name: str
    splits: dict[str, list[Document]]
    sources: list[dict]
    stats: dict

    def texts(self, split: str) -> Iterator[str]:
        return (d.text for d in self.splits[split])

    def documents(self, split: str) -> int:
        return len(self.splits[split])

    def bytes(self, split: str) -> int:
        return sum(utf8_size(d.text) for d in self.splits[split])

    def source_stats(self) -> list[dict]:
        records = []
        for record in self.sources:
            docs = [d for docs in self.splits.values() for d in docs if d.source == record["name"]]
            records.append(
                {**record, "documents": len(docs), "bytes": sum(utf8_size(d.text) for d in docs)}
            )
        return records


@dataclass
class StreamedDomain:
    """A prepared :class:`DomainStream`: the kept parts live in ``spill`` (UTF-8, back to back);
    ``order[split]`` lists their slots in stream order."""

    name: str
    sources: list[dict]
    stats: dict
    spill: Path
    offsets: np.ndarray
    sizes: np.ndarray
    order: dict[str, np.ndarray]

    def texts(self, split: str) -> Iterator[str]:
        with open(self.spill, "rb") as handle:
            for slot in self.order[split]:
                handle.seek(int(self.offsets[slot]))
                yield handle.read(int(self.sizes[slot])).decode("utf-8")

    def documents(self, split: str) -> int:
        return len(self.order[split])

    def bytes(self, split: str) -> int:
        return int(self.sizes[self.order[split]].sum())

    def source_stats(self) -> list[dict]:
        # a stream is one user folder: one source holds every document
        documents = sum(self.documents(s) for s in self.order)
        total = sum(self.bytes(s) for s in self.order)
        if len(self.sources) == 1:
            return [{**self.sources[0], "documents": documents, "bytes": total}]
        return [dict(s) for s in self.sources]


def _hash_unit(*parts: str) -> float:
    """A deterministic pseudo-random number in [0, 1) from strings (sha256, seed included)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8: the unit of every size cap and statistic of a corpus."""
    return len(text.encode("utf-8"))


def deduplicate(
    documents: list[Document], min_paragraph_chars: int = MIN_DEDUP_PARAGRAPH_CHARS
) -> tuple[list[Document], dict]:
    """Drop exact duplicate documents, then paragraphs (>= ``min_paragraph_chars``) already seen.

    Documents are visited in ``doc_id`` order so the surviving copy does not depend on the order
    in which sources were read.
    """
    seen_docs: set[str] = set()
    seen_paragraphs: set[str] = set()
    kept: list[Document] = []
    dropped_docs = dropped_paragraphs = 0
    for doc in sorted(documents, key=lambda d: d.doc_id):
        if doc.text in seen_docs:
            dropped_docs += 1
            continue
        seen_docs.add(doc.text)
        paragraphs = []
        for paragraph in doc.text.split("\n\n"):
            key = paragraph.strip()
            if len(key) >= min_paragraph_chars:
                if key in seen_paragraphs:
                    dropped_paragraphs += 1
                    continue
                seen_paragraphs.add(key)
            paragraphs.append(paragraph)
        kept.append(replace(doc, text="\n\n".join(paragraphs).strip("\n")))
    return kept, {"documents_dropped": dropped_docs, "paragraphs_dropped": dropped_paragraphs}


def split_long(doc: Document, max_bytes: int = MAX_DOC_BYTES) -> list[Document]:
    """Cut a long document into parts at blank lines; the parts share the document's group."""
    if utf8_size(doc.text) <= max_bytes:
        return [doc]
    parts, current, size = [], [], 0
    for paragraph in doc.text.split("\n\n"):
        length = utf8_size(paragraph) + 2
        if current and size + length > max_bytes:
            parts.append("\n\n".join(current))
            current, size = [], 0
        current.append(paragraph)
        size += length
    if current:
        parts.append("\n\n".join(current))
    group = doc.split_key
    return [
        replace(doc, doc_id=f"{doc.doc_id}#{k}", text=t, group=group) for k, t in enumerate(parts)
    ]


def cap_documents(
    documents: list[Document], max_bytes: int | None, seed: int, domain: str
) -> list[Document]:
    """A deterministic random sample under ``max_bytes``: documents in hash order, each taken
    whole if it still fits. The returned order (the hash order) is the order of the stream."""
    order = sorted(documents, key=lambda d: (_hash_unit(str(seed), domain, d.doc_id), d.doc_id))
    if max_bytes is None:
        return order
    taken, total = [], 0
    for doc in order:
        size = utf8_size(doc.text)
        if total + size <= max_bytes:
            taken.append(doc)
            total += size
        if max_bytes - total < MIN_DOC_CHARS:
            break
    return taken


def split_documents(
    documents: list[Document], val_fraction: float, seed: int, domain: str
) -> dict[str, list[Document]]:
    """Train/validation split by document group (hash of the group), never by line.

    Both splits get at least one group when there are two or more.
    """
    units = {
        key: _hash_unit(str(seed), domain, "split", key) for key in {d.split_key for d in documents}
    }
    if len(units) < 2:
        raise CorpusError(
            f"domain {domain!r} has a single document; the train/validation split is by document and needs at least 2"
        )
    val_keys = {k for k, u in units.items() if u < val_fraction}
    if not val_keys:
        val_keys = {min(units, key=lambda k: (units[k], k))}
    if len(val_keys) == len(units):
        val_keys.discard(max(units, key=lambda k: (units[k], k)))
    return {
        "train": [d for d in documents if d.split_key not in val_keys],
        "val": [d for d in documents if d.split_key in val_keys],
    }


def prepare_domain(
    domain: DomainText,
    *,
    max_bytes: int | None,
    val_fraction: float,
    seed: int,
) -> PreparedDomain:
    """Clean, deduplicate, cut long documents, cap the size and split one domain."""
    docs = [replace(d, text=clean_text(d.text)) for d in domain.documents]
    extracted = {"documents": len(docs), "bytes": sum(utf8_size(d.text) for d in docs)}
    docs, dedup = deduplicate([d for d in docs if d.text.strip()])
    docs = [d for d in docs if len(d.text) >= MIN_DOC_CHARS]
    if not docs:
        raise CorpusError(
            f"domain {domain.name!r} is empty: no document of {MIN_DOC_CHARS}+ characters after cleaning and deduplication"
        )
    dedup["bytes"] = sum(utf8_size(d.text) for d in docs)
    docs = [part for d in docs for part in split_long(d)]
    capped = cap_documents(docs, max_bytes, seed, domain.name)
    if not capped:
        raise CorpusError(
            f"domain {domain.name!r}: no document fits under the size cap of {max_bytes} bytes"
        )
    splits = split_documents(capped, val_fraction, seed, domain.name)
    stats = {"extracted": extracted, "deduplicated": dedup, "capped": len(capped) < len(docs)}
    return PreparedDomain(domain.name, splits, domain.sources, stats)


# ---------------------------------------------------------------------------------------------
# the same steps, streamed


def _digest(text: str) -> int:
    """64-bit digest: two different texts share one with probability ~n**2 / 2**65 over n
    texts (a paragraph dropped once in a billion-paragraph domain, about 3% of the time)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


class DigestSet:
    """A set of 64-bit digests in about 8 bytes each (a Python set costs ~70): sorted numpy runs,
    merged so that there are O(log n) of them, plus the ``pending`` digests added since the
    last run was made (a plain set, at most ``PENDING`` of them)."""

    PENDING = 1 << 16

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []
        self.pending: set[int] = set()

    def in_runs(self, keys: np.ndarray) -> np.ndarray:
        """Which of ``keys`` were added before the last :meth:`flush` (vectorised)."""
        found = np.zeros(keys.size, dtype=bool)
        for run in self.runs:
            at = np.minimum(np.searchsorted(run, keys), run.size - 1)
            found |= run[at] == keys
        return found

    def __len__(self) -> int:
        return sum(r.size for r in self.runs) + len(self.pending)

    def flush(self, force: bool = False) -> None:
        if not self.pending or (len(self.pending) < self.PENDING and not force):
            return
        run = np.fromiter(self.pending, dtype=np.uint64, count=len(self.pending))
        run.sort()
        self.pending = set()
        self.runs.append(run)
        while len(self.runs) > 1 and self.runs[-2].size < 2 * self.runs[-1].size:
            last = self.runs.pop()
            merged = np.concatenate([self.runs.pop(), last])
            merged.sort()
            self.runs.append(merged)


def _streamed_parts(domain: DomainStream, counts: dict) -> Iterator[Document]:
    """Clean, deduplicate, drop short documents and cut long ones, in reading order; the first
    copy read is the one kept. Dedup remembers 64-bit digests (:class:`DigestSet`), not text."""
    seen_docs, seen_paragraphs = DigestSet(), DigestSet()
    for batch in domain.batches():
        live = []
        for doc in batch:
            text = clean_text(doc.text)
            counts["documents"] += 1
            counts["bytes"] += utf8_size(text)
            if text.strip():
                paragraphs = text.split("\n\n")
                keys = [
                    _digest(p.strip()) if len(p.strip()) >= MIN_DEDUP_PARAGRAPH_CHARS else None
                    for p in paragraphs
                ]
                live.append((doc, _digest(text), paragraphs, keys))
        doc_old = seen_docs.in_runs(np.array([d[1] for d in live], dtype=np.uint64))
        flat = np.array([k for d in live for k in d[3] if k is not None], dtype=np.uint64)
        paragraph_old = iter(seen_paragraphs.in_runs(flat).tolist())
        for (doc, key, paragraphs, keys), old in zip(live, doc_old.tolist(), strict=True):
            olds = [next(paragraph_old) if k is not None else False for k in keys]
            if old or key in seen_docs.pending:
                counts["documents_dropped"] += 1
                continue
            seen_docs.pending.add(key)
            kept = []
            for paragraph, pkey, pold in zip(paragraphs, keys, olds, strict=True):
                if pkey is not None:
                    if pold or pkey in seen_paragraphs.pending:
                        counts["paragraphs_dropped"] += 1
                        continue
                    seen_paragraphs.pending.add(pkey)
                kept.append(paragraph)
            text = "\n\n".join(kept).strip("\n")
            if len(text) < MIN_DOC_CHARS:
                continue
            counts["kept_bytes"] += utf8_size(text)
            yield from split_long(replace(doc, text=text))
        seen_docs.flush()
        seen_paragraphs.flush()


def _new_counts() -> dict:
    return dict.fromkeys(
        ("documents", "bytes", "documents_dropped", "paragraphs_dropped", "kept_bytes"), 0
    )


def _cap_order(keys: np.ndarray, sizes: np.ndarray, max_bytes: int | None) -> np.ndarray:
    """:func:`cap_documents` on numbers: part indices taken, in hash order."""
    order = np.argsort(keys, kind="stable")
    if max_bytes is None or order.size == 0:
        return order
    sizes = sizes[order]
    total = np.cumsum(sizes)
    # the loop of cap_documents takes every part until the total passes max_bytes - MIN_DOC_CHARS
    stop = int(np.searchsorted(total, max_bytes - MIN_DOC_CHARS, side="right"))
    if stop == order.size:
        return order
    if total[stop] <= max_bytes:  # part `stop` still fits, and then the loop stops
        return order[: stop + 1]
    taken = [order[:stop]]
    left = max_bytes - (int(total[stop - 1]) if stop else 0)
    if left < MIN_DOC_CHARS:
        return taken[0]
    rest = []
    for k in (stop + 1 + np.flatnonzero(sizes[stop + 1 :] <= left)).tolist():
        if sizes[k] <= left:
            rest.append(k)
            left -= int(sizes[k])
            if left < MIN_DOC_CHARS:
                break
    return np.concatenate([taken[0], order[np.array(rest, dtype=np.int64)]])


def prepare_domain_streamed(
    domain: DomainStream,
    spill_dir: Path,
    *,
    max_bytes: int | None,
    val_fraction: float,
    seed: int,
) -> StreamedDomain:
    """:func:`prepare_domain` for a domain read in batches, in bounded memory.

    Pass 1 keeps four numbers per part (cap hash, split hash, group digest, bytes) and the
    dedup digests; the cap and the split are decided on those numbers, exactly as
    :func:`cap_documents` and :func:`split_documents` decide them. Pass 2 reads the domain again
    and writes the kept parts to ``spill_dir/<domain>.spill``. Same documents in the same
    (doc_id-sorted) order give the same splits and streams as :func:`prepare_domain`.
    """
    name = domain.name
    counts = _new_counts()
    cap_keys, split_keys, sizes = array("d"), array("d"), array("q")
    groups = array("Q")
    for part in _streamed_parts(domain, counts):
        cap_keys.append(_hash_unit(str(seed), name, part.doc_id))
        split_keys.append(_hash_unit(str(seed), name, "split", part.split_key))
        groups.append(_digest(part.split_key))
        sizes.append(utf8_size(part.text))
    if not sizes:
        raise CorpusError(
            f"domain {name!r} is empty: no document of {MIN_DOC_CHARS}+ characters after cleaning and deduplication"
        )
    n_parts = len(sizes)
    size_arr = np.frombuffer(sizes, dtype=np.int64)
    taken = _cap_order(np.frombuffer(cap_keys, dtype=np.float64), size_arr, max_bytes)
    if taken.size == 0:
        raise CorpusError(
            f"domain {name!r}: no document fits under the size cap of {max_bytes} bytes"
        )
    units = np.frombuffer(split_keys, dtype=np.float64)[taken]
    group = np.frombuffer(groups, dtype=np.uint64)[taken]
    del cap_keys, split_keys, groups
    if np.unique(group).size < 2:
        raise CorpusError(
            f"domain {name!r} has a single document; the train/validation split is by document and needs at least 2"
        )
    val = units < val_fraction
    if not val.any():
        val = group == group[np.argmin(units)]
    if val.all():
        val &= group != group[np.argmax(units)]
    # pass 2: the kept parts, in reading order, into the spill file
    selected = np.zeros(n_parts, dtype=bool)
    selected[taken] = True
    spill_dir.mkdir(parents=True, exist_ok=True)
    spill = spill_dir / f"{name}.spill"
    offsets = np.zeros(int(taken.size), dtype=np.int64)
    kept_sizes = np.zeros(int(taken.size), dtype=np.int64)
    slot = offset = count = 0
    with open(spill, "wb") as handle:
        for part in _streamed_parts(domain, _new_counts()):
            if count < n_parts and selected[count]:
                data = part.text.encode("utf-8")
                handle.write(data)
                offsets[slot], kept_sizes[slot] = offset, len(data)
                offset += len(data)
                slot += 1
            count += 1
    if (
        count != n_parts
        or slot != taken.size
        or not np.array_equal(kept_sizes, size_arr[np.sort(taken)])
    ):
        raise CorpusError(f"domain {name!r}: its files changed while the corpus was being built")
    slots = np.searchsorted(np.sort(taken), taken)  # part index -> slot, in stream order
    order = {"train": slots[~val], "val": slots[val]}
    stats = {
        "extracted": {"documents": counts["documents"], "bytes": counts["bytes"]},
        "deduplicated": {
            "documents_dropped": counts["documents_dropped"],
            "paragraphs_dropped": counts["paragraphs_dropped"],
            "bytes": counts["kept_bytes"],
        },
        "capped": int(taken.size) < n_parts,
    }
    return StreamedDomain(name, domain.sources, stats, spill, offsets, kept_sizes, order)
