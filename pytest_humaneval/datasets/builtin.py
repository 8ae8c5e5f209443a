"""The built-in benchmarks, registered through the same ``pytest_humaneval_datasets`` hook a model repo
implements: HumanEval, HumanEval+, MBPP and MBPP+ (EvalPlus v0.2.0).

MBPP+ ships as EvalPlus released it (``MbppPlus-v0.2.0.jsonl.gz``: prompt, entry point, reference solution
and MBPP's original asserts; ``MbppPlus-OriginFmt-v0.2.0.jsonl.gz``: one test program per problem with every
base and plus input and its expected output). Loading turns each into HumanEval's schema: the test's final
loop over the inputs becomes ``check(candidate)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from functools import cache, partial
from typing import Any

from ..errors import HumanEvalError
from ..languages import LANGUAGES, entry_point_of, rust_prompt, template_for
from . import livecodebench
from .benchmark import Benchmark
from .dataset import data_dir, iter_jsonl

HUMANEVAL_FILE = "HumanEval.jsonl.gz"
HUMANEVAL_PLUS_FILE = "HumanEvalPlus-OriginFmt.jsonl.gz"
MBPP_PLUS_FILE = "MbppPlus-v0.2.0.jsonl.gz"
MBPP_PLUS_TESTS_FILE = "MbppPlus-OriginFmt-v0.2.0.jsonl.gz"
#: Seconds each bundled dataset's reference solutions took in the sandbox (benchmarks/reference_times.py).
REFERENCE_TIMES_FILE = "reference-times.json"
#: Digests of HumanEval+'s reference answers where its test calls ``ref_func``
#: (benchmarks/reference_digests.py).
REFERENCE_DIGESTS_FILE = "reference-digests.json"

#: MBPP asks for a whole function: nothing is given to complete.
MBPP_TEMPLATE = """\
Write a Python function `{entry_point}` for the task below. Nothing is given to complete: write the whole \
function (signature and body, plus any imports or helper functions it needs). Your code should pass the \
example test.

```python
{prompt}
```

