"""The Python API runs the plugin's own evaluation: same verdicts as a pytest run on the same input."""

from __future__ import annotations

import json

import pytest
from plugin_support import canonical_completions, run

# Imported before pytester's in-process run, which drops the modules first imported during it: the registry
# and its built-ins must stay the ones the API uses (run alone, this file otherwise met two Benchmark classes).
import pytest_humaneval.datasets.builtin  # noqa: F401
from pytest_humaneval.api import evaluate, pass_at_k
from pytest_humaneval.errors import HumanEvalError


def test_api_matches_the_plugin(pytester: pytest.Pytester) -> None:
    path = canonical_completions(
        pytester.path / "mixed.jsonl", wrong={f"HumanEval/{i}" for i in range(0, 164, 3)}
    )
    run(pytester, "--humaneval", f"--humaneval-completions={path}")
    plugin = json.loads((pytester.path / "report.json").read_text())
    api = evaluate(path)
    assert api["pass_at_k"] == plugin["pass_at_k"]
    verdicts = {(r["task_id"], r["status"], r["reason"]) for r in api["results"]}
    assert verdicts == {(r["task_id"], r["status"], r["reason"]) for r in plugin["results"]}
    assert 0 < api["passed"] < api["total"] == 164


def test_api_takes_dicts_and_reports_missing_tasks() -> None:
    report = evaluate([{"task_id": "HumanEval/0", "completion": "    return True\n"}], dataset="humaneval-4")
    # The tasks with no line are not attempted: left out of pass@k, named in ``coverage``.
    assert [(r["task_id"], r["status"]) for r in report["results"]] == [("HumanEval/0", "failed")]
    assert report["coverage"] == {
        "tasks": 4,
        "attempted": 1,
        "not_attempted": ["HumanEval/1", "HumanEval/2", "HumanEval/3"],
    }
    assert report["pass_at_k"] == {"1": 0.0}
    with pytest.raises(HumanEvalError, match="completions:1: unknown task_id 'X'"):
        evaluate([{"task_id": "X", "completion": ""}], dataset="humaneval-4")


def test_pass_at_k_estimator() -> None:
    assert pass_at_k(10, 5, 1) == pytest.approx(0.5)
    assert pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 1, 10) == 1.0
    assert pass_at_k(20, 3, 5) == pytest.approx(1 - (17 * 16 * 15 * 14 * 13) / (20 * 19 * 18 * 17 * 16))
