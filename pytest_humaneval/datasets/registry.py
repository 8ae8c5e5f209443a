"""Benchmarks by name: the built-in ones and those a model repo or another package plugs in.

A benchmark is a :class:`Benchmark`: a name, a function that returns its problems (dicts in HumanEval's
schema: ``task_id``, ``prompt``, ``test`` defining ``check(candidate)``, ``entry_point``, optional
``canonical_solution``), and what the harness should know about it (prompt template, known defects,
time limits). Three ways in, all giving the same objects:

- the ``pytest_humaneval_datasets(config)`` hook, in a ``conftest.py`` or a pytest plugin;
- the ``pytest_humaneval.datasets`` entry point group, for an installed package (a function that takes
  no argument and returns a list of benchmarks): it also serves ``pytest_humaneval.api.evaluate``;
- the built-in HumanEval, HumanEval+, MBPP and MBPP+, which are registered through the same hook.

:func:`load_dataset` gives the dataset a name (or a file's path) stands for.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ..errors import HumanEvalError, describe
from . import builtin, livecodebench
from .benchmark import Benchmark
from .dataset import DEBUG_SUFFIX, Dataset, debug_subset, read_problems

ENTRY_POINT_GROUP = "pytest_humaneval.datasets"
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]*")


def registered(config: Any = None) -> dict[str, Benchmark]:
    """Every benchmark by name: from the hook (with a pytest ``config``; without one, the built-ins) and
    from installed packages' entry points. Two with one name are an error naming both."""
    found: list[tuple[str, Any]] = []
    if config is not None:
        if not config.pluginmanager.is_registered(builtin):
            config.pluginmanager.register(builtin, "humaneval-builtin-datasets")
        for result in config.hook.pytest_humaneval_datasets(config=config):
            found.extend(("a pytest_humaneval_datasets hook", b) for b in _as_list(result))
    else:
        found.extend(("pytest-humaneval", b) for b in builtin.pytest_humaneval_datasets(config=None))
    found.extend(_from_entry_points())
    out: dict[str, Benchmark] = {}
    origins: dict[str, str] = {}
    for origin, bench in found:
        if not isinstance(bench, Benchmark):
            raise HumanEvalError(
                f"{origin} returned {type(bench).__name__}: return pytest_humaneval.datasets.Benchmark "
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


def load_dataset(spec: str = "humaneval", config: Any = None) -> Dataset:
    """A dataset by registered name (``humaneval``, ``mbpp-plus``, a plug-in's), its debug subset
    (``NAME-4``), or the path of a JSONL(.gz) file in HumanEval's schema. With a pytest ``config``, the
    datasets registered by ``pytest_humaneval_datasets`` hooks count too."""
    benchmarks = registered(config)
    if spec in benchmarks:
        return benchmarks[spec].dataset()
    base = spec.removesuffix(DEBUG_SUFFIX)
    if base != spec and base in benchmarks:
        return debug_subset(benchmarks[base].dataset())
    path = Path(spec).expanduser()
    if not path.exists():
        raise HumanEvalError(
            f"dataset {spec!r} not found: give one of {', '.join(benchmarks)} or the path of a JSONL(.gz) "
            "file in HumanEval's schema"
        )
    path = path.resolve()
    problems = read_problems(path)
    whole = any(p.language == "stdio" for p in problems.values())  # LiveCodeBench's: its own instruction
    name = path.name.removesuffix(".gz").removesuffix(".jsonl")
    return Dataset(name, path, problems, prompt_template=livecodebench.PROMPT_TEMPLATE if whole else None)
