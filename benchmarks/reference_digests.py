"""Write ``datasets/reference-digests.json``: the digests of HumanEval+'s reference answers where its test
calls the reference (``ref_func``) on every input.

Six HumanEval+ tests (HumanEval/14, 15, 83, 100, 130 and 139) compute each expected answer by calling
``ref_func`` in the test itself, so every run paid the reference's CPU again (HumanEval/139's alone takes
about 4 s). EvalPlus computes such answers once and caches them. The plugin ships, per input, the sha256 of
the reference's answer (pickled as plain data, ``judge.plain_digest``), keyed by the input's own digest
(``judge.args_key``); the judge skips ``ref_func`` where the candidate's answer has the same digest, and calls
it otherwise. Each entry also holds the sha256 of the test, so a changed test never uses stale digests.

An answer that is not plain data, that holds a NaN (equal bytes would not mean equal values) or whose
reference call changes its arguments gets no digest (the judge then calls the reference, as before).

    python3 benchmarks/reference_digests.py [--check]

``--check`` recomputes and compares with the shipped file instead of writing it (exit 1 on a difference).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_humaneval.datasets.builtin import REFERENCE_DIGESTS_FILE  # noqa: E402
from pytest_humaneval.datasets.dataset import Problem, data_dir, digest_of_test  # noqa: E402
from pytest_humaneval.datasets.registry import load_dataset  # noqa: E402
from pytest_humaneval.sandbox.runner.judge import DIGEST_PROTOCOL, args_key, plain_digest  # noqa: E402

DATASETS = ("humaneval-plus",)


def has_nan(value: Any) -> bool:
    if type(value) is float:
        return math.isnan(value)
    if type(value) in (list, tuple, set, frozenset):
        return any(has_nan(v) for v in value)
    if type(value) is dict:
        return any(has_nan(k) or has_nan(v) for k, v in value.items())
    return False


def answer_digests(problem: Problem) -> dict[str, str] | None:
    """{arguments' key: digest of the reference's answer} for every input the test passes, from a run of
    the test with the reference as the candidate (each input computed once). None: no ``ref_func``."""
    g: dict[str, Any] = {}
    exec(compile(problem.test, "<test>", "exec"), g)
    ref_func = g.get("ref_func")
    if not callable(ref_func):
        return None
    answers: dict[str, str] = {}
    last: list[Any] = [None, None]

    def reference(*args: Any) -> Any:
        previous = last[0]
        if previous is not None and len(args) == len(previous):
            if all(a is b for a, b in zip(args, previous, strict=True)):
                return last[1]  # the test's own ref_func call, right after the candidate's on this input
        key = args_key(args)
        value = ref_func(*args)
        digest = plain_digest(value)
        if key is not None and args_key(args) == key and digest is not None and not has_nan(value):
            answers[key] = digest
        last[:] = [args, value]
        return value

    g["ref_func"] = reference
    g["check"](reference)
    return answers


def build() -> dict[str, Any]:
    out: dict[str, Any] = {
        "note": (
            "per dataset and task: sha256 of the test, and for each input (sha256 of its pickled "
            "arguments, 32 hex digits) the sha256 of the reference's pickled answer (protocol "
            f"{DIGEST_PROTOCOL}); written by benchmarks/reference_digests.py"
        ),
        "datasets": {},
    }
    for name in DATASETS:
        tables: dict[str, Any] = {}
        for problem in load_dataset(name):
            started = time.process_time()
            answers = answer_digests(problem)
            if answers is None:
                continue
            tables[problem.task_id] = {
                "test": digest_of_test(problem.test),
                "answers": answers,
            }
            spent = time.process_time() - started
            print(f"{name} {problem.task_id}: {len(answers)} answers, reference {spent:.2f} s CPU")
        out["datasets"][name] = tables
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file, write nothing")
    args = parser.parse_args()
    path = data_dir("datasets") / REFERENCE_DIGESTS_FILE
    built = build()
    if args.check:
        shipped = json.loads(path.read_text(encoding="utf-8"))
        same = shipped["datasets"] == built["datasets"]
        print(f"{path}: {'the same' if same else 'DIFFERENT'}")
        return 0 if same else 1
    path.write_text(json.dumps(built, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
