"""Score stores that are safe to load (issues 10, 18): bad manifests, set names and links out of
the folder, damaged array files, folder modes, and the same domains in another order."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from mixsurrogate.errors import ScoreStoreError
from mixsurrogate.mde.features import MDEFeatureMap
from mixsurrogate.mde.store import EvalSetScores, load_scores, write_scores

from builders import STORE_EXPERTS, one_line, random_log, score_store


def _edit_manifest(store: Path, edit) -> None:
    manifest_path = store / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(edit(manifest)))


# --- score store manifests ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: {k: v for k, v in m.items() if k != "experts"}, "missing 'experts'"),
        (lambda m: {k: v for k, v in m.items() if k != "seq_len"}, "missing 'seq_len'"),
        (lambda m: [m], "expected a JSON object, found a list"),
        (lambda m: {**m, "experts": "code"}, "'experts' must be a non-empty list"),
        (lambda m: {**m, "seq_len": "six"}, "'seq_len' must be a positive integer"),
        (lambda m: {**m, "eval_sets": ["qa"]}, "'eval_sets' must map"),
        (lambda m: {**m, "provenance": [1]}, "'provenance' must be a JSON object"),
    ],
    ids=["no-experts", "no-seq_len", "list", "experts-str", "seq_len-str", "sets-list", "prov"],
)
def test_bad_score_store_manifest_is_one_clear_line(tmp_path, edit, message):
    """Before: KeyError ('experts', 'seq_len') or AttributeError (a list has no .get)."""
    store = score_store(tmp_path / "scores")
    _edit_manifest(store, edit)
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    assert message in one_line(err)
    assert str(store / "manifest.json") in str(err.value)


@pytest.mark.parametrize("name", ["../outside", "/abs/outside", "sub/inner", "..\\outside"])
def test_score_store_refuses_set_names_that_leave_its_folder(tmp_path, name):
    """A set named ``../outside`` read ``../outside.logp.npy``: arrays from outside the store."""
    store = score_store(tmp_path / "scores")
    target = store / f"{name}.logp.npy" if not name.startswith("/") else Path(f"{name}.logp.npy")
    if not name.startswith("/") and "\\" not in name:  # plant the arrays the name points at
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, np.load(store / "qa.logp.npy"))
        np.save(store / f"{name}.mask.npy", np.load(store / "qa.mask.npy"))

    def rename(manifest: dict) -> dict:
        manifest["eval_sets"][name] = manifest["eval_sets"].pop("qa")
        return manifest

    _edit_manifest(store, rename)
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    assert "is not a plain file name" in one_line(err)


def test_write_scores_refuses_a_set_name_with_a_path(tmp_path):
    sets = {"../x": EvalSetScores("../x", "val", np.zeros((1, 1, 1), np.float32), np.ones((1, 1)))}
    with pytest.raises(ScoreStoreError, match="not a plain file name"):
        write_scores(tmp_path / "s", ["a"], sets, 1, "t", "e")
    assert not (tmp_path / "x.logp.npy").exists()


def test_score_store_folder_gets_the_umask_mode(tmp_path, umask_022):
    """Before: mkdtemp's 0700 survived the rename, so the store was private to its writer."""
    store = score_store(tmp_path / "scores")
    assert stat.S_IMODE(store.stat().st_mode) == 0o755
    made = tmp_path / "made"
    made.mkdir(mode=0o770)
    made.chmod(0o770)
    assert stat.S_IMODE(score_store(made).stat().st_mode) == 0o770  # an empty folder keeps its mode


# --- the same domains in another order ------------------------------------------------------


def test_store_in_another_order_is_named_as_such_and_reordered_safely(tmp_path):
    store = load_scores(score_store(tmp_path / "scores"))
    log = random_log(["web", "code", "books"], ["val_code", "qa"])
    with pytest.raises(ScoreStoreError) as err:
        store.check_matches_runs(log.domains, log.targets)
    assert "another order" in one_line(err)  # before: "differ from", as if other domains
    aligned = store.reordered(log.domains)
    aligned.check_matches_runs(log.domains, log.targets)
    # the MDE features of a mixture do not depend on which order the experts are listed in
    natural = log.with_domain_order(STORE_EXPERTS)
    np.testing.assert_allclose(
        MDEFeatureMap(aligned, log.targets).transform(log.W),
        MDEFeatureMap(store, log.targets).transform(natural.W),
        rtol=1e-6,
    )
    with pytest.raises(ScoreStoreError, match="differ from the runs log domains"):
        store.reordered(["web", "code", "law"])


# --- links and damaged array files -----------------------------------------------------------


def test_score_store_refuses_an_array_that_links_outside(tmp_path):
    """Before: ``val_code.logp.npy`` -> a file elsewhere was read as the store's scores."""
    store = score_store(tmp_path / "store")
    elsewhere = tmp_path / "elsewhere.npy"
    shutil.move(store / "val_code.logp.npy", elsewhere)
    (store / "val_code.logp.npy").symlink_to(elsewhere)
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    assert "outside the score store" in one_line(err)
    assert str(elsewhere.resolve()) in str(err.value)


def test_score_store_accepts_links_inside_it_and_a_linked_folder(tmp_path):
    store = score_store(tmp_path / "store")
    shutil.move(store / "val_code.mask.npy", store / "mask-data.npy")
    (store / "val_code.mask.npy").symlink_to("mask-data.npy")
    (tmp_path / "alias").symlink_to(store)
    assert load_scores(tmp_path / "alias").eval_sets["val_code"].mask.shape == (4, 6)


def test_random_bytes_in_an_array_file_say_so(tmp_path):
    """Before: numpy's advice to load the file with allow_pickle=True (never, for a file handed
    in by someone else)."""
    store = score_store(tmp_path / "store")
    (store / "val_code.logp.npy").write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    message = one_line(err)
    assert "val_code.logp.npy: not a valid .npy array file" in message
    assert "pickle" not in message


def test_a_truncated_array_file_says_so(tmp_path):
    store = score_store(tmp_path / "store")
    data = (store / "val_code.logp.npy").read_bytes()
    (store / "val_code.logp.npy").write_bytes(data[: len(data) - 10])
    with pytest.raises(ScoreStoreError) as err:
        load_scores(store)
    assert "val_code.logp.npy: not a valid .npy array file" in one_line(err)


def test_a_store_manifest_read_as_json_still_works(tmp_path):
    store = score_store(tmp_path / "store")
    manifest = json.loads((store / "manifest.json").read_text())
    assert load_scores(store).experts == manifest["experts"]
