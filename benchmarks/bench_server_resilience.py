"""Generation against a server that resets connections or restarts: what a user's run goes through.

    python benchmarks/bench_server_resilience.py [--runs=3] [--restart-after=10]

Both parts run the plugin end to end (``pytest --humaneval --humaneval-endpoint=...`` in a fresh
directory, HumanEval's 164 problems, one sample each) against ``tests/openai_stub.py`` in a process
of its own, answering every problem with its reference solution and logging every answer it sends.

1. Small backlog: the server listens with Python's ``http.server`` backlog (5) and answers at once;
   the plugin sends all 164 requests together (``--humaneval-concurrency`` 256). Printed per run:
   generation wall time, connection errors (resets) the client met, the smallest window (requests
   in flight) it went down to, answers cached, answers the server sent, pass@1. The same with a
   backlog of 1024 for comparison.
2. Restart: the server answers in 0.5 s each, 16 in flight; it is killed (SIGKILL) after 40 answers
   and started again on the same port ``--restart-after`` seconds later. Printed: generation wall,
   the outage the plugin saw, answers cached (each once?), answers the server sent in all; and the
   same run without the kill, for comparison.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from openai_stub import spawn_stub  # noqa: E402
from plugin_support import cache_records  # noqa: E402
from tiny_server import free_port  # noqa: E402


def pytest_run(work: Path, url: str, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "pytest", "--humaneval", f"--humaneval-endpoint={url}",
           "--humaneval-model=stub-model", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
           *args]  # fmt: skip
    return subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], work: Path) -> dict[str, Any]:
    out, err = proc.communicate(timeout=900)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"pytest failed ({proc.returncode}):\n{out[-3000:]}\n{err[-3000:]}")
    return json.loads((work / ".humaneval" / "report.json").read_text())


def cached(work: Path) -> Counter[str]:
    return Counter(r["task_id"] for r in cache_records(work / ".humaneval"))


def sent(log: Path) -> Counter[str]:
    if not log.exists():
        return Counter()
    return Counter(json.loads(x)["task_id"] for x in log.read_text().splitlines())


def small_backlog(backlog: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-resilience-") as tmp:
        work, log = Path(tmp), Path(tmp) / "served.jsonl"
        server, url = spawn_stub("--canonical", f"--backlog={backlog}", f"--log={log}")
        try:
            report = finish(pytest_run(work, url), work)
        finally:
            server.kill()
            server.wait()
        g = report["generation"]
        return {
            "wall_s": g["generation_wall_s"],
            "connection_errors": g["connection"]["connection_errors"],
            "window_min": g["connection"]["window_min"],
            "cached": sum(cached(work).values()),
            "distinct": len(cached(work)),
            "server_answers": sum(sent(log).values()),
            "pass_at_1": report["pass_at_k"]["1"],
        }


def restart(after_s: float | None) -> dict[str, Any]:
    """The restart run; ``after_s`` None: the same run, the server never killed."""
    with tempfile.TemporaryDirectory(prefix="bench-resilience-") as tmp:
        work, log, port = Path(tmp), Path(tmp) / "served.jsonl", free_port()
        args = ("--canonical", "--latency=0.5", f"--port={port}", f"--log={log}")
        server, url = spawn_stub(*args)
        proc = pytest_run(work, url, "--humaneval-concurrency=16")
        try:
            while after_s is not None and sum(sent(log).values()) < 40:
                if proc.poll() is not None:
                    raise SystemExit(f"pytest ended early:\n{proc.communicate()}")
                time.sleep(0.02)
            if after_s is not None:
                server.send_signal(signal.SIGKILL)
                server.wait()
                time.sleep(after_s)
                server, _ = spawn_stub(*args)
            report = finish(proc, work)
        finally:
            server.kill()
            server.wait()
        g = report["generation"]
        answers = cached(work)
        return {
            "wall_s": g["generation_wall_s"],
            "outages": g["connection"]["outages"],
            "outage_s": g["connection"]["outage_s"],
            "connection_errors": g["connection"]["connection_errors"],
            "cached": sum(answers.values()),
            "distinct": len(answers),
            "server_answers": sum(sent(log).values()),
            "pass_at_1": report["pass_at_k"]["1"],
        }


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # each line as it comes
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--restart-after", type=float, default=10.0)
    args = parser.parse_args()

    for backlog in (5, 1024):
        runs = [small_backlog(backlog) for _ in range(args.runs)]
        for r in runs:
            print(
                f"backlog {backlog}: generation {r['wall_s']:.2f} s, {r['connection_errors']} connection "
                f"errors, window down to {r['window_min']}, {r['cached']} answers cached "
                f"({r['distinct']} problems), {r['server_answers']} sent by the server, "
                f"pass@1 {r['pass_at_1']:.3f}"
            )
        walls = [r["wall_s"] for r in runs]
        errors = [r["connection_errors"] for r in runs]
        print(
            f"backlog {backlog}: median generation {statistics.median(walls):.2f} s, "
            f"connection errors {min(errors)}-{max(errors)} over {args.runs} runs"
        )
    for after in (None, args.restart_after):
        r = restart(after)
        label = "no restart" if after is None else f"restart after {after:g} s"
        print(
            f"{label}: generation {r['wall_s']:.2f} s, {r['outages']} outage(s) of {r['outage_s']:.1f} s, "
            f"{r['connection_errors']} connection errors, {r['cached']} answers cached ({r['distinct']} "
            f"problems), {r['server_answers']} sent by the server, pass@1 {r['pass_at_1']:.3f}"
        )


if __name__ == "__main__":
    main()
