"""Objective families and globs, TOML/YAML objective files, `-t` lists and globs, and long name
lists cut in errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.objective import (
    Objective,
    name_list,
    parse_kinds,
    read_objective_file,
    split_top_level,
    unknown_name_error,
)

from builders import cli_error_line, one_line

SETS = ["humaneval", "mbpp_plus", "arc_easy", "arc_challenge", "piqa", "pile_cc", "books"]


def test_families_split_their_weight_over_the_sets_they_match():
    obj = Objective.parse("code='*humaneval*,*mbpp*'=0.4,qa='*arc*,*piqa*'=0.6", SETS)
    np.testing.assert_allclose(obj.vector(SETS), [0.2, 0.2, 0.2, 0.2, 0.2, 0.0, 0.0])
    assert obj.sets == ["humaneval", "mbpp_plus", "arc_easy", "arc_challenge", "piqa"]
    assert obj.matched["qa='*arc*,*piqa*'=0.6"] == ["arc_easy", "arc_challenge", "piqa"]
    assert any("arc_easy, arc_challenge, piqa" in line for line in obj.describe_matches())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("'*arc*'=0.5,pile_cc=0.5", {"arc_easy": 0.25, "arc_challenge": 0.25, "pile_cc": 0.5}),
        ("arc_*=1", {"arc_easy": 0.5, "arc_challenge": 0.5}),  # unquoted glob
        ('"*arc*"', {"arc_easy": 0.5, "arc_challenge": 0.5}),  # weight 1 by default
        ("code=*mbpp*=2", {"mbpp_plus": 2.0}),  # a family of one pattern, unquoted
        ('code="humaneval,mbpp_plus"', {"humaneval": 0.5, "mbpp_plus": 0.5}),  # exact names
        ("'*arc*'=1,arc_easy=1", {"arc_easy": 1.5, "arc_challenge": 0.5}),  # terms add up
        ("fam='arc_*,*easy'=1", {"arc_easy": 0.5, "arc_challenge": 0.5}),  # each set once
    ],
)
def test_glob_terms_and_quoting(spec, expected):
    obj = Objective.parse(spec, SETS)
    assert obj.weights == pytest.approx(expected)


def test_existing_specs_keep_their_meaning():
    kinds = {"humaneval": "task", "mbpp_plus": "task", "arc_easy": "task",
             "arc_challenge": "task", "piqa": "task", "pile_cc": "val", "books": "val"}  # fmt: skip
    obj = Objective.parse("val=0.5,task=0.5", SETS, kinds, "x")
    assert obj.weights["pile_cc"] == pytest.approx(0.25)
    assert obj.weights["piqa"] == pytest.approx(0.1) and obj.kinds_source == "x"
    assert Objective.parse("pile_cc=1", SETS).weights == {"pile_cc": 1.0}
    assert Objective.parse("books=1", SETS).weights == {"books": 1.0}
    assert Objective.parse("loss:books=2,pile_cc", SETS).weights == {"books": 2.0, "pile_cc": 1.0}
    assert Objective.parse("books=1", SETS).matched == {}


def test_commas_inside_quotes_do_not_split_terms():
    assert split_top_level("a='x,y'=1,b=2") == ["a='x,y'=1", "b=2"]
    assert split_top_level('"p,q"=1, r') == ['"p,q"=1', "r"]
    with pytest.raises(MixsurrogateError, match="quote is not closed"):
        split_top_level("a='x,y=1")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "x='*nothing*'=1",
            "objective family 'x': pattern '\\*nothing\\*' matches no evaluation set",
        ),
        ("code='*humaneval*,*zzz*'=1", "pattern '\\*zzz\\*' matches no evaluation set"),
        ("'*zz*'=1", "objective glob '\\*zz\\*' matches no evaluation set; valid: humaneval"),
        ("arc_*=x", "'x' is not a number"),
        ("code='*arc*'x", "expected '=WEIGHT' after the quoted patterns"),
        ("code='*arc*'=-1", "weights must be finite and >= 0"),
        ("pile=1", "unknown set 'pile'.*did you mean 'pile_cc'"),
    ],
)
def test_family_and_glob_errors(spec, message):
    with pytest.raises(MixsurrogateError, match=message):
        Objective.parse(spec, SETS)


def test_objective_file_toml_and_yaml(tmp_path):
    toml = tmp_path / "objective.toml"
    toml.write_text(
        '[sets]\npile_cc = 0.2\n"*arc*" = 0.2\n\n'
        '[families.code]\npatterns = ["*humaneval*", "*mbpp*"]\nweight = 0.4\n\n'
        '[families.physics]\npatterns = "piqa"\nweight = 0.2\n'
    )
    obj = Objective.parse(f"@{toml}", SETS)
    assert obj.weights == pytest.approx(
        {"pile_cc": 0.2, "arc_easy": 0.1, "arc_challenge": 0.1, "humaneval": 0.2,
         "mbpp_plus": 0.2, "piqa": 0.2}
    )  # fmt: skip
    yaml_file = tmp_path / "objective.yaml"
    yaml_file.write_text("families:\n  qa:\n    patterns: ['*arc*', piqa]\n    weight: 0.9\n")
    assert Objective.parse(f"@{yaml_file}", SETS).weights == pytest.approx(
        {"arc_easy": 0.3, "arc_challenge": 0.3, "piqa": 0.3}
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sets]\npile_cc = 'x'\n", "sets.pile_cc = 'x' is not a number"),
        ("[families.a]\nweight = 1\n", "families.a needs patterns"),
        ("[families.a]\npatterns = []\n", "patterns must be a non-empty list"),
        ("[families.a]\npatterns = ['*']\nscale = 2\n", "unknown key 'scale'"),
        ("[weights]\na = 1\n", "unknown key 'weights'"),
        ("[families.a]\npatterns = ['*nope*']\n", "pattern '\\*nope\\*' matches no evaluation set"),
        ("[sets\n", "not valid TOML"),
        ("", "no \\[sets\\] or \\[families.NAME\\] term"),
    ],
)
def test_objective_file_errors(tmp_path, text, message):
    path = tmp_path / "o.toml"
    path.write_text(text)
    with pytest.raises(MixsurrogateError, match=message):
        Objective.parse(f"@{path}", SETS)
    with pytest.raises(MixsurrogateError, match="does not exist"):
        Objective.parse(f"@{tmp_path / 'missing.toml'}", SETS)


def test_long_name_lists_are_cut():
    names = [f"arc_{i}" for i in range(110)]
    assert name_list(names[:3]) == "valid: arc_0, arc_1, arc_2"
    line = str(unknown_name_error("set", "foo", names))
    assert line.startswith("unknown set 'foo'; valid (110): arc_0, arc_1,")
    assert "arc_9, ... and 100 more; use a glob such as -t 'arc_*'" in line
    assert "arc_50" not in line and "\n" not in line
    with pytest.raises(MixsurrogateError, match=r"valid \(112\): val, task, arc_0.* and 102 more"):
        Objective.parse("foo=1", names)


# ------------------------------------------------------------------ -t through the CLI


def _fit_targets(args: list[str]) -> list[str]:
    result = CliRunner().invoke(main, ["fit", "regmix:test-1b", "-p", "mean", "--json", *args])
    assert result.exit_code == 0, result.output
    return [row["target"] for row in json.loads(result.stdout)["in_sample"]]


def test_fit_targets_take_comma_lists_and_globs():
    assert _fit_targets(["-t", "pubmed_*,github", "-t", "arxiv"]) == [
        "pubmed_central", "pubmed_abstracts", "github", "arxiv"
    ]  # fmt: skip
    assert _fit_targets(["-t", "github", "-t", "git*"]) == ["github"]  # each set once
    assert _fit_targets(["-t", "pile_cc"]) == ["pile_cc"]  # a plain name as before


def test_cv_targets_take_globs_and_the_objective_family_is_scored():
    result = CliRunner().invoke(
        main,
        ["cv", "regmix:test-1b", "-p", "mean", "-p", "linear", "--folds", "3", "-t",
         "pubmed_*, github", "--objective", "bio='pubmed_*'=1,github=1", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["targets"] == ["pubmed_central", "pubmed_abstracts", "github"]
    assert "objective" in {r["target"] for r in payload["results"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["fit", "regmix:test-1b", "-t", "nosuch"],
            "unknown evaluation set 'nosuch'; valid \\(13\\):.* and 3 more; use a glob such as -t 'pubmed_\\*'",
        ),
        (["fit", "regmix:test-1b", "-t", "pile_c"], "did you mean 'pile_cc'"),
        (["cv", "regmix:test-1b", "-t", "zz_*"], "-t 'zz_\\*' matches no evaluation set"),
        (["propose", "regmix:test-1b", "--objective", "q='*zz*'=1"], "matches no evaluation set"),
    ],
)
def test_cli_set_errors_are_one_line(args, message):
    import re

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert re.search(message, result.output), result.output
    assert "Traceback" not in result.output
    assert result.output.strip().count("\n") == 0  # one line


def test_propose_with_an_objective_file(tmp_path):
    path = tmp_path / "objective.toml"
    path.write_text('[families.bio]\npatterns = ["pubmed_*"]\nweight = 1\n')
    result = CliRunner().invoke(
        main, ["propose", "regmix:test-1b", "-p", "linear", "--objective", f"@{path}"]
    )
    assert result.exit_code == 0, result.output
    assert "-> pubmed_central, pubmed_abstracts" in result.output


def test_objective_groups_and_explicit_sets():
    sets = ["code", "books", "arc", "piqa"]
    kinds = {"code": "val", "books": "val", "arc": "task", "piqa": "task"}
    obj = Objective.parse("val=0.5,task=0.5", sets, kinds)
    np.testing.assert_allclose(obj.vector(sets), [0.25, 0.25, 0.25, 0.25])
    obj = Objective.parse("loss:code=1,arc=2", sets, kinds)
    np.testing.assert_allclose(obj.combine(np.array([[1.0, 9.0, 2.0, 9.0]]), sets), [5.0])
    np.testing.assert_allclose(
        obj.combine_std(np.array([[1.0, 1.0, 1.0, 1.0]]), sets), [np.sqrt(5.0)]
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope=1", "unknown set 'nope'; valid: val, task, code, books"),
        ("task=1", "group 'task' has no evaluation sets"),
        ("code=-1", "weights must be finite and >= 0"),
        ("code=x", "'x' is not a number"),
        ("code=0", "gives no set a positive weight"),
    ],
)
def test_objective_errors(spec, message):
    with pytest.raises(MixsurrogateError, match=message):
        Objective.parse(spec, ["code", "books"], {"code": "val", "books": "val"})


def test_group_terms_need_explicit_kinds():
    """`--objective val=1` without a score store treated task sets as validation sets."""
    with pytest.raises(MixsurrogateError, match=r"1 of the 2 sets have none \(arc_easy\)"):
        Objective.parse("val=1", ["code", "arc_easy"], {"code": "val"})
    obj = Objective.parse("val=1", ["code", "arc_easy"], {"code": "val", "arc_easy": "task"}, "x")
    assert obj.sets == ["code"] and obj.kinds_source == "x"
    assert Objective.parse("code=1", ["code", "arc_easy"]).kinds_source == ""


BAD_YAML = "sets:\n  pile_cc: 0.5\n  bad: [1, 2\n  x: : y\n"


def test_bad_yaml_objective_file_is_one_line(tmp_path):
    """Before: PyYAML's report, eight lines with the offending lines and carets."""
    path = tmp_path / "objective.yaml"
    path.write_text(BAD_YAML)
    with pytest.raises(MixsurrogateError) as err:
        read_objective_file(str(path))
    assert "not valid YAML (line 4, column 4: expected ',' or ']'" in one_line(err)
    line = cli_error_line(
        main, ["propose", "regmix:train-1m", "-p", "linear", "--objective", f"@{path}"], exit_code=1
    )
    assert "not valid YAML (line 4" in line


