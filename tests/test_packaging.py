"""What a normal (non-editable) install ships (issue 18): a hand-kept package list once left
``mixsurrogate.search`` out of wheels, so ``propose --explore`` failed after ``pip install .``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what is never part of a build: virtualenvs, git, earlier build outputs, caches
NOT_SOURCE = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a clean copy of the checkout (a stale build/ folder in the checkout
    could otherwise hide a missing package)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp / "dist"), str(source)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (built,) = (tmp / "dist").glob("mixsurrogate-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_files(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.mark.slow
def test_wheel_ships_every_module_of_the_source_tree(wheel_files):
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "mixsurrogate").rglob("*.py")}
    assert "mixsurrogate/search/__init__.py" in modules
    assert sorted(modules - wheel_files) == []


@pytest.mark.slow
def test_wheel_ships_the_presets_and_the_data(wheel_files):
    presets = {
        f"mixsurrogate/presets/{p.name}" for p in (ROOT / "mixsurrogate" / "presets").glob("*.toml")
    }
    data = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "mixsurrogate" / "data").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert any("/realtext/scores/" in d for d in data)  # the nested folders are covered
    assert presets and sorted(presets - wheel_files) == []
    assert sorted(data - wheel_files) == []


@pytest.mark.slow
def test_installed_wheel_finds_its_presets(wheel, tmp_path):
    """Before: the packaged presets (a namespace package: TOML files, no ``__init__.py``) were
    looked up with ``resources.files``, which gives no plain folder for one, so an installed
    tool fell back to a checkout's experts/ folder and found no preset at all."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    script = (
        "import mixsurrogate; from mixsurrogate.experts.presets import list_presets; "
        "print(mixsurrogate.__file__); print(','.join(list_presets()))"
    )
    # the installed copy comes first on the path: the checkout's editable install is not used
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, capture_output=True,
        text=True,
    )  # fmt: skip
    module_file, presets = done.stdout.splitlines()
    assert Path(module_file).is_relative_to(site)
    expected = sorted(p.stem for p in (ROOT / "mixsurrogate" / "presets").glob("*.toml"))
    assert presets.split(",") == expected
