"""Measure the bundled datasets' reference solutions and write ``datasets/reference-times.json``.

Each problem's time limit is max(3 s, 4 x its reference solution's CPU time) (see
``pytest_humaneval/time_limits.py``); this script measures those times in the subprocess sandbox, programs
running several at once as in a run, and keeps the largest of ``--repeat`` runs per problem.

    python3 benchmarks/reference_times.py [--repeat=3] [--datasets=humaneval,mbpp-plus]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_humaneval.builtin_datasets import REFERENCE_TIMES_FILE  # noqa: E402
from pytest_humaneval.dataset import data_dir, load_dataset  # noqa: E402
from pytest_humaneval.evaluation import preload_for  # noqa: E402
from pytest_humaneval.sandbox import Limits, make_sandbox  # noqa: E402
from pytest_humaneval.time_limits import measure  # noqa: E402

NAMES = ("humaneval", "humaneval-plus", "mbpp", "mbpp-plus")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--datasets", default=",".join(NAMES))
    parser.add_argument("--output", type=Path, default=data_dir("datasets") / REFERENCE_TIMES_FILE)
    args = parser.parse_args()
    try:
        data = json.loads(args.output.read_text())
    except FileNotFoundError:
        data = {"datasets": {}}
    for name in args.datasets.split(","):
        dataset = load_dataset(name)
        worst: dict[str, float] = {}
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
                for task_id, seconds in measure(dataset, box).items():
                    worst[task_id] = max(seconds, worst.get(task_id, 0.0))
            finally:
                box.close()
        data["datasets"][name] = worst
        slowest = sorted(worst.items(), key=lambda kv: -kv[1])[:5]
        print(
            f"{name}: {len(worst)} problems, {sum(worst.values()):.1f} s CPU in all, measured in "
            f"{time.monotonic() - started:.1f} s; slowest {slowest}",
            flush=True,
        )
    data["measured_on"] = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    data["note"] = "CPU seconds of each reference solution in the subprocess sandbox (largest of the runs)"
    args.output.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