def test_objective_file_of_random_bytes_is_one_line(tmp_path):
    path = tmp_path / "objective.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(MixsurrogateError) as err:
        read_objective_file(str(path))
    assert "not UTF-8 text" in one_line(err)


def test_parse_kinds_names_and_globs():
    sets = ["code", "books", "arc_easy", "arc_challenge", "piqa"]
    kinds = parse_kinds(["val=code,books", "task='arc_*',piqa"], sets)
    assert kinds == {"code": "val", "books": "val", "arc_easy": "task", "arc_challenge": "task",
                     "piqa": "task"}  # fmt: skip
    assert parse_kinds(["val=*"], sets) == dict.fromkeys(sets, "val")
    with pytest.raises(MixsurrogateError, match="--kinds task= 'hella_\\*' matches no set"):
        parse_kinds(["task=hella_*"], sets)
    with pytest.raises(MixsurrogateError, match="gives 'arc_easy' two kinds"):
        parse_kinds(["val=*", "task=arc_*"], sets)


def test_missing_kinds_error_cuts_long_lists():
    sets = [f"task_{i:02d}" for i in range(40)]
    with pytest.raises(MixsurrogateError) as err:
        Objective.parse("val=1", sets)
    text = str(err.value)
    assert "40 of the 40 sets have none" in text and "... and 30 more" in text
    assert "task_39" not in text and "--kinds val=task_00,task_01 --kinds task=task_02" in text
