"""Program and model text on its way to a terminal, a JUnit file or a step summary.

What a program prints, raises or is made of reaches people's terminals and CI pages. There it must be
well-formed and inert: lone surrogates and undecodable bytes become visible escapes (``\\ud800``), and control
characters other than newline and tab are escaped (``\\x1b``), so no escape sequence (window title, clipboard
write, alternate screen, clear screen), carriage return or NUL takes effect, nor a bidirectional override
reorders what is shown. The JSON report keeps the exact text (JSON escapes it); files are written so that a
lone surrogate can never stop a report from being written.
"""

from __future__ import annotations

import json
from typing import Any

_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0))}
#: Bidirectional overrides and isolates (the "Trojan Source" characters): shown, not obeyed.
_ESCAPES.update({c: f"\\u{c:04x}" for c in (0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))})


def well_formed(text: str) -> str:
    """``text`` with lone surrogates as visible escapes: encodable as UTF-8, whatever it held."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def printable(text: str) -> str:
    """``text`` safe for a terminal or a CI page: well-formed, every control character escaped but
    ``\\n`` and ``\\t``."""
    return well_formed(text).translate(_ESCAPES)


def json_line(obj: Any, **kwargs: Any) -> str:
    """One JSON text, readable UTF-8 where it can be, ASCII escapes where the text holds lone surrogates
    (which UTF-8 cannot carry): exact either way."""
    text = json.dumps(obj, ensure_ascii=False, **kwargs)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, **kwargs)
    return text
