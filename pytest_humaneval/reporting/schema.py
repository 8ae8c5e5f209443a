"""The JSON report's shape, field by field as ``docs/report-json.md`` gives it: what the plugin writes
(``--humaneval-report``) and :func:`pytest_humaneval.api.evaluate` returns.

A field the docs mark *optional* is a key of a ``total=False`` class: present only when what it describes
happened. Sections whose fields belong to another step and are not listed field by field (``generation``,
the ``modes`` of ``--think=both``, a program's ``diagnosis``) are plain JSON objects here.

This module holds types only and imports nothing of the package: every step that writes part of the
report can use them.
"""

from __future__ import annotations

from typing import Any, TypedDict

#: k (as a string: JSON's keys are) -> the unbiased pass@k estimate, for each k the sample count allows.
PassAtK = dict[str, float]


# ------------------------------------------------------------------------------------------- the run


class TimeLimitsRecord(TypedDict):
    """``time_limits``: the limit of every problem, and how it was set."""

    default: float
    #: task id -> seconds
    per_task: dict[str, float]
    origin: str
    #: task id -> its per-input budgets: ``default`` and ``slow`` (input index -> seconds)
    calls: dict[str, dict[str, Any]]


class Coverage(TypedDict):
    """``coverage``: the completions attempt only some tasks; the others are out of pass@k."""

    tasks: int
    attempted: int
    not_attempted: list[str]


class _Judge(TypedDict):
    endpoint: str
    model: str
    cache: str
    #: answers that came from the cache
    cached: int
    #: failures the judge was asked about in this run
    asked: int
    #: failures whose answer could not be used
    unusable: int


class JudgeAsking(TypedDict, total=False):
    """When the judge was asked anything in this run: whether the server kept ``response_format``, and
    how long the asking took."""

    response_format: bool
    wall_s: float


class Judge(_Judge, JudgeAsking):
    """``judge`` (``--humaneval-judge-*``): the judge, and what it answered."""


class Baseline(TypedDict):
    """``baseline`` (``--humaneval-baseline``): this run against an earlier report of the same dataset."""

    baseline_pass_at_1: float | None
    newly_failing: list[str]
    newly_passing: list[str]
    compared: int
    #: the paired test on the first sample of each problem
    pass_at_1_delta: float
    delta_ci95: list[float]
    mcnemar_p: float


class ProvenanceDataset(TypedDict):
    name: str
    path: str
    sha: str
    problems: int


class _ProvenanceCompletions(TypedDict):
    #: ``canonical``, ``file`` or ``generated``
    source: str


class ProvenanceCompletions(_ProvenanceCompletions, total=False):
    path: str
    #: of the file as the report was written; None if it was gone by then
    sha256: str | None


class _ProvenanceSandbox(TypedDict):
    kind: str
    isolation: str


class ProvenanceSandbox(_ProvenanceSandbox, total=False):
    #: the docker sandbox's
    image: str | None


class ProvenanceEvaluation(TypedDict):
    sandbox: ProvenanceSandbox
    timeout_s: float
    memory_mb: int


class ProvenanceGeneration(TypedDict, total=False):
    #: what generation used that shapes the answers (model, backend, endpoint without credentials,
    #: sampling, ...): the run's ``generation`` section, less its bookkeeping
    generation: dict[str, Any]


class _Provenance(TypedDict):
    plugin_version: str
    python: str
    implementation: str
    platform: str
    dataset: ProvenanceDataset
    completions: ProvenanceCompletions
    model: str | None


class Provenance(_Provenance, ProvenanceGeneration):
    """``provenance`` (plugin only): enough to rerun the run."""

    evaluation: ProvenanceEvaluation


class RunInfo(TypedDict):
    """The run: what was evaluated, how, and by which plugin."""

    dataset: str
    dataset_path: str
    dataset_sha: str
    model: str
    samples_per_problem: int
    sandbox: str
    timeout_s: float
    time_limits: TimeLimitsRecord
    wall_s: float
    plugin_version: str


class RunExtras(TypedDict, total=False):
    """The run's fields that only the plugin writes (``completions``, ``created``, ``provenance``) or that
    only some runs have."""

    completions: str
    #: the plugin generated the completions: the ``generation`` section (docs/report-json.md#generation)
    generation: dict[str, Any]
    judge: Judge
    coverage: Coverage
    #: ISO 8601 UTC time the report was written
    created: str
    provenance: Provenance
    baseline: Baseline


# ------------------------------------------------------------------------------ one entry per program


class _ResultRow(TypedDict):
    task_id: str
    sample: int
    passed: bool
    status: str
    reason: str
    duration_s: float


class ResultRow(_ResultRow, total=False):
    """One program's entry in ``results``: its verdict, and what analysis and generation add."""

    #: ``think`` or ``no-think`` under ``--think=both``
    mode: str
    exc_type: str
    known_defect: str
    #: how generation produced this sample
    latency_s: float
    completion_tokens: int
    finish_reason: str
    #: ``--humaneval-efficiency``: run time against the reference's, for a passing program
    efficiency_ratio: float
    efficiency_ci95: list[float]
    efficiency_runs: int
    efficiency_error: str
    #: ``--humaneval-diagnose``: similarity to the reference, and the judge's answer
    diagnosis: dict[str, Any]


# ---------------------------------------------------------------------------------------- the scores


class SlowProblem(TypedDict):
    task_id: str
    ratio: float


class Efficiency(TypedDict):
    """``efficiency`` (``--humaneval-efficiency``): passing programs' times against the references'."""

    #: the geometric mean over the problems measured (None: none was)
    geomean_ratio: float | None
    slower_2x: list[str]
    faster_2x: list[str]
    problems: int
    unmeasured: int
    metric: str
    slowest: list[SlowProblem]


class _Scores(TypedDict):
    problems: int
    pass_at_k: PassAtK
    #: the Wilson 95 % interval of pass@1 over the scored programs: [low, high]
    pass_at_1_ci95: list[float]
    passed: int
    total: int
    scored: int
    sandbox_errors: list[str]
    status_counts: dict[str, int]
    known_defects: list[str]
    results: list[ResultRow]


class Scores(_Scores, total=False):
    """The scores: pass@k, the counts, every program's entry, and the analysis sections present."""

    efficiency: Efficiency
    diagnosis_counts: dict[str, int]
    #: ``--think=both``: per mode its ``pass_at_k``, ``passed``, ``total``, ``status_counts``, ``tokens``,
    #: ``truncated_rate`` and ``generation_wall_s``, and the paired ``comparison`` of the two
    modes: dict[str, dict[str, Any]]


class Report(RunInfo, RunExtras, Scores):
    """The whole report: the run, then the scores."""
