"""The stdin/stdout program kind, on a fixture in LiveCodeBench's own format (tests/data/livecodebench_sample.jsonl:
two AtCoder problems, a Codeforces one, a LeetCode call-based one; private test cases in LiveCodeBench's
base64(zlib(pickle)) encoding)."""

from __future__ import annotations

import base64
import json
import pickle
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest
from plugin_support import report, run, usage_error, write_jsonl

from pytest_humaneval.completions import Sample
from pytest_humaneval.datasets import Dataset, livecodebench
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.evaluation import conclude, prepare
from pytest_humaneval.generation.extract import extract
from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox
from pytest_humaneval.verdict import Result

FIXTURE = Path(__file__).parent / "data" / "livecodebench_sample.jsonl"

SUM = "LiveCodeBench/abc900_a"
TRIANGLE = "LiveCodeBench/2099A"
AVERAGE = "LiveCodeBench/abc900_b"
TWO = "LiveCodeBench/9001"

#: A correct program for each problem.
CORRECT = {
    SUM: "a, b = map(int, input().split())\nprint(a + b)\n",
    TRIANGLE: "t = int(input())\nfor _ in range(t):\n    n = int(input())\n    print(n * (n + 1) // 2)\n",
    AVERAGE: "n = int(input())\nxs = list(map(int, input().split()))\nprint(f'{sum(xs) / n:.6f}')\n",
    TWO: (
        "class Solution:\n"
        "    def twoIndices(self, nums: List[int], target: int) -> List[int]:\n"
        "        seen = {}\n"
        "        for i, x in enumerate(nums):\n"
        "            if target - x in seen:\n"
        "                return [seen[target - x], i]\n"
        "            seen[x] = i\n"
    ),
}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return load_dataset(str(FIXTURE))


@pytest.fixture
def sandbox(subprocess_sandbox: SubprocessSandbox) -> SubprocessSandbox:
    """The conftest's module sandbox (1 GiB per program: these are small Python programs)."""
    return subprocess_sandbox


def verdict(sb: SubprocessSandbox, dataset: Dataset, task_id: str, program: str) -> Result:
    problem = dataset.problems[task_id]
    sample = Sample(task_id, 0, program)
    job = prepare(dataset, problem, sample, 3.0)
    assert not isinstance(job, Result)
    return conclude(dataset, problem, sample, sb.run(job))


def test_the_fixture_reads_as_livecodebench_publishes_it(dataset: Dataset) -> None:
    assert list(dataset.problems) == [SUM, TRIANGLE, AVERAGE, TWO]
    assert {p.language for p in dataset} == {"stdio"}
    assert dataset.prompt_template == livecodebench.PROMPT_TEMPLATE  # its own instruction, by path too
    tests = {p.task_id: json.loads(p.test) for p in dataset}
    assert [len(t["inputs"]) for t in tests.values()] == [3, 2, 3, 3]  # public, then the decoded private
    assert tests[SUM]["outputs"] == ["8\n", "0\n", "2000000000\n"] and tests[SUM]["fn_name"] is None
    assert tests[TWO]["fn_name"] == "twoIndices" and dataset.problems[TWO].entry_point == "twoIndices"
    assert "class Solution:" in dataset.problems[TWO].prompt  # the starter code is shown


@pytest.mark.parametrize("task_id", [SUM, TRIANGLE, AVERAGE, TWO])
def test_a_correct_program_passes_every_test_case(
    sandbox: SubprocessSandbox, dataset: Dataset, task_id: str
) -> None:
    assert verdict(sandbox, dataset, task_id, CORRECT[task_id]).status == "passed"


