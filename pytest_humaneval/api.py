"""Python API for notebooks and scripts: the plugin's own code, callable without pytest.

from pytest_humaneval.api import evaluate
report = evaluate("samples.jsonl", dataset="humaneval")
report["pass_at_k"]  # {"1": 0.42, ...}
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .completions import canonical, coverage, parse_completions, pick, read_completions, samples_per_problem
from .datasets.dataset import Dataset
from .datasets.registry import load_dataset
from .errors import HumanEvalError
from .evaluation import add_diagnosis, add_timing, conclude, preload_for, prepare, timing_job
from .languages import check_toolchains
from .reporting.report import build_report, pass_at_k, pass_at_ks
from .reporting.schema import Report
from .sandbox import Limits, describe_isolation, make_sandbox
from .time_limits import time_limits
from .verdict import Result

__all__ = ["evaluate", "load_dataset", "pass_at_k", "pass_at_ks", "read_completions"]


def evaluate(
    completions: str | Path | Iterable[dict[str, Any]],
    dataset: str | Dataset = "humaneval",
    *,
    sandbox: str = "subprocess",
    sandbox_image: str | None = None,
    timeout: float | None = None,
    memory_mb: int | None = None,
    workers: int | None = None,
    efficiency: bool = False,
    diagnose: bool = False,
    judge_endpoint: str | None = None,
    judge_model: str | None = None,
    judge_api_key: str | None = None,
    output: str | Path = ".humaneval",
) -> Report:
    """Evaluate completions and return the same report the plugin writes as JSON.

    ``completions`` is a completions file, ``"canonical"``, or an iterable of dicts with ``task_id``
    and ``completion`` (or ``solution``). ``dataset`` is a registered name (``humaneval``, ``mbpp-plus``,
    an entry point's), a file, or a :class:`Dataset`. ``timeout`` sets one limit for every program
    (default: per problem, from its reference solution's time). ``workers`` programs run at once
    (default: twice the CPU cores). ``sandbox_image`` is the docker sandbox's image (default: the plugin's,
    or for HumanEval-X's compiled languages and JavaScript the toolchain image).
    ``efficiency`` times each passing program against the canonical solution
    (``--humaneval-efficiency``); ``diagnose`` scores each failing one's similarity to it, and with
    ``judge_endpoint`` and ``judge_model`` asks that OpenAI-compatible server why it failed
    (``--humaneval-diagnose``, ``--humaneval-judge-*``; answers cached under ``output``/judge).
    """
    if judge_endpoint and not judge_model:
        raise HumanEvalError("evaluate(judge_endpoint=...) needs judge_model= (the judge's model name)")
    diagnose = diagnose or bool(judge_endpoint)
    judging = None
    if judge_endpoint and judge_model:  # an unreachable judge fails now, not after every program ran
        from .analysis.judge import check_judge, judge_config

        judging = judge_config(judge_endpoint, judge_model, judge_api_key, output)
        check_judge(judging, api=True)
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    image = check_toolchains(ds, sandbox, sandbox_image)
    if completions == "canonical":
        samples = canonical(ds)
    elif isinstance(completions, (str, Path)):
        samples = read_completions(Path(completions), ds)
    else:
        samples = parse_completions(enumerate(completions, 1), "completions", ds)
    n = samples_per_problem(samples)
    box = make_sandbox(
        sandbox,
        Limits(memory_mb=memory_mb or ds.memory_mb),
        preload=preload_for(ds),
        concurrency=workers or 2 * (os.cpu_count() or 1),
        **({"image": image} if sandbox == "docker" and image else {}),
    )
    start = time.monotonic()
    try:
        isolation = box.start()
        limits = time_limits(ds, timeout, sandbox=lambda: box)
        pending = []
        for problem in ds:
            if problem.task_id not in samples:  # not attempted: left out of pass@k (``coverage``)
                continue
            for index in range(n):
                sample = pick(samples, problem.task_id, index)
                job = prepare(
                    ds, problem, sample, limits(problem.task_id), limits.call_limits(problem.task_id)
                )
                pending.append((problem, sample, job if isinstance(job, Result) else box.submit(job)))
        results = [
            conclude(ds, problem, sample, outcome if isinstance(outcome, Result) else outcome.result())
            for problem, sample, outcome in pending
        ]
        if efficiency:
            timing = [
                (result, box.submit(timed))
                for (problem, sample, _), result in zip(pending, results, strict=True)
                if (timed := timing_job(problem, sample, result, limits(problem.task_id))) is not None
            ]
            for result, future in timing:
                add_timing(result, future.result())
        if diagnose:
            for (problem, sample, _), result in zip(pending, results, strict=True):
                add_diagnosis(problem, sample, result)
    finally:
        box.close()
    judge = None
    if judging is not None:
        from .analysis.judge import judge_failures

        judge = judge_failures(judging, ds.problems, results)
    return build_report(
        results,
        ds,
        limits,
        model="canonical" if completions == "canonical" else str(completions)[:200],
        sandbox=describe_isolation(sandbox, isolation)[0],
        wall_s=time.monotonic() - start,
        efficiency=efficiency,
        judge=judge,
        coverage=coverage(samples, ds),
    )
