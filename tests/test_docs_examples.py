"""Every command example in the docs runs, so a page never shows a command that fails.

A fenced ``bash``/``console`` block of ``README.md`` or ``docs/**/*.md`` is an example when one
of its lines (without a leading ``$ ``) starts with ``mixsurrogate ``. Each example is one test,
run in a fresh temporary folder laid out like the repository root (``mixsurrogate/data`` and
``bench`` are links to the checkout's), one step at a time:

- a plain ``mixsurrogate ...`` line runs in this process with click's ``CliRunner`` (no torch
  import per command, so the file stays fast); a line with shell syntax (``$``, ``|``, ``>``,
  ``;``, ``&``) or ``--jobs`` (it caps this process's threads) runs in ``bash``;
- any other line (``python - <<'PY'`` ... ``PY``, ``cat > f.csv <<'EOF'`` ...) runs in ``bash``;
- a command must exit 0, unless the next line shows its error: a ``# Error: ...`` comment in a
  ``bash`` block, or an output line ``Error: ...`` in a ``console`` block; then it must fail
  with that message.

Comment lines in a block steer its test (and tell the reader the same):
``# needs: gpu`` / ``# needs: cluster`` / ``# needs: network`` / ``# needs: training`` skip it
with that reason; ``# slow: ...`` marks it ``slow``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from mixsurrogate.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S
)
LANGUAGES = {"bash", "console", "sh", "shell"}
SHELL_OPERATORS = set("|<>;&()")
HEREDOC = re.compile(r"<<-?\s*'?\"?(?P<word>\w+)")
NEEDS = re.compile(r"^#\s*needs:\s*(?P<what>.+)$")
SLOW = re.compile(r"^#\s*slow:")
EXPECTED_ERROR = re.compile(r"^#?\s*Error:\s*(?P<message>.+)$")
TIMEOUT_S = 300


@dataclass
class Step:
    """One command (``cli``) or shell snippet (``shell``), and the error it must end in, if any."""

    kind: str
    text: str
    error: str | None = None


@dataclass
class Example:
    """A runnable docs block: where it is, its steps, and the directives its comments give."""

    page: str
    line: int
    steps: list[Step] = field(default_factory=list)
    needs: str | None = None
    slow: bool = False

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def logical_lines(body: str) -> list[str]:
    """Lines with backslash continuations joined, heredocs kept whole with their command."""
    raw = body.splitlines()
    lines: list[str] = []
    i = 0
    while i < len(raw):
        line = raw[i]
        while line.endswith("\\") and i + 1 < len(raw):
            i += 1
            line = line[:-1] + " " + raw[i].strip()
        heredoc = HEREDOC.search(line)
        if heredoc and not line.lstrip().startswith("#"):
            end = heredoc["word"]
            block = [line]
            while i + 1 < len(raw):
                i += 1
                block.append(raw[i])
                if raw[i].strip() == end:
                    break
            line = "\n".join(block)
        lines.append(line)
        i += 1
    return lines


def is_command(line: str) -> bool:
    return line.startswith("mixsurrogate ")


def parse_block(lang: str, body: str, page: str, line: int) -> Example | None:
    """The steps of one fenced block, or None when it shows no ``mixsurrogate`` command."""
    example = Example(page, line)
    console = lang == "console"
    lines = logical_lines(body)
    for text in lines:
        stripped = text.strip()
        if needs := NEEDS.match(stripped):
            example.needs = needs["what"].strip()
        elif SLOW.match(stripped):
            example.slow = True
    for text in lines:
        stripped = text.strip()
        if console:
            if stripped.startswith("$ "):
                command = stripped[2:].strip()
                kind = "cli" if is_command(command) else "shell"
                example.steps.append(Step(kind, command))
            elif (error := EXPECTED_ERROR.match(stripped)) and example.steps:
                if example.steps[-1].error is None:
                    example.steps[-1].error = error["message"]
            continue
        if not stripped:
            continue
        if stripped.startswith("#"):
            error = EXPECTED_ERROR.match(stripped)
            if error and example.steps and example.steps[-1].kind == "cli":
                example.steps[-1].error = error["message"]
            continue
        kind = "cli" if is_command(stripped) else "shell"
        example.steps.append(Step(kind, text))
    if not any(is_command(step.text.strip()) for step in example.steps):
        return None
    return example


def collect() -> list[Example]:
    examples = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for fence in FENCE.finditer(text):
            if fence["lang"] not in LANGUAGES:
                continue
            line = text.count("\n", 0, fence.start()) + 1
            body = "\n".join(s[len(fence["indent"]) :] for s in fence["body"].splitlines())
            example = parse_block(fence["lang"], body, str(page.relative_to(ROOT)), line)
            if example is not None:
                examples.append(example)
    return examples


EXAMPLES = collect()


def params() -> list:
    out = []
    for example in EXAMPLES:
        marks = []
        if example.needs:
            marks.append(pytest.mark.skip(reason=f"needs {example.needs}"))
        if example.slow:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(example, id=example.id, marks=marks))
    return out


def without_comment(command: str) -> str:
    """The command with a trailing ``# ...`` comment removed (shlex knows what is quoted)."""
    return shlex.join(shlex.split(command, comments=True))


