"""One domain's raw documents -> cleaned, deduplicated, cut, capped and split by document.

Deterministic given the seed: documents are ordered by hashes of their ids, never by
file-system or set order, so the same inputs always give the same splits and streams.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

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
class PreparedDomain:
    """A domain after cleaning, dedup, the size cap and the split by document."""

    name: str
    splits: dict[str, list[Document]]
    sources: list[dict]
    stats: dict


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
