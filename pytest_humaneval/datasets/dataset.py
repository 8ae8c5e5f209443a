"""Step 1 of the data path: HumanEval-schema problems, read and validated.

Bundled datasets ship inside the package, so an installed wheel needs no other files (:func:`data_dir`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TextIO

from ..errors import HumanEvalError
from . import livecodebench

REQUIRED_FIELDS = ("task_id", "prompt", "test", "entry_point")

#: The suffix that names a dataset's debug subset (``humaneval-4``: HumanEval/0..3), what
#: ``--humaneval-debug`` runs.
DEBUG_SUFFIX = "-4"
DEBUG_PROBLEMS = 4
#: The ``pytest_humaneval`` package folder (this module is in its ``datasets`` package): a wheel's bundled
#: files are in its ``_data/``, a checkout's in the folders beside it.
PACKAGE_DIR = Path(__file__).resolve().parent.parent


def task_key(task_id: str) -> tuple[str, int, str]:
    """Sort key of a task id: ``HumanEval/2`` before ``HumanEval/10``."""
    prefix, _, num = task_id.rpartition("/")
    return (prefix, int(num), "") if num.isdigit() else (task_id, 0, task_id)


def data_dir(kind: str) -> Path:
    """Where bundled files of ``kind`` ('datasets' or 'sandbox') live.

    In a wheel they are inside the package (``_data/``); in a source checkout they are the
    top-level folders next to the package.
    """
    for candidate in (PACKAGE_DIR / "_data" / kind, PACKAGE_DIR.parent / kind):
        if candidate.is_dir():
            return candidate
    raise HumanEvalError(
        f"bundled {kind} folder is missing from the installation ({PACKAGE_DIR}); reinstall pytest-humaneval"
    )


@dataclass(frozen=True)
class Problem:
    """One HumanEval problem."""

    task_id: str
    prompt: str
    test: str
    entry_point: str
    canonical_solution: str = ""
    #: The language of the program (``python``, or one of :mod:`pytest_humaneval.languages`).
    language: str = "python"

    @cached_property
    def digest(self) -> str:
        """Short hash of everything that defines the problem (part of cache keys)."""
        h = hashlib.sha256()
        parts = [self.task_id, self.prompt, self.test, self.entry_point]
        if self.language != "python":  # a Python problem's digest is what it always was
            parts.append(self.language)
        for part in parts:
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()[:16]


def digest_of_test(test: str) -> str:
    """What ``Dataset.reference_digests`` entries name their test by (its digests hold for that text only)."""
    return hashlib.sha256(test.encode()).hexdigest()


@dataclass(frozen=True)
class Dataset:
    """An ordered set of problems, where they came from, and what the benchmark says about them."""

    name: str
    path: Path
    problems: dict[str, Problem]
    #: The benchmark's default prompt template (``{prompt}``, ``{entry_point}``); None: the built-in one.
    prompt_template: str | None = None
    #: task_id -> why the reference solution fails the dataset's own test (shown as xfail).
    known_defects: Mapping[str, str] = field(default_factory=dict)
    #: Seconds per program at least (the floor of the per-problem limits).
    time_limit: float = 3.0
    #: task_id -> seconds the reference solution needs (measured), from which per-problem limits follow.
    reference_times: Mapping[str, float] = field(default_factory=dict)
    #: task_id -> the reference solution's calls, as EvalPlus budgets its inputs: ``{"n": calls, "base": how
    #: many of them are the base inputs, "slow": {call index: CPU seconds}}`` (calls not listed took less
    #: than a quarter of a second: their budget is the 1 s floor). Empty: one limit for the whole program.
    reference_calls: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: task_id -> ``{"test": sha256 of the test, "answers": {arguments' key: digest of the reference's
    #: answer}}`` (shipped for HumanEval+'s tests that call ``ref_func`` on every input; ``answer_digests``).
    reference_digests: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: Address-space limit per program (MB) unless --humaneval-memory says otherwise.
    memory_mb: int = 2048
    #: The whole benchmark's tasks this subset leaves out (a completions file may hold them: skipped).
    left_out: frozenset[str] = frozenset()

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.problems.values())

    def __len__(self) -> int:
        return len(self.problems)

    @cached_property
    def digest(self) -> str:
        h = hashlib.sha256()
        for p in self:
            h.update(p.digest.encode())
        return h.hexdigest()[:16]

    def known_defect(self, task_id: str) -> str | None:
        return self.known_defects.get(task_id)

    def answer_digests(self, problem: Problem) -> dict[str, str] | None:
        """The digests of the reference's answers to ``problem``'s test inputs, if shipped for this very
        test: the judge then skips the test's call of the reference on an input whose answer matches (the
        same comparison, without paying the reference's CPU again, as EvalPlus caches its ground truth)."""
        entry = self.reference_digests.get(problem.task_id)
        if not entry or entry.get("test") != digest_of_test(problem.test):
            return None
        return dict(entry.get("answers") or {}) or None

    @property
    def has_canonical(self) -> bool:
        return all(p.canonical_solution for p in self)

    def subset(self, name: str, task_ids: Iterable[str]) -> Dataset:
        """The same benchmark on fewer problems (the debug run)."""
        problems = {t: self.problems[t] for t in task_ids}
        left_out = self.left_out | frozenset(t for t in self.problems if t not in problems)
        return replace(self, name=name, problems=problems, left_out=left_out)


