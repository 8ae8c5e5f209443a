"""Measure the bundled datasets' reference solutions and write ``datasets/reference-times.json``.

Each problem's time limit is max(3 s, 4 x its reference solution's CPU time) (see
``pytest_humaneval/time_limits.py``); this script measures those times in the subprocess sandbox, programs
running several at once as in a run, and keeps the largest of ``--repeat`` runs per problem.

For HumanEval+ and MBPP+ it also measures the reference's CPU time on each input (each call of the entry
point, in the order the test makes them) and ships the slow ones: EvalPlus budgets every input max(1 s, 4 x
that time), and the plugin does the same on these datasets. ``base`` is how many of the test's first
inputs are EvalPlus's base inputs (EvalPlus caps the base and the plus inputs' budgets separately).

    python3 benchmarks/reference_times.py [--repeat=3] [--datasets=humaneval,mbpp-plus]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_humaneval.completions import canonical  # noqa: E402
from pytest_humaneval.datasets.builtin import REFERENCE_TIMES_FILE  # noqa: E402
from pytest_humaneval.datasets.dataset import Dataset, data_dir  # noqa: E402
from pytest_humaneval.datasets.registry import load_dataset  # noqa: E402
from pytest_humaneval.evaluation import preload_for  # noqa: E402
from pytest_humaneval.sandbox import Limits, make_sandbox  # noqa: E402
from pytest_humaneval.time_limits import measure, measure_calls  # noqa: E402

NAMES = ("humaneval", "humaneval-plus", "mbpp", "mbpp-plus")
#: EvalPlus's own files, whose ``base_input`` says which of the test's inputs are the base ones.
EVALPLUS_FILES = {
    "humaneval-plus": ROOT / "benchmarks" / "data" / "HumanEvalPlus-v0.1.10.jsonl.gz",
    "mbpp-plus": ROOT / "datasets" / "MbppPlus-v0.2.0.jsonl.gz",
}
#: A call under this many seconds gets the 1 s floor (max(1 s, 4 x its time)): not shipped.
SLOW_S = 0.2


def test_inputs(dataset: Dataset) -> dict[str, list[str]]:
    """The arguments the test passes on each call, in order (JSON), from a run of the reference here."""
    samples = canonical(dataset)
    out: dict[str, list[str]] = {}
    for problem in dataset:
        g: dict[str, Any] = {}
        exec(samples[problem.task_id][0].program(problem), g)
        reference = g[problem.entry_point]
        seen: list[str] = []

        def recording(*args: Any, _f: Any = reference, _seen: list[str] = seen) -> Any:
            _seen.append(json.dumps(args, default=repr))
            return _f(*args)

        exec(problem.test, g)
        try:
            g["check"](recording)
        except BaseException:
            pass
        out[problem.task_id] = seen
    return out


def base_counts(name: str, dataset: Dataset) -> dict[str, int]:
    """How many of each test's first inputs are EvalPlus's base inputs."""
    rows = {json.loads(line)["task_id"]: json.loads(line) for line in gzip.open(EVALPLUS_FILES[name], "rt")}
    counts = {}
    for task_id, inputs in test_inputs(dataset).items():
        base = Counter(json.dumps(tuple(x), default=repr) for x in rows[task_id]["base_input"])
        n = 0
        while n < len(inputs) and base[inputs[n]] > 0:
            base[inputs[n]] -= 1
            n += 1
        counts[task_id] = n
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--datasets", default=",".join(NAMES))
    parser.add_argument("--output", type=Path, default=data_dir("datasets") / REFERENCE_TIMES_FILE)
    parser.add_argument("--calls-only", action="store_true", help="measure only the per-input times")
    args = parser.parse_args()
    try:
        data = json.loads(args.output.read_text())
    except FileNotFoundError:
        data = {"datasets": {}}
    for name in args.datasets.split(","):
        dataset = load_dataset(name)
        worst: dict[str, float] = {}
        calls: dict[str, list[float]] = {}
        started = time.monotonic()
        for _ in range(args.repeat):
            box = make_sandbox(  # the dataset's memory limit, as in a run (MBPP+'s Mbpp/255 needs 4 GB)
                "subprocess",
                Limits(memory_mb=dataset.memory_mb),
                preload=preload_for(dataset),
                concurrency=os.cpu_count() or 1,
            )
            try:
                box.start()
                if not args.calls_only:
                    for task_id, seconds in measure(dataset, box).items():
                        worst[task_id] = max(seconds, worst.get(task_id, 0.0))
                if name in EVALPLUS_FILES:
                    for task_id, times in measure_calls(dataset, box).items():
                        had = calls.setdefault(task_id, [0.0] * len(times))
                        calls[task_id] = [max(a, b) for a, b in zip(had, times, strict=False)] + times[
                            len(had) :
                        ]
            finally:
                box.close()
        if worst:
            data["datasets"][name] = worst
        if calls:
            bases = base_counts(name, dataset)
            data.setdefault("calls", {})[name] = {
                task_id: {
                    "n": len(times),
                    "base": bases.get(task_id, 0),
                    "slow": {str(i): round(t, 3) for i, t in enumerate(times) if t >= SLOW_S},
                }
                for task_id, times in sorted(calls.items())
            }
        slowest = sorted(worst.items(), key=lambda kv: -kv[1])[:5]
        print(
            f"{name}: {len(worst)} problems, {sum(worst.values()):.1f} s CPU in all, {len(calls)} with "
            f"per-input times, measured in {time.monotonic() - started:.1f} s; slowest {slowest}",
            flush=True,
        )
    data["measured_on"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    data["note"] = (
        "datasets: CPU seconds of each reference solution in the subprocess sandbox (largest of the runs); "
        "calls: per test input (call of the entry point, in order), the reference's CPU seconds where at "
        f"least {SLOW_S} s, n calls in all, the first 'base' of them EvalPlus's base inputs"
    )
    args.output.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
