"""What a benchmark is: a name, a function that returns its problems (dicts in HumanEval's schema:
``task_id``, ``prompt``, ``test`` defining ``check(candidate)``, ``entry_point``, optional
``canonical_solution``), and what the harness should know about it (prompt template, known defects, time
limits). :mod:`.registry` finds them by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HumanEvalError, describe
from .dataset import Dataset, index_problems


@dataclass(frozen=True)
class Benchmark:
    """A dataset the plugin can run by name (``--humaneval-dataset=NAME``)."""

    #: What users type: lower case, digits, ``-_.``.
    name: str
    #: Returns the problems: dicts in HumanEval's schema (or :class:`~pytest_humaneval.datasets.Problem`).
    load: Callable[[], Iterable[Any]]
    #: One line for ``--help`` and error messages.
    description: str = ""
    #: The default prompt template for this benchmark (``{prompt}``, optional ``{entry_point}``); None
    #: uses the built-in one, which asks to complete a given function.
    prompt_template: str | None = None
    #: task_id -> why the reference solution fails the dataset's own test (reported as xfail).
    known_defects: Mapping[str, str] = field(default_factory=dict)
    #: Seconds per program at least; a problem whose reference solution is slow gets more (see time_limits).
    time_limit: float = 3.0
    #: task_id -> seconds its reference solution took, measured (shipped budgets). Without them, a dataset
    #: with canonical solutions is measured once per machine.
    reference_times: Mapping[str, float] | Callable[[], Mapping[str, float]] | None = None
    #: task_id -> the reference solution's per-call times (``Dataset.reference_calls``): EvalPlus's per-input
    #: budgets, max(1 s, 4 x each input's time).
    reference_calls: (
        Mapping[str, Mapping[str, Any]] | Callable[[], Mapping[str, Mapping[str, Any]]] | None
    ) = None
    #: task_id -> digests of the reference's answers (``Dataset.reference_digests``).
    reference_digests: (
        Mapping[str, Mapping[str, Any]] | Callable[[], Mapping[str, Mapping[str, Any]]] | None
    ) = None
    #: Address-space limit per program, MB (``--humaneval-memory`` overrides it).
    memory_mb: int = 2048
    #: Where the problems come from (shown in the report); default: the file defining ``load``.
    source: str | None = None

    def dataset(self) -> Dataset:
        where = f"dataset {self.name!r}"
        try:
            rows = list(self.load())
        except HumanEvalError:
            raise
        except Exception as e:
            raise HumanEvalError(f"{where}: its loader failed: {describe(e)}") from None
        problems = index_problems(((f"{where}, problem {i}", row) for i, row in enumerate(rows)), where)
        times = self.reference_times() if callable(self.reference_times) else self.reference_times
        calls = self.reference_calls() if callable(self.reference_calls) else self.reference_calls
        digests = self.reference_digests() if callable(self.reference_digests) else self.reference_digests
        return Dataset(
            name=self.name,
            path=Path(self.source or _defined_in(self.load)),
            problems=problems,
            prompt_template=self.prompt_template,
            known_defects=dict(self.known_defects),
            time_limit=float(self.time_limit),
            reference_times=dict(times or {}),
            reference_calls=dict(calls or {}),
            reference_digests=dict(digests or {}),
            memory_mb=int(self.memory_mb),
        )


def _defined_in(fn: Callable[..., Any]) -> str:
    module: str = getattr(fn, "__module__", "?")
    try:
        return inspect.getsourcefile(fn) or module
    except TypeError:
        return module
