"""The package's layout holds: no import cycles, the controller never imports the worker's items, and the
sandbox runner (shipped into containers as it is) imports nothing but the standard library.

The import graph is read from the source with :mod:`ast` (module-level imports; ``if TYPE_CHECKING:`` blocks
left out, as they never run), so a cycle is found even when the import order happens to hide it.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest_humaneval

PACKAGE = Path(pytest_humaneval.__file__).resolve().parent
NAME = "pytest_humaneval"


def modules() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (path, is a package)}`` for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = [NAME, *path.relative_to(PACKAGE).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = modules()


@functools.cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package's modules an import statement runs (a submodule's parents included)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = module.split(".") if is_package else module.split(".")[:-1]
        if node.level > 1:
            base = base[: len(base) - (node.level - 1)]
        prefix = ".".join(base) if node.level else ""
        origin = ".".join(p for p in (prefix, node.module or "") if p)
        names = [origin] + [f"{origin}.{alias.name}" for alias in node.names]
    running = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
    out = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in MODULES and candidate not in running:
                out.add(candidate)
    return out


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not in functions or classes, nor under TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(statements: list[ast.stmt]) -> None:
        for s in statements:
            if isinstance(s, (ast.Import, ast.ImportFrom)):
                found.append(s)
            elif isinstance(s, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(s.test):
                    walk(s.body)
                    walk(s.orelse)
            elif isinstance(s, ast.Try):
                walk(s.body + s.orelse + s.finalbody + [x for h in s.handlers for x in h.body])
            elif isinstance(s, ast.With):
                walk(s.body)

    walk(tree.body)
    return found


@functools.cache
def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, (path, is_package) in MODULES.items():
        tree = parsed(path)
        edges[module] = set().union(*(imported(module, is_package, n) for n in module_level_imports(tree)))
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def reaches(edges: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        v = todo.pop()
        if v == goal:
            return True
        if v not in seen:
            seen.add(v)
            todo.extend(edges[v])
    return False


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    edges = graph()
    assert len(edges) > 50, "the package's modules were not found"
    assert cycles(edges) == []


def test_no_function_level_import_dodges_a_cycle() -> None:
    """A lazy import is for an optional or heavy dependency, never to hide a cycle: made at module level,
    none would close one."""
    edges = graph()
    dodges = []
    for module, (path, is_package) in MODULES.items():
        for fn in ast.walk(parsed(path)):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    for target in imported(module, is_package, node) - {module}:
                        if reaches(edges, target, module):
                            dodges.append(f"{module}.{fn.name} -> {target}")
    assert dodges == []


def test_the_controller_never_imports_the_worker() -> None:
    """The controller's side reaches the worker's state only through run_state, never through items."""
    edges = graph()
    for controller_side in (f"{NAME}.controller", f"{NAME}.reporting.html.programs"):
        assert not reaches(edges, controller_side, f"{NAME}.items"), controller_side


def test_the_runner_imports_only_the_standard_library() -> None:
    """numpy only inside the function that rebuilds an array: a numpy value crossed, so numpy is there."""
    runner = PACKAGE / "sandbox" / "runner"
    outside = []
    for path in sorted(runner.glob("*.py")):
        for node in ast.walk(parsed(path)):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                tops = [(node.module or "").split(".")[0]]
            else:
                continue
            outside += [f"{path.name}: {t}" for t in tops if t not in sys.stdlib_module_names]
    assert outside == ["crossing.py: numpy"]
