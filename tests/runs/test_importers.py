"""Importers of foreign runs logs (RegMix of both kinds, Olmix, W&B exports, any CSV): columns
and names, missing cells kept and counted, weights normalised or refused, higher-is-better
metrics, metadata beside the log, and one clear line (nothing written) on bad input."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError, RunsLogError
from mixsurrogate.runs.columns import safe_name
from mixsurrogate.runs.importers import (
    PILE_DISPLAY_NAMES,
    from_csv,
    from_olmix,
    from_regmix,
    from_wandb,
    import_regmix,
    import_runs,
    write_import,
)
from mixsurrogate.runs.log import load_runs
from mixsurrogate.runs.metadata import LogMetadata, load_log_metadata, metadata_path

REGMIX = resources.files("mixsurrogate") / "data" / "regmix"
#: the headers of RegMix's 1000-run files (tiny_config_1M_pile.csv, tiny_wandb_1M_1000_pile_4B.csv),
#: written out here so the test checks the importer's table, not itself; same column order as the
#: released files
DISPLAY_MIXTURE_HEADER = [
    "index", "ArXiv", "FreeLaw", "NIH ExPorter", "PubMed Central", "Wikipedia (en)",
    "DM Mathematics", "Github", "PhilPapers", "Stack Exchange", "Enron Emails",
    "Gutenberg (PG-19)", "Pile-CC", "Ubuntu IRC", "EuroParl", "HackerNews", "PubMed Abstracts",
    "USPTO Backgrounds",
]  # fmt: skip
DISPLAY_LOSS_HEADER = [
    "index", "ArXiv", "FreeLaw", "PubMed Central", "Wikipedia (en)", "DM Mathematics", "Github",
    "Stack Exchange", "Gutenberg (PG-19)", "Pile-CC", "Ubuntu IRC", "HackerNews",
    "PubMed Abstracts", "USPTO Backgrounds",
]  # fmt: skip


def _regmix_pair(tmp_path, rows: int = 5, display: bool = False):
    """The first rows of RegMix's released 1B test files, optionally re-headed with the Pile's
    display names as RegMix's 1000-run files are."""
    paths = []
    for name, header in (
        ("test_mixture_1B.csv", DISPLAY_MIXTURE_HEADER),
        ("test_pile_loss_1B.csv", DISPLAY_LOSS_HEADER),
    ):
        frame = pd.read_csv(REGMIX / name).head(rows)
        if display:
            frame.columns = header
        path = tmp_path / (("display_" if display else "released_") + name)
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def _olmix_pair(tmp_path, metric_runs=("r1", "r2", "r3", "r4")):
    ratios = tmp_path / "ratios.csv"
    metrics = tmp_path / "metrics.csv"
    ratios.write_text(
        "run,name,dclm:web,wikipedia,arxiv\n"
        "r1,web-heavy,0.6,0.3,0.1\n"
        "r2,balanced,0.34,0.33,0.33\n"
        "r3,wiki-heavy,0.2,0.7,0.1\n"
        "r4,arxiv-heavy,0.1,0.1,0.8\n"
    )
    values = {
        "r1": "1.23,0.87,1.45",
        "r2": "1.15,,1.38",
        "r3": "1.20,NaN,1.42",
        "r4": "1.31,0.95,",
    }
    metrics.write_text(
        "run,arc_challenge_bpb,hellaswag_bpb,mmlu_stem_bpb\n"
        + "".join(f"{r},{values.get(r, '1.0,1.0,1.0')}\n" for r in metric_runs)
    )
    return ratios, metrics


#: the columns a W&B runs-table export starts with: a human Name and a hash ID, among others
WANDB_HEAD = "Name,State,Notes,User,Tags,Created,Runtime,Sweep,ID"


def _wandb_row(name: str, state: str, run_hash: str) -> str:
    return f'{name},{state},-,ana,"mix, 30m",2024-05-02T10:11:12.000Z,3612,k3x9,{run_hash}'