def needs_shell(command: str) -> bool:
    """Expansions (``$``, backquotes) or an unquoted operator (``|``, ``>``, ``;``, ``&&``)."""
    if "$" in command or "`" in command:
        return True
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.commenters = "#"
    return any(set(token) <= SHELL_OPERATORS for token in lexer)


def run_cli(command: str) -> tuple[int, str]:
    """Run ``mixsurrogate ARGS`` in this process, or in bash when it needs the shell."""
    args = shlex.split(command, comments=True)[1:]
    if needs_shell(command) or "--jobs" in args:
        return run_shell(command)
    result = CliRunner().invoke(main, args, prog_name="mixsurrogate")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def run_shell(script: str) -> tuple[int, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT_S,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def repo_like(tmp_path, monkeypatch) -> Path:
    """A fresh folder where the docs' repository-relative paths (package data, bench) resolve."""
    (tmp_path / "mixsurrogate").mkdir()
    (tmp_path / "mixsurrogate" / "data").symlink_to(ROOT / "mixsurrogate" / "data")
    (tmp_path / "bench").symlink_to(ROOT / "bench")
    # commands that keep a temporary folder for the user (the demo's plots) keep it in here
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_docs_have_examples_to_run():
    """The parser finds the examples (a broken fence pattern would make every test vanish)."""
    pages = {example.page for example in EXAMPLES}
    assert "README.md" in pages
    assert any(page.startswith("docs/how-to/") for page in pages)
    assert sum(not example.needs for example in EXAMPLES) >= 10


def test_parse_block_reads_steps_errors_and_directives():
    body = (
        "# needs: gpu\n"
        "cat > a.csv <<'EOF'\nx\nEOF\n"
        "mixsurrogate fit a.csv \\\n    -p linear   # a comment\n"
        "mixsurrogate fit missing.csv\n"
        "# Error: missing.csv: no such runs log\n"
    )
    example = parse_block("bash", body, "page.md", 1)
    assert example.needs == "gpu"
    assert [s.kind for s in example.steps] == ["shell", "cli", "cli"]
    assert example.steps[0].text == "cat > a.csv <<'EOF'\nx\nEOF"
    assert without_comment(example.steps[1].text) == "mixsurrogate fit a.csv -p linear"
    assert example.steps[2].error == "missing.csv: no such runs log"
    assert not needs_shell("mixsurrogate cv a.csv --train-where 'params<1e7'  # a > b")
    assert needs_shell("mixsurrogate fit a.csv > out.txt")
    assert needs_shell('mixsurrogate runs train c m.csv r.csv --shard "${I}/${N}"')
    console = parse_block("console", "$ mixsurrogate fit x.csv\nError: x.csv: no such\n", "p", 1)
    assert console.steps[0].error == "x.csv: no such"
    assert parse_block("bash", "python3 -m venv .venv && mixsurrogate demo\n", "p", 1) is None


@pytest.mark.parametrize("example", params())
def test_docs_example_runs(example: Example, repo_like: Path):
    for step in example.steps:
        if step.kind == "cli":
            code, output = run_cli(step.text)
        else:
            code, output = run_shell(step.text)
        shown = f"{example.id}: {step.text}\n--- output ---\n{output}"
        if step.error is None:
            assert code == 0, shown
        else:
            assert code != 0, f"expected the error {step.error!r}\n{shown}"
            assert " ".join(step.error.split()) in " ".join(output.split()), shown
