"""Multi-fidelity search: augmented EI, the proposals and the recommendation at the target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.runs.fidelity import CostModel, FidelityMenu
from mixsurrogate.runs.log import RunsLog, save_runs
from mixsurrogate.search.multifidelity import (
    augmented_ei,
    exploration_flops,
    fit_multifidelity_model,
    propose_multifidelity,
)
from mixsurrogate.simplex import Bounds

from builders import MID, SMALL, TARGET, multiscale_runs


def test_augmented_ei_is_cost_aware():
    W, F, y = multiscale_runs()  # noqa: N806
    model = fit_multifidelity_model(W, F, y)
    menu = FidelityMenu.build([SMALL, MID], TARGET)
    candidates = Bounds.unbounded(3).sample(64, seed=5)
    blind = augmented_ei(model, candidates, menu, CostModel(), alpha=0.0)
    aware = augmented_ei(model, candidates, menu, CostModel(), alpha=1.0)
    assert blind.shape == aware.shape == (64, len(menu.items))
    assert (blind >= 0).all() and np.isfinite(aware).all()
    # with the cost counted, the cheapest fidelity wins far more often than without it
    cheap = menu.items.index(SMALL)
    assert (aware.argmax(axis=1) == cheap).mean() >= (blind.argmax(axis=1) == cheap).mean()
    assert (aware.argmax(axis=1) == cheap).mean() > 0.5


@pytest.mark.slow
def test_propose_multifidelity_triples_and_recommendation_at_target():
    W, F, y = multiscale_runs()  # noqa: N806
    menu = FidelityMenu.build([SMALL, MID], TARGET)
    p = propose_multifidelity(W, F, y, ["a", "b", "c"], menu, q=3, seed=0)
    assert p.mixtures.shape == (3, 3) and len(p.fidelities) == 3
    assert all(f in menu.items for f in p.fidelities)
    assert np.allclose(p.mixtures.sum(axis=1), 1)
    assert p.target == TARGET
    assert np.linalg.norm(p.recommended - [0.6, 0.3, 0.1]) < 0.25
    assert np.isfinite(p.recommended_loss)
    again = propose_multifidelity(W, F, y, ["a", "b", "c"], menu, q=3, seed=0)
    np.testing.assert_array_equal(p.mixtures, again.mixtures)  # deterministic given seed
    d = p.to_dict()
    assert d["target"] == "1B:25B" and len(d["proposals"]) == 3


def test_space_filling_start_at_the_cheapest_fidelity():
    W, F, y = multiscale_runs(n_small=2, n_mid=0)  # noqa: N806
    menu = FidelityMenu.build([MID, SMALL], TARGET)
    p = propose_multifidelity(W, F, y, ["a", "b", "c"], menu, q=2)
    assert p.fidelities == [SMALL, SMALL]
    assert "space-filling" in p.notes[0]
    with pytest.raises(MixsurrogateError):
        propose_multifidelity(W, F, y, ["a", "b", "c"], menu, q=2, alpha=-1)


@pytest.mark.slow
def test_switch_flops_two_phase():
    W, F, y = multiscale_runs()  # noqa: N806
    cost = CostModel()
    spent = 12 * cost.flops(SMALL) + 4 * cost.flops(MID)
    assert exploration_flops(F, TARGET, cost) == pytest.approx(spent)
    with_target = np.vstack([F, TARGET.features()])
    assert exploration_flops(with_target, TARGET, cost) == pytest.approx(spent)  # not counted
    menu = FidelityMenu.build([SMALL, MID], TARGET)
    args = (W, F, y, ["a", "b", "c"], menu)
    model = fit_multifidelity_model(W, F, y)
    # before the switch: exactly the plain multi-fidelity proposal
    early = propose_multifidelity(*args, q=2, model=model, switch_flops=2 * spent)
    plain = propose_multifidelity(*args, q=2, model=model)
    np.testing.assert_array_equal(early.mixtures, plain.mixtures)
    assert early.fidelities == plain.fidelities
    assert not any("confirmation" in n for n in early.notes)
    # after it: every proposal at the target, the recommendation still at the target
    late = propose_multifidelity(*args, q=2, model=model, switch_flops=spent)
    assert late.fidelities == [TARGET, TARGET]
    assert np.allclose(late.flops, cost.flops(TARGET))
    assert "confirmation phase" in late.notes[0]
    assert late.target == TARGET and np.isfinite(late.recommended_loss)
    with pytest.raises(MixsurrogateError, match="switch_flops"):
        propose_multifidelity(*args, q=1, model=model, switch_flops=-1.0)


def _log_file(tmp_path, bad_params=False):
    W, F, y = multiscale_runs()  # noqa: N806
    frame = pd.DataFrame({"run_id": [f"r{i}" for i in range(len(W))]})
    for j, d in enumerate("abc"):
        frame[f"w:{d}"] = W[:, j]
    frame["loss:val"] = y
    frame["params"] = 10 ** F[:, 0]
    frame["tokens"] = 10 ** F[:, 1]
    if bad_params:
        frame.loc[2, "params"] = np.nan
    path = tmp_path / "runs.csv"
    save_runs(RunsLog(frame), path)
    return path


@pytest.mark.slow
def test_cli_propose_explore_with_fidelities(tmp_path):
    path = _log_file(tmp_path)
    runner = CliRunner()
    args = ["propose", str(path), "--explore", "-n", "2", "--objective", "val=1",
            "--kinds", "val=val", "--fidelities", "1M:1B,60M:1B", "--target", "1B:25B"]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "recommendation at the target 1B:25B" in result.output
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert '"target": "1B:25B"' in result.output
    bad = runner.invoke(main, [*args[:-1], "50M:25B"])  # 60M, a menu item, exceeds it
    assert bad.exit_code != 0 and "larger than the target" in bad.output
    bad = runner.invoke(main, [*args[:-2]])  # --fidelities without --target
    assert bad.exit_code != 0 and "--target" in bad.output
    bad = runner.invoke(main, [*args[:-1], "1Z:25B"])
    assert bad.exit_code != 0 and "bad model size" in bad.output
    path = _log_file(tmp_path, bad_params=True)
    bad = runner.invoke(main, args)
    assert bad.exit_code != 0 and "run r2: params is nan" in bad.output
    assert "Traceback" not in bad.output
