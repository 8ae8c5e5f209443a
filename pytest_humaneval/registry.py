"""Benchmarks by name: the built-in ones and those a model repo or another package plugs in.

A benchmark is a :class:`Benchmark`: a name, a function that returns its problems (dicts in HumanEval's
schema: ``task_id``, ``prompt``, ``test`` defining ``check(candidate)``, ``entry_point``, optional
``canonical_solution``), and what the harness should know about it (prompt template, known defects,
time limits). Three ways in, all giving the same objects:

- the ``pytest_humaneval_datasets(config)`` hook, in a ``conftest.py`` or a pytest plugin;
- the ``pytest_humaneval.datasets`` entry point group, for an installed package (a function that takes
  no argument and returns a list of benchmarks): it also serves ``pytest_humaneval.api.evaluate``;
- the built-in HumanEval, HumanEval+, MBPP and MBPP+, which are registered through the same hook.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .dataset import DEBUG_SUFFIX, Dataset, index_problems
from .errors import HumanEvalError, describe

ENTRY_POINT_GROUP = "pytest_humaneval.datasets"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


@dataclass(frozen=True)
class Benchmark:
    """A dataset the plugin can run by name (``--humaneval-dataset=NAME``)."""

    #: What users type: lower case, digits, ``-_.``.
    name: str
    #: Returns the problems: dicts in HumanEval's schema (or :class:`~pytest_humaneval.dataset.Problem`).
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
        return Dataset(
            name=self.name,
            path=Path(self.source or _defined_in(self.load)),
            problems=problems,
            prompt_template=self.prompt_template,
            known_defects=dict(self.known_defects),
            time_limit=float(self.time_limit),
            reference_times=dict(times or {}),
            reference_calls=dict(calls or {}),
            memory_mb=int(self.memory_mb),
        )


def _defined_in(fn: Callable[..., Any]) -> str:
    module: str = getattr(fn, "__module__", "?")
    try:
        return inspect.getsourcefile(fn) or module
    except TypeError:
        return module


def registered(config: Any = None) -> dict[str, Benchmark]:
    """Every benchmark by name: from the hook (with a pytest ``config``; without one, the built-ins) and
    from installed packages' entry points. Two with one name are an error naming both."""
    # by its full name, from sys.modules: ``from . import`` would take the package's attribute, which can
    # outlive a sys.modules reset (pytester's) and hold a copy built on an older module's Benchmark class
    builtin_datasets = importlib.import_module(f"{__package__}.builtin_datasets")

    found: list[tuple[str, Any]] = []
    if config is not None:
        if not config.pluginmanager.is_registered(builtin_datasets):
            config.pluginmanager.register(builtin_datasets, "humaneval-builtin-datasets")
        for result in config.hook.pytest_humaneval_datasets(config=config):
            found.extend(("a pytest_humaneval_datasets hook", b) for b in _as_list(result))
    else:
        found.extend(("pytest-humaneval", b) for b in builtin_datasets.pytest_humaneval_datasets(config=None))
    found.extend(_from_entry_points())
    out: dict[str, Benchmark] = {}
    origins: dict[str, str] = {}
    for origin, bench in found:
        if not isinstance(bench, Benchmark):
            raise HumanEvalError(
                f"{origin} returned {type(bench).__name__}: return pytest_humaneval.registry.Benchmark "
                "objects"
            )
        if not _NAME.fullmatch(bench.name) or bench.name.endswith(DEBUG_SUFFIX):
            raise HumanEvalError(
                f"{origin}: dataset name {bench.name!r} is not usable: use lower case letters, digits and "
                f"-_. (not ending in {DEBUG_SUFFIX!r}, which names a debug subset)"
            )
        if bench.name in out and out[bench.name] is not bench:
            raise HumanEvalError(
                f"dataset {bench.name!r} is registered twice ({origins[bench.name]} and {origin}): rename one"
            )
        out[bench.name] = bench
        origins[bench.name] = origin
    return out


def _as_list(result: Any) -> list[Any]:
    if result is None:
        return []
    if isinstance(result, Benchmark):
        return [result]
    return list(result)


@cache
def _from_entry_points() -> tuple[tuple[str, Any], ...]:
    found: list[tuple[str, Any]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {ep.name} = {ep.value} ({ENTRY_POINT_GROUP})"
        try:
            target = ep.load()
            result = target() if callable(target) and not isinstance(target, Benchmark) else target
        except Exception as e:
            raise HumanEvalError(
                f"{origin} failed to load: {describe(e)}; fix or uninstall that package"
            ) from None
        found.extend((origin, b) for b in _as_list(result))
    return tuple(found)
