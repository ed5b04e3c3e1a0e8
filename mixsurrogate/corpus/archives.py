"""Read files out of fetched archives and unpacked folders without trusting their paths.

Archives are read in memory (``zipfile``/``tarfile``), never unpacked to disk, so a hostile
member path cannot escape the cache; folder walks skip symlinks for the same reason.
"""

from __future__ import annotations

import os
import re
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import CorpusError
from .documents import decode


def archive_members(archive: Path, pattern: str) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the regular members whose path matches the regex ``pattern``."""
    regex = re.compile(pattern)
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            for name in sorted(zf.namelist()):
                if not name.endswith("/") and regex.search(name):
                    yield name, zf.read(name)
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, "r:gz") as tf:
            for member in tf:
                if member.isfile() and regex.search(member.name):
                    handle = tf.extractfile(member)
                    if handle is not None:
                        yield member.name, handle.read()
    else:
        raise CorpusError(f"{archive}: unsupported archive type")


def text_members(archive: Path, pattern: str) -> Iterator[tuple[str, str]]:
    """(name, text) of the matching members that are UTF-8 text; binary ones are skipped."""
    for name, data in archive_members(archive, pattern):
        text = decode(data)
        if text is not None:
            yield name, text


def matching_files(root: Path, pattern: str, skip_dirs: frozenset[str] = frozenset()) -> list[Path]:
    """Regular files under ``root`` whose relative path matches the regex (no symlinks)."""
    regex = re.compile(pattern)
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip_dirs)
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink() and regex.search(path.relative_to(root).as_posix()):
                found.append(path)
    return sorted(found)
