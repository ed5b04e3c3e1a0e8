"""The package's architecture, read from its source with ``ast`` (nothing is imported).

Data flows one way (DESIGN.md): corpus -> experts -> runs log + score store -> MDE features ->
predictors -> evaluation / proposal / search -> cli. These tests keep it so: no import cycle
between modules, no wing importing one it may not, the library never importing the CLI, the
surrogate side never importing torch training code, no import inside a function to dodge a
cycle, no module over 450 lines, a small package root, and the runs log's column prefixes
spelled in one place.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mixsurrogate"
MAX_LINES = 450
MAX_ROOT_MODULES = 8  # .py files directly in mixsurrogate/, __init__.py included

#: the modules at the package root that are wings of their own; the others are the core
ROOT_WINGS = {"objective", "demo", "scores"}

#: wing -> the wings it may import besides itself, as the code legitimately uses them.
#: The import order is not quite the data flow: experts *write* the runs log and the score store,
#: so they import those formats (runs, mde); the surrogate side never imports experts.
ALLOWED: dict[str, set[str]] = {
    # errors, files (atomic writes, manifests, path safety), simplex, cpu, __init__ (__version__)
    "core": set(),
    "corpus": {"core"},  # torch-free corpus building
    "runs": {"core"},  # the runs log and its importers
    "objective": {"core", "runs"},  # objective specs name the log's loss sets
    "mde": {"core", "runs"},  # score store, engine, feature maps
    "experts": {"core", "corpus", "runs", "mde"},  # training writes runs and score stores
    "predictors": {"core", "runs", "mde"},
    "evaluation": {"core", "objective", "runs", "mde", "predictors"},
    # proposal and search are siblings on the top floor: the proposal's optimiser and record
    # serve the search; the robust recommenders draw candidates from search/. proposal reads a
    # corpus's token counts for the KL prior's natural mixture (corpus is torch-free).
    "proposal": set("core corpus objective runs mde predictors evaluation search".split()),
    "search": {"core", "objective", "runs", "mde", "predictors", "evaluation", "proposal"},
    "demo": {"core", "objective", "runs", "mde", "predictors", "evaluation", "proposal"},
    "scores": {"mde"},  # the deprecated shim of mde.store
    "presets": set(),  # package data
    # the CLI drives everything
    "cli": set(
        "core corpus experts objective runs mde predictors evaluation proposal search".split()
    )
    | {"demo", "presets"},
}
SURROGATE_SIDE = {"runs", "mde", "predictors", "evaluation", "proposal", "search"}

#: dependencies a module outside cli/ may import inside a function: optional ones, and heavy
#: ones that would otherwise make a light module slow to import
LAZY_IMPORTS = {
    "pyarrow": "optional extra [tables]: Parquet / Arrow corpus input",
    "transformers": "seconds to import; only `experts import-hf` and its scoring need it",
    "scipy.stats": "0.3-1 s to import; simplex.py is on every command's path",
    "cvxpy": "seconds to import; only the KL prior's convex solve needs it",
    "torch": "seconds to import; hf_import checks model folders (`experts import`) without it",
    "tomllib": "standard library from Python 3.11; on 3.10 only a TOML objective file fails",
}

#: files other helpers were rewriting when these rules came in: rule -> modules that may still
#: break it. The lead empties this after merging their branches.
PENDING: dict[str, set[str]] = {}


@dataclass
class Module:
    name: str  # dotted, without the leading "mixsurrogate."; "" for the package itself
    path: Path
    tree: ast.Module
    top_imports: set[str] = field(default_factory=set)  # mixsurrogate modules, module level
    all_imports: set[str] = field(default_factory=set)  # ... anywhere but TYPE_CHECKING
    function_imports: list[tuple[int, str]] = field(default_factory=list)  # (line, module)

    @property
    def wing(self) -> str:
        first = self.name.split(".")[0]
        if "." in self.name or (first and (PACKAGE / first).is_dir()):
            return first
        return first if first in ROOT_WINGS else "core"

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"


def _modules() -> dict[str, Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        modules[name] = Module(name, path, ast.parse(path.read_text(encoding="utf-8")))
    for module in modules.values():
        _read_imports(module, modules)
    return modules


def _targets(node: ast.Import | ast.ImportFrom, module: Module, modules: dict) -> list[str]:
    """The package modules an import statement loads (names without ``mixsurrogate.``)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
        return [n.removeprefix("mixsurrogate").lstrip(".") for n in names if _ours(n)]
    if node.level:
        base = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
        base = [p for p in base if p][: max(0, len([p for p in base if p]) - (node.level - 1))]
        target = ".".join(base + ([node.module] if node.module else []))
    elif _ours(node.module or ""):
        target = (node.module or "").removeprefix("mixsurrogate").lstrip(".")
    else:
        return []
    found = []
    for alias in node.names:
        sub = f"{target}.{alias.name}".lstrip(".")
        found.append(sub if sub in modules else target)  # a submodule, or a name in target
    return found


def _ours(name: str) -> bool:
    return name == "mixsurrogate" or name.startswith("mixsurrogate.")