def _wandb_export(tmp_path, acc=("0.41", "0.38", ""), name="wandb_export.csv"):
    """A W&B export whose mixture is logged as token counts, with losses and an accuracy."""
    path = tmp_path / name
    rows = [
        (_wandb_row("sweep-1", "finished", "3f9a2c1b"), "3000000,1000000,0.001,2.5,3.1"),
        (_wandb_row("sweep-2", "finished", "77d0e4aa"), "1000000,1000000,0.001,2.7,"),
        (_wandb_row("sweep-3", "crashed", "0b1c5e9f"), "0,2000000,0.001,NaN,3.4"),
    ]
    path.write_text(
        f"{WANDB_HEAD},config.mix.web,config.mix.code,config.lr,"
        "summary.eval/arc easy/loss,summary.eval/piqa/loss,summary.eval/arc easy/acc\n"
        + "".join(f"{head},{rest},{a}\n" for (head, rest), a in zip(rows, acc, strict=True))
    )
    return path


def _invoke(args):
    return CliRunner().invoke(main, ["runs", "import", *map(str, args)])


def _assert_refused(result, folder, fragment: str, out_name: str = "out.csv"):
    """Non-zero exit, one line naming the problem, and nothing written (log, sidecar, lock)."""
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert fragment in lines[0], lines[0]
    written = [p.name for p in folder.iterdir() if out_name in p.name]
    assert not written, written


# --- RegMix -----------------------------------------------------------------------------------


def test_regmix_display_names_give_the_released_names_and_values(tmp_path):
    released = from_regmix(*_regmix_pair(tmp_path))
    display = from_regmix(*_regmix_pair(tmp_path, display=True))
    pd.testing.assert_frame_equal(display.log.frame, released.log.frame, check_exact=True)
    assert "pile_cc" in display.log.domains and "pile_cc" in display.log.targets
    assert "stackexchange" in display.log.domains and "wikipedia_en" in display.log.targets
    assert len(display.log.domains) == 17 and len(display.log.targets) == 13
    assert display.metadata.units == "nats" and display.metadata.source["format"] == "regmix"
    # the documented table covers the 17 domains and gives the released files' names
    released_names = [
        c.removeprefix("train_the_pile_") for c in pd.read_csv(REGMIX / "test_mixture_1B.csv")
    ][1:]
    assert [PILE_DISPLAY_NAMES[c] for c in DISPLAY_MIXTURE_HEADER[1:]] == released_names


def test_regmix_display_names_are_matched_loosely_and_unknown_ones_refused(tmp_path):
    mixture, loss = _regmix_pair(tmp_path, display=True)
    frame = pd.read_csv(loss)
    frame = frame.rename(columns={"Github": "GitHub", "Stack Exchange": "StackExchange"})
    frame.to_csv(loss, index=False)
    assert "github" in from_regmix(mixture, loss).log.targets
    frame.rename(columns={"Pile-CC": "Common Crawl"}).to_csv(loss, index=False)
    with pytest.raises(RunsLogError, match="Common Crawl is not one of the Pile's display names"):
        from_regmix(mixture, loss)


def test_regmix_missing_losses_are_kept_and_counted(tmp_path):
    mixture, loss = _regmix_pair(tmp_path, display=True)
    frame = pd.read_csv(loss)
    frame.loc[1, "Pile-CC"] = np.nan
    frame.to_csv(loss, index=False)
    out = tmp_path / "runs.csv"
    result = _invoke(["--format", "regmix", mixture, loss, out])
    assert result.exit_code == 0, result.output
    assert "loss:pile_cc            4/5 runs  nats" in result.output
    log = load_runs(out)
    assert np.isnan(log.loss("pile_cc")[1]) and log.run_counts()["pile_cc"] == 4
    assert log.run_counts()["arxiv"] == 5


def test_regmix_library_function_keeps_its_released_behaviour(tmp_path):
    mixture, loss = _regmix_pair(tmp_path, rows=64)
    log = import_regmix(mixture, loss, run_prefix="test-1b-")
    assert len(log) == 64 and log.run_ids[0] == "test-1b-0"


def test_regmix_pair_with_other_runs_is_refused(tmp_path):
    mixture, loss = _regmix_pair(tmp_path)
    pd.read_csv(loss).head(3).to_csv(loss, index=False)
    with pytest.raises(RunsLogError, match=r"differ: 2 only in .*mixture.* \(3, 4\)"):
        from_regmix(mixture, loss)


# --- Olmix ------------------------------------------------------------------------------------


