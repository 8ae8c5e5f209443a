"""The plugin's index of pytest's private teardown-report lookup: same answers as pytest's own scan on
the pytest running these tests, and it steps aside by itself when the method is not what it expects."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Literal

import pytest
from _pytest.reports import TestReport
from _pytest.terminal import TerminalReporter

from pytest_humaneval.activation import index_teardown_reports

When = Literal["setup", "call", "teardown"]


def make_report(nodeid: str, when: When) -> TestReport:
    return TestReport(nodeid, ("x.py", 0, "where " + nodeid), {}, "passed", None, when, [])


class FakeReporter:
    """The parts of TerminalReporter the lookup uses; pytest's own method bound to it."""

    _get_teardown_reports: Callable[..., list[TestReport]] = TerminalReporter._get_teardown_reports

    def __init__(self, reports: list[TestReport]) -> None:
        self.stats: dict[str, list[Any]] = {"": reports}

    def getreports(self, name: str) -> list[Any]:
        return TerminalReporter.getreports(self, name)  # type: ignore[arg-type]


def reports_for(names: list[str]) -> list[TestReport]:
    whens: tuple[When, ...] = ("setup", "call", "teardown")
    return [make_report(n, when) for n in names for when in whens]


def key_of(report: TestReport) -> Any:
    """What pytest's summary passes for a report: its NodeId from pytest 9.2, the nodeid string before."""
    return report.id if hasattr(type(report), "id") else report.nodeid


def test_index_answers_as_pytest_does() -> None:
    reports = reports_for([f"t.py::test_{i}" for i in range(50)])
    reporter = FakeReporter(reports)
    index_teardown_reports(reporter)
    assert "_get_teardown_reports" in vars(reporter)
    for report in reports:
        expected = TerminalReporter._get_teardown_reports(reporter, key_of(report))  # type: ignore[arg-type]
        assert expected, "pytest's own scan finds the teardown report"
        assert reporter._get_teardown_reports(key_of(report)) == expected
    assert "_get_teardown_reports" in vars(reporter), "a matching index stays in place"
    reports.extend(reports_for(["t.py::late"]))  # reports added after the index was built
    late = reports[-1]
    assert reporter._get_teardown_reports(key_of(late)) == [late]


def test_steps_aside_when_pytest_matches_differently() -> None:
    """A pytest whose lookup matches on something the index does not key by (here: the report's
    location) gets its own method back, and every answer is pytest's."""
    reports = reports_for(["t.py::a", "t.py::b"])

    def by_location(self: Any, where: str) -> list[Any]:
        return [r for r in self.getreports("") if r.when == "teardown" and r.location[2] == where]

    reporter = FakeReporter(reports)
    reporter._get_teardown_reports = by_location.__get__(reporter)
    original = reporter._get_teardown_reports
    index_teardown_reports(reporter)
    assert reporter._get_teardown_reports("where t.py::a") == [reports[2]]
    assert reporter._get_teardown_reports == original, "pytest's method is back"


@pytest.mark.parametrize(
    "method",
    [
        lambda self, nodeid, extra: [],  # another signature
        None,  # no such method
        "not callable",
    ],
)
def test_leaves_unexpected_methods_alone(method: Any) -> None:
    reporter = SimpleNamespace(stats={"": []}, getreports=lambda name: [])
    if method is not None:
        reporter._get_teardown_reports = method.__get__(reporter) if callable(method) else method
    before = dict(vars(reporter))
    index_teardown_reports(reporter)
    assert vars(reporter) == before
    index_teardown_reports(None)  # no terminal reporter (-p no:terminal)
