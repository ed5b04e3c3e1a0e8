"""What every text source produces: :class:`Document` objects with cleaned, decoded text.

Shared by the preset extractors and by users' own folders, so both kinds of text are cleaned
the same way before dedup, split and tokenizer training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .tokenizer import EOS_TOKEN


@dataclass(frozen=True)
class Document:
    """One unit of sampling. Documents sharing a ``group`` (a play, a book, a file cut into
    parts) always land in the same split, so validation text is never seen in training."""

    doc_id: str
    text: str
    group: str = ""
    source: str = ""

    @property
    def split_key(self) -> str:
        return self.group or self.doc_id


_OVERSTRIKE = re.compile(".\x08")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_BLANK_RUNS = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise newlines and whitespace, drop control characters and the end-of-text marker
    (a literal one in the text would otherwise become a document break)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x08" in text:  # man-page style overstrike: "_\bx" -> "x"
        text = _OVERSTRIKE.sub("", text)
    text = _CONTROL.sub("", text.replace(EOS_TOKEN, ""))
    # line.rstrip() beats a MULTILINE regex by far on indented code (no backtracking)
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")


def decode(data: bytes) -> str | None:
    """UTF-8 text or None (binary or legacy-encoded members are skipped, not garbled)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
