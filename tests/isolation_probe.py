"""Runs one isolation scenario (``hostile.ISOLATION``) in the subprocess sandbox and prints each program's
verdict as JSON: run by whichever interpreter and user a test picks (root, a readable venv, an ordinary
user), so the same scenario is judged in every setup.

    python isolation_probe.py NAME SOCKET TMUX OUTSIDE MARK [--no-namespaces] [--no-own-scratch]

``--no-own-scratch`` turns off each program's own namespaces and scratch (``SubprocessSandbox.own_scratch``,
which the plugin never turns off; the benchmarks do, to measure what they cost); NAME ``plain`` judges one
right and one wrong program.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hostile import ISOLATION, TEST, scenario_programs

from pytest_humaneval.sandbox import Job, Limits
from pytest_humaneval.sandbox.subprocess_sandbox import NO_NAMESPACES_ENV, SubprocessSandbox

#: The limits of every scenario: 1 GB per program (its whole tree), 64 processes.
LIMITS = Limits(memory_mb=1024, processes=64)


def main() -> None:
    name, socket_path, tmux, outside, mark, *flags = sys.argv[1:]
    if "--no-namespaces" in flags:
        os.environ[NO_NAMESPACES_ENV] = "1"
    if name == "plain":  # one right and one wrong program, no scenario
        scenario = None
        programs = ["def double(x):\n    return 2 * x\n", "def double(x):\n    return x + 2\n"]
    else:
        scenario = next(s for s in ISOLATION if s.name == name)
        programs = scenario_programs(scenario, socket_path, tmux, outside, mark)
    sandbox = SubprocessSandbox(LIMITS, concurrency=len(programs))
    sandbox.own_scratch = "--no-own-scratch" not in flags
    try:
        isolation = sandbox.start()
        if scenario is not None and scenario.together:
            futures = [sandbox.submit(Job(p, TEST, "double", 15)) for p in programs]
            verdicts = [f.result() for f in futures]
        else:
            verdicts = [sandbox.run(Job(p, TEST, "double", 15)) for p in programs]
    finally:
        sandbox.close()
    print(json.dumps({"verdicts": verdicts, "isolation": isolation}))


if __name__ == "__main__":
    main()
