"""Worker side: problems as pytest items, and the evaluator that runs them in the sandbox.

This runs in every pytest process that executes tests (each xdist worker, or the single process).
Collection depends on the dataset alone, so every worker collects the same items in the same order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .completions import Sample, canonical, pick, read_completions
from .dataset import Dataset, Problem
from .evaluation import judge, preload_for
from .options import Settings
from .sandbox import Limits, Sandbox, make_sandbox
from .verdict import Result

#: Set on each process: where the completions come from ('canonical' or a file path).
COMPLETIONS_KEY = pytest.StashKey[str]()
EVALUATOR_KEY = pytest.StashKey["Evaluator"]()
#: Identifies this pytest run's sandbox containers (labels), the same on the controller and all workers.
RUN_ID_KEY = pytest.StashKey[str]()


class ProgramFailed(Exception):
    """Raised by an item whose program did not pass; carries the verdict."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.reason)
        self.result = result


class Evaluator:
    """Turns (problem, sample index) into a verdict; owns this process's sandbox."""

    def __init__(self, config: pytest.Config, settings: Settings, dataset: Dataset, workers: int) -> None:
        self.config = config
        self.settings = settings
        self.dataset = dataset
        self.timeout = settings.program_timeout(dataset.name, workers)
        self._samples: dict[str, list[Sample]] | None = None
        self._sandbox: Sandbox | None = None

    @property
    def samples(self) -> dict[str, list[Sample]]:
        if self._samples is None:
            source = self.config.stash[COMPLETIONS_KEY]
            if source == "canonical":
                self._samples = canonical(self.dataset)
            else:
                self._samples = read_completions(Path(source), self.dataset)
        return self._samples

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = make_sandbox(
                self.settings.sandbox,
                Limits(memory_mb=self.settings.memory),
                preload=preload_for(self.dataset),
                **sandbox_options(self.settings, self.config.stash[RUN_ID_KEY]),
            )
        return self._sandbox

    def evaluate(self, problem: Problem, index: int) -> Result:
        sample = pick(self.samples, problem.task_id, index)
        return judge(self.dataset, problem, sample, self.sandbox, self.timeout)

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None


def sandbox_options(settings: Settings, run_id: str) -> dict[str, Any]:
    """Options only some sandboxes take (the docker one needs its image and the run id for labels)."""
    return {"image": settings.sandbox_image, "run_id": run_id} if settings.sandbox == "docker" else {}


class HumanEvalCollector(pytest.Collector):
    """The dataset as a collector; its items are named by task id (and sample)."""

    def __init__(self, *, dataset: Dataset, samples: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.samples = samples

    def collect(self) -> list[pytest.Item]:
        items: list[pytest.Item] = []
        for problem in self.dataset:
            for index in range(self.samples):
                name = problem.task_id if self.samples == 1 else f"{problem.task_id}[s{index}]"
                item = HumanEvalItem.from_parent(self, name=name, problem=problem, sample=index)
                defect = self.dataset.known_defect(problem.task_id)
                if defect:
                    item.add_marker(pytest.mark.xfail(reason=defect, strict=False))
                items.append(item)
        return items


class HumanEvalItem(pytest.Item):
    """One program: a problem's prompt + one completion + the problem's test."""

    def __init__(self, *, problem: Problem, sample: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problem = problem
        self.sample = sample
        self.result: Result | None = None
        self.extra_keyword_matches.add(problem.entry_point)

    def runtest(self) -> None:
        evaluator = self.config.stash[EVALUATOR_KEY]
        result = evaluator.evaluate(self.problem, self.sample)
        self.result = result
        self.user_properties.extend(
            [("task_id", result.task_id), ("sample", result.sample), ("status", result.status)]
        )
        if not result.passed:
            # Only failures carry the completion and output (JUnit system-out, pytest's failure
            # sections): passing reports stay small, which matters across xdist for 1,640 items.
            output = result.stdout + (("\n[stderr]\n" + result.stderr) if result.stderr else "")
            self.add_report_section(
                "call", "stdout", f"--- completion ---\n{result.completion}\n--- program output ---\n{output}"
            )
            raise ProgramFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ProgramFailed):
            r = excinfo.value.result
            return f"{r.task_id} [s{r.sample}] {r.status}: {r.reason}"
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.problem.task_id} sample {self.sample}"