def test_olmix_pair_joined_on_run_with_missing_metrics_and_bpb(tmp_path):
    imported = from_olmix(*_olmix_pair(tmp_path))
    log = imported.log
    assert log.run_ids == ["r1", "r2", "r3", "r4"]
    assert log.domains == ["dclm_web", "wikipedia", "arxiv"]  # 'name' is a label, not a domain
    assert log.targets == ["arc_challenge_bpb", "hellaswag_bpb", "mmlu_stem_bpb"]
    assert log.run_counts() == {"arc_challenge_bpb": 4, "hellaswag_bpb": 2, "mmlu_stem_bpb": 3}
    assert imported.metadata.units == "bpb"
    assert imported.metadata.units_of("hellaswag_bpb") == "bpb"
    assert any("3 loss cells" in note for note in imported.notes)


def test_olmix_cli_counts_each_set_and_writes_metadata(tmp_path):
    ratios, metrics = _olmix_pair(tmp_path)
    out = tmp_path / "runs.csv"
    result = _invoke(["--format", "olmix", ratios, metrics, out])
    assert result.exit_code == 0, result.output
    assert "loss:hellaswag_bpb      2/4 runs  bpb" in result.output
    assert "loss:mmlu_stem_bpb      3/4 runs  bpb" in result.output
    assert load_log_metadata(out).units == "bpb"
    assert metadata_path(out).name == "runs.csv.meta.json"


def test_olmix_run_ids_that_do_not_match_are_one_line_and_nothing_written(tmp_path):
    ratios, metrics = _olmix_pair(tmp_path, metric_runs=("r1", "r2", "r9"))
    result = _invoke(["--format", "olmix", ratios, metrics, tmp_path / "out.csv"])
    _assert_refused(result, tmp_path, "differ: 2 only in")
    assert "(r3, r4)" in result.output and "1 only in" in result.output and "(r9)" in result.output


def test_olmix_long_lists_of_ids_are_cut(tmp_path):
    ratios, metrics = _olmix_pair(tmp_path)
    rows = "".join(f"x{i},0.5,0.5,0\n" for i in range(40))
    ratios.write_text("run,a,b,c\n" + rows)
    with pytest.raises(RunsLogError, match=r"40 only in .*x4, \.\.\. \(35 more\)"):
        from_olmix(ratios, metrics)


#: Olmix's swarm files as Olmix writes them (made-up numbers, Olmix's layout): pandas' saved index
#: under an empty header, then run, name, index, then the domains (ratios) or metrics (bpb)
OLMIX_RATIOS = """\
,run,name,index,code,science,web,books
0,r0a1,swarm-30m-0000,0,0.0,0.2,0.7000000000000001,0.1
1,r0a2,swarm-30m-0001,1,0.45,0.0,0.4,0.15000000000000002
2,r0a3,swarm-30m-0002,2,0.1,0.3,0.3,0.3
3,r0a4,swarm-30m-0003,3,0.25,0.25,0.25,0.25
4,r0a5,swarm-30m-0004,4,0.6,0.1,0.1,0.2
"""
OLMIX_METRICS = """\
,run,name,index,arc_easy:rc::olmes,hellaswag:rc::olmes,minerva_math_algebra::olmes
0,r0a1,swarm-30m-0000,0,1.6064,1.1203,2.1101
1,r0a2,swarm-30m-0001,1,1.5521,1.0987,1.9876
2,r0a3,swarm-30m-0002,2,1.5873,1.1102,2.0544
3,r0a4,swarm-30m-0003,3,1.5702,1.1044,2.0321
4,r0a5,swarm-30m-0004,4,1.5433,1.0912,1.9502
"""


def _olmix_swarm(tmp_path, ratios: str = OLMIX_RATIOS, metrics: str = OLMIX_METRICS):
    paths = tmp_path / "ratios.csv", tmp_path / "metrics.csv"
    for path, text in zip(paths, (ratios, metrics), strict=True):
        path.write_text(text)
    return paths


def test_olmix_swarm_files_saved_index_index_and_name_are_not_domains(tmp_path):
    ratios, metrics = _olmix_swarm(tmp_path)
    out = tmp_path / "runs.csv"
    result = _invoke(["--format", "olmix", ratios, metrics, out])
    assert result.exit_code == 0, result.output
    log = load_runs(out)
    assert log.domains == ["code", "science", "web", "books"]
    assert log.targets == ["arc_easy_rc_olmes", "hellaswag_rc_olmes", "minerva_math_algebra_olmes"]
    source = pd.read_csv(ratios)[["code", "science", "web", "books"]].to_numpy()
    np.testing.assert_allclose(log.W, source, atol=1e-15)  # round-off sums are not "normalised"
    np.testing.assert_allclose(log.loss("hellaswag_rc_olmes"), pd.read_csv(metrics).iloc[:, 5])
    assert "did not sum to 1" not in result.output
    assert (
        "skipped: the empty-headed first column (a saved index), 'name', 'index'" in result.output
    )


