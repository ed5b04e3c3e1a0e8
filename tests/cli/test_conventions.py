"""CLI conventions (issue 13): every command has --json, the CLI starts without the heavy
libraries (they load where used), and --jobs caps every thread pool."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from mixsurrogate.cli.common import ErrorLineGroup
from mixsurrogate.cli.main import main
from mixsurrogate.errors import MixsurrogateError

HEAVY = ("torch", "botorch", "gpytorch", "transformers", "pandas", "scipy", "sklearn",
         "lightgbm", "matplotlib", "pyarrow", "cvxpy")  # fmt: skip


def commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_every_command_has_json():
    missing = [
        name
        for name, command in commands(main)
        if not any("--json" in p.opts for p in command.params if isinstance(p, click.Option))
    ]
    assert not missing, missing
    assert len(list(commands(main))) >= 11


def test_help_and_runs_import_start_without_the_heavy_libraries():
    """What makes ``--help`` slow is importing torch, botorch, pandas, scipy...; none of them
    may be imported before a command runs (``bench/startup.py`` measures the time)."""
    code = f"import sys, mixsurrogate.cli.main; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_jobs_caps_torch_and_the_loaded_thread_pools(tmp_path):
    code = (
        "from mixsurrogate.cli.main import main; "
        f"main(['--jobs', '1', 'runs', 'design', '--domains', 'a,b', '-n', '2', {str(tmp_path / 'm.csv')!r}], "
        "standalone_mode=False); "
        "import os, torch, threadpoolctl; "
        "print(os.environ['OMP_NUM_THREADS'], torch.get_num_threads(), "
        "max([p['num_threads'] for p in threadpoolctl.threadpool_info()] or [1]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "1 1 1", out.stdout + out.stderr
    assert (tmp_path / "m.csv").is_file()


def test_jobs_must_be_positive():
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--jobs", "0", "runs", "design", "--help"])
    assert result.exit_code != 0 and "--jobs" in result.output


def test_error_line_group_prints_one_line_for_a_multi_line_message():
    @click.group(cls=ErrorLineGroup)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        raise MixsurrogateError("bad input (a parser said:\n  line 1\n    ^\nexpected x)")

    result = CliRunner().invoke(group, ["fail"])
    assert result.exit_code == 1
    assert result.output == "Error: bad input (a parser said: line 1 ^ expected x)\n"
