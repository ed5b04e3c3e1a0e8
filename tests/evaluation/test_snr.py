"""Signal-to-noise per evaluation set, and noise that depends on the mixture (``noise``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.evaluation.snr import signal_to_noise
from mixsurrogate.runs.log import RunsLog, save_runs
from mixsurrogate.simplex import Bounds


def _log(seed: int = 0, repeats: bool = True) -> RunsLog:
    """6 mixtures x 4 seeds plus 10 single runs over 3 domains. ``signal``: moves with the
    mixture, seed noise 0.01; ``flat``: noise alone, 0.01; ``uneven``: noise 0.002 to 0.08
    depending on the first domain's share."""
    rng = np.random.default_rng(seed)
    W = Bounds.unbounded(3).sample(16, seed=seed)  # noqa: N806
    rows = [w for w in W[:6] for _ in range(4 if repeats else 1)] + list(W[6:])
    W = np.array(rows)  # noqa: N806
    n = len(W)
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(n)]})
    for j, d in enumerate("abc"):
        frame[f"w:{d}"] = W[:, j]
    frame["loss:signal"] = 4 + 2 * W[:, 0] - W[:, 1] + 0.01 * rng.standard_normal(n)
    frame["loss:flat"] = 4 + 0.01 * rng.standard_normal(n)
    frame["loss:uneven"] = 4 + (0.002 + 0.08 * W[:, 0] ** 2) * rng.standard_normal(n)
    return RunsLog(frame)


@pytest.fixture(scope="module")
def table(one_torch_thread):
    return {r["set"]: r for r in signal_to_noise(_log())}


def test_snr_tells_signal_from_noise(table):
    assert table["signal"]["noise"] == pytest.approx(0.01, rel=0.5)
    assert table["signal"]["snr"] > 10
    assert table["flat"]["snr"] < 1.5
    assert table["signal"]["mixtures"] == 16 and table["signal"]["repeated_mixtures"] == 6


def test_noise_that_depends_on_the_mixture_is_seen(table):
    assert table["uneven"]["bartlett_p"] < 0.01
    assert table["flat"]["bartlett_p"] > table["uneven"]["bartlett_p"]
    spread = table["uneven"]["noise_max"] / table["uneven"]["noise_min"]
    assert spread > 3 * table["flat"]["noise_max"] / table["flat"]["noise_min"]


def test_repeat_std_per_mixture_is_reported_with_its_group_count(table):
    uneven, flat = table["uneven"], table["flat"]
    assert uneven["repeat_groups"] == flat["repeat_groups"] == 6
    # the repeated mixtures' own std: a wide range where the noise depends on the mixture
    ratio = uneven["repeat_std_max"] / uneven["repeat_std_min"]
    assert ratio > 3 * flat["repeat_std_max"] / flat["repeat_std_min"]
    assert flat["repeat_std_min"] <= flat["noise"] <= flat["repeat_std_max"]


def test_noise_command_json_and_refusal(tmp_path):
    runs, seeds = tmp_path / "runs.csv", tmp_path / "seeds.csv"
    log = _log()
    save_runs(RunsLog(log.frame.iloc[:20]), runs)
    save_runs(RunsLog(log.frame.iloc[20:]), seeds)
    result = CliRunner().invoke(
        main, ["noise", str(runs), str(seeds), "--objective", "signal=1", "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["runs"] == 34
    assert [r["set"] for r in payload["sets"]][-1] == "objective"
    text = CliRunner().invoke(main, ["noise", str(runs), str(seeds)])
    assert text.exit_code == 0, text.output
    uneven = next(line for line in text.output.splitlines() if line.startswith("uneven:"))
    assert "over 6 repeated mixtures" in uneven and "repeat std per mixture" in uneven
    single = tmp_path / "single.csv"
    save_runs(_log(repeats=False), single)
    bad = CliRunner().invoke(main, ["noise", str(single)])
    assert bad.exit_code != 0 and "no mixture trained more than once" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