def test_olmix_weights_far_from_one_are_refused_unless_normalize_weights(tmp_path):
    tokens = OLMIX_RATIOS.replace(",0.0,0.2,0.7000000000000001,0.1", ",0,2000000,7000000,1000000")
    ratios, metrics = _olmix_swarm(tmp_path, ratios=tokens)
    result = _invoke(["--format", "olmix", ratios, metrics, tmp_path / "out.csv"])
    _assert_refused(result, tmp_path, "run r0a1: weights (code, science, web, books) sum to 1e+07")
    assert "1 of 5 runs are off" in result.output and "--normalize-weights" in result.output
    out = tmp_path / "out.csv"
    result = _invoke(["--format", "olmix", ratios, metrics, out, "--normalize-weights"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(load_runs(out).W[0], [0.0, 0.2, 0.7, 0.1])
    assert "note: the weights of 1 of 5 runs did not sum to 1" in result.output
    # a sum off by round-off is no mistake; one off by more than the tolerance is
    near = OLMIX_RATIOS.replace("0.25,0.25,0.25,0.25", "0.25,0.25,0.25,0.253")
    from_olmix(*_olmix_swarm(tmp_path, ratios=near))
    far = OLMIX_RATIOS.replace("0.25,0.25,0.25,0.25", "0.25,0.25,0.25,0.35")
    with pytest.raises(RunsLogError, match="run r0a4: weights .* sum to 1.1, not 1"):
        from_olmix(*_olmix_swarm(tmp_path, ratios=far))


def test_normalize_weights_does_not_apply_to_regmix(tmp_path):
    mixture, loss = _regmix_pair(tmp_path)
    result = _invoke(["--format", "regmix", mixture, loss, tmp_path / "out.csv",
                      "--normalize-weights"])  # fmt: skip
    _assert_refused(result, tmp_path, "--normalize-weights does not apply to --format regmix")


# --- W&B --------------------------------------------------------------------------------------


def test_wandb_export_globs_name_the_columns_and_token_counts_are_normalised(tmp_path):
    imported = from_wandb(
        _wandb_export(tmp_path), weights=["config.mix.*"], losses=["summary.eval/*/loss"],
        normalize_weights=True,
    )  # fmt: skip
    log = imported.log
    assert log.run_ids == ["sweep-1", "sweep-2", "sweep-3"]  # from the Name column
    assert log.domains == ["web", "code"] and log.targets == ["arc_easy", "piqa"]
    np.testing.assert_allclose(log.W, [[0.75, 0.25], [0.5, 0.5], [0.0, 1.0]])
    assert log.run_counts() == {"arc_easy": 2, "piqa": 2}
    assert any("did not sum to 1" in note for note in imported.notes)


def test_wandb_higher_is_better_metrics_become_error_rates(tmp_path):
    imported = from_wandb(
        _wandb_export(tmp_path),
        weights=["config.mix.*"],
        losses=["summary.eval/*"],
        higher_is_better=["*/acc"],
        normalize_weights=True,
    )
    log, meta = imported.log, imported.metadata
    assert log.targets == ["arc_easy_loss", "piqa_loss", "arc_easy_acc"]
    np.testing.assert_allclose(log.loss("arc_easy_acc")[:2], [0.59, 0.62])
    assert np.isnan(log.loss("arc_easy_acc")[2])
    assert meta.targets["arc_easy_acc"]["source_direction"] == "higher"
    assert meta.units_of("arc_easy_acc") == "1 - value" and meta.units_of("piqa_loss") == "nats"
    assert meta.units_label(log.targets) == "mixed: nats (2), 1 - value (1)"
    # percentages are fractions of 100; a range that is neither is refused
    table = pd.read_csv(_wandb_export(tmp_path))
    table["summary.eval/arc easy/acc"] = [41.0, 38.0, np.nan]
    table.to_csv(tmp_path / "pct.csv", index=False)
    pct = from_wandb(
        tmp_path / "pct.csv", weights=["config.mix.*"], losses=["summary.eval/*"],
        higher_is_better=["*/acc"], normalize_weights=True,
    )  # fmt: skip
    np.testing.assert_allclose(pct.log.loss("arc_easy_acc")[:2], [0.59, 0.62])
    assert pct.metadata.units_of("arc_easy_acc") == "1 - value/100"
    table["summary.eval/arc easy/acc"] = [-3.0, 250.0, np.nan]
    table.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(RunsLogError, match="runs from -3 to 250"):
        from_wandb(
            tmp_path / "bad.csv", weights=["config.mix.*"], losses=["summary.eval/*"],
            higher_is_better=["*/acc"], normalize_weights=True,
        )  # fmt: skip


def test_wandb_cli_with_no_matching_column_lists_some_columns(tmp_path):
    export = _wandb_export(tmp_path)
    result = _invoke(
        ["--format", "wandb", export, tmp_path / "out.csv", "--weights", "config.mixture.*",
         "--losses", "summary.eval/*/loss"]
    )  # fmt: skip
    _assert_refused(result, tmp_path, "--weights 'config.mixture.*' matches no column")
    assert "the nearest: config.mix.web, config.mix.code, config.lr, State" in result.output


def test_wandb_cli_json_summary(tmp_path):
    out = tmp_path / "runs.jsonl"
    result = _invoke(
        ["--format", "wandb", _wandb_export(tmp_path), out, "--weights", "config.mix.*",
         "--losses", "summary.eval/*/loss", "--normalize-weights", "--json"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["out"] == str(out) and payload["metadata"] == str(out) + ".meta.json"
    assert payload["runs"] == 3 and payload["domains"] == ["web", "code"]
    assert payload["targets"]["arc_easy"]["runs"] == 2
    assert payload["targets"]["arc_easy"]["source_column"] == "summary.eval/arc easy/loss"
    assert payload["units"] == "nats" and payload["format"] == "wandb"
    assert any("did not sum to 1" in n for n in payload["notes"])


def test_negative_weights_are_refused_not_normalised(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_text("run_id,mix_a,mix_b,val_a\nx,2,-1,3.0\ny,1,1,3.1\n")
    result = _invoke(
        ["--format", "csv", path, tmp_path / "out.csv", "--weights", "mix_*", "--losses", "val_*"]
    )
    _assert_refused(result, tmp_path, "run x: weight w:b is negative")


def test_wandb_prefers_the_human_name_over_the_hash_id(tmp_path):
    export = _wandb_export(tmp_path)
    args = {"weights": ["config.mix.*"], "losses": ["summary.eval/*/loss"]}
    imported = from_wandb(export, **args, normalize_weights=True)
    assert imported.log.run_ids == ["sweep-1", "sweep-2", "sweep-3"]
    by_id = from_wandb(export, **args, run_id="ID", normalize_weights=True)
    assert by_id.log.run_ids == ["3f9a2c1b", "77d0e4aa", "0b1c5e9f"]
    # W&B names need not be unique: the error says how to choose the ID instead
    export.write_text(export.read_text().replace("sweep-2,", "sweep-1,"))
    with pytest.raises(
        RunsLogError, match="sweep-1 appears more than once in column 'Name'.*--run-id"
    ):
        from_wandb(export, **args, normalize_weights=True)


def test_wandb_accuracy_on_mixed_scales_is_refused(tmp_path):
    export = _wandb_export(tmp_path, acc=("45", "0.31", ""))
    out = tmp_path / "out.csv"
    result = _invoke(
        ["--format", "wandb", export, out, "--weights", "config.mix.*", "--losses",
         "summary.eval/*", "--higher-is-better", "*/acc", "--normalize-weights"]
    )  # fmt: skip
    _assert_refused(result, tmp_path, "'summary.eval/arc easy/acc' (set arc_easy_acc) mixes scales")
    assert (
        "values above 1 (45: percentages?) and between 0 and 1 (0.31: fractions?)" in result.output
    )
    # one scale, either one, is converted: 45% and 31% -> 0.55 and 0.69
    for acc in (("45", "31", ""), ("0.45", "0.31", "")):
        imported = from_wandb(
            _wandb_export(tmp_path, acc=acc), weights=["config.mix.*"], losses=["summary.eval/*"],
            higher_is_better=["*/acc"], normalize_weights=True,
        )  # fmt: skip
        np.testing.assert_allclose(imported.log.loss("arc_easy_acc")[:2], [0.55, 0.69])


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("run_id,w:web,w:code,w:web,loss:web,loss:code", "column 'w:web' appears more than once"),
        (
            "run_id,w:web,w:code,w:wiki,loss:web,loss:web",
            "column 'loss:web' appears more than once",
        ),
    ],
)
def test_duplicate_columns_in_a_source_are_refused(tmp_path, header, fragment):
    path = tmp_path / "sweep.csv"
    path.write_text(f"{header}\na,0.5,0.3,0.2,3.1,2.9\nb,0.2,0.3,0.5,3.2,2.8\n")
    result = _invoke(
        ["--format", "csv", path, tmp_path / "out.csv", "--weights", "w:*", "--losses", "loss:*"]
    )
    _assert_refused(result, tmp_path, fragment)
    ratios, metrics = _olmix_swarm(tmp_path, ratios=OLMIX_RATIOS.replace(",books\n", ",web\n", 1))
    result = _invoke(["--format", "olmix", ratios, metrics, tmp_path / "out.csv"])
    _assert_refused(result, tmp_path, "column 'web' appears more than once")


def test_import_never_replaces_an_existing_log_without_force(tmp_path):
    ratios, metrics = _olmix_swarm(tmp_path)
    out = tmp_path / "runs.csv"
    out.write_text("run_id,w:a,loss:a\nkept,1.0,2.5\n")
    result = _invoke(["--format", "olmix", ratios, metrics, out])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [
        f"Error: OUT {out} already exists; pass --force to replace it (and its metadata)"
    ]
    assert out.read_text() == "run_id,w:a,loss:a\nkept,1.0,2.5\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "ratios.csv", "runs.csv"]
    with pytest.raises(MixsurrogateError, match="already exists"):
        write_import(from_olmix(ratios, metrics), out)
    result = _invoke(["--format", "olmix", ratios, metrics, out, "--force"])
    assert result.exit_code == 0, result.output
    assert load_runs(out).run_ids[0] == "r0a1" and metadata_path(out).exists()


# --- generic CSV ------------------------------------------------------------------------------


def test_csv_with_run_id_and_renames(tmp_path):
    path = tmp_path / "sweep.csv"
    rows = [
        "job,mix_cc,mix_code,val_cc,val_code,lr",
        "007,0.5,0.5,3.2,2.9,0.1",
        "008,0.9,0.1,3.0,,0.1",
    ]
    path.write_text("\n".join(rows) + "\n")
    imported = from_csv(
        path, weights=["mix_*"], losses=["val_*"], run_id="job", renames={"cc": "pile_cc"}
    )
    assert imported.log.run_ids == ["007", "008"]  # ids stay text: no leading zero lost
    assert imported.log.domains == ["pile_cc", "code"]
    assert imported.log.targets == ["pile_cc", "code"]
    assert imported.log.run_counts() == {"pile_cc": 2, "code": 1}
    with pytest.raises(MixsurrogateError, match="no domain or set is called 'web'"):
        from_csv(path, weights=["mix_*"], losses=["val_*"], run_id="job", renames={"web": "x"})
    with pytest.raises(RunsLogError, match="both give the domain 'a'"):
        from_csv(path, weights=["mix_*"], losses=["val_*"], run_id="job",
                 renames={"cc": "a", "code": "a"})  # fmt: skip


def test_csv_cli_rename_and_names_made_safe(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_text("run,w (web),w (wiki/en),loss web,loss wiki/en\na,0.5,0.5,3.0,3.3\n")
    out = tmp_path / "runs.csv"
    result = _invoke(
        ["--format", "csv", path, out, "--weights", "w (*)", "--losses", "loss *",
         "--rename", "web=cc"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    log = load_runs(out)
    assert log.domains == ["cc", "wiki_en"] and log.targets == ["cc", "wiki_en"]
    assert safe_name("dclm:software_development") == "dclm_software_development"


def test_text_that_is_not_a_number_is_refused(tmp_path):
    path = tmp_path / "sweep.csv"
    path.write_text("run_id,mix_a,mix_b,val_a\nx,0.5,0.5,oops\n")
    with pytest.raises(RunsLogError, match="run x: column 'val_a' holds 'oops', not a number"):
        from_csv(path, weights=["mix_*"], losses=["val_*"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--weights", "x*"], "--weights does not apply to --format regmix"),
        (["--run-id", "index"], "--run-id does not apply to --format regmix"),
        (["--higher-is-better", "acc*"], "--higher-is-better 'acc*' matches none"),
        (["--rename", "cc"], "--rename 'cc': give OLD=NEW"),
        (["--rename", "pile_cc=Pile CC"], "is not a usable name"),
    ],
)
def test_options_that_do_not_apply_are_one_line(tmp_path, args, fragment):
    mixture, loss = _regmix_pair(tmp_path)
    result = _invoke(["--format", "regmix", mixture, loss, tmp_path / "out.csv", *args])
    _assert_refused(result, tmp_path, fragment)


def test_format_arguments_are_checked(tmp_path):
    export = _wandb_export(tmp_path)
    out = tmp_path / "out.csv"
    _assert_refused(
        _invoke(["--format", "csv", export, out, "--weights", "config.mix.*"]),
        tmp_path,
        "--format csv needs --weights PATTERN and --losses PATTERN",
    )
    _assert_refused(
        _invoke(["--format", "olmix", export, out]), tmp_path, "reads RATIOS_CSV and METRICS_CSV"
    )
    _assert_refused(
        _invoke(["--format", "wandb", export, export, "--weights", "a*", "--losses", "b*"]),
        tmp_path,
        "is one of the source files",
        out_name="nothing",
    )
    result = _invoke(["--format", "parquet", export, out])
    assert result.exit_code == 2 and "Invalid value for '--format'" in result.output
    assert not out.exists()
    with pytest.raises(MixsurrogateError, match="unknown format 'parquet'"):
        import_runs("parquet", [export])


# --- metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_metadata_round_trips_beside_csv_and_jsonl_logs(tmp_path, suffix):
    imported = from_wandb(
        _wandb_export(tmp_path),
        weights=["config.mix.*"],
        losses=["summary.eval/*"],
        higher_is_better=["*/acc"],
        normalize_weights=True,
    )
    out = tmp_path / f"runs{suffix}"
    sidecar = write_import(imported, out)
    assert sidecar == metadata_path(out) and sidecar.name == f"runs{suffix}.meta.json"
    again = load_log_metadata(out)
    assert again == imported.metadata
    assert again.to_dict() == json.loads(sidecar.read_text())
    log = load_runs(out)
    pd.testing.assert_frame_equal(log.frame, imported.log.frame)
    assert log.run_counts() == {"arc_easy_loss": 2, "piqa_loss": 2, "arc_easy_acc": 2}


def test_a_log_without_metadata_is_in_nats(tmp_path):
    meta = load_log_metadata(tmp_path / "runs.csv")
    assert meta == LogMetadata() and meta.units_of("anything") == "nats"
    assert meta.units_label(["a", "b"]) == "nats"
    assert load_log_metadata("regmix:train-1m").units == "nats"
    metadata_path(tmp_path / "bad.csv").write_text("{not json")
    with pytest.raises(RunsLogError, match="cannot read the log's metadata"):
        load_log_metadata(tmp_path / "bad.csv")


# --- runs design --json -----------------------------------------------------------------------


def test_runs_design_json(tmp_path):
    out = tmp_path / "mixtures.csv"
    result = CliRunner().invoke(
        main, ["runs", "design", "--domains", "a,b,c", "-n", "4", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["out"] == str(out) and payload["runs"] == 4
    assert payload["domains"] == ["a", "b", "c"] and payload["targets"] == {}
    assert payload["notes"] == [] and len(pd.read_csv(out)) == 4


def test_fit_and_cv_say_what_units_the_imported_losses_are_in(tmp_path):
    """The units the import recorded reach later tables and JSON (a bpb log says bpb)."""
    ratios, metrics = _olmix_pair(tmp_path)
    out = tmp_path / "runs.csv"
    assert _invoke(["--format", "olmix", ratios, metrics, out]).exit_code == 0
    fitted = CliRunner().invoke(main, ["fit", str(out), "-p", "mean", "-t", "arc_*"])
    assert fitted.exit_code == 0, fitted.output
    assert "losses in bpb, lower is better" in fitted.output
    payload = json.loads(
        CliRunner().invoke(main, ["fit", str(out), "-p", "mean", "-t", "arc_*", "--json"]).output
    )
    assert payload["units"] == {"arc_challenge_bpb": "bpb"}
    checked = CliRunner().invoke(main, ["cv", str(out), "-p", "mean", "--folds", "2"])
    assert "losses in bpb, lower is better" in checked.output, checked.output
    builtin = CliRunner().invoke(main, ["fit", "regmix:test-1b", "-p", "mean", "-t", "pile_cc"])
    assert "losses in nats, lower is better" in builtin.output
