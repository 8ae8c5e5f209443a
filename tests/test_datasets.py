"""MBPP and MBPP+ as benchmarks, the dataset registry (hook and entry points), and per-problem time limits.

Plugin behaviour goes through pytester subprocesses; the registry and the limits are also checked directly.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from plugin_support import report, run, write_jsonl

from pytest_humaneval.api import evaluate
from pytest_humaneval.datasets import Benchmark
from pytest_humaneval.datasets.builtin import MBPP_TEMPLATE, check_from_loop
from pytest_humaneval.datasets.registry import load_dataset, registered
from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.generation.extract import extract
from pytest_humaneval.generation.prompts import DEFAULT_TEMPLATE, load_template, render
from pytest_humaneval.time_limits import FACTOR, TimeLimits, cache_path, time_limits

#: A plug-in benchmark, as a model repo's conftest.py registers it.
PLUGIN_CONFTEST = """
from pytest_humaneval.datasets import Benchmark

PROBLEMS = [
    {
        "task_id": "Toy/0",
        "prompt": "def double(x):\\n",
        "entry_point": "double",
        "canonical_solution": "    return 2 * x\\n",
        "test": "def check(candidate):\\n    assert candidate(2) == 4\\n    assert candidate(-1) == -2\\n",
    },
    {
        "task_id": "Toy/1",
        "prompt": "def shout(s):\\n",
        "entry_point": "shout",
        "canonical_solution": "    return s.upper() + '!'\\n",
        "test": "def check(candidate):\\n    assert candidate('hi') == 'HI!'\\n",
    },
]


def pytest_humaneval_datasets(config):
    return [Benchmark("toy", lambda: PROBLEMS, "two toy problems", prompt_template="Do it: {prompt}")]
"""


# --------------------------------------------------------------------------------------- data


def test_the_four_builtins_load_in_humanevals_schema() -> None:
    sizes = {name: len(load_dataset(name)) for name in ("humaneval", "humaneval-plus", "mbpp", "mbpp-plus")}
    assert sizes == {"humaneval": 164, "humaneval-plus": 164, "mbpp": 378, "mbpp-plus": 378}
    mbpp_plus = load_dataset("mbpp-plus")
    problem = mbpp_plus.problems["Mbpp/2"]
    assert problem.entry_point == "similar_elements" and problem.canonical_solution
    assert problem.prompt.startswith('"""\nWrite a function to find the shared elements')
    assert "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))" in problem.prompt
    assert problem.test.rstrip().endswith(
        "def check(candidate):\n    for i, (inp, exp) in enumerate(zip(inputs, results)):\n"
        "        assertion(candidate(*inp), exp, 0)"
    )
    mbpp = load_dataset("mbpp")
    assert mbpp.problems["Mbpp/2"].test == (
        "def check(candidate):\n"
        "    assert candidate((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)\n"
        "    assert candidate((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)\n"
        "    assert candidate((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)\n"
    )
    # the not-None problems' oracle asserts (OriginFmt's computes the match and drops it)
    for task_id in ("Mbpp/737", "Mbpp/787", "Mbpp/794"):
        assert (
            "exact_match = exp == (out is not None)\n    assert exact_match\n"
            in mbpp_plus.problems[task_id].test
        )
    # a float comparison first checks the answer's type, as EvalPlus does: [] is not 5.2 (Mbpp/721)
    assert "assert type(out) == type(exp)" in mbpp_plus.problems["Mbpp/721"].test
    # Mbpp/56's function is itself named check: the asserts call the candidate, not the name
    assert "assert candidate(70) == False" in mbpp.problems["Mbpp/56"].test
    assert mbpp.known_defect("Mbpp/120") and not mbpp_plus.known_defect("Mbpp/120")
    assert mbpp.prompt_template == mbpp_plus.prompt_template == MBPP_TEMPLATE
    assert load_dataset("humaneval").prompt_template is None


def test_debug_subsets_are_the_first_four_problems() -> None:
    assert list(load_dataset("mbpp-plus-4").problems) == ["Mbpp/2", "Mbpp/3", "Mbpp/4", "Mbpp/6"]
    assert list(load_dataset("humaneval-4").problems) == [f"HumanEval/{i}" for i in range(4)]
    assert load_dataset("mbpp-4").name == "mbpp-4"


