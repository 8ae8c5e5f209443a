"""``--humaneval-diagnose``, offline half: how close a failing program is to the canonical solution.

The similarity ignores names and formatting: both texts become Python token sequences in which every
identifier that is not a keyword, a builtin or an attribute is replaced by the order of its first
appearance (so ``total``/``acc`` and ``i``/``idx`` match), literals keep their kind and value,
comments, docstrings, blank lines and spacing are dropped, and indentation stays as INDENT/DEDENT
tokens (structure). The
score is rapidfuzz's normalised Levenshtein similarity of the two sequences: 1.0 for the same code,
close to 1 for renamed or reformatted code, low for unrelated code. Text that does not tokenize (an
unterminated string, say) falls back to words and punctuation marks.

Runs on the worker, next to the verdict; the judge (:mod:`.judge`) adds its answer on the controller.
"""

from __future__ import annotations

import builtins
import io
import keyword
import re
import tokenize
from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..datasets.dataset import Problem
from ..reporting.schema import ResultRow

#: Statuses whose program ran (or failed to compile): there is code to compare. The others
#: (no_code, truncated, generation_error) have none.
DIAGNOSED_STATUSES = ("failed", "error", "timeout", "crashed", "syntax_error")
KEEP_NAMES = frozenset(keyword.kwlist) | frozenset(dir(builtins))
SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_FALLBACK = re.compile(r"\w+|[^\w\s]")


def normalized_tokens(code: str) -> list[str]:
    """The code as a token sequence that ignores names, comments, docstrings and formatting."""
    names: dict[str, str] = {}
    out: list[str] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [_name(w, names) if w.isidentifier() else w for w in _FALLBACK.findall(code)]
    previous, docstring = tokenize.NEWLINE, False
    for i, tok in enumerate(tokens):
        kind = tok.type
        if kind in SKIP or (docstring and kind == tokenize.NEWLINE):
            docstring = False
            continue
        if kind == tokenize.STRING and previous in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            following = next((t.type for t in tokens[i + 1 :] if t.type not in SKIP), tokenize.NEWLINE)
            if following == tokenize.NEWLINE:  # a string statement: a docstring, with its line end
                docstring = True
                continue
        after_dot = out[-1:] == ["."]
        previous = kind
        if kind == tokenize.NAME:  # an attribute (``.lower``) is an API, not a name the code chose
            out.append(tok.string if after_dot else _name(tok.string, names))
        elif kind in (tokenize.INDENT, tokenize.DEDENT, tokenize.NEWLINE):
            out.append(tokenize.tok_name[kind])
        else:
            out.append(tok.string)
    return out


def _name(word: str, names: dict[str, str]) -> str:
    if word in KEEP_NAMES:
        return word
    return names.setdefault(word, f"<id{len(names)}>")


def similarity(code: str, reference: str) -> float:
    """0..1: how close ``code`` is to ``reference``, names and formatting aside."""
    from rapidfuzz.distance import Levenshtein

    a, b = normalized_tokens(code), normalized_tokens(reference)
    if not a and not b:
        return 1.0
    return round(float(Levenshtein.normalized_similarity(a, b)), 4)


def diagnose(problem: Problem, completion: str, full_program: bool, status: str) -> dict[str, Any] | None:
    """The offline diagnosis of one failing program: ``{"similarity"}`` (None without a reference), or
    None when there is no code to compare (no_code, truncated, generation_error)."""
    if status not in DIAGNOSED_STATUSES:
        return None
    if not problem.canonical_solution:
        return {"similarity": None}
    if full_program:  # a whole program: compare it with the whole reference program
        return {"similarity": similarity(completion, problem.prompt + problem.canonical_solution)}
    return {"similarity": similarity(completion, problem.canonical_solution)}


def count_diagnoses(results: Iterable[ResultRow]) -> dict[str, int]:
    """The report's ``diagnosis_counts``: failures by the judge's category; ``unusable`` where its answer
    could not be used, ``not_judged`` where no judge was asked (offline only)."""
    counts: Counter[str] = Counter()
    for r in results:
        d = r.get("diagnosis")
        if d:
            counts[d.get("category") or ("unusable" if d.get("judge_error") else "not_judged")] += 1
    return dict(counts.most_common())
