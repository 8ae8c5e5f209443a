"""Python source as the controller reads it: parse without raising, and the top-level statements a
program keeps (imports, definitions, assignments), each with its own text.

Shared by code extraction (the model's blocks) and completions files (the prompt's definitions that a
whole program, EvalPlus's ``solution``, may leave out).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Sequence

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
#: Top-level statements a program keeps; the rest (bare expressions such as ``print(...)``, asserts,
#: ``raise``) are examples that could fail the program for reasons unrelated to the solution.
KEPT = (
    ast.Import,
    ast.ImportFrom,
    *DEFINITIONS,
    ast.Assign,
    ast.AnnAssign,
    ast.AugAssign,
    ast.Try,
    ast.If,
    ast.With,
)


def parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: NUL bytes in the source
        return None


def compiles(code: str) -> bool:
    try:
        compile(code, "<completion>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


def kept_statements(tree: ast.Module) -> list[ast.stmt]:
    """The top-level statements of ``KEPT`` kinds, without ``if __name__ == "__main__"`` blocks."""
    return [n for n in tree.body if isinstance(n, KEPT) and not is_main_guard(n)]


def first_line(node: ast.stmt) -> int:
    """The line a statement starts on, its decorators included."""
    decorators: Sequence[ast.expr] = getattr(node, "decorator_list", ())
    return min([node.lineno, *(d.lineno for d in decorators)])


def segment(lines: list[str], node: ast.stmt) -> str:
    """The source lines of a top-level statement, its decorators included."""
    end = node.end_lineno or node.lineno
    return "\n".join(lines[first_line(node) - 1 : end]) + "\n"


def joined(parts: Iterable[str]) -> str:
    """Pieces of source one after another, a blank line between each, ending in one newline."""
    return "\n\n".join(part.rstrip("\n") for part in parts) + "\n"


def is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in {
        n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)
    }


def names_bound_by(node: ast.stmt) -> list[str]:
    """The names a top-level statement binds (definitions, imports, plain assignments)."""
    if isinstance(node, DEFINITIONS):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def future_imports_end(tree: ast.Module) -> int:
    """The last line of the ``from __future__`` imports that open a module (after its docstring), or 0.
    Such imports must stay first: code put in front of a program goes after this line."""
    end = 0
    for i, node in enumerate(tree.body):
        if i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module's docstring
        if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            break
        end = node.end_lineno or node.lineno
    return end