def test_a_test_program_that_does_not_end_in_its_loop_is_refused() -> None:
    with pytest.raises(HumanEvalError, match="Mbpp/9: the MBPP\\+ test does not end with its loop"):
        check_from_loop("inputs = []\nprint(1)\n", "f", "Mbpp/9")


def test_an_unknown_dataset_names_every_registered_one() -> None:
    with pytest.raises(HumanEvalError, match="humaneval, humaneval-plus, mbpp, mbpp-plus"):
        load_dataset("mbpp-pls")


# ------------------------------------------------------------------------------------ registry


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("mbpp", "dataset 'mbpp' is registered twice (a pytest_humaneval_datasets hook and a "),
        ("My Bench", "dataset name 'My Bench' is not usable"),
        ("toy-4", "not ending in '-4'"),
    ],
)
def test_registry_refuses_duplicate_and_unusable_names(
    pytester: pytest.Pytester, name: str, message: str
) -> None:
    """A conftest's hook, through pytest's own plugin manager, beside the built-ins registered there."""
    pytester.makeconftest(
        "from pytest_humaneval.datasets import Benchmark\n\n\n"
        f"def pytest_humaneval_datasets(config):\n    return [Benchmark({name!r}, lambda: [])]\n"
    )
    config = pytester.parseconfigure()
    with pytest.raises(HumanEvalError, match=re.escape(message)):
        registered(config)


def test_a_broken_loader_or_problem_is_one_clear_error() -> None:
    def boom() -> list[dict]:
        raise RuntimeError("no network")

    with pytest.raises(HumanEvalError, match="dataset 'b': its loader failed: no network"):
        Benchmark("b", boom).dataset()
    with pytest.raises(HumanEvalError, match="dataset 'b', problem 0: problem lacks test, entry_point"):
        Benchmark("b", lambda: [{"task_id": "B/0", "prompt": "x"}]).dataset()


