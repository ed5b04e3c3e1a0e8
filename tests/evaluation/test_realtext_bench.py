"""The real-text benchmark scripts on a second data set (issue 21): bench/realtext/compare.py's
``--name`` and its handling of data too small for some curve sizes, and bench/realtext/scale.py,
on files cut from the committed data and results."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from builders import REPO

DATA = REPO / "mixsurrogate" / "data" / "realtext"
RESULTS = REPO / "bench" / "results"
COMPARE = REPO / "bench" / "realtext" / "compare.py"
SCALE = REPO / "bench" / "realtext" / "scale.py"


def cut_data(folder, mixing: int, seeds: tuple[str, ...] = ("uniform", "sobol-000")):
    """The committed real-text data with the 6 vertices + ``mixing`` mixing runs, and 3 seeds of
    each mixture in ``seeds`` (the bench-cpu-4x plan's shape, smaller)."""
    folder.mkdir()
    shutil.copytree(DATA / "scores", folder / "scores")
    lines = (DATA / "runs.csv").read_text().splitlines(keepends=True)
    (folder / "runs.csv").write_text("".join(lines[: 1 + 6 + mixing]))
    keep = {f"{m}-s{s}" for m in seeds for s in range(3)}
    rows = (DATA / "seeds.csv").read_text().splitlines(keepends=True)
    (folder / "seeds.csv").write_text(
        "".join([rows[0], *(r for r in rows[1:] if r.split(",")[0] in keep)])
    )
    return folder


def run(script, *args):
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)], capture_output=True, text=True
    )


def test_compare_refuses_a_name_that_is_not_a_plain_prefix(tmp_path):
    out = tmp_path / "out"
    done = run(COMPARE, "--data", DATA, "--name", "../elsewhere", "--out", out)
    assert done.returncode == 2
    assert "--name '../elsewhere' must be a plain file prefix" in done.stderr.splitlines()[-1]
    assert not out.exists()


def test_compare_refuses_seeds_without_a_repeated_mixture_before_writing(tmp_path):
    data = cut_data(tmp_path / "data", mixing=20, seeds=("uniform",))
    lines = (data / "seeds.csv").read_text().splitlines(keepends=True)
    (data / "seeds.csv").write_text("".join(lines[:2]))  # uniform-s0 alone: no spread to pool
    out = tmp_path / "out"
    done = run(COMPARE, "--data", data, "--name", "small", "--out", out)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"compare.py: error: {data}: the seeds log has no mixture trained more than once"
    )
    assert not out.exists()


@pytest.mark.slow
def test_compare_writes_under_its_name_and_skips_curve_sizes_the_data_cannot_draw(tmp_path):
    data = cut_data(tmp_path / "data", mixing=12)  # 12 mixing runs: sizes up to 9 can be drawn
    out = tmp_path / "out"
    done = run(
        COMPARE, "--data", data, "--name", "small", "--out", out, "--folds", "2", "--repeats",
        "1", "--draws", "1", "--gp-seeds", "1", "--sizes", "8,16,24",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in out.iterdir()} == {
        "small.md", "small.json", "small_splits.csv.gz", "small_timing.json",
        "small_learning_curve.png", "small_learning_curve_regret.png", "small_cv_spearman.png",
    }  # fmt: skip
    payload = json.loads((out / "small.json").read_text())
    assert payload["protocol"]["sizes"] == [8, 16, 24]
    assert payload["protocol"]["sizes_skipped"] == [
        "size 16: needs 1..9 runs to draw from 12",
        "size 24: needs 1..9 runs to draw from 12",
    ]
    assert {r["size"] for r in payload["learning_curve"]} == {8}
    assert payload["noise_floor"]["ET+SP"]["dof"] == 4  # 2 mixtures x 3 seeds
    md = (out / "small.md").read_text()
    assert "Curve sizes skipped (too few mixing runs): size 16: needs 1..9" in md
    assert "| 8 runs" in md and "| 16 runs" not in md and "| 24 runs" not in md  # table columns
    assert "![learning curves](small_learning_curve.png)" in md


