"""Step 6 of the data path, on the controller (or in the Python API): the verdicts as reports.

:mod:`.report` aggregates the verdicts into pass@k and the JSON report (its shape: :mod:`.schema`) and
reads it back as the terminal summary, the step summary and the JUnit properties; :mod:`.provenance` says
where the numbers came from; :mod:`.html` renders the HTML page (and pytest-html's extras).

This package's face holds the report's types only: every step that writes a part of the report imports
them, so importing them loads none of the reporting code.
"""

from __future__ import annotations

from .schema import (
    Baseline,
    Coverage,
    Efficiency,
    Judge,
    PassAtK,
    Provenance,
    Report,
    ResultRow,
    RunExtras,
    RunInfo,
    Scores,
    TimeLimitsRecord,
)

__all__ = [
    "Baseline",
    "Coverage",
    "Efficiency",
    "Judge",
    "PassAtK",
    "Provenance",
    "Report",
    "ResultRow",
    "RunExtras",
    "RunInfo",
    "Scores",
    "TimeLimitsRecord",
]
