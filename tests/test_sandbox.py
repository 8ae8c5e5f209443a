"""The subprocess sandbox against hostile programs: verdicts, isolation, and nothing left behind."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile import CASES, PROMPT, TEST, Case, body_for, leftovers

from pytest_humaneval.sandbox import Job, Limits
from pytest_humaneval.sandbox.subprocess_sandbox import NO_NAMESPACES_ENV, SubprocessSandbox

TIMEOUT = 1.5
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="namespaces are Linux-only")


@pytest.fixture(scope="module")
def listener() -> Iterator[socket.socket]:
    """A host socket a sandboxed program must not be able to reach."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def make_sandbox(namespaces: bool) -> SubprocessSandbox:
    os.environ["HUMANEVAL_TEST_SECRET"] = "hunter2"
    if not namespaces:
        os.environ[NO_NAMESPACES_ENV] = "1"
    try:
        sandbox = SubprocessSandbox(Limits(memory_mb=1024, processes=32))
        sandbox.start()
    finally:
        os.environ.pop(NO_NAMESPACES_ENV, None)
    return sandbox


@pytest.fixture(scope="module", params=["namespaces", "fallback"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[SubprocessSandbox]:
    sb = make_sandbox(request.param == "namespaces")
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
    verdict = run(sandbox, body_for(case, listener.getsockname()[1], outside))
    elapsed = time.monotonic() - start
    assert verdict["status"] == case.status, verdict
    assert case.reason_has in verdict["reason"]
    assert elapsed < TIMEOUT + 3, "the verdict took far longer than the time limit"
    assert leftovers() == [], "a process the program started is still running"
    assert not outside.exists(), "the program wrote outside its directory"
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing connected from inside the sandbox
    assert run(sandbox, "    return x * 2\n")["status"] == "passed", "the sandbox is unusable after this case"


def test_output_is_captured_with_a_cap(sandbox: SubprocessSandbox) -> None:
    verdict = run(
        sandbox, "    import sys\n    print('hello'); sys.stdout.write('y' * (1 << 20))\n    return x * 2\n"
    )
    assert verdict["status"] == "passed"
    assert verdict["stdout"].startswith("hello\n")
    assert len(verdict["stdout"]) <= 16 * 1024
    assert verdict["output_dropped"] > 1_000_000


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
            pytest.skip("this machine allows no unprivileged user namespaces")
        for key in ("network", "read_only_fs", "pid_namespace", "subreaper"):
            assert sb.isolation[key], key
    finally:
        sb.close()


def test_fallback_reports_reduced_isolation() -> None:
    sb = make_sandbox(namespaces=False)
    try:
        assert not sb.isolation["network"] and not sb.isolation["pid_namespace"]
        assert run(sb, "    return x * 2\n")["status"] == "passed"
    finally:
        sb.close()


def test_close_leaves_no_runner() -> None:
    sb = make_sandbox(namespaces=True)
    assert sb.proc is not None
    pid = sb.proc.pid
    sb.close()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
