"""Exposure features: epochs of each domain per run, from the log and the corpus manifest."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from mixsurrogate.errors import RunsLogError
from mixsurrogate.runs.exposure import exposure_features, manifest_train_tokens
from mixsurrogate.runs.log import RunsLog, validate_frame

MANIFEST = {"domains": {"a": {"tokens": {"train": 100_000}}, "b": {"tokens": {"train": 400_000}}}}

# r1: full data; r2: a subsample of a (unique:a = 25,000); s: a schedule, w: filled in
LOG = """run_id,w:a,w:b,w@1:a,w@1:b,w@2:a,w@2:b,share@1,share@2,unique:a,tokens,loss:x
r1,0.5,0.5,,,,,,,,200000,3.0
r2,0.2,0.8,,,,,,,25000,50000,3.1
s,,,0.0,1.0,1.0,0.0,0.75,0.25,,400000,3.2
"""


def log(text: str = LOG) -> RunsLog:
    return RunsLog(validate_frame(pd.read_csv(io.StringIO(text))))


def test_epochs_by_hand(tmp_path):
    names, epochs = exposure_features(log(), MANIFEST)
    assert names == ["epochs:a", "epochs:b"]
    by_hand = [
        [0.5 * 200_000 / 100_000, 0.5 * 200_000 / 400_000],  # 1 epoch of a, 0.25 of b
        [0.2 * 50_000 / 25_000, 0.8 * 50_000 / 400_000],  # the subsample: 0.4 epochs of a
        [0.25 * 400_000 / 100_000, 0.75 * 400_000 / 400_000],  # a only in phase 2: 100k tokens
    ]
    np.testing.assert_allclose(epochs, by_hand)
    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST))  # a corpus folder works too
    np.testing.assert_allclose(exposure_features(log(), tmp_path)[1], by_hand)


def test_runs_without_tokens_and_unknown_domains_are_one_line():
    with pytest.raises(RunsLogError, match="run r2: no token count"):
        exposure_features(log(LOG.replace("25000,50000", "25000,")), MANIFEST)
    with pytest.raises(RunsLogError, match="no training token count for domain 'b'"):
        manifest_train_tokens({"domains": {"a": {"tokens": {"train": 5}}}}, ["a", "b"])
    with pytest.raises(RunsLogError, match="positive"):
        exposure_features(log(LOG.replace(",25000,", ",0,")), MANIFEST)
