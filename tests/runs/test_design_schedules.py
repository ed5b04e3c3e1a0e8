"""`runs design --phases`: Sobol schedules over the product of phase simplices, in the log's
schedule format."""

import io

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.runs.design import MIN_FREE_SHARE, schedule_design_frame
from mixsurrogate.runs.log import validate_frame
from mixsurrogate.runs.schedule import read_schedules
from mixsurrogate.simplex import Bounds, sobol_simplex

from builders import cli_error_line


def schedules(frame: pd.DataFrame):
    text = frame.assign(**{"loss:x": np.nan}).to_csv(index=False)
    return read_schedules(validate_frame(pd.read_csv(io.StringIO(text))))


def test_fixed_last_share_and_effective_mixture():
    frame = schedule_design_frame(["a", "b", "c"], 8, 2, last_share=0.2)
    got = schedules(frame)
    np.testing.assert_allclose(got.shares, np.tile([0.8, 0.2], (8, 1)))
    np.testing.assert_allclose(frame[["w:a", "w:b", "w:c"]].to_numpy(), got.effective())
    # phase 1 is the first block of a 6-dim Sobol sequence, not the 3-dim one: the phases
    # are a joint design, so phase 2 is not a copy of phase 1
    assert not np.allclose(got.weights[:, 0], got.weights[:, 1], atol=0.05)
    assert not np.allclose(got.weights[:, 0], sobol_simplex(8, 3, 0), atol=1e-3)


def test_free_shares_have_a_floor_and_bounds_hold_in_every_phase():
    bounds = Bounds.parse(["a=0.1:0.5"], ["a", "b", "c"])
    got = schedules(schedule_design_frame(["a", "b", "c"], 16, 3, bounds=bounds, seed=1))
    assert got.n_phases == 3 and (got.shares >= MIN_FREE_SHARE - 1e-6).all()
    assert len(np.unique(got.shares[:, 0].round(4))) > 8  # designed, not fixed
    assert (got.weights[:, :, 0] >= 0.1 - 1e-6).all() and (got.weights[:, :, 0] <= 0.5 + 1e-6).all()


def test_vertices_are_single_phase_rows():
    frame = schedule_design_frame(["a", "b"], 2, 2, last_share=0.5, vertices=True)
    assert frame["run_id"].tolist()[:3] == ["run-v00", "run-v01", "run-v02"]
    assert frame.loc[:2, "share@1"].isna().all() and frame.loc[3:, "share@1"].notna().all()
    np.testing.assert_allclose(schedules(frame).weights[2], [[0.5, 0.5], [0.5, 0.5]])


def test_cli_writes_schedules_and_refuses_bad_options(tmp_path):
    out = tmp_path / "s.csv"
    args = ["runs", "design", "--domains", "a,b,c", "-n", "4", "--phases", "2", "--share", "0.2"]
    result = CliRunner().invoke(main, [*args, str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 4 2-phase schedules" in result.output
    assert schedules(pd.read_csv(out)).n_phases == 2
    assert "needs --phases >= 2" in cli_error_line(
        main, ["runs", "design", "--domains", "a,b", "--share", "0.2", str(out)]
    )
    assert "must be in (0, 1)" in cli_error_line(main, [*args[:-1], "1.0", str(out)])
    assert "drop --method" in cli_error_line(
        main, [*args, "--method", "dirichlet", str(tmp_path / "x.csv")]
    )
    assert not (tmp_path / "x.csv").exists()


def test_too_many_phases_for_free_shares_and_one_phase_are_refused():
    with pytest.raises(MixsurrogateError, match="too many phases"):
        schedule_design_frame(["a", "b"], 2, 20)
    with pytest.raises(MixsurrogateError, match="at least 2 phases"):
        schedule_design_frame(["a", "b"], 2, 1)
