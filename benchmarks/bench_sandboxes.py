"""Docker sandbox vs subprocess sandbox on the same 1,640-program file (164 tasks x 10 samples).

    python benchmarks/bench_sandboxes.py [--image=NAME] [--runs=3] [--modes=plugin,direct] [--work=DIR]
                                         [--sandboxes=subprocess,docker]

The file comes from ``make_samples.py`` (a deterministic mix of right, wrong, crashing and
10 infinite-loop programs). Two ways to measure, each run ``--runs`` times (median reported):

- ``plugin``: what a user waits for, ``pytest --humaneval -n 2 --humaneval-sandbox=X`` from spawn to
  exit (interpreter, collection, the docker sandbox's container start in each worker, clean-up);
- ``direct``: the sandbox API in this process, one program after another, sandbox start excluded:
  the per-program cost of each sandbox without pytest around it.

``--sandboxes=subprocess`` measures one sandbox alone (its per-program cost, no comparison).

It prints wall times, the per-program overhead of docker over subprocess, the ratio docker/subprocess
(the target is at most 2x), and checks that both sandboxes gave every program the same status.
``--image`` is the docker sandbox's image (default: the plugin's, built from ``sandbox/Dockerfile``
on first use; on a machine without a registry pass one that exists, e.g. the test image
``pytest-humaneval-test-base:latest`` that ``.ci/docker-up`` builds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import make_samples

from pytest_humaneval.completions import read_completions
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.evaluation import judge, preload_for
from pytest_humaneval.options import DEFAULT_SANDBOX_IMAGE
from pytest_humaneval.sandbox import Limits, make_sandbox

SANDBOXES = ("subprocess", "docker")
#: The plugin's time limit for HumanEval with 2 workers on 2 cores ('auto'); the same in both modes.
TIMEOUT_S = 3.0

Statuses = dict[tuple[str, int], str]


def plugin_run(sandbox: str, samples: Path, image: str, run_dir: Path) -> tuple[float, Statuses]:
    """One ``pytest --humaneval -n 2`` run; its wall time and every program's status."""
    run_dir.mkdir(parents=True)
    report = run_dir / "report.json"
    cmd = [sys.executable, "-m", "pytest", "--humaneval", f"--humaneval-completions={samples}", "-n", "2"]
    cmd += ["-p", "no:cacheprovider", "-p", "no:randomly", "-q", f"--humaneval-report={report}"]
    cmd += [f"--humaneval-sandbox={sandbox}", f"--humaneval-sandbox-image={image}"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=run_dir, capture_output=True, text=True)
    wall = time.monotonic() - start
    if not report.exists():
        raise SystemExit(f"{' '.join(cmd)} wrote no report (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
    data = json.loads(report.read_text())
    return wall, {(r["task_id"], r["sample"]): r["status"] for r in data["results"]}


def runner_cpu(sb: Any) -> float | None:
    """CPU seconds the subprocess sandbox's runner has used, with the programs it has reaped (its process
    group's utime, stime, cutime and cstime from /proc); None for other sandboxes or without /proc. Unlike
    wall time, it hardly moves when other work loads the machine."""
    proc = getattr(sb, "proc", None)
    if proc is None or not os.path.isdir("/proc"):
        return None
    ticks = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == proc.pid:  # the runner's process group: supervisor and zygote
                ticks += sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def direct_run(sandbox: str, samples: Path, image: str) -> tuple[float, float, float, float | None, Statuses]:
    """Every program through the sandbox API in this process: (start-up s, programs' wall s, wall of the
    programs that did not time out, the runner's CPU s for those (subprocess sandbox only), statuses)."""
    dataset = load_dataset("humaneval")
    completions = read_completions(samples, dataset)
    options: dict[str, Any] = {}
    if sandbox == "docker":
        options = {"image": image, "run_id": f"bench-{time.time_ns()}"}
    t0 = time.monotonic()
    sb = make_sandbox(sandbox, Limits(), preload=preload_for(dataset), **options)
    statuses: Statuses = {}
    finished = 0.0
    cpu: float | None = 0.0
    try:
        sb.start()
        t1 = time.monotonic()
        for problem in dataset:
            for sample in completions[problem.task_id]:
                t, c = time.monotonic(), runner_cpu(sb)
                result = judge(dataset, problem, sample, sb, TIMEOUT_S)
                if result.status != "timeout":
                    finished += time.monotonic() - t
                    after = runner_cpu(sb)
                    cpu = None if cpu is None or c is None or after is None else cpu + max(0.0, after - c)
                statuses[(result.task_id, result.sample)] = result.status
        t2 = time.monotonic()
    finally:
        sb.close()
    return t1 - t0, t2 - t1, finished, cpu, statuses


def differences(a: Statuses, b: Statuses) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k[0]}[s{k[1]}]: {a.get(k)} vs {b.get(k)}" for k in keys if a.get(k) != b.get(k)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=DEFAULT_SANDBOX_IMAGE, help="the docker sandbox's image")
    parser.add_argument("--runs", type=int, default=3, help="runs per sandbox and mode (median reported)")
    parser.add_argument("--modes", default="plugin,direct", help="plugin, direct or both")
    parser.add_argument("--work", type=Path, help="working dir (default: a new temp dir, kept)")
    parser.add_argument("--sandboxes", default=",".join(SANDBOXES), help="which sandboxes (default: both)")
    args = parser.parse_args(argv)
    sandboxes = [s.strip() for s in args.sandboxes.split(",") if s.strip() in SANDBOXES]
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-sandboxes-"))
    samples = make_samples.build(work / "inputs")["samples_164x10"]
    n = sum(1 for _ in make_samples.iter_jsonl(samples))
    print(f"inputs: {samples} ({n} programs); image {args.image}; {args.runs} run(s) each; work dir {work}")
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    problems = 0
    for mode in modes:
        walls: dict[str, list[float]] = {s: [] for s in sandboxes}
        starts: dict[str, list[float]] = {s: [] for s in sandboxes}
        finished: dict[str, list[float]] = {s: [] for s in sandboxes}
        cpus: dict[str, list[float]] = {s: [] for s in sandboxes}
        verdicts: dict[str, Statuses] = {}
        for i in range(args.runs):
            for sb in sandboxes:  # interleaved, so drift on the machine hits both alike
                if mode == "plugin":
                    wall, statuses = plugin_run(sb, samples, args.image, work / f"{mode}-{sb}-{i}")
                else:
                    start, wall, done, cpu, statuses = direct_run(sb, samples, args.image)
                    starts[sb].append(start)
                    finished[sb].append(done)
                    if cpu is not None:
                        cpus[sb].append(cpu)
                walls[sb].append(wall)
                if sb in verdicts and verdicts[sb] != statuses:
                    drift = differences(verdicts[sb], statuses)
                    print(f"  note: {sb} gave different statuses between runs: {drift}")
                verdicts[sb] = statuses
                print(f"  {mode} {sb} run {i + 1}: {wall:.2f} s")
        what = "pytest -n 2, spawn to exit" if mode == "plugin" else "sandbox API, 1 process, start excluded"
        print(f"\n{mode} ({what}), {n} programs, median of {args.runs}:")
        for s in sandboxes:
            extra = f"  (sandbox start {statistics.median(starts[s]):.2f} s)" if starts[s] else ""
            spread = f"{min(walls[s]):.2f}-{max(walls[s]):.2f}"
            print(f"  {s:<10} wall {statistics.median(walls[s]):7.2f} s  [{spread}]{extra}")
        if mode == "direct":
            for s in sandboxes:
                k = sum(1 for v in verdicts[s].values() if v != "timeout")
                done = statistics.median(finished[s])
                each = done / k * 1000
                print(f"  {s}: the {k} programs that did not time out took {done:.2f} s ({each:.2f} ms each)")
                if cpus[s]:
                    cpu = statistics.median(cpus[s])
                    print(f"  {s}: runner CPU for them {cpu:.2f} s ({cpu / k * 1000:.2f} ms each)")
        if len(sandboxes) < 2:
            continue
        sub, dock = (statistics.median(walls[s]) for s in SANDBOXES)
        if mode == "direct":
            sub_f, dock_f = (statistics.median(finished[s]) for s in SANDBOXES)
            print(f"  ratio docker/subprocess for those: {dock_f / sub_f:.2f}x")
        print(f"  docker overhead per program: {(dock - sub) / n * 1000:+.2f} ms")
        print(f"  ratio docker/subprocess: {dock / sub:.2f}x (target <= 2x)")
        diff = differences(verdicts["subprocess"], verdicts["docker"])
        same = "identical" if not diff else f"{len(diff)} differ"
        print(f"  verdicts: {same} ({len(verdicts['docker'])} programs)")
        for line in diff[:20]:
            print(f"    {line}")
        problems += bool(diff) + (dock / sub > 2)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