def shrunk_results(folder, name: str, drop_size: int) -> None:
    """The committed bench-cpu results without one curve size (as a smaller data set gives)."""
    payload = json.loads((RESULTS / "realtext.json").read_text())
    payload["learning_curve"] = [r for r in payload["learning_curve"] if r["size"] != drop_size]
    (folder / f"{name}.json").write_text(json.dumps(payload))
    splits = pd.read_csv(RESULTS / "realtext_splits.csv.gz")
    splits[splits["size"] != drop_size].to_csv(folder / f"{name}_splits.csv.gz", index=False)


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    for suffix in (".json", "_splits.csv.gz"):
        shutil.copy(RESULTS / f"realtext{suffix}", folder / f"realtext{suffix}")
    shrunk_results(folder, "small", drop_size=32)
    return folder


def test_scale_report_matches_compare_and_leaves_out_sizes_a_data_set_lacks(results):
    done = run(SCALE, "--results", results, "--names", "realtext,small", "--labels", "one,two",
               "--out", results)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((results / "realtext_scale.json").read_text())
    compared = json.loads((results / "realtext.json").read_text())
    one = report["results"]["one"]["ET+SP"]
    # the paired advantage is compare.py's own paired number for the same pair and splits
    pair = f"{one['best_mde']} - {one['best_rates']}"
    cv = next(
        r for r in compared["paired"]
        if r["comparison"] == pair and r["target"] == "ET+SP" and r["protocol"] == "cv"
    )  # fmt: skip
    assert one["cells"]["CV"]["advantage"] == pytest.approx(
        {"mean": cv["difference"], "lo": cv["lo"], "hi": cv["hi"]}, abs=1e-12
    )
    ceiling = compared["noise_ceiling"]["ET+SP"]["at floor"]
    ratio, spearman = one["cells"]["16"]["ratio"], one["cells"]["16"]["mde"]
    assert ratio == pytest.approx({k: v / ceiling for k, v in spearman.items()})
    assert "32" in one["cells"] and "32" not in report["results"]["two"]["ET+SP"]["cells"]
    assert set(report["change"]["one -> two"]["ET+SP"]) == {"CV", "8", "16", "24"}
    assert report["change"]["one -> two"]["ET+SP"]["CV"]["advantage"]["mean"] == 0  # same runs
    for label in ("one", "two"):
        checks = report["targets"][label]
        assert [c["met"] in (True, False) for c in checks] == [True] * 5
    md = (results / "realtext_scale.md").read_text()
    assert "| two | MDE / ceiling |" in md and "![scale](realtext_scale.png)" in md
    assert (results / "realtext_scale.png").stat().st_size > 0


def test_scale_names_a_missing_result_file_and_writes_nothing(results):
    out = results / "out"
    done = run(
        SCALE, "--results", results, "--names", "realtext,absent", "--labels", "a,b", "--out", out
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: {results / 'absent.json'} does not exist (run compare.py --name absent)"
    )
    assert not out.exists()


def test_scale_does_not_check_a_ratio_target_against_a_ceiling_the_predictor_beats(results):
    """A noise floor from a few seeds can overstate the noise: a ceiling below the MDE Spearman
    bounds nothing, so the ratio target is reported as not checked, never as met."""
    payload = json.loads((results / "small.json").read_text())
    payload["noise_ceiling"]["ET+SP"]["at floor"] = 0.5  # below mde-cal's 0.62 (wrongly low)
    (results / "small.json").write_text(json.dumps(payload))
    done = run(SCALE, "--results", results, "--names", "realtext,small", "--labels", "one,two",
               "--out", results)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((results / "realtext_scale.json").read_text())
    check = next(c for c in report["targets"]["two"] if c["target"].startswith("ET+SP >="))
    assert check["met"] is None and check["detail"].startswith("not checkable")
    assert report["results"]["two"]["ET+SP"]["ceiling_exceeded_at"] == ["CV", "8", "16", "24"]
    md = (results / "realtext_scale.md").read_text()
    assert "**two: the best MDE Spearman is above the noise ceiling on ET+SP**" in md