def open_text(path: Path) -> TextIO:
    """Open a .jsonl or .jsonl.gz file for reading text."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)``; a bad line raises an error naming file and line."""
    if not path.is_file():
        raise HumanEvalError(f"{path}: file not found")
    try:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise HumanEvalError(
                        f"{path}:{lineno}: not valid JSON ({e.msg}); fix or remove the line"
                    ) from None
                if not isinstance(obj, dict):
                    raise HumanEvalError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                yield lineno, obj
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise HumanEvalError(f"{path}: cannot read ({e}); is it a JSONL or gzipped JSONL file?") from None


def problem_from(obj: Any, where: str) -> Problem:
    """A :class:`Problem` from a dict in HumanEval's schema (or a Problem as it is); errors name ``where``."""
    if isinstance(obj, Problem):
        return obj
    if not isinstance(obj, Mapping):
        raise HumanEvalError(
            f"{where}: expected a problem (a dict in HumanEval's schema), got {type(obj).__name__}"
        )
    missing = [f for f in REQUIRED_FIELDS if not isinstance(obj.get(f), str) or not obj.get(f)]
    if missing:
        raise HumanEvalError(
            f"{where}: problem lacks {', '.join(missing)} "
            f"(HumanEval schema: task_id, prompt, test, entry_point[, canonical_solution])"
        )
    canonical = obj.get("canonical_solution") or ""
    if not isinstance(canonical, str):
        raise HumanEvalError(f"{where}: canonical_solution must be a string")
    language = obj.get("language") or "python"
    if not isinstance(language, str):
        raise HumanEvalError(f"{where}: language must be a string")
    return Problem(obj["task_id"], obj["prompt"], obj["test"], obj["entry_point"], canonical, language)


def index_problems(rows: Iterable[tuple[str, Any]], source: str) -> dict[str, Problem]:
    """``{task_id: Problem}`` from ``(where, object)`` rows of ``source``: validated, unique, not empty."""
    problems: dict[str, Problem] = {}
    for where, obj in rows:
        problem = problem_from(obj, where)
        if problem.task_id in problems:
            raise HumanEvalError(f"{where}: duplicate task_id {problem.task_id!r}")
        problems[problem.task_id] = problem
    if not problems:
        raise HumanEvalError(f"{source}: the dataset has no problems")
    return problems


def read_problems(path: Path) -> dict[str, Problem]:
    """The problems of a JSONL(.gz) file in HumanEval's schema, or of LiveCodeBench's published files."""

    def rows() -> Iterator[tuple[str, Any]]:
        for lineno, obj in iter_jsonl(path):
            where = f"{path}:{lineno}"
            yield where, livecodebench.problem_row(obj, where) if livecodebench.is_livecodebench(obj) else obj

    return index_problems(rows(), str(path))


def debug_subset(dataset: Dataset) -> Dataset:
    """The first few problems: what ``--humaneval-debug`` runs (HumanEval/0..3, Mbpp/2..6)."""
    return dataset.subset(dataset.name + DEBUG_SUFFIX, list(dataset.problems)[:DEBUG_PROBLEMS])
