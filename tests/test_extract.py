"""Code extraction on a corpus of real-looking answers; every extracted program runs the real HumanEval test."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from plugin_support import report, run, write_jsonl

from pytest_humaneval.completions import Sample
from pytest_humaneval.datasets import Problem
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.generation.extract import extract, fenced_blocks, strip_thinking
from pytest_humaneval.sandbox import Job
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
    # Cut by the token limit inside the last block: an earlier closed block holds the whole function.
    "cut_inside_the_last_block_earlier_block_complete": Case(
        "HumanEval/13",
        "Euclid's algorithm:\n\n"
        + fence(GCD_OK)
        + "\n\nThe same with the steps printed:\n\n```python\n"
        + "def greatest_common_divisor(a: int, b: int) -> int:\n    while b:\n        print(a, b)\n"
        + "        a, b = b, a %",
        "ok",
        "passed",
        finish_reason="length",
    ),
    # Cut in the demo lines after a complete function: the function is the last complete block.
    "cut_in_the_demo_after_the_corrected_function": Case(
        "HumanEval/23",
        fence("def strlen(string: str) -> int:\n    return 0\n")
        + "\n\nThat is wrong for non-empty strings. Fixed, with examples:\n\n```python\n"
        + STRLEN_OK
        + "\n\nprint(strlen(''))\nprint(strlen('ab",
        "ok",
        "passed",
        finish_reason="length",
        absent="return 0",
    ),
    "cut_at_a_line_end_inside_the_last_block": Case(
        "HumanEval/23",
        fence(STRLEN_OK)
        + "\n\nOr counting by hand:\n\n```python\ndef strlen(string: str) -> int:\n    n = 0\n"
        + "    for _ in string:\n        n += 1\n",
        "ok",
        "passed",
        finish_reason="length",
        absent="n += 1",
    ),
    "last_fence_left_open_at_the_end_of_the_answer": Case(  # not cut: the model forgot to close it
        "HumanEval/23",
        fence("def strlen(string: str) -> int:\n    return 0\n") + "\n\nFixed:\n\n```python\n" + STRLEN_OK,
        "ok",
        "passed",
        absent="return 0",
    ),
    "unfenced_code_with_demo_cut_mid_call": Case(
        "HumanEval/13",
        "Use Euclid's algorithm:\n\n" + GCD_OK + "\n\nprint(greatest_common_divisor(3, 5))\nprint(greatest_",
        "ok",
        "passed",
        finish_reason="length",
    ),
    "unfenced_code_cut_inside_the_function_is_truncated": Case(
        "HumanEval/13",
        "def greatest_common_divisor(a: int, b: int) -> int:\n    while b:\n        a, b = b, a %",
        "truncated",
        finish_reason="length",
    ),
    # A closing fence without its opening one (the opening was in the prompt, or the model dropped it).
    "stray_closing_fence_after_bare_code": Case("HumanEval/23", STRLEN_OK + "```\n", "ok", "passed"),
    "stray_closing_fence_after_a_body": Case("HumanEval/23", "    return len(string)\n```", "ok", "passed"),
    "stray_closing_fence_then_prose": Case(
        "HumanEval/13",
        GCD_OK + "```\n\nEach step replaces (a, b) with (b, a % b) until b is 0.\n",
        "ok",
        "passed",
    ),
    "stray_closing_fence_then_a_heading": Case(
        "HumanEval/23",
        STRLEN_OK + "```\n\n## Explanation\n\nThe built-in len counts the characters.\n",
        "ok",
        "passed",
    ),
    "bare_fence_after_code_opens_a_block_that_starts_with_a_comment": Case(
        "HumanEval/23",
        "import math\n```\n# the whole answer\n" + STRLEN_OK + "```\n",
        "ok",
        "passed",
    ),
    "stray_closing_fence_then_prose_then_a_block": Case(
        "HumanEval/23",
        "def strlen(string: str) -> int:\n    return 0\n```\n\nThat ignores the string. Use len:\n\n"
        + fence(STRLEN_OK),
        "ok",
        "passed",
        absent="return 0",
    ),
}


def run_program(sandbox: SubprocessSandbox, problem: Problem, completion: str) -> str:
    """The verdict of the program the workers would build from this completion."""
    program = Sample(problem.task_id, 0, completion).program(problem)
    return str(sandbox.run(Job(program, problem.test, problem.entry_point, timeout=10))["status"])


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus(name: str, subprocess_sandbox: SubprocessSandbox) -> None:
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
        assert run_program(subprocess_sandbox, problem, result.completion) == case.verdict, result.completion
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


# Whole programs (EvalPlus's ``solution``) that leave out what the prompt defines: HumanEval/38 and /50's
# tests call the prompt's encoder, /32's test calls its ``poly``, and /0's annotations need its import.
FULL_PROGRAMS = {
    "HumanEval/38": (
        "def decode_cyclic(s: str):\n"
        "    groups = [s[3 * i : min(3 * i + 3, len(s))] for i in range((len(s) + 2) // 3)]\n"
        '    return "".join(g[-1] + g[:-1] if len(g) == 3 else g for g in groups)\n'
    ),
    "HumanEval/50": (  # __future__ imports must stay first
        "from __future__ import annotations\n\n\ndef decode_shift(s: str) -> str:\n"
        '    return "".join(chr((ord(ch) - 5 - ord("a")) % 26 + ord("a")) for ch in s)\n'
    ),
    "HumanEval/0": (
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    ordered = sorted(numbers)\n"
        "    return any(b - a < threshold for a, b in zip(ordered, ordered[1:]))\n"
    ),
    "HumanEval/32": (
        "def find_zero(xs: list):\n    lo, hi = -1.0, 1.0\n    while poly(xs, lo) * poly(xs, hi) > 0:\n"
        "        lo, hi = lo * 2, hi * 2\n    while hi - lo > 1e-10:\n        mid = (lo + hi) / 2\n"
        "        if poly(xs, mid) * poly(xs, lo) > 0:\n            lo = mid\n        else:\n            hi = mid\n"
        "    return lo\n"
    ),
    "HumanEval/23": "def string_length(s):\n    return len(s)\n",  # not the entry point: no stub stands in
}


def test_full_programs_keep_the_prompts_definitions(pytester: pytest.Pytester) -> None:
    rows = [{"task_id": task_id, "solution": solution} for task_id, solution in FULL_PROGRAMS.items()]
    path = write_jsonl(pytester.path / "solutions.jsonl", rows)
    keywords = "decode_cyclic or decode_shift or has_close_elements or find_zero or strlen"
    run(pytester, "--humaneval", f"--humaneval-completions={path}", "-k", keywords).assert_outcomes(
        passed=4, failed=1, deselected=159
    )
    results = {r["task_id"]: r for r in report(pytester)["results"]}
    assert results["HumanEval/23"]["status"] == "error"
    assert "does not define 'strlen'" in results["HumanEval/23"]["reason"]


def test_full_program_with_a_prompt_that_is_not_python_runs_as_written() -> None:
    problem = Problem(
        "Mbpp/2", "Write a function that returns the shared elements of two lists.", "", "shared"
    )
    solution = "def shared(a, b):\n    return set(a) & set(b)\n"
    assert Sample(problem.task_id, 0, solution, full_program=True).program(problem) == solution
