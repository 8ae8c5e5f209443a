"""Self-check of ``--humaneval-efficiency``: every canonical solution timed against itself.

    python benchmarks/bench_efficiency.py [--dataset=humaneval] [--runs=3] [--workers=N]

A candidate identical to the reference must come out at a ratio of 1: the geometric mean over the
problems should be 1.00 +- 0.05, and single problems spread only as far as the measurement's noise.
Each run evaluates the dataset's canonical solutions with ``evaluate(..., efficiency=True)`` (the same
code as the plugin) and prints the geometric mean, the spread of the per-problem ratios, how many
problems came out more than 2x (or 10%) away from 1, and the run's wall time. The last line is the
median over the runs of the geometric mean.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_humaneval.api import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="humaneval")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="programs at once (default 2 x cores)")
    args = parser.parse_args()
    geomeans = []
    for run in range(1, args.runs + 1):
        start = time.monotonic()
        report = evaluate("canonical", dataset=args.dataset, efficiency=True, workers=args.workers)
        wall = time.monotonic() - start
        eff = report["efficiency"]
        ratios = [r["efficiency_ratio"] for r in report["results"] if "efficiency_ratio" in r]
        logs = sorted(math.log(x) for x in ratios)
        widths = [
            r["efficiency_ci95"][1] / r["efficiency_ci95"][0] - 1
            for r in report["results"]
            if "efficiency_ci95" in r
        ]
        off10 = sum(abs(x) > math.log(1.1) for x in logs)
        assert eff["geomean_ratio"] is not None  # the canonical solutions are all timed
        geomeans.append(eff["geomean_ratio"])
        print(
            f"run {run}: geomean {eff['geomean_ratio']:.4f} over {eff['problems']} problems "
            f"({eff['unmeasured']} not timed); per-problem ratio p5 {math.exp(logs[len(logs) // 20]):.3f}, "
            f"median {math.exp(statistics.median(logs)):.3f}, "
            f"p95 {math.exp(logs[-1 - len(logs) // 20]):.3f}; "
            f"{off10} beyond +-10%, slower_2x {eff['slower_2x']}, faster_2x {eff['faster_2x']}; "
            f"median 95% CI width {100 * statistics.median(widths):.1f}%; wall {wall:.1f} s",
            flush=True,
        )
    print(
        f"canonical vs itself, {args.dataset}: geomean ratio {statistics.median(geomeans):.4f} "
        f"(median of {args.runs} runs)"
    )


if __name__ == "__main__":
    main()
