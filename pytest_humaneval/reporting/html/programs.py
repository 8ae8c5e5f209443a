"""Controller side: what the HTML report shows of each program besides its verdict.

The verdicts arrive on test reports, kept small across xdist: no completion, and a failing program's
output only in its report section. The rest is already on the controller: the completions file the
workers read (completion, reasoning, and from generation the latency, tokens and finish reason of
each sample) and the failing reports' sections, whose text this reads back when the run ends.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ...completions import answer_of
from ...datasets.dataset import Dataset, iter_jsonl
from ...errors import HumanEvalError
from ...run_state import SECTION_HEAD, SECTION_NAME, output_from_section
from ...verdict import Result
from ..schema import Report

#: (task id, sample, mode): the mode is "think" or "no-think" with --think=both, else None.
Key = tuple[str, int, str | None]


@dataclass
class Program:
    """One sample's answer: what the model wrote and, from generation, how it came."""

    completion: str = ""
    #: The completion is a whole program (EvalPlus ``solution``), not a continuation of the prompt.
    full_program: bool = False
    reasoning: str = ""
    latency_s: float | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


def load_programs(
    source: str, dataset: Dataset, modes: dict[str, str] | None = None
) -> tuple[dict[Key, Program], str | None]:
    """The answers of a run's completions ('canonical' or the file the workers read; with --think=both,
    each mode's file), and why there are none (a file removed since the run started) instead of an error
    at the very end of a run."""
    if modes:
        programs: dict[Key, Program] = {}
        problems = []
        for mode, path in modes.items():
            found, missing = _load_programs(path, dataset, mode)
            programs.update(found)
            if missing:
                problems.append(missing)
        return programs, "; ".join(problems) or None
    return _load_programs(source, dataset, None)


def _load_programs(source: str, dataset: Dataset, mode: str | None) -> tuple[dict[Key, Program], str | None]:
    if source == "canonical":
        return {(p.task_id, 0, mode): Program(p.canonical_solution) for p in dataset}, None
    programs: dict[Key, Program] = {}
    seen: Counter[str] = Counter()
    try:
        for _, obj in iter_jsonl(Path(source)):
            task_id = obj.get("task_id")
            if not isinstance(task_id, str):
                continue
            index = obj.get("sample", seen[task_id])  # as completions.parse_completions numbers them
            seen[task_id] += 1
            programs[(task_id, index, mode)] = _program(obj)
    except HumanEvalError as e:
        return programs, str(e)
    return programs, None


def _program(obj: dict[str, Any]) -> Program:
    text, full = answer_of(obj)
    usage = obj.get("usage") or {}
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    latency = obj.get("latency_s")
    return Program(
        completion=str(text or ""),
        full_program=full,
        reasoning=str(obj.get("reasoning_content") or ""),
        latency_s=float(latency) if isinstance(latency, (int, float)) else None,
        completion_tokens=int(tokens) if isinstance(tokens, (int, float)) else None,
        finish_reason=obj.get("finish_reason") if isinstance(obj.get("finish_reason"), str) else None,
    )


def add_generation_fields(report: Report, programs: dict[Key, Program]) -> None:
    """Give each result of the JSON report its sample's latency, completion tokens and finish reason,
    where generation recorded them."""
    for r in report["results"]:
        p = programs.get((r["task_id"], r["sample"], r.get("mode")))
        if p is None:
            continue
        if p.latency_s is not None:
            r["latency_s"] = p.latency_s
        if p.completion_tokens is not None:
            r["completion_tokens"] = p.completion_tokens
        if p.finish_reason is not None:
            r["finish_reason"] = p.finish_reason


class ProgramOutputs:
    """The output of every program that printed, gathered from test reports as they arrive."""

    def __init__(self) -> None:
        self._sections: dict[Key, str] = {}
        self._passing: dict[Key, str] = {}

    def collect(self, report: pytest.TestReport, result: Result) -> None:
        key = (result.task_id, result.sample, result.mode)
        if result.output:  # a passing program that printed: its output came on the report itself
            self._passing[key] = result.output
        elif not result.passed:
            # The section object is the report's own (pytest keeps the reports): nothing is copied.
            text = next(
                (t for name, t in report.sections if name == SECTION_NAME and t.startswith(SECTION_HEAD)),
                None,
            )
            if text is not None:
                self._sections[key] = text

    def output(self, key: Key, completion: str) -> str:
        if key in self._passing:
            return self._passing[key]
        text = self._sections.get(key)
        if text is None:
            return ""
        found = output_from_section(text, completion)
        return text if found is None else found
