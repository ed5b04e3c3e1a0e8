"""files.py: files and folders written whole or not at all, folder manifests, link escapes."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from mixsurrogate.errors import CorpusError, ScoreStoreError
from mixsurrogate.files import (
    MANIFEST_FILE,
    atomic_folder,
    atomic_write,
    atomic_write_text,
    escapes,
    read_manifest,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_text_replaces_and_keeps_the_mode(tmp_path: Path) -> None:
    log = tmp_path / "runs.csv"
    log.write_text("run_id,w:a,loss:x\nr0,1,2.5\n")
    os.chmod(log, 0o664)  # a team's shared log
    atomic_write_text(log, "run_id,w:a,loss:x\nr0,1,2.5\nr1,1,2.4\n")
    assert log.read_text().count("\n") == 3 and _mode(log) == 0o664
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.csv"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")

    def half_written(tmp: Path) -> None:
        tmp.write_bytes(b"ne")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_written)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]


def test_atomic_folder_appears_whole_in_an_empty_folder_made_for_it(tmp_path: Path) -> None:
    dest = tmp_path / "store"
    dest.mkdir()
    os.chmod(dest, 0o775)
    with atomic_folder(dest) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".store.")
        (tmp / MANIFEST_FILE).write_text("{}")
        assert not (dest / MANIFEST_FILE).exists()  # nothing shows before the block ends
    assert (dest / MANIFEST_FILE).read_text() == "{}" and _mode(dest) == 0o775
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_a_failed_folder_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "corpus"
    with pytest.raises(RuntimeError), atomic_folder(dest, tag="building") as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_atomic_folder_replaces_only_when_told(tmp_path: Path) -> None:
    dest = tmp_path / "expert"
    dest.mkdir()
    (dest / "stale").write_text("unfinished")
    with pytest.raises(OSError), atomic_folder(dest) as tmp:  # not empty: refused
        (tmp / "meta.json").write_text("{}")
    assert (dest / "stale").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["expert"]
    with atomic_folder(dest, replace=True) as tmp:
        (tmp / "meta.json").write_text("{}")
    assert sorted(p.name for p in dest.iterdir()) == ["meta.json"]


def _read(folder: Path, error=ScoreStoreError) -> dict:
    return read_manifest(
        folder, "fmt/1", error, missing="not a store (no manifest.json)", check_link=lambda p: None
    )


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "not a store (no manifest.json)"),
        ("{not json", "invalid JSON"),
        ("[1, 2]", "expected a JSON object, found a list"),
        ('{"format": "other/1"}', "format 'other/1', expected 'fmt/1'"),
    ],
)
def test_read_manifest_says_what_is_wrong(tmp_path: Path, text: str | None, message: str) -> None:
    if text is not None:
        (tmp_path / MANIFEST_FILE).write_text(text)
    with pytest.raises(CorpusError, match=re.escape(message)):
        _read(tmp_path, CorpusError)


def test_read_manifest_checks_links_and_returns_the_object(tmp_path: Path) -> None:
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({"format": "fmt/1", "experts": ["a"]}))
    assert _read(tmp_path)["experts"] == ["a"]
    seen = []
    read_manifest(tmp_path, "fmt/1", ScoreStoreError, missing="-", check_link=seen.append)
    assert seen == [tmp_path / MANIFEST_FILE]


def test_escapes_follows_links(tmp_path: Path) -> None:
    root, outside = tmp_path / "store", tmp_path / "secret.npy"
    root.mkdir()
    outside.write_text("x")
    (root / "inside.npy").write_text("y")
    (root / "out.npy").symlink_to(outside)
    (root / "in.npy").symlink_to(root / "inside.npy")
    assert escapes(root, root / "out.npy") == outside.resolve()
    assert escapes(root, root / "in.npy") is None and escapes(root, root / "inside.npy") is None