def test_a_plugged_in_benchmark_runs_by_name(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(PLUGIN_CONFTEST)
    result = run(
        pytester, "--humaneval", "--humaneval-dataset=toy", "--humaneval-completions=canonical", "-v"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*toy::Toy/0 PASSED*", "*toy::Toy/1 PASSED*"])
    data = report(pytester)
    assert data["dataset"] == "toy" and data["passed"] == 2
    assert data["provenance"]["dataset"]["path"].endswith("conftest.py")
    # no reference times shipped: measured once in the sandbox, cached, then read back
    cached = list((pytester.path / ".humaneval" / "reference-times").glob("toy-*.json"))
    assert len(cached) == 1 and set(json.loads(cached[0].read_text())["times"]) == {"Toy/0", "Toy/1"}
    again = run(pytester, "--humaneval", "--humaneval-dataset=toy", "--humaneval-completions=canonical")
    again.assert_outcomes(passed=2)
    assert "measured on this machine (toy-" in report(pytester)["time_limits"]["origin"]


def test_a_plugged_in_benchmarks_prompt_template_is_its_default() -> None:
    dataset = Benchmark("toy", lambda: [PROBLEM], prompt_template="Do it: {prompt}|{entry_point}").dataset()
    template = load_template(None, dataset.prompt_template)
    assert render(template, dataset.problems["T/0"]) == "Do it: def f(x):\n|f"
    assert load_template(None, None) == DEFAULT_TEMPLATE


PROBLEM = {
    "task_id": "T/0",
    "prompt": "def f(x):\n",
    "entry_point": "f",
    "canonical_solution": "    return x\n",
    "test": "def check(candidate):\n    assert candidate(1) == 1\n",
}


# --------------------------------------------------------------------------------------- MBPP runs


@pytest.mark.parametrize("dataset", ["mbpp", "mbpp-plus"])
def test_debug_runs_canonical_of_either_mbpp(pytester: pytest.Pytester, dataset: str) -> None:
    result = run(
        pytester,
        "--humaneval-debug",
        f"--humaneval-dataset={dataset}",
        "--humaneval-completions=canonical",
        "-v",
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"*{dataset}-4::Mbpp/2 PASSED*", f"*{dataset}-4::Mbpp/6 PASSED*"])
    assert report(pytester)["dataset"] == f"{dataset}-4"


def test_mbpp_canonical_shows_mbpp_120_as_the_known_defect(pytester: pytest.Pytester) -> None:
    result = run(
        pytester, "--humaneval", "--humaneval-dataset=mbpp", "--humaneval-completions=canonical", "-rx"
    )
    result.assert_outcomes(passed=377, xfailed=1)
    result.stdout.fnmatch_lines(["*XFAIL*Mbpp/120*math.isclose without importing math*"])
    data = report(pytester)
    assert data["known_defects"] == ["Mbpp/120"]
    (bad,) = [r for r in data["results"] if not r["passed"]]
    assert bad["task_id"] == "Mbpp/120" and bad["exc_type"] == "NameError"


@pytest.mark.slow
def test_mbpp_plus_canonical_scores_378_of_378(pytester: pytest.Pytester) -> None:
    result = run(
        pytester, "--humaneval", "--humaneval-dataset=mbpp-plus", "--humaneval-completions=canonical"
    )
    result.assert_outcomes(passed=378)
    data = report(pytester)
    assert data["pass_at_k"] == {"1": 1.0} and data["total"] == 378
    limits = data["time_limits"]["per_task"]
    assert limits["Mbpp/2"] <= limits["Mbpp/599"]  # Mbpp/599 sums a range of 10^8 numbers
    assert data["time_limits"]["calls"]["Mbpp/599"]["slow"]


@pytest.mark.parametrize("dataset", ["mbpp", "mbpp-plus"])
def test_all_wrong_answers_score_zero(pytester: pytest.Pytester, dataset: str) -> None:
    rows = [
        {"task_id": p.task_id, "solution": f"def {p.entry_point}(*args, **kwargs):\n    return None\n"}
        for p in load_dataset(dataset)
    ]
    write_jsonl(pytester.path / "wrong.jsonl", rows)
    result = run(
        pytester,
        "--humaneval",
        f"--humaneval-dataset={dataset}",
        "--humaneval-completions=wrong.jsonl",
        "--tb=no",
        "-q",
    )
    data = report(pytester)
    assert data["passed"] == 0 and data["total"] == 378, [
        r["task_id"] for r in data["results"] if r["passed"]
    ]
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("dataset", ["humaneval-plus", "mbpp-plus"])
@pytest.mark.parametrize("empty", ["[]", "()"])
def test_an_empty_sequence_is_not_a_float(dataset: str, empty: str, tmp_path: Path) -> None:
    """OriginFmt's float check is ``np.allclose``, true for ``[]`` against any float (an empty broadcast):
    HumanEval/2, 4 and 45 passed ``return []``. EvalPlus checks the answer's type and length first; so do we."""
    rows = [
        {"task_id": p.task_id, "solution": f"def {p.entry_point}(*args, **kwargs):\n    return {empty}\n"}
        for p in load_dataset(dataset)
    ]
    data = evaluate(rows, dataset=dataset, output=tmp_path)
    assert [r["task_id"] for r in data["results"] if r["passed"]] == []
    float_answer = next(
        r
        for r in data["results"]
        if r["task_id"] == ("HumanEval/2" if "humaneval" in dataset else "Mbpp/721")
    )
    assert "out: " + ("list" if empty == "[]" else "tuple") + ", exp: float" in float_answer["reason"]


def test_solution_and_completion_fields_both_work_for_mbpp(pytester: pytest.Pytester) -> None:
    problems = list(load_dataset("mbpp-4"))
    rows = [
        {"task_id": problems[0].task_id, "solution": problems[0].canonical_solution},  # EvalPlus's field
        {"task_id": problems[1].task_id, "completion": problems[1].canonical_solution},  # after the prompt
        {"task_id": problems[2].task_id, "completion": "def nothing():\n    return 1\n"},
    ]
    write_jsonl(pytester.path / "answers.jsonl", rows)
    result = run(
        pytester, "--humaneval-debug", "--humaneval-dataset=mbpp", "--humaneval-completions=answers.jsonl"
    )
    result.assert_outcomes(passed=2, failed=1, skipped=1)  # Mbpp/6: not attempted
    statuses = {r["task_id"]: r["status"] for r in report(pytester)["results"]}
    assert statuses == {"Mbpp/2": "passed", "Mbpp/3": "passed", "Mbpp/4": "error"}


def test_mbpp_prompt_asks_for_the_whole_function_and_extraction_keeps_it() -> None:
    problem = load_dataset("mbpp").problems["Mbpp/2"]
    prompt = render(MBPP_TEMPLATE, problem)
    assert "Write a Python function `similar_elements`" in prompt and "Nothing is given to complete" in prompt
    assert "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))" in prompt
    answer = textwrap.dedent(
        """\
        Use sets:

        ```python
        from functools import reduce

        def _common(a, b):
            return set(a) & set(b)

        def similar_elements(t1, t2):
            return tuple(sorted(_common(t1, t2)))

        assert set(similar_elements((3, 4, 5, 6), (5, 7, 4, 10))) == {4, 5}
        print(similar_elements((1, 2), (2, 3)))
        ```
        """
    )
    code = extract(problem, answer).completion
    assert "def _common(a, b):" in code and "def similar_elements(t1, t2):" in code
    assert "assert" not in code and "print(" not in code
    namespace: dict = {}
    exec(problem.prompt + code, namespace)
    assert namespace["similar_elements"]((3, 4, 5, 6), (5, 7, 4, 10)) == (4, 5)


# --------------------------------------------------------------------------------- time limits


def test_limits_follow_the_reference_solutions() -> None:
    slow = {**PROBLEM, "task_id": "T/1"}
    toy = Benchmark("toy", lambda: [PROBLEM, slow], reference_times={"T/0": 0.01, "T/1": 2.0}).dataset()
    limits = time_limits(toy, None)
    assert limits("T/0") == 3.0  # a fast reference: the floor
    assert limits("T/1") == FACTOR * 2.0
    assert limits.describe().startswith("3-8 s") and "per problem: max(3 s, 4 x" in limits.describe()
    assert limits.call_limits("T/1") is None  # no per-input times: one limit for the program
    assert time_limits(load_dataset("humaneval"), None).describe() == "3 s/program"
    assert time_limits(load_dataset("mbpp"), None).call_limits("Mbpp/2") is None  # MBPP's own asserts
    assert time_limits(toy, 7.5)("T/1") == 7.5  # --humaneval-timeout=N wins
    scaled = time_limits(toy, None, scale=2.0)
    assert scaled("T/0") == 6.0 and scaled("T/1") == 2 * limits("T/1")
    assert TimeLimits.from_dict(limits.as_dict()) == limits


def test_evalplus_datasets_budget_each_input_as_evalplus_does() -> None:
    """HumanEval+ and MBPP+: each input max(1 s, 4 x the reference's time on it), the program the base and
    the plus inputs' budgets, each capped at 60 s, plus 1 s each (EvalPlus's two processes)."""
    mbpp_plus = load_dataset("mbpp-plus")
    limits = time_limits(mbpp_plus, None)
    spec = mbpp_plus.reference_calls["Mbpp/599"]
    slow = {int(i): max(1.0, FACTOR * t) for i, t in spec["slow"].items()}
    budgets = [slow.get(i, 1.0) for i in range(spec["n"])]
    base, plus = sum(budgets[: spec["base"]]), sum(budgets[spec["base"] :])
    assert limits("Mbpp/599") == round(min(60, base) + min(60, plus) + 2, 2)
    calls = limits.call_limits("Mbpp/599")
    assert calls is not None and calls["default"] == 1.0
    assert {int(i): b for i, b in calls["slow"].items()} == {i: round(b, 3) for i, b in slow.items() if b > 1}
    assert "EvalPlus" in limits.describe()
    small = mbpp_plus.reference_calls["Mbpp/2"]
    assert limits("Mbpp/2") == min(60, small["base"]) + min(60, small["n"] - small["base"]) + 2
    assert TimeLimits.from_dict(limits.as_dict()) == limits
    assert time_limits(mbpp_plus, 7.5).call_limits("Mbpp/599") is None  # --humaneval-timeout=N: one limit
    plus = time_limits(load_dataset("humaneval-plus"), None)
    assert plus.call_limits("HumanEval/0") == {"default": 1.0, "slow": {}}
    assert plus("HumanEval/32") == 3.0  # its reference fails its test: nothing measured, the floor


@pytest.mark.slow
def test_a_slow_correct_answer_passes_and_a_loop_stops_at_its_inputs_budget(
    pytester: pytest.Pytester,
) -> None:
    """A correct answer that takes 40 ms of CPU on each of HumanEval/138's 121 inputs needs 5 s in all:
    EvalPlus passes it (each input is within its 1 s budget), and so does the plugin, where one limit for the
    whole program (3 s) timed it out. A loop on the fourth input stops after that input's budget."""
    slow = (
        "    import time\n    t = time.process_time()\n    while time.process_time() - t < 0.04:\n        pass\n"
        "    return n >= 8 and n % 2 == 0\n"
    )
    loop = "    if n == 10:\n        while True:\n            pass\n    return n >= 8 and n % 2 == 0\n"
    rows = [{"task_id": "HumanEval/138", "completion": body} for body in (slow, loop)]
    path = pytester.path / "slow.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["--humaneval", "--humaneval-dataset=humaneval-plus", f"--humaneval-completions={path}"]
    run(pytester, *args, "-k", "is_equal_to_sum_even")
    results = {r["sample"]: r for r in report(pytester)["results"] if r["task_id"] == "HumanEval/138"}
    assert results[0]["status"] == "passed", results[0]
    assert results[0]["duration_s"] > 3.0
    assert results[1]["status"] == "timeout" and "input 3 ran past its 1 s budget" in results[1]["reason"]
    assert results[1]["duration_s"] < 5.0
    run(pytester, *args, "-k", "is_equal_to_sum_even", "--humaneval-timeout=3")
    results = {r["sample"]: r for r in report(pytester)["results"] if r["task_id"] == "HumanEval/138"}
    assert results[0]["status"] == "timeout", "one limit for the program: the slow answer times out"


CROWDED_CPU = 0
#: The body of HumanEval/138's answer: correct, and on input 3 (n=10) it runs on CPU 0 only, spending
#: ``spend`` s of its own CPU (the budget is 1 s) there; ``helper`` puts a child of its own beside it.
CROWDED_ANSWER = """    import os, time
    if n == 10:
        os.sched_setaffinity(0, {{{cpu}}})
        child = None
        if {helper}:
            child = os.fork()
            if child == 0:
                t = time.process_time()
                while time.process_time() - t < {spend}:
                    pass
                os._exit(0)
        t = time.process_time()
        while time.process_time() - t < {spend}:
            pass
        if child:
            os.waitpid(child, 0)
    return n >= 8 and n % 2 == 0
"""


def crowding_spinners(count: int) -> list[subprocess.Popen]:
    """Processes outside the sandbox that spin on CROWDED_CPU: a loaded machine."""
    code = f"import os\nos.sched_setaffinity(0, {{{CROWDED_CPU}}})\nwhile True:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


@pytest.mark.slow
def test_an_input_s_budget_gives_back_the_wait_other_processes_caused(pytester: pytest.Pytester) -> None:
    """An input whose answer needs 0.6 s of CPU, within its 1 s budget, on a CPU two other processes
    share: about 1.8 s of wall time, 1.2 s of them waiting. Giving back only the wait beyond half a core
    (0.6 s) timed this correct answer out; the whole wait is given back. A program that runs a child of its
    own beside it (0.8 s of CPU each: 1.6 s, over the budget), so that the child's work shows as the main
    process's wait, gets none of that back."""

    def answer(spend: float, helper: bool) -> Path:
        path = pytester.path / f"answer-{helper}.jsonl"
        body = CROWDED_ANSWER.format(cpu=CROWDED_CPU, spend=spend, helper=helper)
        path.write_text(json.dumps({"task_id": "HumanEval/138", "completion": body}) + "\n")
        return path

    def verdict(path: Path, *args: str) -> dict:
        run(pytester, "--humaneval", "--humaneval-dataset=humaneval-plus", f"--humaneval-completions={path}",
            "-k", "is_equal_to_sum_even", *args)  # fmt: skip
        return next(r for r in report(pytester)["results"] if r["task_id"] == "HumanEval/138")

    spinners = crowding_spinners(2)
    try:
        crowded = verdict(answer(0.6, helper=False))
    finally:
        for s in spinners:
            s.kill()
            s.wait()
    assert crowded["status"] == "passed", crowded
    helped = verdict(answer(0.8, helper=True))
    assert helped["status"] == "timeout" and "input 3 ran past its 1 s budget" in helped["reason"], helped


def test_limits_without_reference_times_are_measured_once_and_cached(tmp_path: Path) -> None:
    dataset = Benchmark("t", lambda: [PROBLEM]).dataset()
    assert dataset.reference_times == {}
    calls = []

    class Box:
        kind = "subprocess"

        def submit(self, job):
            from concurrent.futures import Future

            calls.append(job)
            f: Future = Future()
            f.set_result({"status": "passed", "cpu_s": 2.5, "duration_s": 9.0})
            return f

    from pytest_humaneval.sandbox import Sandbox

    box = cast(Callable[[], Sandbox], Box)  # a fake sandbox: the kind and submit() that measuring uses
    path = cache_path(tmp_path, dataset, "subprocess")
    first = time_limits(dataset, None, cache_file=path, sandbox=box)
    assert first("T/0") == 10.0 and len(calls) == 1 and path.is_file()
    second = time_limits(dataset, None, cache_file=path, sandbox=lambda: pytest.fail("measured again"))
    assert second("T/0") == 10.0
    no_canonical = Benchmark("u", lambda: [{**PROBLEM, "canonical_solution": ""}]).dataset()
    assert time_limits(no_canonical, None, sandbox=box).per_task == {}


def test_only_passing_references_are_measured() -> None:
    """A reference that fails (a dataset defect) or loops says nothing about a correct solution's time: its
    problem keeps the floor instead of a limit built from its time to failure or the measuring cap."""
    from pytest_humaneval.sandbox import Limits
    from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox
    from pytest_humaneval.time_limits import measure

    fails = {**PROBLEM, "task_id": "T/1", "canonical_solution": "    return x + 1\n"}
    dataset = Benchmark("m", lambda: [PROBLEM, fails]).dataset()
    sandbox = SubprocessSandbox(Limits(), concurrency=2)
    try:
        times = measure(dataset, sandbox)
    finally:
        sandbox.close()
    assert set(times) == {"T/0"} and 0 <= times["T/0"] < 5


def test_a_loop_still_stops_at_its_problems_limit(pytester: pytest.Pytester) -> None:
    problems = list(load_dataset("mbpp-4"))
    rows = [{"task_id": p.task_id, "solution": p.canonical_solution} for p in problems]
    rows[0] = {
        "task_id": problems[0].task_id,
        "solution": "def similar_elements(a, b):\n    while True:\n        pass\n",
    }
    write_jsonl(pytester.path / "answers.jsonl", rows)
    result = run(
        pytester,
        "--humaneval-debug",
        "--humaneval-dataset=mbpp-plus",
        "--humaneval-completions=answers.jsonl",
    )
    result.assert_outcomes(passed=3, failed=1)
    (loop,) = [r for r in report(pytester)["results"] if not r["passed"]]
    # MBPP+ budgets each input (EvalPlus's max(1 s, 4 x the reference's time)): the loop stops at its first
    assert loop["status"] == "timeout" and "input 0 ran past its 1 s budget" in loop["reason"]
    assert 1.0 <= loop["duration_s"] < 3.0


@pytest.mark.docker
@pytest.mark.parametrize("dataset", ["mbpp", "mbpp-plus"])
def test_mbpp_in_the_docker_sandbox(pytester: pytest.Pytester, image: str, dataset: str) -> None:
    """Both MBPP benchmarks through warm containers, with xdist: canonical passes, a loop times out."""
    problems = list(load_dataset(f"{dataset}-4"))
    rows = [{"task_id": p.task_id, "solution": p.prompt + p.canonical_solution} for p in problems]
    rows[3] = {
        "task_id": problems[3].task_id,
        "solution": f"def {problems[3].entry_point}(*a):\n    while 1: pass\n",
    }
    write_jsonl(pytester.path / "answers.jsonl", rows)
    result = run(
        pytester,
        "--humaneval-debug",
        f"--humaneval-dataset={dataset}",
        "--humaneval-completions=answers.jsonl",
        "--humaneval-sandbox=docker",
        f"--humaneval-sandbox-image={image}",
        "-n",
        "2",
    )
    result.assert_outcomes(passed=3, failed=1)
    statuses = [r["status"] for r in report(pytester)["results"]]
    assert statuses == ["passed", "passed", "passed", "timeout"]
    assert report(pytester)["sandbox"].startswith("docker sandbox")
