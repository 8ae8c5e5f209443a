"""Code extraction on a corpus of real-looking answers; every extracted program runs the real HumanEval test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from pytest_humaneval.completions import Sample
from pytest_humaneval.dataset import Problem, load_dataset
from pytest_humaneval.generation.extract import extract, fenced_blocks, strip_thinking
from pytest_humaneval.sandbox import Job, Limits
from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox

DATASET = load_dataset("humaneval")

STRLEN_OK = "def strlen(string: str) -> int:\n    return len(string)\n"
GCD_OK = "def greatest_common_divisor(a: int, b: int) -> int:\n    while b:\n        a, b = b, a % b\n    return a\n"
CLOSE_OK = '''from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """Check if any two numbers are closer than threshold."""
    ordered = sorted(numbers)
    return any(b - a < threshold for a, b in zip(ordered, ordered[1:]))
'''


@dataclass(frozen=True)
class Case:
    task_id: str
    content: str | None
    status: str  # ok | truncated | no_code
    verdict: str | None = None  # for ok: what the sandbox must say about the program
    reasoning_content: str | None = None
    finish_reason: str | None = "stop"
    absent: str = ""  # text that must not be in the completion (e.g. code from the thinking)


def fence(code: str, tag: str = "python") -> str:
    return f"```{tag}\n{code}```"


CORPUS: dict[str, Case] = {
    # Qwen3 without thinking: prose, one fenced block, an explanation.
    "qwen3_fenced_with_explanation": Case(
        "HumanEval/0",
        "Here's the implementation of `has_close_elements`:\n\n"
        + fence(CLOSE_OK)
        + "\n\n### Explanation:\n- Sorting puts close numbers next to each other.\n"
        "- Then we only compare neighbours, which is O(n log n).\n",
        "ok",
        "passed",
    ),
    "fence_without_language_tag": Case("HumanEval/23", fence(STRLEN_OK, ""), "ok", "passed"),
    "tilde_fence_and_py_tag": Case("HumanEval/23", f"~~~py\n{STRLEN_OK}~~~\n", "ok", "passed"),
    "fence_info_with_a_file_name": Case(
        "HumanEval/23", fence(STRLEN_OK, "python:solution.py"), "ok", "passed"
    ),
    "body_only_indented": Case("HumanEval/23", fence("    return len(string)\n"), "ok", "passed"),
    "body_only_not_indented": Case(
        "HumanEval/13", fence("while b:\n    a, b = b, a % b\nreturn a\n"), "ok", "passed"
    ),
    "bare_code_without_fences": Case("HumanEval/23", STRLEN_OK, "ok", "passed"),
    "prose_around_bare_code": Case(
        "HumanEval/13",
        "To solve this we use Euclid's algorithm.\n\n" + GCD_OK + "\nThis runs in O(log min(a, b)) steps.\n",
        "ok",
        "passed",
    ),
    "uses_the_prompts_import": Case(
        "HumanEval/0",
        fence(CLOSE_OK.split("\n\n\n", 1)[1]),  # List comes from the prompt's own import
        "ok",
        "passed",
    ),
    "uses_the_prompts_helper": Case(
        "HumanEval/38",
        fence("def decode_cyclic(s: str):\n    return encode_cyclic(encode_cyclic(s))\n"),
        "ok",
        "passed",
    ),
    "several_blocks_helper_and_import_elsewhere": Case(
        "HumanEval/23",
        "First a helper:\n\n"
        + fence("import functools\n\n\n@functools.cache\ndef count(s):\n    return sum(1 for _ in s)\n")
        + "\n\nThen the function:\n\n"
        + fence("def strlen(string: str) -> int:\n    return count(string)\n")
        + "\n\nExample usage:\n\n"
        + fence("print(strlen('abc'))\nassert strlen('abc') == 4  # a wrong example must not fail it\n"),
        "ok",
        "passed",
    ),
    "later_block_corrects_the_first": Case(
        "HumanEval/23",
        fence("def strlen(string: str) -> int:\n    return len(string) + 1\n")
        + "\n\nOops, off by one. Corrected:\n\n"
        + fence(STRLEN_OK),
        "ok",
        "passed",
    ),
    "main_guard_and_demo_calls_are_dropped": Case(
        "HumanEval/23",
        fence(
            STRLEN_OK + "\n\nif __name__ == '__main__':\n    print(strlen(input()))\n\nraise SystemExit(1)\n"
        ),
        "ok",
        "passed",
    ),
    "fence_indented_in_a_list_item": Case(
        "HumanEval/23",
        "1. Write the function:\n\n   ```python\n   def strlen(string: str) -> int:\n       return len(string)\n"
        "   ```\n",
        "ok",
        "passed",
    ),
    "windows_line_endings": Case("HumanEval/23", fence(STRLEN_OK).replace("\n", "\r\n"), "ok", "passed"),
    "wrong_answer_still_runs_and_fails": Case(
        "HumanEval/23", fence("def strlen(string: str) -> int:\n    return 0\n"), "ok", "failed"
    ),
    # Thinking inline in the content (a server without a reasoning parser).
    "think_inline_code_in_thinking_is_ignored": Case(
        "HumanEval/23",
        "<think>\nOkay, the user wants strlen. Maybe:\n"
        + fence("def strlen(string):\n    return -1\n")
        + "\nNo wait, use len.\n</think>\n\n"
        + fence(STRLEN_OK),
        "ok",
        "passed",
        absent="-1",
    ),
    "think_opened_by_the_template": Case(  # the <think> tag was in the prompt; content starts inside it
        "HumanEval/23",
        "Let me draft:\n"
        + fence("def strlen(string):\n    return -1\n")
        + "\n</think>\n\n"
        + fence(STRLEN_OK),
        "ok",
        "passed",
        absent="-1",
    ),
    "code_only_in_thinking_is_no_code": Case(
        "HumanEval/23",
        "<think>\n" + fence(STRLEN_OK) + "\n</think>\n\nUse the built-in len function.",
        "no_code",
    ),
    "think_never_closed_is_truncated": Case(
        "HumanEval/23",
        "<think>\nOkay, let me think about strlen.\n" + fence(STRLEN_OK) + "\nHmm, but what about",
        "truncated",
        finish_reason="length",
    ),
    # Thinking split out by the server's reasoning parser (SGLang --reasoning-parser qwen3).
    "reasoning_split_answer_in_content": Case(
        "HumanEval/23",
        fence(STRLEN_OK),
        "ok",
        "passed",
        reasoning_content="Maybe " + fence("def strlen(string):\n    return -1\n"),
        absent="-1",
    ),
    "reasoning_truncated_by_max_tokens": Case(
        "HumanEval/23",
        "",
        "truncated",
        reasoning_content="Okay, let me think step by",
        finish_reason="length",
    ),
    "content_null_reasoning_truncated": Case(
        "HumanEval/23", None, "truncated", reasoning_content="Okay", finish_reason="length"
    ),
    "thought_but_no_answer": Case("HumanEval/23", "", "no_code", reasoning_content="Done thinking."),
    "empty_answer": Case("HumanEval/23", "", "no_code"),
    "prose_only": Case("HumanEval/23", "I'm sorry, I can't help with that.", "no_code"),
    "cut_inside_the_code": Case(
        "HumanEval/23",
        "```python\ndef strlen(string: str) -> int:\n    return len(str",
        "truncated",
        finish_reason="length",
    ),
    "cut_after_the_code_is_fine": Case(
        "HumanEval/23",
        fence(STRLEN_OK) + "\n\nThis function uses the built-in",
        "ok",
        "passed",
        finish_reason="length",
    ),
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SubprocessSandbox]:
    sb = SubprocessSandbox(Limits(memory_mb=1024))
    sb.start()
    yield sb
    sb.close()


def run_program(sandbox: SubprocessSandbox, problem: Problem, completion: str) -> str:
    """The verdict of the program the workers would build from this completion."""
    program = Sample(problem.task_id, 0, completion).program(problem)
    return str(sandbox.run(Job(program, problem.test, problem.entry_point, timeout=10))["status"])


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus(name: str, sandbox: SubprocessSandbox) -> None:
    case = CORPUS[name]
    problem = DATASET.problems[case.task_id]
    result = extract(
        problem, case.content, reasoning_content=case.reasoning_content, finish_reason=case.finish_reason
    )
    assert result.status == case.status, (result, case)
    if case.absent:
        assert case.absent not in result.completion
    if case.status == "ok":
        assert result.completion.strip()
        assert run_program(sandbox, problem, result.completion) == case.verdict, result.completion
    else:
        assert result.completion == "" or case.status == "truncated"
        assert result.reason


def test_helpers_from_other_blocks_are_kept_and_demo_code_is_not() -> None:
    completion = extract(
        DATASET.problems["HumanEval/23"], CORPUS["several_blocks_helper_and_import_elsewhere"].content
    ).completion
    assert "import functools" in completion and "def count(s):" in completion
    assert "@functools.cache" in completion  # the decorator travels with its function
    assert "print(" not in completion and "assert" not in completion


def test_thinking_is_stripped_in_one_pass() -> None:
    assert strip_thinking("<think>a</think>b<think>c</think>d") == ("bd", False)
    assert strip_thinking("inside</think>after") == ("after", False)
    assert strip_thinking("before<think>never closed") == ("before", True)
    assert strip_thinking("no thinking") == ("no thinking", False)


def test_fences_without_a_close_reach_the_end() -> None:
    blocks = fenced_blocks("text\n```python\ndef f():\n    return 1\n")
    assert [(b.lang, b.closed) for b in blocks] == [("python", False)]
    assert "return 1" in blocks[0].text


def many_fences(scale: int) -> str:
    """Thinking, then ``scale`` * 150 fenced helper blocks, then the real answer (~160 bytes per block)."""
    parts = ["<think>\n" + fence("def strlen(s):\n    return -1\n") + "\n</think>\n"]
    for i in range(scale * 150):
        parts.append(
            f"Step {i}:\n\n" + fence(f"import math\n\ndef helper_{i}(x):\n    return math.floor(x) + {i}\n")
        )
        parts.append("\n\n")
    parts.append(fence("def strlen(string: str) -> int:\n    return len(string) + helper_3(0) - 3\n"))
    return "".join(parts)


def adversarial(scale: int) -> str:
    """Unclosed tags, fence markers and long one-line junk: what makes naive scanners quadratic."""
    unit = (
        "<think>x</think>" + "```" * 50 + "a[" * 2000 + "\n" + "    foo(" * 100 + "\n" + "<think>\n</think>"
    )
    return unit * (scale * 3) + "\n" + STRLEN_OK


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("make", [many_fences, adversarial])
def test_linear_time(make: Callable[[int], str]) -> None:
    """8x the input must cost about 8x the time (quadratic would be 64x); the big input is ~2 MB."""
    problem = DATASET.problems["HumanEval/23"]
    small, big = make(16), make(128)
    assert len(big) > 1_500_000
    result = extract(problem, big)
    assert result.status == "ok" and "len(string)" in result.completion  # the answer at the end is found
    ratio = best_time(lambda: extract(problem, big)) / best_time(lambda: extract(problem, small))
    assert ratio < 20, f"8x input took {ratio:.1f}x the time"
