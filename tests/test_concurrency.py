"""What a 64-core box runs, on any machine: 64 and 128 programs at once, each correct after sleeping 2.5 s
(of a 3 s limit), all pass. None is charged with the harness's limits: programs of one runner have uids (and
so process limits) of their own, the runner's descriptors grow with its concurrency, and time limits do not
depend on how many programs run at once (a crowded-out program gets its wait for a CPU back instead)."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import pytest
from plugin_support import problems, report, write_jsonl

from pytest_humaneval.sandbox import Job, Limits
from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox

pytestmark = pytest.mark.slow

PROMPT = "def double(x):\n"
TEST = "def check(candidate):\n    assert candidate(2) == 4\n"

#: A correct program that first sleeps 2.5 s, while being defined (once, not in every call).
SLEEPY = "\n\nimport time\ntime.sleep(2.5)\n"


def sleepy_completions(path: Path, count: int) -> Path:
    rows = [
        {"task_id": p["task_id"], "completion": p["canonical_solution"] + SLEEPY}
        for p in problems()[: count // 4]
        for _ in range(4)
    ]
    return write_jsonl(path, rows)


@pytest.mark.parametrize("parallel", [64, 128])
def test_many_sleepy_programs_at_once_all_pass(pytester: pytest.Pytester, parallel: int) -> None:
    completions = sleepy_completions(pytester.path / "sleepy.jsonl", 128)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--humaneval",
        f"--humaneval-completions={completions}",
        f"--humaneval-parallel={parallel}",
        "--humaneval-report=report.json",
        "-k",
        " or ".join(p["entry_point"] for p in problems()[:32]),
    )
    rows = report(pytester)["results"]
    assert len(rows) == 128
    wrong = [(r["task_id"], r["status"], r["reason"]) for r in rows if r["status"] != "passed"]
    assert not wrong, wrong
    result.assert_outcomes(passed=128)
    header = result.stdout.str()
    assert "x" not in header.split("timeout ", 1)[1].split("\n", 1)[0], (
        "limits grew with the programs in flight"
    )


def test_the_runner_holds_enough_descriptors_for_its_programs() -> None:
    """Each program in flight holds a few of the runner's descriptors (its pipes, its channel): at 128 at
    once (256 with the parked ones) the runner's own limit is raised to fit, never a program's."""
    sandbox = SubprocessSandbox(Limits(), concurrency=128)
    try:
        sandbox.start()
        assert sandbox.proc is not None
        runner = group_members(sandbox.proc.pid)
        assert runner, "no live runner process"
        limits = Path(f"/proc/{runner[0]}/limits").read_text()
        soft = int(next(line for line in limits.splitlines() if line.startswith("Max open files")).split()[3])
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        assert soft >= min(64 + 16 * sandbox.slots, hard if os.geteuid() else 1 << 20), limits
        body = "def f(x):\n    import resource\n    print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n    return x\n"
        verdict = sandbox.run(Job(body, "def check(c):\n    assert c(1) == 1\n", "f", 5))
        assert verdict["status"] == "passed", verdict
        assert verdict["stdout"].split() == ["256"], (
            "a program's own limit is the sandbox's, not the runner's"
        )
    finally:
        sandbox.close()


def group_members(group: int) -> list[int]:
    """The live processes of the runner's process group (its supervisor and zygotes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == group and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _runner_children(sb: SubprocessSandbox) -> list[psutil.Process]:
    """The runner's zygotes, oldest first (the test processes' zygote is made before the programs')."""
    assert sb.proc is not None
    group = os.getpgid(sb.proc.pid) if sb.proc.poll() is None else sb.proc.pid
    runner = next(
        p
        for p in psutil.process_iter(["pid"])
        if _pgid(p.pid) == group and p.pid != sb.proc.pid and p.ppid() in (1, sb.proc.pid)
    )
    return sorted(runner.children(), key=lambda p: p.create_time())


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def test_a_job_the_runner_lost_is_answered_as_the_harness_s_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job waiting for something the runner will never get (here: its test process, from a zygote that
    stopped) is answered by the runner's backstop as a sandbox error saying what it waited for. It was held
    until the host's wedge check, ten times the limit later, and then charged to the model as a timeout."""
    monkeypatch.setattr(SubprocessSandbox, "backstop_s", 2.0)
    sb = SubprocessSandbox(Limits(), concurrency=2)
    judges_zygote: psutil.Process | None = None
    try:
        sb.start()
        judges_zygote = _runner_children(sb)[0]
        judges_zygote.suspend()
        t0 = time.monotonic()
        verdict = sb.submit(Job(PROMPT + "    return x * 2\n", TEST, "double", 3.0)).result(timeout=120)
        waited = time.monotonic() - t0
    finally:
        with contextlib.suppress(psutil.NoSuchProcess, AttributeError):  # gone with a replaced runner
            if judges_zygote is not None:
                judges_zygote.resume()
        sb.close()
    assert verdict["status"] == "sandbox_error", verdict
    assert "no test process took it" in verdict["reason"], verdict
    assert waited < 25, waited


