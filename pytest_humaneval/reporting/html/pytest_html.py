"""Worker side: put each program's verdict and completion in pytest-html's report (``--html=PATH``).

pytest-html (when installed and asked for) shows ``report.extras`` in each test's row; the extra is built
where the item ran, so it travels to the xdist controller with the report. Nothing is added otherwise:
reports stay small.
"""

from __future__ import annotations

import html

import pytest

from ...verdict import Result


def pytest_html_wanted(config: pytest.Config) -> bool:
    """pytest-html is active and writes a report in this run."""
    return bool(getattr(config.option, "htmlpath", None)) and config.pluginmanager.hasplugin("html")


def add_pytest_html_extras(item: pytest.Item, report: pytest.TestReport, result: Result) -> None:
    if not pytest_html_wanted(item.config):
        return
    from pytest_html import extras  # installed: its plugin is active

    report.extras = [*getattr(report, "extras", []), extras.html(extra_html(result))]  # type: ignore[attr-defined]


def extra_html(result: Result) -> str:
    """The verdict, the completion and, for a failure, the program's output, as a block of HTML."""
    parts: list[str] = [
        '<div class="humaneval">',
        f"<p><b>{html.escape(result.task_id)} [s{result.sample}] {html.escape(result.status)}</b>"
        f" ({result.duration_s:.3f} s){': ' + html.escape(result.reason) if result.reason else ''}</p>",
        "<p>completion:</p>",
        f'<pre class="humaneval-completion">{html.escape(result.completion) or "(empty)"}</pre>',
    ]
    if result.output:
        parts.append(
            f'<p>program output:</p><pre class="humaneval-output">{html.escape(result.output)}</pre>'
        )
    parts.append("</div>")
    return "".join(parts)