Reply with the complete function `{entry_point}` in a single ```python code block.
"""

#: EvalPlus's own limit (4 GB): Mbpp/255's reference solution holds two lists of combinations, over 2 GB.
MBPP_PLUS_MEMORY_MB = 4096

HUMANEVAL_PLUS_32 = (
    "dataset defect: HumanEval+'s test for find_zero fails its own canonical solution (EvalPlus issue #125)"
)
MBPP_120 = (
    "dataset defect: MBPP's asserts for max_product_tuple call math.isclose without importing math, so the "
    "reference solution fails them with a NameError"
)

#: In the OriginFmt tests of the three "output is not None" problems (Mbpp/737, 787, 794), ``assertion``
#: computes ``exact_match`` and never asserts it, so any answer passes; EvalPlus's own oracle checks it.
NOT_NONE_CHECK = "        exact_match = exp == (out is not None)\n"
NOT_NONE_FIX = NOT_NONE_CHECK + "    assert exact_match\n"

#: OriginFmt's float comparison calls ``np.allclose`` on any answer, so ``[]`` "equals" 5.2 (broadcasting
#: an empty array); EvalPlus's oracle first requires the expected type (and length).
ALLCLOSE = "        assert np.allclose(out, exp, rtol=1e-07, atol=atol)\n"
TYPED_ALLCLOSE = (
    "        assert type(out) == type(exp), f'out: {type(out).__name__}, exp: {type(exp).__name__}'\n"
    "        if isinstance(exp, (list, tuple)):\n"
    "            assert len(out) == len(exp), f'out: {len(out)} items, exp: {len(exp)}'\n" + ALLCLOSE
)

# The OriginFmt test ends with the loop that calls the entry point on every input.
_FINAL_LOOP = re.compile(r"\n(for i, [^\n]*:\n(?:[ \t]+[^\n]*\n?)+)\s*\Z")


def pytest_humaneval_datasets(config: Any) -> tuple[Benchmark, ...]:
    """The built-in benchmarks (this module is registered as a plugin implementing the hook)."""
    return _benchmarks()


@cache
def _benchmarks() -> tuple[Benchmark, ...]:
    return (
        _bundled("humaneval", HUMANEVAL_FILE, "HumanEval (OpenAI, 164 problems)"),
        _bundled(
            "humaneval-plus",
            HUMANEVAL_PLUS_FILE,
            "HumanEval+ (EvalPlus v0.1.10): HumanEval with base and plus tests",
            load=humaneval_plus_problems,
            known_defects={"HumanEval/32": HUMANEVAL_PLUS_32},
            reference_calls=partial(reference_calls, "humaneval-plus"),
            reference_digests=partial(reference_digests, "humaneval-plus"),
        ),
        _bundled(
            "mbpp",
            MBPP_PLUS_FILE,
            "MBPP (EvalPlus v0.2.0's 378 problems, MBPP's original asserts)",
            load=lambda: mbpp_problems(plus=False),
            prompt_template=MBPP_TEMPLATE,
            known_defects={"Mbpp/120": MBPP_120},
        ),
        _bundled(
            "mbpp-plus",
            MBPP_PLUS_TESTS_FILE,
            "MBPP+ (EvalPlus v0.2.0, 378 problems with base and plus tests)",
            load=lambda: mbpp_problems(plus=True),
            prompt_template=MBPP_TEMPLATE,
            memory_mb=MBPP_PLUS_MEMORY_MB,
            reference_calls=partial(reference_calls, "mbpp-plus"),
        ),
        *humaneval_x_benchmarks(),
        Benchmark(
            "livecodebench",
            partial(livecodebench_problems, LIVECODEBENCH_RELEASE),
            f"LiveCodeBench {LIVECODEBENCH_RELEASE} (code_generation_lite; downloaded once, where the "
            "network allows)",
            prompt_template=livecodebench.PROMPT_TEMPLATE,
            source=livecodebench.RELEASES_URL,
        ),
    )


#: The release ``--humaneval-dataset=livecodebench`` means (a file of any release is read by its path).
LIVECODEBENCH_RELEASE = "release_v6"


def livecodebench_problems(release: str) -> Iterator[dict[str, Any]]:
    for path in livecodebench.fetch_release(release):
        for lineno, obj in iter_jsonl(path):
            yield livecodebench.problem_row(obj, f"{path}:{lineno}")


#: HumanEval-X (CodeGeeX, Apache-2.0): the languages pytest-humaneval runs, and its file of each.
HUMANEVAL_X = {
    "cpp": "humaneval_cpp.jsonl.gz",
    "js": "humaneval_js.jsonl.gz",
    "java": "humaneval_java.jsonl.gz",
    "go": "humaneval_go.jsonl.gz",
    "rust": "humaneval_rust.jsonl.gz",
    "python": "humaneval_python.jsonl.gz",
}
#: HumanEval-X Python's test ends by calling its check: ``check(entry_point)``.
_CHECK_CALL = re.compile(r"\n\s*check\((\w+)\)\s*\Z")
#: Measured: the canonical solutions that fail their own tests (reported as xfail).
HUMANEVAL_X_DEFECTS = {
    "js": {
        "JavaScript/112": "dataset defect: the canonical solution returns a comma expression, not the array",
        "JavaScript/155": "dataset defect: the test expects [1, 0] for 0, which no correct count gives",
    },
    "go": {
        "Go/95": "dataset defect: the test depends on Go's random map order (the canonical solution passed "
        "23 of 30 runs)",
    },
    "rust": {
        "Rust/50": "dataset defect: the test calls rand 0.4's gen_range(a, b); rand 0.8 takes a range",
    },
}


def humaneval_x_benchmarks() -> tuple[Benchmark, ...]:
    return tuple(
        _bundled(
            f"humaneval-x-{lang}",
            file,
            f"HumanEval-X {LANGUAGES[lang].title if lang in LANGUAGES else 'Python'} (CodeGeeX, 164 "
            "problems)",
            load=partial(humaneval_x_problems, lang),
            **({"prompt_template": template_for(LANGUAGES[lang])} if lang in LANGUAGES else {}),
            known_defects=HUMANEVAL_X_DEFECTS.get(lang, {}),
        )
        for lang, file in HUMANEVAL_X.items()
    )


def humaneval_x_problems(lang: str) -> Iterator[dict[str, Any]]:
    """HumanEval-X's rows in our schema: the language, and the function the prompt asks for."""
    for _, obj in iter_jsonl(data_dir("datasets") / HUMANEVAL_X[lang]):
        prompt, test, entry = obj["prompt"], obj["test"], ""
        if lang == "go":  # the test file: its package clause and imports, then the test function
            test = obj["test_setup"] + "\n" + test
        elif lang == "rust":  # the signature is in the declaration, with the crates' ``use`` lines
            prompt = rust_prompt(obj["declaration"], prompt)
        elif lang == "python":  # HumanEval's form: check(candidate) is called by the harness, not the test
            call = _CHECK_CALL.search(test)
            if call is None:
                raise HumanEvalError(f"{obj['task_id']}: the test does not end by calling check(...)")
            test, entry = test[: call.start()] + "\n", call.group(1)
        yield {
            "task_id": obj["task_id"],
            "prompt": prompt,
            "test": test,
            "canonical_solution": obj["canonical_solution"],
            "entry_point": entry or entry_point_of(prompt, test),
            "language": lang,
        }


def _bundled(
    name: str, file: str, description: str, load: Callable[[], Iterable[Any]] | None = None, **kwargs: Any
) -> Benchmark:
    """A benchmark whose problems are the bundled ``file`` (its rows as they are, unless ``load``), with its
    shipped reference times."""
    path = data_dir("datasets") / file
    return Benchmark(
        name,
        load or (lambda: (obj for _, obj in iter_jsonl(path))),
        description,
        reference_times=partial(reference_times, name),
        source=str(path),
        **kwargs,
    )


def with_evalplus_oracle(test: str) -> str:
    """An OriginFmt test (HumanEval+'s or MBPP+'s) with the checks EvalPlus's own oracle makes and the test
    leaves out: the not-None problems' assert, and the type (and length) check before a float comparison
    (without it ``return []`` passed HumanEval/2, 4 and 45 and Mbpp/721)."""
    if NOT_NONE_CHECK in test and "assert exact_match" not in test:
        test = test.replace(NOT_NONE_CHECK, NOT_NONE_FIX, 1)
    return test.replace(ALLCLOSE, TYPED_ALLCLOSE, 1)


def humaneval_plus_problems() -> Iterator[dict[str, str]]:
    """HumanEval+'s rows, their tests with EvalPlus's oracle checks."""
    for _, obj in iter_jsonl(data_dir("datasets") / HUMANEVAL_PLUS_FILE):
        obj["test"] = with_evalplus_oracle(obj["test"])
        yield obj


def mbpp_problems(plus: bool) -> Iterator[dict[str, str]]:
    """MBPP+ in HumanEval's schema. ``plus``: EvalPlus's test of every base and plus input, with its
    oracle's checks (:func:`with_evalplus_oracle`); else MBPP's original asserts (EvalPlus's ``assertion``
    field)."""
    folder = data_dir("datasets")
    tests = {}
    if plus:
        tests = {
            f"Mbpp/{obj['task_id']}": obj["test"] for _, obj in iter_jsonl(folder / MBPP_PLUS_TESTS_FILE)
        }
    for _, obj in iter_jsonl(folder / MBPP_PLUS_FILE):
        task_id, entry = obj["task_id"], obj["entry_point"]
        if plus:
            test = with_evalplus_oracle(check_from_loop(tests[task_id], entry, task_id))
        else:  # the asserts call the entry point by name, which may be ``check`` itself (Mbpp/56)
            asserts = calls_candidate(obj["assertion"].strip(), entry)
            test = "def check(candidate):\n" + "".join(f"    {line}\n" for line in asserts.splitlines())
        yield {
            "task_id": task_id,
            "prompt": obj["prompt"],
            "test": test,
            "entry_point": entry,
            "canonical_solution": obj["canonical_solution"],
        }


def check_from_loop(test: str, entry_point: str, task_id: str) -> str:
    """An OriginFmt test program as ``check(candidate)``: its final loop over the inputs, which calls the
    entry point by name, moves into ``check`` and calls ``candidate``; the rest stays at module level."""
    m = _FINAL_LOOP.search(test)
    if m is None or f"{entry_point}(" not in m.group(1):
        raise HumanEvalError(f"{task_id}: the MBPP+ test does not end with its loop over the inputs")
    loop = calls_candidate(m.group(1), entry_point)
    body = "".join(f"    {line}\n" for line in loop.rstrip("\n").split("\n"))
    return test[: m.start()] + "\n\ndef check(candidate):\n" + body


def calls_candidate(code: str, entry_point: str) -> str:
    """``code`` calling ``candidate(...)`` where it called the entry point by name."""
    return re.sub(rf"(?<![\w.]){re.escape(entry_point)}\(", "candidate(", code)


@cache
def _shipped(file: str) -> dict[str, Any]:
    """A JSON file shipped beside the datasets (read once per process; empty where it is missing)."""
    path = data_dir("datasets") / file
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return data


def reference_times(name: str) -> dict[str, float]:
    return dict(_shipped(REFERENCE_TIMES_FILE).get("datasets", {}).get(name, {}))


def reference_calls(name: str) -> dict[str, dict[str, Any]]:
    return dict(_shipped(REFERENCE_TIMES_FILE).get("calls", {}).get(name, {}))


def reference_digests(name: str) -> dict[str, dict[str, Any]]:
    return dict(_shipped(REFERENCE_DIGESTS_FILE).get("datasets", {}).get(name, {}))
