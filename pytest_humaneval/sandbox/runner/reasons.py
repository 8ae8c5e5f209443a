"""How a verdict explains itself: clipped messages and where in the solution or the test it happened."""

import traceback


def clip(text, n=300):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


def first_frame(tb, filename):
    """The innermost traceback entry in ``filename`` (``<solution>`` or ``<test>``)."""
    found = None
    for fr in traceback.extract_tb(tb):
        if fr.filename == filename:
            found = fr
    return found


def where(tb, files=("<solution>", "<test>")):
    """Where an exception came from: the innermost line of the first of ``files`` it passed through."""
    for name in files:
        fr = first_frame(tb, name)
        if fr is not None:
            return f" ({name.strip('<>')} line {fr.lineno}: {(fr.line or '').strip()})"
    return ""


def exception_text(e):
    """``e``'s message as a verdict shows it (a program's own ``__str__`` may raise: then its type alone)."""
    if isinstance(e, SystemExit):
        return f"exit code {e.code!r}"
    try:
        return clip(e, 200)
    except BaseException:
        return ""
