"""Python syntax highlighting for the HTML report, with Pygments' lexer and its style's CSS.

Pygments' HtmlFormatter wraps every token, whitespace included, in a span: a completion grows ~7x. A
report of 16,400 programs holds that many completions, so this writes spans only around tokens that
get a colour and merges neighbours of one class (~3x), with Pygments' own class names and style.
"""

from __future__ import annotations

import functools
import html

from pygments import lex
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer
from pygments.token import STANDARD_TYPES, Text, _TokenType

#: Token types shown as plain text (no span): they have no colour in the style.
_PLAIN = ("", "w", "n", "p", "o")
_LEXER = PythonLexer(stripnl=False, ensurenl=False)


def css(scope: str = ".code") -> str:
    """The style's rules for the classes :func:`highlight` writes, under ``scope``."""
    rules = HtmlFormatter(style="default").get_style_defs(scope).splitlines()
    return "\n".join(r for r in rules if r.startswith(scope + " ."))  # not its pre/line-number rules


def _css_class(ttype: _TokenType) -> str:
    while ttype not in STANDARD_TYPES:
        ttype = ttype.parent
    name: str = STANDARD_TYPES[ttype]  # Pygments ships no type hints
    return name


@functools.lru_cache(maxsize=4096)
def highlight(code: str) -> str:
    """``code`` as escaped HTML with ``<span class=..>`` around coloured tokens (one highlighting per
    distinct text: many samples of a run are identical)."""
    out: list[str] = []
    current = ""
    buf: list[str] = []
    for ttype, value in lex(code, _LEXER):
        cls = _css_class(ttype) if ttype is not Text else ""
        if cls in _PLAIN:
            cls = ""
        if cls != current and buf:
            out.append(_span(current, "".join(buf)))
            buf = []
        current = cls
        buf.append(value)
    if buf:
        out.append(_span(current, "".join(buf)))
    return "".join(out)


def _span(cls: str, text: str) -> str:
    escaped = html.escape(text, quote=False)
    return f'<span class="{cls}">{escaped}</span>' if cls else escaped
