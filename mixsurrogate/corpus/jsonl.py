"""Reading a user's JSON-lines file (plain or gzipped) with errors that name the file and line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

from ..errors import CorpusError


def json_lines(path: Path) -> Iterator[tuple[int, object]]:
    """``(line number, record)`` for every non-blank line; one ``CorpusError`` line otherwise."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as err:
                    raise CorpusError(f"{path}:{lineno}: invalid JSON ({err.msg})") from err
    except (UnicodeDecodeError, OSError, EOFError) as err:
        raise CorpusError(f"{path}: cannot read as UTF-8 JSON lines ({err})") from err
