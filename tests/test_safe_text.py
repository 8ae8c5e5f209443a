"""Program and model text on its way out: lone surrogates and control characters (window title, clipboard
write, alternate screen, clear screen, carriage return, NUL, bidirectional overrides) from completions,
program output, exception messages and exception class names, through the terminal, JUnit, the step
summary, the JSON report and the HTML page: every report is written, none carries a live control character,
the JSON keeps the exact text."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from plugin_support import problems, write_jsonl

from pytest_humaneval.safe_text import json_line, printable, well_formed

#: What a terminal obeys: escape sequences (OSC 0 title, OSC 52 clipboard, alternate screen, clear), a
#: carriage return that overwrites a line, NUL, a bidirectional override.
HOSTILE = "\x1b]0;pwned\x07 \x1b]52;c;cHduZWQ=\x07 \x1b[?1049h \x1b[2J \rPASSED \x00 \u202e!dessap"
LIVE = re.compile("[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def test_printable_escapes_every_control_character_but_newline_and_tab() -> None:
    assert printable("a\tb\nc") == "a\tb\nc"
    shown = printable(HOSTILE)
    assert not LIVE.search(shown)
    assert (
        "\\x1b]0;pwned\\x07" in shown and "\\x0dPASSED" in shown and "\\x00" in shown and "\\u202e" in shown
    )
    assert printable("bad \ud800 surrogate") == "bad \\ud800 surrogate"
    assert well_formed("plain ✓") == "plain ✓"


def test_json_line_is_exact_and_always_encodable() -> None:
    for text in ("plain ✓", "lone \ud800 surrogate", HOSTILE):
        line = json_line({"t": text})
        line.encode("utf-8")
        assert json.loads(line) == {"t": text}
    assert json_line({"t": "✓"}) == '{"t": "✓"}'  # readable where it can be (cache keys unchanged)


def test_hostile_text_through_every_report(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = problems()
    body = "    return None\n"
    rows = [
        # a lone surrogate in the program's exception (made at run time: one in the source cannot compile)
        {"task_id": p[0]["task_id"], "completion": "    raise ValueError(chr(0xD800) + ' x')\n"},
        # control sequences printed, and in the exception message
        {
            "task_id": p[1]["task_id"],
            "completion": f"    print({HOSTILE!r})\n    raise RuntimeError({HOSTILE!r})\n",
        },
        # control sequences in the exception's class name (the program names its own classes)
        {
            "task_id": p[2]["task_id"],
            "completion": f"    raise type({HOSTILE!r}, (Exception,), {{}})('boom')\n",
        },
        {"task_id": p[3]["task_id"], "completion": body + f"# {HOSTILE}\n"},
        # a lone surrogate in the completion itself (a model's answer can hold one; it does not compile)
        {"task_id": p[3]["task_id"], "completion": "    # \ud800\n" + body},
    ]
    completions = write_jsonl(pytester.path / "hostile.jsonl", rows)
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--color=no",
        "--humaneval-debug",
        f"--humaneval-completions={completions}",
        "--humaneval-report=report.json",
        "--junitxml=junit.xml",
        "-o",
        "junit_logging=all",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    terminal = result.stdout.str() + result.stderr.str()
    assert not LIVE.search(terminal), [m.group() for m in LIVE.finditer(terminal)][:5]
    assert "\\x1b]0;pwned\\x07" in terminal, "the program's output is shown, escaped"
    junit = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    ET.fromstring(junit)
    assert not LIVE.search(junit)
    assert not LIVE.search(summary.read_text(encoding="utf-8"))
    html = (pytester.path / "report.html").read_text(encoding="utf-8", errors="strict")
    assert "\x1b" not in html and "\x00" not in html
    report = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
    assert len(report["results"]) == 8 and report["passed"] == 0  # 4 problems x 2 samples (3 not given)
    reasons = {r["task_id"]: r["reason"] for r in report["results"] if r["sample"] == 0}
    assert "\ud800" in reasons[p[0]["task_id"]], "the JSON report keeps the exact text"
    assert "\x1b]0;pwned" in reasons[p[1]["task_id"]]
    assert {r["status"] for r in report["results"]} <= {"error", "failed", "no_code", "syntax_error"}
    surrogate_source = next(
        r for r in report["results"] if r["task_id"] == p[3]["task_id"] and r["sample"] == 1
    )
    assert surrogate_source["status"] in ("error", "syntax_error"), surrogate_source  # as Python says it
