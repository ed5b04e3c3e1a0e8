"""Files and folders written whole or not at all, folder manifests, and paths that stay inside.

Every store and log writes through here. A file is written to a temporary sibling, flushed to
disk and renamed over the old one (:func:`atomic_write_text`, :func:`atomic_write`); a folder
(a corpus, a score store, an expert, a download) is built in a hidden sibling and renamed into
place (:func:`atomic_folder`). A crash leaves the old file or folder or the new one, never half
of one. Temporary names are made with ``os.open``/``mkdir``, not ``mkstemp``/``mkdtemp``,
whose 0600/0700 modes would make a team's shared log or corpus private to whoever wrote it.

A folder store describes itself in a JSON ``manifest.json`` (:func:`read_manifest`). A store can
come from anyone: refusing ``..`` and absolute names is not enough, since a file it names may be
a symbolic link to a file elsewhere (:func:`escapes`). Links that stay inside the folder are
fine, and so is a folder that is itself a link.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import MixsurrogateError

MANIFEST_FILE = "manifest.json"


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, rename it to ``path``.

    For files another library writes by name (safetensors); text goes through
    :func:`atomic_write_text`. The file keeps the mode it had (a team's shared log stays
    shared); a new file gets the umask's mode, as ``open`` would give it. Nothing is left
    behind when ``write`` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        write(tmp)
        with open(tmp, "r+b") as handle:
            os.fsync(handle.fileno())
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file: a crash never leaves half
    a file (see :func:`atomic_write`)."""

    def write(tmp: Path) -> None:
        # O_EXCL: a fresh file of our own; 0o666 less the umask, as ``open`` would give
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)

    atomic_write(path, write)


@contextmanager
def atomic_folder(
    dest: str | Path, *, replace: bool = False, tag: str = "writing"
) -> Iterator[Path]:
    """Build a folder in a hidden sibling (yielded) and rename it to ``dest`` when the block ends.

    ``dest`` may be absent or an empty folder made for it (whose mode the new folder keeps);
    with ``replace``, an existing ``dest`` (a stale or unfinished one) is removed first. If the
    block raises, the sibling is removed and ``dest`` is left as it was.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{tag}-{secrets.token_hex(6)}")
    tmp.mkdir()  # not mkdtemp: its 0700 would make the folder private to its writer
    try:
        if dest.is_dir() and not replace:  # an empty folder made for the result: keep its mode
            os.chmod(tmp, stat.S_IMODE(dest.stat().st_mode))
        yield tmp
        if replace:
            shutil.rmtree(dest, ignore_errors=True)
        elif dest.is_dir():
            dest.rmdir()  # empty, or this fails: somebody wrote into it meanwhile
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def read_manifest(
    folder: Path,
    fmt: str,
    error: type[MixsurrogateError],
    *,
    missing: str,
    check_link: Callable[[Path], object],
) -> dict:
    """The JSON object in ``folder/manifest.json``, of format ``fmt``, or one clear ``error``.

    ``missing`` says what the folder is not when it has no manifest (``not a score store``);
    ``check_link`` refuses a manifest that is a link out of the folder, in the store's words.
    """
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise error(f"{folder}: {missing}")
    check_link(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path}: invalid JSON ({err})") from err
    if not isinstance(manifest, dict):
        raise error(f"{path}: expected a JSON object, found a {type(manifest).__name__}")
    if manifest.get("format") != fmt:
        raise error(f"{path}: format {manifest.get('format')!r}, expected {fmt!r}")
    return manifest


def escapes(root: Path, path: Path) -> Path | None:
    """Where ``path`` really leads when, every link followed, it is outside ``root``; else None."""
    target = Path(path).resolve()
    return None if target.is_relative_to(Path(root).resolve()) else target
