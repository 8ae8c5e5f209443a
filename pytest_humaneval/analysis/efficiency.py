"""``--humaneval-efficiency``: how fast a passing program is against the canonical solution.

Worker side: :func:`efficiency_job` builds a sandbox job whose test is the problem's test followed by
:mod:`.efficiency_harness`, which times the candidate's and the canonical solution's ``check()`` in the
same process, interleaved; :func:`read_measurement` turns its answer into the ratio and its interval
(candidate / canonical CPU time: above 1 is slower). Controller side: :func:`summarize_efficiency`
aggregates the ratios of a run (geometric mean over problems, problems more than 2x slower or faster).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..datasets.dataset import Problem, task_key
from ..reporting.schema import Efficiency, ResultRow
from ..sandbox import Job
from .efficiency_harness import MARKER
from .efficiency_harness import _he_median_ci as median_ci

__all__ = ["EfficiencyPlan", "efficiency_job", "median_ci", "read_measurement", "summarize_efficiency"]

HARNESS = Path(__file__).with_name("efficiency_harness.py")
#: A problem whose canonical solution is this many times faster (or slower) is listed in the report.
LISTED_FACTOR = 2.0


@dataclass(frozen=True)
class EfficiencyPlan:
    """How long and how often to measure (the defaults suit HumanEval's sub-millisecond tests)."""

    min_runs: int = 6  # rounds of (candidate, canonical); six is the fewest with a >= 95% interval
    max_runs: int = 30
    target_s: float = 0.005  # CPU seconds per measurement of the slower of the two (check() repeated)
    rel_width: float = 0.10  # stop once the 95% interval is within +-5% of the median
    budget_s: float = 2.0  # seconds past the minimum rounds to spend looking for that precision

    def job_timeout(self, program_timeout: float) -> float:
        """Wall-clock limit of the timing job: the warm-up and calibration runs, then every measurement
        of the minimum rounds at up to one program time limit each, plus the budget."""
        return program_timeout * (4 + 2 * self.min_runs) + self.budget_s


@cache
def _harness_source() -> str:
    return HARNESS.read_text(encoding="utf-8")


@cache
def _test_with_harness(test: str, canonical: str, entry_point: str, plan: EfficiencyPlan) -> str:
    """The problem's test followed by the timing harness (the same text for every sample of a problem, so
    the runner compiles it once)."""
    params = {
        "canonical": canonical,
        "entry_point": entry_point,
        "min_runs": plan.min_runs,
        "max_runs": plan.max_runs,
        "target_s": plan.target_s,
        "rel_width": plan.rel_width,
        "budget_s": plan.budget_s,
    }
    harness = _harness_source().replace("_HE_PARAMS = {}", f"_HE_PARAMS = {json.dumps(params)}", 1)
    return test + "\n\n" + harness


def efficiency_job(
    problem: Problem, solution: str, program_timeout: float, plan: EfficiencyPlan = EfficiencyPlan()
) -> Job | str:
    """The timing job for a passing ``solution`` of ``problem``, or why it cannot be timed."""
    if not problem.canonical_solution:
        return "the dataset has no canonical solution for this problem"
    test = _test_with_harness(
        problem.test, problem.prompt + problem.canonical_solution, problem.entry_point, plan
    )
    # A measurement, never a verdict: program and test in one process (the candidate has passed already).
    return Job(solution, test, problem.entry_point, plan.job_timeout(program_timeout), mode="inprocess")


def read_measurement(outcome: dict[str, Any]) -> dict[str, Any]:
    """The runner's answer to a timing job -> ``{"ratio", "ci95", "runs", "metric"}``, or ``{"error"}``."""
    line = next((x for x in reversed(outcome.get("stdout", "").split("\n")) if x.startswith(MARKER)), None)
    if outcome.get("status") != "passed":
        why = outcome.get("reason") or outcome.get("status", "no verdict")
        return {"error": f"the candidate did not pass again while being timed: {why}"[:300]}
    if line is None:
        return {"error": "the timing harness reported nothing (output cut or harness not run)"}
    data = json.loads(line[len(MARKER) :])
    if data.get("error"):
        return {"error": data["error"]}
    ratios = [c / r for c, r in zip(data["candidate"], data["reference"], strict=True) if r > 0]
    if not ratios:
        return {"error": "no measurement: the canonical solution's check() took no measurable CPU time"}
    median, (low, high) = median_ci(ratios)
    return {
        "ratio": round(median, 4),
        "ci95": [round(low, 4), round(high, 4)],
        "runs": len(ratios),
        "loops": data.get("loops", 1),
        "metric": data.get("metric", "cpu_time"),
        "reference_s": round(sorted(data["reference"])[len(data["reference"]) // 2], 9),
    }


def geomean(values: Iterable[float]) -> float:
    logs = [math.log(v) for v in values if v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else float("nan")


def summarize_efficiency(results: Iterable[ResultRow], slowest: int = 5) -> Efficiency:
    """The report's ``efficiency`` section from its result entries: per problem, the geometric mean of
    its measured samples; over the run, the geometric mean of the problems'."""
    per_problem: dict[str, list[float]] = defaultdict(list)
    unmeasured = 0
    for r in results:
        if r.get("efficiency_ratio") is not None:
            per_problem[r["task_id"]].append(r["efficiency_ratio"])
        elif r.get("passed"):
            unmeasured += 1
    ratios = {task: geomean(values) for task, values in per_problem.items()}
    by_ratio = sorted(ratios.items(), key=lambda kv: -kv[1])
    return {
        "geomean_ratio": round(geomean(ratios.values()), 4) if ratios else None,
        "slower_2x": sorted((t for t, v in ratios.items() if v > LISTED_FACTOR), key=task_key),
        "faster_2x": sorted((t for t, v in ratios.items() if v < 1 / LISTED_FACTOR), key=task_key),
        "problems": len(ratios),
        "unmeasured": unmeasured,
        "metric": "cpu_time",
        "slowest": [{"task_id": t, "ratio": round(v, 3)} for t, v in by_ratio[:slowest]],
    }
