"""``runs import`` carries a schedule's columns (``w@<p>:<domain>``, ``share@<p>``) through:
never taken for a domain or a metric, renamed with their domain, refused in one line when bad."""

import numpy as np
import pandas as pd
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.runs.columns import safe_name
from mixsurrogate.runs.importers import from_csv, from_olmix
from mixsurrogate.runs.log import load_runs
from mixsurrogate.runs.schedule import read_schedules

RATIOS = (
    "run,name,web,wiki,w@1:web,w@1:wiki,w@2:web,w@2:wiki,share@1,share@2\n"
    "r1,a,,,0.5,0.5,1.0,0.0,0.75,0.25\n"
    "r2,b,0.3,0.7,,,,,,\n"
    "r3,c,0.4,0.6,0.2,0.8,1.0,0.0,0.75,0.25\n"
)
METRICS = "run,arc_bpb,piqa_bpb\nr1,1.2,1.3\nr2,1.1,1.4\nr3,1.0,1.5\n"


def olmix(tmp_path, ratios=RATIOS):
    (tmp_path / "ratios.csv").write_text(ratios)
    (tmp_path / "metrics.csv").write_text(METRICS)
    return tmp_path / "ratios.csv", tmp_path / "metrics.csv"


def test_olmix_schedule_columns_are_carried_not_taken_for_domains(tmp_path):
    # r1 gives its effective mixture (0.75 x 0.5 + 0.25 x 1 = 0.625 web), checked on import
    ratios = RATIOS.replace("r1,a,,,", "r1,a,0.625,0.375,")
    imported = from_olmix(*olmix(tmp_path, ratios))
    log = imported.log
    assert log.domains == ["web", "wiki"] and log.targets == ["arc_bpb", "piqa_bpb"]
    schedules = read_schedules(log.frame)
    assert schedules.n_phases == 2
    np.testing.assert_allclose(schedules.weights[2], [[0.2, 0.8], [1.0, 0.0]])
    np.testing.assert_allclose(log.W[2], [0.4, 0.6])
    np.testing.assert_allclose(schedules.weights[1], [[0.3, 0.7], [0.3, 0.7]])  # one phase


def test_a_renamed_domain_renames_its_phase_columns_too(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text(
        "run_id,mix.Web,mix.wiki,w@1:Web,w@1:wiki,w@2:Web,w@2:wiki,share@1,share@2,eval_loss\n"
        "r1,0.4,0.6,0.2,0.8,1.0,0.0,0.75,0.25,2.5\n"
    )
    renamed = safe_name("Web")
    imported = from_csv(path, weights=["mix.*"], losses=["eval_*"], renames={renamed: "webtext"})
    assert "w@2:webtext" in imported.log.frame.columns
    assert imported.log.targets == ["loss"]


def refused(tmp_path, ratios: str) -> str:
    paths = olmix(tmp_path, ratios)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main, ["runs", "import", "--format", "olmix", *map(str, paths), str(out)]
    )
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert not out.exists()
    return lines[0]


def test_bad_schedules_are_refused_in_one_line_and_nothing_is_written(tmp_path):
    ratios = RATIOS.replace("r1,a,,,", "r1,a,0.625,0.375,")
    assert "phase 2's weights sum to 1.2" in refused(
        tmp_path, ratios.replace("1.0,0.0,0.75,0.25\nr2", "1.2,0.0,0.75,0.25\nr2")
    )
    assert "not a number" in refused(tmp_path, ratios.replace("0.2,0.8,1.0", "0.2,0.8,lots"))
    assert "share-weighted mean" in refused(
        tmp_path, ratios.replace("r3,c,0.4,0.6", "r3,c,0.5,0.5")
    )


def test_the_imported_schedule_log_loads_back(tmp_path):
    ratios = RATIOS.replace("r1,a,,,", "r1,a,0.625,0.375,")
    paths = olmix(tmp_path, ratios)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main, ["runs", "import", "--format", "olmix", *map(str, paths), str(out)]
    )
    assert result.exit_code == 0, result.output
    assert read_schedules(load_runs(out).frame).n_phases == 2
    assert "share@2" in pd.read_csv(out).columns
