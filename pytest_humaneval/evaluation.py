"""Steps 4-5 joined: run one sample of one problem in a sandbox and return its verdict.

The single place where a completion becomes a :class:`Result`: the pytest items and the Python API use
``prepare``/``conclude`` around ``Sandbox.submit``; ``judge`` is the one-call form for scripts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .completions import PRESET_STATUSES, Sample, prompt_definitions
from .datasets.dataset import Dataset, Problem
from .languages import language_of, program_job_parts, verdict_from_reason
from .sandbox import Job, Sandbox
from .verdict import Result

PRESET_REASONS = {
    "truncated": "the answer was cut by max_tokens before any code (raise --humaneval-max-tokens)",
    "no_code": "no code in the answer",
    "generation_error": "the model server failed for this sample",
}


def prepare(
    dataset: Dataset,
    problem: Problem,
    sample: Sample,
    timeout: float,
    call_limits: Mapping[str, Any] | None = None,
) -> Job | Result:
    """The job to run for ``sample``, or its verdict already: preset statuses and empty answers."""
    if sample.status in PRESET_STATUSES:
        status = sample.status or "no_code"
        result = Result(problem.task_id, sample.index, status, sample.reason or PRESET_REASONS[status])
    elif sample.empty:
        result = Result(problem.task_id, sample.index, "no_code", "the completion is empty")
    else:
        language = language_of(problem)
        if language is not None:  # built and run by a driver, each step under a CPU-time limit
            solution, test, entry = program_job_parts(language, problem, sample.completion, timeout)
            return Job(solution, test, entry, language.wall_backstop(timeout, language.runs(problem)))
        digests = dataset.answer_digests(problem)
        return program_job(problem, sample.program(problem), timeout, call_limits, digests)
    return conclude(dataset, problem, sample, result)


def program_job(
    problem: Problem,
    solution: str,
    timeout: float,
    call_limits: Mapping[str, Any] | None = None,
    reference_digests: dict[str, str] | None = None,
) -> Job:
    """The sandbox job that decides ``solution``'s verdict: the test runs beside the problem's own helpers
    (the prompt's definitions, which the test uses as the dataset wrote them)."""
    return Job(
        solution,
        problem.test,
        problem.entry_point,
        timeout,
        definitions=prompt_definitions(problem.prompt, problem.entry_point),
        call_limits=dict(call_limits) if call_limits else None,
        reference_digests=reference_digests,
    )


def conclude(dataset: Dataset, problem: Problem, sample: Sample, outcome: dict[str, Any] | Result) -> Result:
    """The verdict from the runner's answer (or a preset one), with what the report needs to know."""
    if isinstance(outcome, Result):
        result = outcome
    else:
        result = Result.from_runner(problem.task_id, sample.index, outcome, sample.completion)
        if result.status == "failed" and problem.language != "python":
            told = verdict_from_reason(result.reason)  # the driver's verdict, out of the test's message
            if told is not None:
                result.status, result.reason = told
                result.exc_type = None
    result.completion = sample.completion
    if not result.passed:
        result.known_defect = dataset.known_defect(problem.task_id)
    return result


def timing_job(problem: Problem, sample: Sample, result: Result, timeout: float) -> Job | None:
    """``--humaneval-efficiency``: the job that times a passing program against the canonical solution
    (its answer goes to :func:`add_timing`), or None (not passing, or not timeable: the reason is set)."""
    if not result.passed:
        return None
    if problem.language != "python":
        result.efficiency = {"error": f"efficiency is measured for Python programs, not {problem.language}"}
        return None
    from .analysis.efficiency import efficiency_job

    job = efficiency_job(problem, sample.program(problem), timeout)
    if isinstance(job, str):
        result.efficiency = {"error": job}
        return None
    return job


def add_timing(result: Result, outcome: dict[str, Any]) -> Result:
    from .analysis.efficiency import read_measurement

    result.efficiency = read_measurement(outcome)
    return result


def add_diagnosis(problem: Problem, sample: Sample, result: Result) -> Result:
    """``--humaneval-diagnose``: the offline diagnosis of a failing program (similarity to the canonical)."""
    if not result.passed:
        from .analysis.diagnosis import diagnose

        result.diagnosis = diagnose(problem, sample.completion, sample.full_program, result.status)
    return result


def judge(dataset: Dataset, problem: Problem, sample: Sample, sandbox: Sandbox, timeout: float) -> Result:
    """The verdict on ``sample``, run now."""
    job = prepare(dataset, problem, sample, timeout)
    return job if isinstance(job, Result) else conclude(dataset, problem, sample, sandbox.run(job))


def preload_for(dataset: Dataset) -> tuple[str, ...]:
    """Modules worth importing once in the runner before it forks (HumanEval+ tests use numpy)."""
    return ("numpy",) if any("numpy" in p.test or "np." in p.test for p in dataset) else ()
