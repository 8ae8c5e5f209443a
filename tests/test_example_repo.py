"""examples/model-repo works as documented: its unit tests alone, and its conftest hook driving a real
(tiny, random) transformers model through the whole benchmark path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "model-repo"


@pytest.fixture
def repo(pytester: pytest.Pytester) -> Path:
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True)
    return pytester.path


def test_unit_tests_alone(pytester: pytest.Pytester, repo: Path) -> None:
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    assert not (repo / "humaneval-report.json").exists()


def test_hook_drives_the_repo_model(
    pytester: pytest.Pytester, repo: Path, tiny_qwen3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_MODEL_DIR", str(tiny_qwen3))
    result = pytester.runpytest_subprocess("--humaneval-debug", "-o", "humaneval_max_tokens=16")
    result.assert_outcomes(failed=4)  # a random model fails the four problems; the run completes
    # The example repo gates on humaneval_min_pass = 0.0: with a gate set, the gate decides the exit status.
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["gate --humaneval-min-pass=0: pass@1 0.0000 -> PASSED"])
    report = json.loads((repo / "humaneval-report.json").read_text())
    assert report["total"] == 4 and report["dataset"] == "humaneval-4"
    cache = list((repo / ".humaneval" / "completions").glob("*.jsonl"))
    assert cache, "the answers from the hook were not cached"
    records = [json.loads(line) for f in cache for line in f.read_text().splitlines() if line.strip()]
    assert {r["task_id"] for r in records} >= {"HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/3"}
    assert all(isinstance(r.get("raw"), str) for r in records)
