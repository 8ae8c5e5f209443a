"""The sandbox runner's CPU per program: this checkout against another revision, in lockstep.

    python benchmarks/bench_runner_cpu.py [--against=802cd9b] [--batch=326] [--rounds=12]
                                          [--task=HumanEval/2] [--work=DIR] [--split]

Two worker processes judge the same programs through the subprocess sandbox, one importing this checkout,
the other a git worktree of ``--against`` (made in a temporary directory and removed after). The programs are
the 1,630 of ``make_samples.py``'s 164x10 mix that finish (its 10 infinite loops measure the time limit,
not the runner), or with ``--task`` that task's canonical solution alone (the fixed cost of one program).

The workers take turns, one batch each per round, the order rotated every round: on a shared virtual
machine the same run can take 40 % longer from one minute to the next, and alternating batches slows both
alike, where whole runs one after the other (``bench_sandboxes.py``) measured anything from +5 % to +34 %
for the same two revisions. A batch's CPU is the runner's whole tree: every live process descended from
the runner (supervisor, zygotes, judges) and the children they reaped (each program's process), from
``/proc``. It prints each round's CPU per program for both, their ratio, and the median ratio, which is
what the isolation budget (``+10 %``) is about.

``--split`` adds a third worker: this checkout with each program's own namespaces, scratch and cgroup
turned off (``plain_sandbox.py``, which ``run.py --tools=ours-plain`` uses too), so the price splits in two:
the per-program isolation (this against that) and the rest of the change, the judge in its own process
first (that against ``--against``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

#: The time limit every program gets (what the plugin gives HumanEval on 2 cores).
TIMEOUT_S = 3.0
WARM_UP = 30
#: The side ``--split`` adds: this checkout without the per-program isolation.
PLAIN = "plain"


def tree_ticks(root: int) -> int:
    """Clock ticks of the runner's processes: those of its process group ``root`` (the runner leaves
    the process it was started as, to enter its own PID namespace) and every live descendant of them,
    each with its own CPU and what it was charged for the children it reaped."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stats[int(entry)] = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    seen: set[int] = set()
    todo = [pid for pid, fields in stats.items() if int(fields[2]) == root]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    return sum(sum(int(x) for x in stats[pid][11:15]) for pid in seen)  # utime, stime, cutime, cstime


def worker(task: str | None, samples: Path, plain: bool = False) -> None:
    """One side: a subprocess sandbox of whichever ``pytest_humaneval`` PYTHONPATH names; reads batch
    sizes on stdin, answers each with the runner tree's ticks for that batch."""
    try:
        from pytest_humaneval.datasets.registry import load_dataset
    except ImportError:  # revisions before the datasets package
        from pytest_humaneval.dataset import load_dataset  # type: ignore[no-redef]
    from pytest_humaneval.completions import read_completions
    from pytest_humaneval.evaluation import judge, preload_for
    from pytest_humaneval.sandbox import Limits, make_sandbox

    dataset = load_dataset("humaneval")
    completions = read_completions(samples, dataset)
    jobs = [(p, s) for p in dataset for s in completions.get(p.task_id, [])]
    if task:
        jobs = [(p, s) for p, s in jobs if p.task_id == task]
        if not jobs:
            raise SystemExit(f"--task={task}: no such HumanEval task")
    if plain:  # the per-program isolation off, as run.py's ours-plain turns it off
        import plain_sandbox  # noqa: F401
    sandbox: Any = make_sandbox("subprocess", Limits(), preload=preload_for(dataset))
    sandbox.start()
    if plain and sandbox.isolation.get("own_scratch"):
        raise SystemExit("the runner gave programs their own scratch although plain_sandbox turned it off")
    try:
        runner = sandbox.proc.pid
        for i in range(WARM_UP):
            judge(dataset, *jobs[i % len(jobs)], sandbox, TIMEOUT_S)
        print("ready", flush=True)
        k = 0
        for line in sys.stdin:
            before = tree_ticks(runner)
            for _ in range(int(line)):
                judge(dataset, *jobs[k % len(jobs)], sandbox, TIMEOUT_S)
                k += 1
            print(tree_ticks(runner) - before, flush=True)
    finally:
        sandbox.close()


def inputs(work: Path, task: str | None) -> Path:
    """The programs both sides judge: the mix without its infinite loops, or the task's canonical one."""
    import make_samples

    files = make_samples.build(work / "inputs")
    if task:
        return files["canonical"]
    finite = work / "finishing.jsonl"
    rows = [r for r in make_samples.iter_jsonl(files["samples_164x10"]) if r.get("kind") != "infinite_loop"]
    finite.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return finite


def start(tree: Path, task: str | None, samples: Path, plain: bool = False) -> subprocess.Popen[str]:
    cmd = [sys.executable, __file__, "--worker", f"--samples={samples}"]
    cmd += [f"--task={task}"] if task else []
    cmd += ["--plain"] if plain else []
    env = dict(os.environ, PYTHONPATH=str(tree))
    proc = subprocess.Popen(cmd, env=env, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"the worker for {tree} did not start (exit {proc.wait()})")
    return proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="802cd9b", help="the git revision to compare with")
    parser.add_argument("--batch", type=int, default=326, help="programs per batch")
    parser.add_argument("--rounds", type=int, default=12, help="rounds (one batch of each side per round)")
    parser.add_argument("--task", help="judge only this task's canonical solution (e.g. HumanEval/2)")
    parser.add_argument("--work", type=Path, help="working dir (default: a new temp dir, removed)")
    parser.add_argument(
        "--split", action="store_true", help="also this checkout with the per-program isolation off"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--samples", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.task, args.samples, args.plain)
        return 0
    if not sys.platform.startswith("linux"):
        raise SystemExit("this benchmark reads /proc: Linux only")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-runner-cpu-"))
    other = work / "against"
    add = ["git", "-C", str(ROOT), "worktree", "add", "-f", "--detach", str(other), args.against]
    made = subprocess.run(add, capture_output=True, text=True)
    if made.returncode:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
        raise SystemExit(f"could not check out {args.against} in {other}: {made.stderr.strip()}")
    try:
        samples = inputs(work, args.task)
        sides = {"this": start(ROOT, args.task, samples), args.against: start(other, args.task, samples)}
        if args.split:
            sides[PLAIN] = start(ROOT, args.task, samples, plain=True)
        hz = os.sysconf("SC_CLK_TCK")
        per: dict[str, list[float]] = {name: [] for name in sides}
        names = list(sides)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:  # each side first as often
                proc = sides[name]
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"{args.batch}\n")
                proc.stdin.flush()
                per[name].append(int(proc.stdout.readline()) / hz / args.batch * 1000)
        for proc in sides.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()
    finally:
        remove = ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)]
        subprocess.run(remove, capture_output=True)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    what = f"{args.task}'s canonical solution" if args.task else "the 164x10 mix without its infinite loops"
    print(f"runner CPU per program, {what}; {args.rounds} rounds of {args.batch} programs a side")
    for name, values in per.items():
        row = " ".join(f"{v:.2f}" for v in values)
        print(f"  {name:>10}: median {statistics.median(values):.2f} ms  [{row}]")
    pairs = [("this", args.against)]
    if args.split:
        pairs += [("this", PLAIN), (PLAIN, args.against)]
    for a, b in pairs:
        ratios = [x / y for x, y in zip(per[a], per[b], strict=True)]
        print(
            f"  {a} / {b}: median {statistics.median(ratios):.3f}  [{' '.join(f'{x:.2f}' for x in ratios)}]"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
