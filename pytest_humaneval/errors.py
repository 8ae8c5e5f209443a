"""The one exception type users see: a message that names the cause and the fix."""

from __future__ import annotations


class HumanEvalError(Exception):
    """A problem with the user's input or environment, shown without a traceback.

    The plugin turns it into ``pytest.UsageError`` so pytest prints one ``ERROR:`` line.
    """
