"""The report's pure functions, directly: the interval, pass@k over tasks, the summary's counts, the
baseline comparison, and the completions parser (the plugin runs them end to end in test_plugin.py)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_humaneval.analysis.stats import wilson_interval
from pytest_humaneval.completions import coverage, parse_completions
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.reporting.report import compare_to_baseline, pass_at_ks, summarize
from pytest_humaneval.reporting.schema import Scores
from pytest_humaneval.verdict import Result

DEBUG = load_dataset("humaneval-4")


def test_wilson_interval() -> None:
    assert wilson_interval(0, 0) == (0.0, 0.0)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and 0.0 < wilson_interval(0, 10)[1] < 0.31
    assert wilson_interval(10, 10)[1] == 1.0 and 0.69 < wilson_interval(10, 10)[0] < 1.0


def test_pass_at_k_over_tasks_leaves_out_the_harness_s_failures() -> None:
    results = [
        Result("T/0", 0, "passed"),
        Result("T/0", 1, "failed"),
        Result("T/1", 0, "passed"),
        Result("T/1", 1, "sandbox_error"),  # not the program's: T/1 has one scored sample
    ]
    assert pass_at_ks(results) == {"1": pytest.approx((0.5 + 1.0) / 2)}  # k=10 needs ten samples everywhere
    ten = [
        Result(t, i, "passed" if i < 3 and t == "T/0" else "failed")
        for t in ("T/0", "T/1")
        for i in range(10)
    ]
    assert pass_at_ks(ten) == {"1": pytest.approx(0.15), "10": pytest.approx(0.5)}  # k=10: every sample
    assert pass_at_ks([]) == {}


def test_summarize_counts_and_names_the_harness_s_failures() -> None:
    results = [
        Result("HumanEval/1", 0, "failed", "assert failed"),
        Result("HumanEval/0", 0, "passed"),
        Result("HumanEval/2", 0, "sandbox_error", "could not fork"),
    ]
    report = summarize(results)
    assert [r["task_id"] for r in report["results"]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert report["total"] == 3 and report["scored"] == 2 and report["passed"] == 1
    assert report["sandbox_errors"] == ["HumanEval/2[s0]"]
    assert report["pass_at_k"] == {"1": 0.5} and report["problems"] == 2
    assert report["status_counts"] == {"passed": 1, "failed": 1, "sandbox_error": 1}
    assert report["pass_at_1_ci95"] == list(wilson_interval(1, 2))


def test_compare_to_baseline() -> None:
    def report(passing: set[str]) -> Scores:
        results = [Result(t, 0, "passed" if t in passing else "failed") for t in ("A/0", "A/1", "A/2")]
        return summarize(results)

    diff = compare_to_baseline(report({"A/0", "A/2"}), report({"A/0", "A/1"}))
    assert diff["newly_failing"] == ["A/1"] and diff["newly_passing"] == ["A/2"] and diff["compared"] == 3
    assert diff["baseline_pass_at_1"] == pytest.approx(2 / 3)


def test_parse_completions_orders_samples_and_refuses_what_is_ambiguous() -> None:
    rows: list[tuple[int, dict[str, Any]]] = [
        (1, {"task_id": "HumanEval/0", "sample": 1, "completion": "b"}),
        (2, {"task_id": "HumanEval/0", "sample": 0, "completion": "a"}),
        (3, {"task_id": "HumanEval/1", "solution": "def f(): pass", "status": "truncated"}),
    ]
    samples = parse_completions(rows, "f.jsonl", DEBUG)
    assert [(s.index, s.completion) for s in samples["HumanEval/0"]] == [(0, "a"), (1, "b")]
    (whole,) = samples["HumanEval/1"]
    assert whole.full_program and whole.status == "truncated"
    assert coverage(samples, DEBUG) == {
        "tasks": 4,
        "attempted": 2,
        "not_attempted": ["HumanEval/2", "HumanEval/3"],
    }
    cases: list[tuple[list[tuple[int, dict[str, Any]]], str]] = [
        ([(1, {"task_id": "HumanEval/0", "sample": 0, "completion": ""})] * 2, "duplicate 'sample' indices"),
        ([(7, {"task_id": "HumanEval/0", "completion": 3})], "f.jsonl:7: 'completion' must be a string"),
        ([(2, {"task_id": "HumanEval/0", "completion": "", "status": "odd"})], "unknown status 'odd'"),
        ([(4, {"task_id": "HumanEval/0", "sample": -1, "completion": ""})], "non-negative integer"),
        ([], "no completions"),
    ]
    for bad, message in cases:
        with pytest.raises(HumanEvalError, match=message):
            parse_completions(bad, "f.jsonl", DEBUG)
