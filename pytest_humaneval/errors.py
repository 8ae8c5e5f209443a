"""The one exception type users see: a message that names the cause and the fix."""

from __future__ import annotations


class HumanEvalError(Exception):
    """A problem with the user's input or environment, shown without a traceback.

    The plugin turns it into ``pytest.UsageError`` so pytest prints one ``ERROR:`` line.
    """


def clip(text: object, limit: int = 300) -> str:
    """``text`` on one line, cut to ``limit`` characters: the part of a cause a message quotes."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def describe(error: BaseException, limit: int = 300, typed: bool = False) -> str:
    """An exception as one short line: the daemon's own explanation where it gives one (Docker SDK errors
    carry ``explanation``), else its message, else its type's name; ``typed`` puts the type first."""
    text = getattr(error, "explanation", None) or str(error)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    line = clip(text, limit) or type(error).__name__
    return f"{type(error).__name__}: {line}" if typed else line
