"""HumanEval+'s shipped reference digests (``datasets/reference-digests.json``): the judge skips the test's
``ref_func`` call only where the candidate's answer is, byte for byte, the reference's; every verdict stays
what the test alone would decide, and no program gains a pass from it (the forgery family runs against one
such problem too: tests/test_forgeries.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_humaneval.completions import canonical
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.evaluation import prepare, program_job
from pytest_humaneval.sandbox import Job
from pytest_humaneval.sandbox.runner.judge import Judge, args_key, plain_digest

ROOT = Path(__file__).resolve().parents[1]


def generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "reference_digests", ROOT / "benchmarks/reference_digests.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_test_that_calls_the_reference_has_digests_for_this_very_test() -> None:
    dataset = load_dataset("humaneval-plus")
    calls_reference = {p.task_id for p in dataset if "def ref_func(" in p.test}
    with_digests = {p.task_id for p in dataset if dataset.answer_digests(p)}
    assert (
        calls_reference
        == with_digests
        == {
            "HumanEval/14",
            "HumanEval/15",
            "HumanEval/83",
            "HumanEval/100",
            "HumanEval/130",
            "HumanEval/139",
        }
    )
    # a test that changed (here: one more input) gets none: stale digests are never used
    problem = dataset.problems["HumanEval/100"]
    changed = dataclasses.replace(problem, test=problem.test + "\n")
    assert dataset.answer_digests(changed) is None
    assert (
        hashlib.sha256(problem.test.encode()).hexdigest()
        == dataset.reference_digests["HumanEval/100"]["test"]
    )


@pytest.mark.parametrize("task_id", ["HumanEval/14", "HumanEval/100"])
def test_the_shipped_digests_are_the_references_answers_on_this_python(task_id: str) -> None:
    """Recomputed here (the cheap two): pickles of plain data, and so their digests, do not depend on the
    Python version or the machine."""
    dataset = load_dataset("humaneval-plus")
    assert generator().answer_digests(dataset.problems[task_id]) == dict(
        dataset.reference_digests[task_id]["answers"]
    )


class MyInt(int):
    pass


class MyList(list):
    pass


def test_only_plain_data_has_a_digest() -> None:
    assert plain_digest([1, 2, 3]) == plain_digest([1, 2, 3]) != plain_digest([1.0, 2, 3])
    assert plain_digest(2**100_000) is not None and plain_digest("x" * 10) is not None
    for odd in (MyInt(3), MyList([1]), [1, MyInt(2)], {"a": object()}, lambda: 1, iter([1])):
        assert plain_digest(odd) is None, odd
    loop: list[Any] = []
    loop.append(loop)
    assert plain_digest(loop) != plain_digest([[]])
    assert args_key((3,)) == args_key([3]) != args_key((True,))
    gen = generator()
    assert gen.has_nan([1.0, [2.0, math.nan]]) and gen.has_nan({"a": math.nan}) and not gen.has_nan([1.0, 2])


def test_the_reference_is_skipped_only_for_the_candidates_own_matching_answer() -> None:
    judge = Judge({}, -1)  # no channel: nothing here talks to a program
    answer, other = [3, 5, 7], [3, 5, 8]
    digests = {args_key((3,)): plain_digest(answer), args_key((4,)): plain_digest([4, 6, 8, 10])}
    ref = judge.known_reference(lambda *a, **k: ("computed", a, k), digests)
    judge.last_answer = ((3,), answer)
    assert ref(3) is answer and judge.reference_known == 1
    assert ref(4)[0] == "computed"  # arguments other than the candidate's last call's
    assert ref(3, extra=1)[0] == "computed"  # keyword arguments: never skipped
    judge.last_answer = ((3,), other)  # a wrong answer
    assert ref(3)[0] == "computed"
    judge.last_answer = ((3,), [3.0, 5.0, 7.0])  # equal, another type
    assert ref(3)[0] == "computed"
    judge.last_answer = ((3,), MyList(answer))  # not plain data
    assert ref(3)[0] == "computed"
    judge.last_answer = None  # the candidate's call raised
    assert ref(3)[0] == "computed"
    judge.last_answer = ((3,), answer)
    assert judge.known_reference(lambda *a: "computed", "not a dict")(3) == "computed"
    assert judge.reference_known == 1


#: Per problem: programs (their bodies after the prompt) whose verdict must not depend on the digests: right
#: answers, the same answers as other types (equal, so passing), and wrong ones of every kind.
VARIANTS = {
    "HumanEval/100": {
        "canonical": None,
        "floats_for_ints": "    return [float(n + 2 * i) for i in range(n)]\n",
        "tuple_for_list": "    return tuple(n + 2 * i for i in range(n))\n",
        "off_by_one_on_big_inputs": "    return [n + 2 * i + (n > 50) for i in range(n)]\n",
        "one_short": "    return [n + 2 * i for i in range(n - 1)]\n",
        "the_previous_inputs_answer": (
            "    global _last\n    prev = globals().get('_last', n)\n    _last = n\n"
            "    return [prev + 2 * i for i in range(prev)]\n"
        ),
        "nan": "    return [float('nan')] * n\n",
        "raises_midway": "    if n > 20:\n        raise ValueError(n)\n    return [n + 2 * i for i in range(n)]\n",
    },
    "HumanEval/83": {
        "canonical": None,
        "float_for_one": "    return 1.0 if n == 1 else 18 * (10 ** (n - 2))\n",
        "float_answers": "    return 1.0 if n == 1 else float(18 * (10 ** (n - 2)))\n",  # inexact: fails
        "bool_for_one": "    return True if n == 1 else 18 * (10 ** (n - 2))\n",
        "off_by_one": "    return 1 if n == 1 else 18 * (10 ** (n - 2)) + 1\n",
    },
    "HumanEval/14": {
        "canonical": None,
        "reversed": "    return [string[: i + 1] for i in range(len(string))][::-1]\n",
    },
    "HumanEval/139": {
        "canonical": None,
        "off_by_one": "    fac, ans = 1, 1\n    for i in range(1, n + 1):\n        fac *= i\n        ans *= fac\n"
        "    return ans + 1\n",
    },
}


#: The variants that give the reference's answers as values of other types (equal, so they pass): how many of
#: their calls match a digest (HumanEval/83's differ on one input only).
EQUAL_AS_OTHER_TYPES = {
    "floats_for_ints": lambda calls: 0,
    "float_for_one": lambda calls: calls - 1,
    "bool_for_one": lambda calls: calls - 1,
}


@pytest.mark.slow
def test_the_digests_change_no_verdict(subprocess_sandbox: Any) -> None:
    """Each variant judged with the digests and without: the same status and reason; where the answers are
    the reference's own, every call of the reference is skipped, and none where they are not."""
    dataset = load_dataset("humaneval-plus")
    references = canonical(dataset)
    for task_id, variants in VARIANTS.items():
        problem = dataset.problems[task_id]
        digests = dataset.answer_digests(problem)
        assert digests
        for name, body in variants.items():
            if body is None:
                job = prepare(dataset, problem, references[task_id][0], 60.0)
                assert isinstance(job, Job) and job.reference_digests == digests
                solution = job.solution
            else:
                solution = problem.prompt + body
            verdicts = {}
            for with_digests in (True, False):
                job = program_job(problem, solution, 60.0, None, digests if with_digests else None)
                verdicts[with_digests] = subprocess_sandbox.run(job)
            on, off = verdicts[True], verdicts[False]
            assert (on["status"], on["reason"]) == (off["status"], off["reason"]), (task_id, name)
            assert "reference_known" not in off
            if name == "canonical":
                assert on["status"] == "passed" and on["reference_known"] == on["calls"] > 0, (task_id, on)
            elif name in EQUAL_AS_OTHER_TYPES:  # no digest matches where a value differs in type
                assert on["status"] == "passed", (task_id, name, on)
                assert on.get("reference_known", 0) == EQUAL_AS_OTHER_TYPES[name](on["calls"])
            else:
                assert on["status"] != "passed", (task_id, name, on)
