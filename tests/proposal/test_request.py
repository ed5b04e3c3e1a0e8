"""``propose`` as a request: the same proposal from flags and from a TOML file, and one line for
a bad file or for options that do not go together (each rule of ``ProposeRequest``)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError
from mixsurrogate.proposal.request import ProposeRequest

EXPLOIT = ["regmix:train-1m", "-p", "linear", "--objective", "pile_cc=1", "--no-ledger"]


def propose(*args: str):
    return CliRunner().invoke(main, ["propose", *args])


def untimed(payload):
    """JSON without its wall-clock fields (``*seconds``), which differ run to run."""
    if isinstance(payload, dict):
        return {k: untimed(v) for k, v in payload.items() if not str(k).endswith("seconds")}
    if isinstance(payload, list):
        return [untimed(v) for v in payload]
    return payload


def one_error_line(result) -> str:
    """The command failed with exactly one line of output, the error."""
    assert result.exit_code != 0, result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.slow
def test_flags_and_toml_give_the_same_proposal(tmp_path):
    config = tmp_path / "request.toml"
    config.write_text(
        'log = "regmix:train-1m"\npredictor = "linear"\nobjective = "pile_cc=1"\n'
        'no-ledger = true\nbounds = ["github=:0.1"]\nseed = 0\n'
    )
    flags = propose(*EXPLOIT, "--bounds", "github=:0.1", "--json")
    assert flags.exit_code == 0, flags.output
    from_file = propose("--config", str(config), "--json")
    assert from_file.exit_code == 0, from_file.output
    assert untimed(json.loads(from_file.output)) == untimed(json.loads(flags.output))
    # a flag given explicitly overrides the file (a repeatable one its whole list)
    config.write_text(config.read_text().replace('"linear"', '"mean"'))
    overridden = propose("--config", str(config), "-p", "linear", "--json")
    assert untimed(json.loads(overridden.output)) == untimed(json.loads(flags.output))


def test_request_from_toml_equals_request_from_flags(tmp_path):
    config = tmp_path / "r.toml"
    config.write_text(
        'log = "runs.csv"\nexplore = true\nn = 4\nno_worse_than = ["uniform:0.02"]\ncost-alpha = 1\n'
    )
    got = ProposeRequest.from_toml(config)
    want = ProposeRequest(log="runs.csv", explore=True, n=4, no_worse_than=("uniform:0.02",))
    assert got == want and got.mode == "explore" and got.cost_alpha == 1.0
    assert ProposeRequest.from_toml(config, {"n": 2, "seed": 3}) == ProposeRequest(
        log="runs.csv", explore=True, n=2, no_worse_than=("uniform:0.02",), seed=3
    )
    kl = tmp_path / "kl.toml"
    kl.write_text('log = "runs.csv"\nprior = "uniform"\nkl = 0.05\n')
    assert ProposeRequest.from_toml(kl).lam == 0.05


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('log = "regmix:train-1m"\npredictr = "gp"\n', "unknown key 'predictr'"),
        ('log = "regmix:train-1m"\nn = "four"\n', "n = 'four': expected an integer"),
        ('log = "regmix:train-1m"\nexplore = "yes"\n', "explore = 'yes': expected true or false"),
        ('log = "regmix:train-1m"\nbounds = "a=0:1"\nseed = 1.5\n', "seed = 1.5"),
        ('log = "regmix:train-1m"\nstrategy = "best"\n', "strategy 'best': choose from"),
        ('log = "regmix:train-1m\n', "not valid TOML"),
        ('log = "regmix:train-1m"\nworst_case = "uniform"\nexplore = true\n', "--worst-case is"),
    ],
)
def test_a_bad_toml_key_or_value_is_one_line(tmp_path, text, expected):
    config = tmp_path / "request.toml"
    config.write_text(text)
    line = one_error_line(propose("--config", str(config)))
    assert expected in line and str(config) in line


CONFLICTS = [
    (["--kl", "0.05"], "--kl needs --prior"),
    (["--recommender", "argmin", "--recommend", "top-k"], "--recommend is the earlier name"),
    (["--prior", "uniform", "--kl", "0.05", "--explore"], "--prior/--kl regularise"),
    (["--prior", "uniform", "--kl", "0.05", "--worst-case", "uniform"], "not with --worst-case"),
    (
        [
            "--no-worse-than",
            "uniform:0.02",
            "--fidelities",
            "20M:0.4B",
            "--target",
            "1B:20B",
            "--explore",
        ],
        "not --fidelities",
    ),  # fmt: skip
    (["--explore", "--worst-case", "uniform"], "--worst-case is an exploit objective"),
    (["--explore", "--fidelities", "20M:0.4B"], "--fidelities and --target go together"),
    (["--fidelities", "20M:0.4B", "--target", "1B:20B"], "add --explore"),
    (["--max-epochs", "2"], "--max-epochs needs --corpus DIR and --budget-tokens N"),
    (["--recommender", "best"], "unknown recommender 'best'"),
    (["--kl", "-1", "--prior", "uniform"], "lambda must be finite and >= 0"),
]


@pytest.mark.parametrize(("flags", "expected"), CONFLICTS)
def test_each_conflict_is_one_line(flags, expected):
    assert expected in one_error_line(propose(*EXPLOIT, *flags))
    # and the same rule from a mapping, without the command line
    with pytest.raises(MixsurrogateError, match="^[^\n]*$"):
        ProposeRequest(log="regmix:train-1m", **_as_fields(flags))


def test_zero_run_rules_are_one_line():
    assert "give a runs log, or --scores" in one_error_line(propose("--objective", "val=1"))
    with pytest.raises(MixsurrogateError, match="need a runs log"):
        ProposeRequest(scores="scores/", worst_case="uniform")


@pytest.mark.parametrize(
    ("fields", "mode"),
    [
        ({"log": "r.csv"}, "exploit"),
        ({"log": "r.csv", "worst_case": "uniform"}, "worst-case"),
        ({"log": "r.csv", "explore": True}, "explore"),
        (
            {"log": "r.csv", "explore": True, "fidelities": "20M:0.4B", "target": "1B:20B"},
            "multi-fidelity",
        ),  # fmt: skip
        ({"scores": "scores/"}, "zero-run"),
    ],
)
def test_the_request_knows_its_mode(fields, mode):
    assert ProposeRequest(**fields).mode == mode


def _as_fields(flags: list[str]) -> dict:
    """The test's flags as request fields (each flag here takes a value or is a switch)."""
    names = {"--no-worse-than": "no_worse_than", "--worst-case": "worst_case",
             "--max-epochs": "max_epochs"}  # fmt: skip
    out, i = {}, 0
    while i < len(flags):
        name = names.get(flags[i], flags[i].lstrip("-").replace("-", "_"))
        if name == "explore":
            out[name], i = True, i + 1
            continue
        value = flags[i + 1]
        out[name] = (value,) if name == "no_worse_than" else value
        i += 2
    if "max_epochs" in out:
        out["max_epochs"] = float(out["max_epochs"])
    return out