def test_a_wedged_runner_is_replaced_and_its_program_run_again() -> None:
    """A runner that stops answering (here: stopped from outside) is the harness's failure: the program runs
    again on a fresh runner. It was charged to the program as a timeout."""
    sb = SubprocessSandbox(Limits(), concurrency=2)
    try:
        sb.start()
        runner = _runner_children(sb)[0].parent()
        runner.suspend()
        verdict = sb.submit(Job(PROMPT + "    return x * 2\n", TEST, "double", 0.5)).result(timeout=120)
        restarts = sb.restarts
    finally:
        sb.close()
    assert verdict["status"] == "passed", verdict
    assert restarts == 1


def test_a_judge_that_retires_never_loses_its_last_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """A judge serves a number of jobs, writes its last verdict and exits: its exit, reported by its zygote,
    can reach the runner before the verdict it wrote does. With one job per judge every job is a judge's
    last; every correct program must still pass (it was a `crashed` 'died before its verdict')."""
    monkeypatch.setattr(SubprocessSandbox, "judge_jobs", 1)
    sb = SubprocessSandbox(Limits(), concurrency=8)
    # A busy machine (as a 64-core box under load): the runner wakes to find both the exit and the verdict.
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(3)]
    try:
        futures = [sb.submit(Job(PROMPT + "    return x * 2\n", TEST, "double", 30.0)) for _ in range(400)]
        statuses = Counter(f.result()["status"] for f in futures)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
        sb.close()
    assert statuses == {"passed": 400}


def test_a_closed_sandbox_s_reader_never_reads_a_later_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """close() closes the runner's stdout while its reader thread may be waiting on it. A reader that wakes
    after that (kept off the CPU on a loaded machine) read the descriptor's number again, which a later
    sandbox's runner pipe had got: it took that runner's reply, and the later sandbox's job waited for it
    for ever (seen once in a full run: a reference measurement hung until the runner was killed)."""
    import select  # the module subprocess_sandbox's reader thread waits with

    real_select = select.select
    woken = threading.Event()

    def slow_select(*args: Any) -> object:
        ready = real_select(*args)
        woken.wait(10)  # the reader thread, kept off the CPU until the next pipe exists
        return ready

    sb = SubprocessSandbox(Limits(), concurrency=1)
    sb.start()
    assert sb.proc is not None and sb.proc.stdout is not None
    number = sb.proc.stdout.fileno()
    monkeypatch.setattr(select, "select", slow_select)
    time.sleep(0.7)  # the reader's next wait is a slow one
    sb.close()
    with contextlib.suppress(OSError):
        os.fstat(number)
        pytest.fail(f"descriptor {number} is still open after close()")
    r, w = os.pipe()
    try:
        if r != number:
            os.dup2(r, number)  # what the next pipe made in this process gets: the lowest free number
        os.write(w, b"\x00\x00\x00\x02{}")
        woken.set()
        time.sleep(1.0)
        monkeypatch.undo()
        os.set_blocking(number, False)
        assert os.read(number, 64) == b"\x00\x00\x00\x02{}", "the closed sandbox's reader took the bytes"
    finally:
        for fd in {r, w, number}:
            with contextlib.suppress(OSError):
                os.close(fd)
