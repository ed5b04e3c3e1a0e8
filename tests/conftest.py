"""Fixtures shared by the test modules."""

from __future__ import annotations

import os

import pytest
import torch

from builders import make_corpus


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread (and a fixed thread count keeps runs bit-identical)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def umask_022():
    """A umask of 022 for one test (the process-wide setting comes back afterwards)."""
    before = os.umask(0o022)
    yield
    os.umask(before)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    """A tiny synthetic corpus (2 domains, a task set of 4 items); copy it before changing it."""
    return make_corpus(tmp_path_factory.mktemp("corpus") / "corpus", tasks=4)