def test_output_is_compared_as_livecodebench_compares_it(
    sandbox: SubprocessSandbox, dataset: Dataset
) -> None:
    """Line by line, stripped: exact, or number by number as decimals (7.0 is 7.000000, 1.33 is not
    1.333333)."""
    loose = (
        "n = int(input())\nxs = list(map(int, input().split()))\nprint('  ', round(sum(xs) / n, 6), '\\n')\n"
    )
    assert verdict(sandbox, dataset, AVERAGE, loose).status == "passed"
    coarse = "n = int(input())\nxs = list(map(int, input().split()))\nprint(round(sum(xs) / n, 2))\n"
    result = verdict(sandbox, dataset, AVERAGE, coarse)
    assert (result.status, result.reason) == (
        "failed",
        "wrong answer on test 2 of 3: printed '1.33', expected '1.333333'",
    )
    extra = CORRECT[SUM] + "print('done')\n"
    assert verdict(sandbox, dataset, SUM, extra).reason.startswith(
        "wrong answer on test 1 of 3: printed '8\\ndone'"
    )


def test_wrong_answers_errors_and_limits(sandbox: SubprocessSandbox, dataset: Dataset) -> None:
    only_sample = verdict(sandbox, dataset, SUM, "print(8)\n")  # right on the public case alone
    assert (only_sample.status, only_sample.reason) == (
        "failed",
        "wrong answer on test 2 of 3: printed '8', expected '0'",
    )
    raises = verdict(sandbox, dataset, SUM, "print(1 / 0)\n")
    assert (raises.status, raises.reason) == (
        "error",
        "test 1 of 3: ZeroDivisionError: division by zero",
    )
    broken = verdict(sandbox, dataset, SUM, "print(1 +)\n")
    assert broken.status == "syntax_error" and "SyntaxError" in broken.reason
    loop = verdict(sandbox, dataset, SUM, "while True:\n    pass\n")
    assert (loop.status, loop.reason) == ("timeout", "the program used up its 3 s of CPU time")
    wrong_value = "class Solution:\n    def twoIndices(self, nums, target):\n        return (0, 1)\n"
    result = verdict(sandbox, dataset, TWO, wrong_value)  # a tuple is taken as the list it holds
    assert (result.status, result.reason) == (
        "failed",
        "wrong answer on test 2 of 3: got [0, 1], expected [1, 2]",
    )
    no_method = "class Solution:\n    pass\n"
    assert verdict(sandbox, dataset, TWO, no_method).status == "error"


def test_a_program_cannot_read_the_expected_output_from_its_judge(
    sandbox: SubprocessSandbox, dataset: Dataset
) -> None:
    """The expected outputs are in the driver, the program's parent, which is not dumpable: its memory
    (and its environment, its command line's file) cannot be read, and no file holds them."""
    thief = (
        "import os, re, sys\n"
        "data = sys.stdin.read()\n"
        "found = b''\n"
        "for path in (f'/proc/{os.getppid()}/mem', f'/proc/{os.getppid()}/environ', 'main.py', '.stdout'):\n"
        "    try:\n"
        "        if path.endswith('mem'):\n"
        "            maps = open(f'/proc/{os.getppid()}/maps').read().splitlines()\n"
        "            with open(path, 'rb') as mem:\n"
        "                for line in maps:\n"
        "                    lo, hi = (int(x, 16) for x in line.split()[0].split('-'))\n"
        "                    mem.seek(lo)\n"
        "                    found += mem.read(min(hi - lo, 1 << 20))\n"
        "        else:\n"
        "            found += open(path, 'rb').read()\n"
        "    except OSError:\n"
        "        pass\n"
        "stolen = str(2 * 10**9).encode() in found  # the third case's answer (not spelled out here)\n"
        "print('stolen' if stolen else sum(map(int, data.split())))\n"
    )
    result = verdict(sandbox, dataset, SUM, thief)
    assert result.status == "passed", result  # it found nothing and computed every answer


def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    class Boom:
        def __reduce__(self) -> tuple:
            return (print, ("owned",))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Boom()))).decode()
    row = json.loads(FIXTURE.read_text().splitlines()[0])
    row["private_test_cases"] = evil
    path = write_jsonl(tmp_path / "evil.jsonl", [row])
    with pytest.raises(HumanEvalError, match=r"evil.jsonl:1 private_test_cases: .*refused: .*builtins.print"):
        load_dataset(str(path))