def _read_imports(module: Module, modules: dict) -> None:
    def visit(nodes: list[ast.stmt], in_function: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue  # never run: no cycle, no cost
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                ours = _targets(node, module, modules)
                module.all_imports.update(ours)
                if in_function:
                    name = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    name = "." * getattr(node, "level", 0) + (name or "")
                    module.function_imports.append((node.lineno, name))
                else:
                    module.top_imports.update(ours)
                continue
            inner = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or in_function
            for child_field in ("body", "orelse", "finalbody", "handlers", "cases"):
                children = getattr(node, child_field, None)
                if isinstance(children, list):
                    visit([c for c in children if isinstance(c, ast.AST)], inner)

    visit(module.tree.body, False)


MODULES = _modules()


def _pending(rule: str, name: str) -> bool:
    return name in PENDING.get(rule, set())


def _lazy_allowed(imported: str) -> bool:
    """Whether an import inside a function loads a dependency of ``LAZY_IMPORTS``."""
    return any(imported == d or imported.startswith(d + ".") for d in LAZY_IMPORTS)


def _lines(module: Module) -> int:
    return len(module.path.read_text(encoding="utf-8").splitlines())


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in graph:
                continue
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_package_is_read() -> None:
    assert {"runs.log", "files", "predictors", "cli.main"} <= set(MODULES)
    assert "runs.log" in MODULES["runs.importers"].top_imports
    assert MODULES["runs.log"].wing == "runs" and MODULES["files"].wing == "core"
    assert MODULES["objective"].wing == "objective" and MODULES[""].wing == "core"


def test_imports_are_read_by_where_they_run(tmp_path: Path) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..proposal import propose\n"
        "from ..runs.log import RunsLog\n"
        "def f():\n    import yaml\n    from .registry import make_predictor\n"
    )
    module = Module("predictors.m", tmp_path / "m.py", ast.parse(source))
    _read_imports(module, MODULES)
    assert module.top_imports == {"runs.log"}
    assert module.all_imports == {"runs.log", "predictors.registry"}
    assert [name for _, name in module.function_imports] == ["yaml", ".registry"]


def test_cycles_are_found() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules() -> None:
    graph = {name: {t for t in m.top_imports if t != name} for name, m in MODULES.items()}
    assert _cycles(graph) == []


def test_every_wing_is_known() -> None:
    assert {m.wing for m in MODULES.values()} <= set(ALLOWED)
    for wing, others in ALLOWED.items():
        assert others <= set(ALLOWED), wing


def test_no_wing_imports_a_higher_one() -> None:
    bad = [
        f"{name} ({m.wing}) imports {target} ({MODULES[target].wing})"
        for name, m in MODULES.items()
        for target in sorted(m.all_imports)
        if target in MODULES
        and MODULES[target].wing != m.wing
        and MODULES[target].wing not in ALLOWED[m.wing]
    ]
    assert bad == []


def test_the_library_never_imports_the_cli() -> None:
    bad = [
        f"{name} imports {target}"
        for name, m in MODULES.items()
        if m.wing != "cli"
        for target in sorted(m.all_imports)
        if target == "cli" or target.startswith("cli.")
    ]
    assert bad == []


def test_the_surrogate_side_never_imports_training_code() -> None:
    bad = [
        f"{name} imports {target}"
        for name, m in MODULES.items()
        if m.wing in SURROGATE_SIDE
        for target in sorted(m.all_imports)
        if target == "experts" or target.startswith("experts.")
    ]
    assert bad == []
    assert not {"experts"} & set().union(*(ALLOWED[w] for w in SURROGATE_SIDE))


def test_no_import_inside_a_function_outside_the_cli() -> None:
    bad = [
        f"{m.path.relative_to(PACKAGE.parent)}:{line}: {imported}"
        for name, m in MODULES.items()
        if m.wing != "cli" and not _pending("function_import", name)
        for line, imported in m.function_imports
        if not _lazy_allowed(imported)
    ]
    assert bad == []


def test_no_module_over_the_size_limit() -> None:
    sizes = {name: _lines(m) for name, m in MODULES.items()}
    bad = {n: s for n, s in sizes.items() if s > MAX_LINES and not _pending("size", n)}
    assert bad == {}


def test_a_small_package_root() -> None:
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


def _prefix_literals(tree: ast.Module) -> list[int]:
    """Lines of string literals (or f-strings) that start with a runs-log column prefix."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            first = node.values[0] if node.values else None
            text = first.value if isinstance(first, ast.Constant) else ""
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        if text.startswith(("w:", "loss:")):
            lines.append(node.lineno)
    return sorted(set(lines))


@pytest.mark.parametrize(
    "source, count",
    [('x = "w:" + d', 1), ('x = f"loss:{t}"', 1), ('x = "a w:b"', 0), ("x = WEIGHT_PREFIX", 0)],
)
def test_prefix_literals_are_found(source: str, count: int) -> None:
    assert len(_prefix_literals(ast.parse(source))) == count


def test_runs_log_prefixes_only_in_runs() -> None:
    bad = [
        f"{m.path.relative_to(PACKAGE.parent)}:{line}"
        for name, m in MODULES.items()
        if m.wing != "runs" and not _pending("prefix", name)
        for line in _prefix_literals(m.tree)
    ]
    assert bad == []


def test_pending_exceptions_are_still_needed() -> None:
    """An entry of PENDING that its module no longer needs is dropped, so the list only shrinks."""
    needed = {
        "function_import": {
            n
            for n, m in MODULES.items()
            if m.wing != "cli" and not all(_lazy_allowed(i) for _, i in m.function_imports)
        },
        "size": {n for n, m in MODULES.items() if _lines(m) > MAX_LINES},
        "prefix": {n for n, m in MODULES.items() if _prefix_literals(m.tree)},
    }
    stale = {rule: names - needed[rule] for rule, names in PENDING.items()}
    assert all(not names for names in stale.values()), stale
