"""Multi-phase runs in the log: format, validation and exposure maths."""

import io

import numpy as np
import pandas as pd
import pytest

from mixsurrogate.errors import RunsLogError
from mixsurrogate.runs.log import RunsLog, validate_frame
from mixsurrogate.runs.schedule import exposure, read_schedules, schedule_row

LOG = """run_id,w:a,w:b,w@1:a,w@1:b,w@2:a,w@2:b,share@1,share@2,loss:x
r1,,,0.5,0.5,1,0,0.8,0.2,3.0
r2,0.3,0.7,,,,,,,3.1
r3,0.6,0.4,0.5,0.5,1,0,0.8,0.2,3.2
"""


def frame(text: str = LOG) -> pd.DataFrame:
    return validate_frame(pd.read_csv(io.StringIO(text)))


def test_effective_mixture_is_filled_and_single_phase_rows_are_constant_schedules():
    validated = frame()
    np.testing.assert_allclose(RunsLog(validated).W[0], [0.8 * 0.5 + 0.2, 0.8 * 0.5])
    schedules = read_schedules(validated)
    assert schedules.n_phases == 2
    np.testing.assert_allclose(schedules.weights[1], [[0.3, 0.7], [0.3, 0.7]])
    np.testing.assert_allclose(schedules.effective(), RunsLog(validated).W)
    assert schedules.flat_names() == ["w@1:a", "w@1:b", "w@2:a", "w@2:b", "share@2"]
    np.testing.assert_allclose(schedules.flat()[0], [0.5, 0.5, 1.0, 0.0, 0.2])


def test_single_phase_log_has_no_schedules():
    assert read_schedules(frame("run_id,w:a,w:b,loss:x\nr1,0.5,0.5,3\n")) is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("r3,0.6,0.4", "r3,0.7,0.3", "share-weighted mean"),
        ("r1,,,0.5,0.5,1,0,0.8,0.2", "r1,,,0.5,0.6,1,0,0.8,0.2", "phase 1's weights sum to 1.1"),
        ("r1,,,0.5,0.5,1,0,0.8,0.2", "r1,,,0.5,0.5,1,0,0.8,0.3", "must be > 0 and sum to 1"),
        ("r1,,,0.5,0.5,1,0,0.8,0.2", "r1,,,0.5,0.5,1,0,1.0,0", "must be > 0 and sum to 1"),
        ("r1,,,0.5,0.5,1,0,0.8,0.2", "r1,,,0.5,0.5,,0,0.8,0.2", "w@2:a is empty"),
        ("r1,,,0.5,0.5,1,0,0.8,0.2", "r1,,,0.5,0.5,1.5,-0.5,0.8,0.2", "negative"),
    ],
)
def test_bad_schedules_are_refused_in_one_line(old, new, message):
    with pytest.raises(RunsLogError, match=message) as caught:
        frame(LOG.replace(old, new))
    assert "\n" not in str(caught.value)


def test_a_phase_missing_a_domain_or_a_share_is_refused():
    with pytest.raises(RunsLogError, match="phase 2 has no column w@2:b"):
        frame(
            "run_id,w:a,w:b,w@1:a,w@1:b,w@2:a,share@1,share@2,loss:x\nr,0.5,0.5,0.5,0.5,1,0.5,0.5,3\n"
        )
    with pytest.raises(RunsLogError, match="missing column share@2"):
        frame(
            "run_id,w:a,w:b,w@1:a,w@1:b,w@2:a,w@2:b,share@1,loss:x\nr,0.5,0.5,0.5,0.5,0.5,0.5,1,3\n"
        )


def test_schedule_row_round_trips_through_the_log():
    row = schedule_row(np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([0.75, 0.25]), ["a", "b"])
    validated = frame(pd.DataFrame([{"run_id": "s", **row, "loss:x": 2.0}]).to_csv(index=False))
    np.testing.assert_allclose(
        RunsLog(validated).W[0], [0.75 * 0.2 + 0.25 * 0.9, 0.75 * 0.8 + 0.25 * 0.1]
    )


def test_exposure_counts_epochs_by_hand():
    # 1M tokens at 30% of domain a (100k unique tokens) = 3 epochs; 70% of 1.4M unique = 0.5.
    epochs = exposure(np.array([[0.3, 0.7]]), np.array([1_000_000]), np.array([100_000, 1_400_000]))
    np.testing.assert_allclose(epochs, [[3.0, 0.5]])
    with pytest.raises(RunsLogError, match="positive"):
        exposure(np.array([[1.0]]), np.array([1]), np.array([0]))