def test_malformed_rows_are_one_line_each(tmp_path: Path) -> None:
    row = json.loads(FIXTURE.read_text().splitlines()[0])
    cases = [
        ({"public_test_cases": '[{"input": 1}]'}, "public_test_cases: test cases must be a list of"),
        ({"private_test_cases": "not base64 ~~"}, "private_test_cases: test cases are neither JSON nor"),
        ({"metadata": "{not json"}, "metadata is not JSON"),
    ]
    for change, message in cases:
        path = write_jsonl(tmp_path / "bad.jsonl", [{**row, **change}])
        with pytest.raises(HumanEvalError, match=message):
            load_dataset(str(path))


def test_a_release_without_network_is_one_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(HumanEvalError) as e:
        load_dataset("livecodebench")
    assert str(e.value).startswith(
        "could not download LiveCodeBench's test.jsonl (<urlopen error no network>): without network, "
        "download release_v6's files (test.jsonl test2.jsonl test3.jsonl test4.jsonl test5.jsonl test6.jsonl)"
    )
    assert list((tmp_path / "pytest-humaneval" / "livecodebench").iterdir()) == []  # no partial file left


def test_a_release_in_the_cache_is_read_from_there(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "pytest-humaneval" / "livecodebench"
    cache.mkdir(parents=True)
    lines = FIXTURE.read_text().splitlines()
    for i, name in enumerate(livecodebench.RELEASES["release_v6"]):  # one problem a file: the fixture's
        row = json.loads(lines[i % len(lines)])
        row["question_id"] += f"-{i}"
        (cache / name).write_text(json.dumps(row) + "\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert len(load_dataset("livecodebench").problems) == 6


def test_the_program_is_the_last_python_block_of_the_answer(dataset: Dataset) -> None:
    answer = f"First a sketch:\n```python\nprint('draft')\n```\nThe program:\n```python\n{CORRECT[SUM]}```\n"
    assert extract(dataset.problems[SUM], answer).completion == CORRECT[SUM]
    cut = extract(dataset.problems[SUM], "```python\nfor x in range(3:\n", finish_reason="length")
    assert cut.status == "truncated"


def test_the_plugin_runs_a_livecodebench_file(pytester: pytest.Pytester) -> None:
    answers = [
        {"task_id": SUM, "completion": CORRECT[SUM]},
        {"task_id": TRIANGLE, "completion": CORRECT[TRIANGLE]},
        {"task_id": AVERAGE, "completion": "print(0)\n"},
        {"task_id": TWO, "completion": CORRECT[TWO]},
    ]
    write_jsonl(pytester.path / "answers.jsonl", answers)
    result = run(
        pytester, "--humaneval", f"--humaneval-dataset={FIXTURE}", "--humaneval-completions=answers.jsonl"
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*abc900_b*wrong answer on test 1 of 3: printed '0', expected '2.500000'*"])
    data = report(pytester)
    assert (data["passed"], data["total"]) == (3, 4)


def test_canonical_without_reference_solutions_is_one_message(pytester: pytest.Pytester) -> None:
    """LiveCodeBench publishes no solutions: asking for them is a usage error before anything runs, not an
    error (with a traceback) on every item."""
    result = run(
        pytester, "--humaneval", f"--humaneval-dataset={FIXTURE}", "--humaneval-completions=canonical"
    )
    usage_error(result, f"{FIXTURE}: {SUM} has no canonical_solution, so 'canonical' cannot be evaluated")


@pytest.mark.slow
def test_a_program_that_sleeps_is_stopped_on_its_test_case(
    sandbox: SubprocessSandbox, dataset: Dataset
) -> None:
    started = time.monotonic()
    result = verdict(sandbox, dataset, SUM, "import time\ntime.sleep(1000)\n")
    assert (result.status, result.reason) == ("timeout", "test 1 of 3: timed out after 31 s")
    assert time.monotonic() - started < 40  # not the three cases' wall bound
