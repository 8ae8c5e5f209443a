"""Helpers of the test modules that run the plugin through pytester: the bundled datasets' problems,
completion files, the JSON report, usage errors, the records of a completion cache and their fields."""

from __future__ import annotations

import gzip
import json
from collections.abc import Collection
from pathlib import Path

import pytest

from pytest_humaneval.datasets.dataset import data_dir

DATASETS = data_dir("datasets")


def problems(name: str = "HumanEval.jsonl.gz") -> list[dict]:
    path = DATASETS / name
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        return [json.loads(line) for line in fh]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def canonical_completions(path: Path, wrong: Collection[str] = (), count: int | None = None) -> Path:
    """A completions file of HumanEval's canonical solutions (of its first ``count`` problems, else all)
    in which the tasks in ``wrong`` answer ``return None``, a program that fails."""
    rows = [
        {
            "task_id": p["task_id"],
            "completion": "    return None\n" if p["task_id"] in wrong else p["canonical_solution"],
        }
        for p in problems()[:count]
    ]
    return write_jsonl(path, rows)


def report(pytester: pytest.Pytester, name: str = "report.json") -> dict:
    return json.loads((pytester.path / name).read_text())


def cache_records(output: Path) -> list[dict]:
    """Every record of every completion cache under ``output`` (a ``.humaneval`` directory), in the order
    written. Safe to poll while a run appends: a line not yet ended by its newline is left out."""
    records = []
    for path in sorted((output / "completions").glob("*.cache.jsonl")):
        whole = path.read_text().split("\n")[:-1]  # after the last newline: a line still being written
        records += [json.loads(line) for line in whole if line.endswith("}")]
    return records


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:randomly", "--humaneval-report=report.json", *args)


def usage_error(result: pytest.RunResult, message: str) -> None:
    """One clear message: a usage error, no traceback."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


#: The fields of one line of a completion cache (``.humaneval/completions/*.cache.jsonl``).
RECORD_FIELDS = {
    "task_id",
    "sample",
    "completion",
    "status",
    "reason",
    "raw",
    "reasoning_content",
    "finish_reason",
    "usage",
    "latency_s",
    "attempts",
    "key",
}
