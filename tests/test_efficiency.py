"""--humaneval-efficiency: passing programs timed against the canonical solution, in the sandbox."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from plugin_support import canonical_completions, problems, report, run, write_jsonl

from pytest_humaneval.analysis.efficiency import median_ci, summarize_efficiency
from pytest_humaneval.api import evaluate

#: A problem whose test has inputs large enough for complexity to show: distinct values of 600 items.
COUNT_UNIQUE = {
    "task_id": "Demo/0",
    "prompt": 'def count_unique(xs):\n    """How many distinct values xs holds."""\n',
    "canonical_solution": "    return len(set(xs))\n",
    "entry_point": "count_unique",
    "test": "def check(candidate):\n    assert candidate(list(range(300)) * 2) == 300\n    assert candidate([]) == 0\n",
}
QUADRATIC = "    return sum(1 for i, x in enumerate(xs) if x not in xs[:i])\n"


def test_median_interval_is_distribution_free_and_at_least_95_percent() -> None:
    assert median_ci([3.0, 1.0, 2.0, 5.0, 4.0]) == (3.0, (1.0, 5.0))  # five values: the whole range
    assert median_ci(list(range(10))) == (4.5, (1, 8))  # ranks 2..9 of 10 cover the median with 97.9%
    assert median_ci(list(range(20))) == (9.5, (5, 14))  # ranks 6..15 of 20: 95.9%


def test_canonical_against_itself_is_about_one(tmp_path: Path) -> None:
    data = evaluate("canonical", dataset="humaneval-4", efficiency=True)
    eff = data["efficiency"]
    assert eff["problems"] == 4 and eff["unmeasured"] == 0
    # The precise self-check (1.00 +- 0.05 over 164 problems) is benchmarks/bench_efficiency.py; a loaded
    # test machine only has to keep a same-code ratio far from the 2x flags.
    assert eff["geomean_ratio"] is not None and 0.67 < eff["geomean_ratio"] < 1.5
    assert eff["slower_2x"] == eff["faster_2x"] == []
    for r in data["results"]:
        low, high = r["efficiency_ci95"]
        assert low <= r["efficiency_ratio"] <= high and r["efficiency_runs"] >= 6


def test_a_correct_solution_made_quadratic_is_more_than_2x_slower(tmp_path: Path) -> None:
    dataset = write_jsonl(tmp_path / "demo.jsonl", [COUNT_UNIQUE])
    data = evaluate([{"task_id": "Demo/0", "completion": QUADRATIC}], dataset=str(dataset), efficiency=True)
    (result,) = data["results"]
    assert result["passed"] and result["efficiency_ci95"][0] > 2, result
    assert data["efficiency"]["slower_2x"] == ["Demo/0"]
    # and on a real HumanEval problem: concatenate() rebuilt from every prefix instead of one join
    quadratic_join = (
        "    return [''.join(strings[: i + 1]) for i in range(len(strings))][-1] if strings else ''\n"
    )
    data = evaluate(
        [{"task_id": "HumanEval/28", "completion": quadratic_join}],
        dataset=_one_problem(tmp_path, "HumanEval/28"),
        efficiency=True,
    )
    assert data["results"][0]["passed"] and data["efficiency"]["slower_2x"] == ["HumanEval/28"]


def test_only_passing_programs_are_timed_and_a_flaky_one_says_why(tmp_path: Path) -> None:
    flaky = (  # passes its first check() (the verdict, and the timing harness's warm-up), then fails
        "    calls.append(1)\n    return len(set(xs)) if len(calls) <= 2 else -1\n\ncalls = []\n"
    )
    rows = [COUNT_UNIQUE, {**COUNT_UNIQUE, "task_id": "Demo/1"}, {**COUNT_UNIQUE, "task_id": "Demo/2"}]
    dataset = write_jsonl(tmp_path / "demo.jsonl", rows)
    completions = [
        {"task_id": "Demo/0", "completion": flaky},
        {"task_id": "Demo/1", "completion": "    return 0\n"},
        {"task_id": "Demo/2", "completion": COUNT_UNIQUE["canonical_solution"]},
    ]
    data = evaluate(completions, dataset=str(dataset), efficiency=True)
    flaky_r, wrong, right = data["results"]
    assert flaky_r["passed"] and "did not pass again while being timed" in flaky_r["efficiency_error"]
    assert not wrong["passed"] and not any(k.startswith("efficiency") for k in wrong)
    assert "efficiency_ratio" in right
    assert data["efficiency"]["problems"] == 1 and data["efficiency"]["unmeasured"] == 1


def test_summary_takes_the_geometric_mean_per_problem_then_over_problems() -> None:
    results = [
        {"task_id": "T/0", "passed": True, "efficiency_ratio": 4.0},
        {"task_id": "T/0", "passed": True, "efficiency_ratio": 1.0},  # T/0: sqrt(4 * 1) = 2
        {"task_id": "T/1", "passed": True, "efficiency_ratio": 0.125},
        {"task_id": "T/2", "passed": True, "efficiency_ratio": 3.0},
        {"task_id": "T/3", "passed": False},
        {"task_id": "T/4", "passed": True, "efficiency_error": "..."},
    ]
    eff = summarize_efficiency(results)  # type: ignore[arg-type]  # partial rows: the keys it reads
    assert eff["geomean_ratio"] == pytest.approx((2 * 0.125 * 3) ** (1 / 3), abs=1e-4)
    assert eff["slower_2x"] == ["T/2"] and eff["faster_2x"] == ["T/1"]
    assert eff["problems"] == 3 and eff["unmeasured"] == 1
    assert [s["task_id"] for s in eff["slowest"]] == ["T/2", "T/0", "T/1"]


def test_plugin_reports_efficiency_in_json_junit_and_terminal_under_xdist(pytester: pytest.Pytester) -> None:
    path = canonical_completions(pytester.path / "mixed.jsonl", wrong={"HumanEval/1"}, count=4)
    result = run(
        pytester,
        "--humaneval-debug",
        f"--humaneval-completions={path}",
        "--humaneval-efficiency",
        "--junitxml=junit.xml",
        "-n",
        "2",
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "efficiency (CPU time of check(), candidate / canonical): geometric mean *x over 3 problems; *",
            "efficiency, slowest: HumanEval/*x, HumanEval/*x, HumanEval/*x",
        ]
    )
    data = report(pytester)
    assert set(data["efficiency"]) >= {"geomean_ratio", "slower_2x", "faster_2x", "problems"}
    assert data["efficiency"]["problems"] == 3
    timed = {r["task_id"] for r in data["results"] if "efficiency_ratio" in r and "efficiency_ci95" in r}
    assert timed == {"HumanEval/0", "HumanEval/2", "HumanEval/3"}
    root = ET.parse(pytester.path / "junit.xml").getroot()
    props = {p.get("name"): p.get("value", "") for p in root.iter("property")}
    assert float(props["humaneval_efficiency_geomean_ratio"]) == pytest.approx(
        data["efficiency"]["geomean_ratio"], abs=1e-4
    )
    assert props["efficiency_ratio"].count("[") == 1  # the testcase's own ratio and interval


def _one_problem(tmp_path: Path, task_id: str) -> str:
    row = next(p for p in problems() if p["task_id"] == task_id)
    return str(write_jsonl(tmp_path / "one.jsonl", [row]))


def test_report_without_the_option_has_no_efficiency_section() -> None:
    data = evaluate("canonical", dataset="humaneval-4")
    assert "efficiency" not in data and not any("efficiency_ratio" in r for r in data["results"])
    json.dumps(data)
