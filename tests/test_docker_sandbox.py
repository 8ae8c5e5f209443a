"""The docker sandbox against a real engine: the hostile table, verdicts equal to the subprocess
sandbox's, hardening as Docker reports it, faults that break the container, clean-up, clear errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_support import docker_client, ensure_test_image
from hostile import (
    CASES,
    LEFTOVER_MARK,
    PRIVILEGED_CASES,
    PROMPT,
    TEST,
    Case,
    body_for,
    write_completions,
    write_dataset,
)

from pytest_humaneval.completions import Sample
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.evaluation import judge
from pytest_humaneval.sandbox import Job, Limits, describe_isolation
from pytest_humaneval.sandbox import docker_sandbox as ds
from pytest_humaneval.sandbox.docker_sandbox import DockerSandbox, connect, ensure_image, remove_containers
from pytest_humaneval.sandbox.runner import procs
from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("secret_in_environment")]

TIMEOUT = 1.5
LIMITS = Limits(memory_mb=1024, processes=32)
CORRECT = "    return x * 2\n"
#: The host's tmp dir does not exist inside the container, so writing there would fail with
#: FileNotFoundError and prove nothing; the program targets the container's own root instead.
OUTSIDE_IN_CONTAINER = Path("/outside.txt")
#: Cases whose verdict legitimately differs in a container: (status, reason fragment, why).
CONTAINER_EXPECTED: dict[str, tuple[str, str, str]] = {
    "kills_parent": (
        "passed|crashed",
        "",
        "programs, judges and the runner's zygotes share the container's uid (the container holds no "
        "capability to give them others): killing its parent, a zygote, takes the runner down, before or "
        "after the judge has its (correct) answer; run again in a fresh container it does the same",
    ),
    "kills_everything": ("crashed", "broke its container", "as kills_parent: kill(-1) reaches the zygotes"),
    "network": (
        "error",
        "ConnectionRefusedError",
        "with network_mode=none the container has a loopback of its own, up but with nobody listening: "
        "the connection is refused instead of the subprocess sandbox's 'Network is unreachable'",
    ),
}


def new_sandbox(image: str, **kwargs: Any) -> DockerSandbox:
    kwargs.setdefault("run_id", f"test-{uuid.uuid4().hex[:8]}")
    return DockerSandbox(LIMITS, image=image, **kwargs)


@pytest.fixture(scope="module")
def sandbox(image: str) -> Iterator[DockerSandbox]:
    sb = new_sandbox(image)
    sb.start()
    yield sb
    sb.close()


@pytest.fixture
def fresh(image: str) -> Iterator[DockerSandbox]:
    """A sandbox of its own, for tests that break its container."""
    sb = new_sandbox(image, grace_s=2.0)
    sb.start()
    yield sb
    sb.close()


def run(sb: DockerSandbox, body: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    return sb.run(Job(PROMPT + body, TEST, "double", timeout))


def processes_in(sb: DockerSandbox) -> list[str]:
    """Command lines of every process in the sandbox's container, as the host sees them."""
    top = sb.container.top(ps_args="-eo pid,args")
    return [" ".join(p) for p in top.get("Processes") or []]


def runner_only(sb: DockerSandbox) -> bool:
    """Nothing in the container but the runner: its supervisor (PID 1), its two zygotes and its judge."""
    left = processes_in(sb)
    return 3 <= len(left) <= 4 and all("runner.supervisor" in p and LEFTOVER_MARK not in p for p in left)


def ours(client: Any, run_id: str) -> list[Any]:
    return ds._ours(client, run_id)


# ------------------------------------------------------------------------------ hostile programs


#: The hostile table and the family of programs that use the runner's privileges (in a container: none).
ALL_CASES = CASES + [c for c in PRIVILEGED_CASES if c not in CASES]


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_hostile_case(sandbox: DockerSandbox, case: Case, listener: socket.socket) -> None:
    status, reason_has, _why = CONTAINER_EXPECTED.get(case.name, (case.status, case.reason_has, ""))
    sandbox.start()  # a fresh container, if the case before broke the last one
    container = sandbox.container.name
    start = time.monotonic()
    verdict = run(sandbox, body_for(case, listener.getsockname()[1], OUTSIDE_IN_CONTAINER))
    elapsed = time.monotonic() - start
    assert verdict["status"] in status.split("|"), verdict
    assert reason_has in verdict["reason"]
    # The runner gives a program crowded off a loaded machine's CPUs that wait back, up to MAX_STRETCH.
    assert elapsed < sandbox.longest_run(TIMEOUT) + 3, "the verdict took far longer than the time limit"
    # Scoped to the container: host-wide leftovers() would see other sessions' hostile programs.
    if case.name not in CONTAINER_EXPECTED:  # (those take their container down: it is gone, with them)
        assert runner_only(sandbox), f"the runner did not reap: {processes_in(sandbox)}"
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing connected from inside the sandbox
    assert run(sandbox, CORRECT)["status"] == "passed", "the sandbox is unusable after this case"
    if case.name not in CONTAINER_EXPECTED:
        assert sandbox.container.name == container, "a hostile program got the container replaced"


def test_payload_with_dockers_detach_keys_in_its_length(sandbox: DockerSandbox) -> None:
    """Ctrl-P Ctrl-Q (0x10 0x11) detaches a TTY attach; our frames' length bytes may hold them."""
    job = Job(PROMPT + CORRECT + "# \n", TEST, "double", TIMEOUT)
    pad = 0x1011 - len(json.dumps(job.frame()).encode())
    job = Job(PROMPT + CORRECT + "# " + "p" * pad + "\n", TEST, "double", TIMEOUT)
    assert len(json.dumps(job.frame()).encode()) == 0x1011
    assert sandbox.run(job)["status"] == "passed"
    assert run(sandbox, CORRECT)["status"] == "passed"


def test_output_is_captured_with_a_cap(sandbox: DockerSandbox) -> None:
    verdict = run(
        sandbox, "    import sys\n    print('hello'); sys.stdout.write('y' * (1 << 20))\n" + CORRECT
    )
    assert verdict["status"] == "passed"
    assert verdict["stdout"].startswith("hello\n")
    assert len(verdict["stdout"]) <= 16 * 1024
    assert verdict["output_dropped"] > 1_000_000


# ------------------------------------------------------------------ same verdicts as subprocess


WRONG = (
    "    return None\n",
    "    raise ValueError('nope')\n",
    "    return (\n",
    "    return [][0]\n",
    "    import os\n    os._exit(3)\n",
)


def test_verdicts_equal_the_subprocess_sandbox(image: str) -> None:
    dataset = load_dataset("humaneval")
    samples = [Sample(p.task_id, 0, p.canonical_solution) for p in dataset]
    samples += [Sample(p.task_id, 1, WRONG[i % len(WRONG)]) for i, p in enumerate(dataset)]
    verdicts: dict[str, list[tuple[str, str, str]]] = {}
    for sb in (SubprocessSandbox(LIMITS), new_sandbox(image)):
        try:
            verdicts[sb.kind] = [
                (s.task_id, (r := judge(dataset, dataset.problems[s.task_id], s, sb, 10.0)).status, r.reason)
                for s in samples
            ]
        finally:
            sb.close()
    assert verdicts["docker"] == verdicts["subprocess"]
    statuses = [status for _, status, _ in verdicts["docker"]]
    assert statuses[:164] == ["passed"] * 164
    assert "passed" not in statuses[164:]
    assert {"failed", "error", "syntax_error", "crashed"} <= set(statuses[164:])


# ------------------------------------------------------------------------------------ hardening


def test_container_is_hardened(sandbox: DockerSandbox) -> None:
    sandbox.container.reload()
    attrs = sandbox.container.attrs
    host = attrs["HostConfig"]
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"]
    uid = sandbox.uid
    assert attrs["Config"]["User"] == f"{uid}:{uid}" and uid >= 1_000_000, "a uid of its own, unprivileged"
    assert host["PidsLimit"] == LIMITS.processes + ds.PIDS_HEADROOM
    assert host["Memory"] == (LIMITS.memory_mb + ds.MEMORY_HEADROOM_MB) << 20
    assert host["MemorySwap"] == host["Memory"], "no swap beyond the memory limit"
    assert host["NanoCpus"] == 1_000_000_000
    assert not host.get("Binds") and attrs["Mounts"] == []
    assert sorted(host["Tmpfs"]) == sorted([ds.WORKBASE, "/var/tmp"])
    assert not host.get("Init") and not host.get("Privileged")
    assert attrs["Config"]["Labels"][ds.LABEL_RUN] == sandbox.run_id
    assert attrs["Config"]["Labels"][ds.LABEL_PID] == str(os.getpid())
    assert attrs["Config"]["StdinOnce"] is True, "the container must end when its owner hangs up"


def test_isolation_seen_from_inside(sandbox: DockerSandbox) -> None:
    probe = (
        "    import os\n"
        "    status = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
        f"    assert os.getuid() == {sandbox.uid} and os.getgid() == {sandbox.uid}, 'uid'\n"
        "    assert int(status['CapEff'], 16) == 0, 'capabilities'\n"
        "    assert status['NoNewPrivs'].strip() == '1', 'no-new-privileges'\n"
        "    assert os.getppid() != 1, 'forked by a zygote, not the runner'\n"
        "    assert os.listdir('/sys/class/net') == ['lo'], 'network interfaces'\n"
        "    assert open('/proc/1/cmdline', 'rb').read().startswith(b'python3'), 'PID 1'\n" + CORRECT
    )
    verdict = run(sandbox, probe)
    assert verdict["status"] == "passed", verdict["reason"]


def test_isolation_summary_names_the_container(sandbox: DockerSandbox) -> None:
    summary, missing = describe_isolation("docker", sandbox.isolation)
    assert summary == (
        "docker sandbox: container (no network, read-only root, no capabilities, no-new-privileges, "
        f"uid {sandbox.uid}, pids/memory/CPU limits, no host mounts), fresh scratch per program, verdicts "
        "decided outside the program's process, rlimits"
    )
    assert missing == []
    assert sandbox.isolation["subreaper"] is True  # what the runner reports about itself comes along


# ---------------------------------------------------------------------------------------- faults


def test_runner_killed_mid_program_is_replaced(fresh: DockerSandbox, client: Any) -> None:
    old = fresh.container
    threading.Timer(0.5, old.kill).start()
    verdict = run(fresh, "    import time\n    time.sleep(2)\n" + CORRECT, timeout=10)
    assert verdict["status"] == "passed", "the program runs again in a fresh container: its own verdict"
    assert run(fresh, CORRECT)["status"] == "passed"
    assert fresh.container.name != old.name and fresh.restarts == 1
    assert [c.name for c in ours(client, fresh.run_id)] == [fresh.container.name]


def test_runner_killed_between_programs_is_replaced(fresh: DockerSandbox) -> None:
    old = fresh.container
    old.kill()
    old.wait()
    time.sleep(0.2)
    assert run(fresh, CORRECT)["status"] == "passed", "the next program must not pay for the dead runner"
    assert fresh.container.name != old.name


def test_program_that_gets_the_runner_oom_killed(fresh: DockerSandbox) -> None:
    """The runner made the OOM killer's choice from outside: a program cannot write the runner's /proc
    files (the runner is not dumpable), which the first program shows. The program runs again, alone, in a
    fresh container, where nobody raises the runner's score: it waits out its limit there."""
    old = fresh.container.name
    denied = run(fresh, "    open('/proc/1/oom_score_adj', 'w').write('1000')\n    return x * 2\n")
    assert denied["status"] == "error" and "PermissionError" in denied["reason"], denied
    hog = (  # waits until the runner's score is raised (after the program's fork: it keeps the default)
        "    import os, time\n"
        "    while open('/proc/1/oom_score_adj').read().strip() != '1000':\n"
        "        time.sleep(0.05)\n"
        "    for _ in range(4):\n"
        "        if os.fork() == 0:\n"
        "            b = bytearray(500 << 20)\n"
        "            time.sleep(30)\n"
        "    time.sleep(30)\n"
    )
    verdicts: list[dict[str, Any]] = []
    # A limit well past the two docker calls below (seconds each on a cold daemon): the OOM kill must land
    # inside it, or the first container's verdict is an honest timeout and nothing is run again.
    running = threading.Thread(target=lambda: verdicts.append(run(fresh, hog, timeout=15)))
    running.start()
    while len(processes_in(fresh)) < 5 and running.is_alive():  # the runner's three, the judge, the program
        time.sleep(0.05)
    code, out = fresh.container.exec_run(["sh", "-c", "echo 1000 > /proc/1/oom_score_adj"], user="root")
    assert code == 0, out
    running.join()
    verdict = verdicts[0]
    assert verdict["status"] == "timeout", verdict
    assert fresh.restarts == 1 and fresh.container.name != old
    assert run(fresh, CORRECT)["status"] == "passed"


def test_memory_exhaustion_kills_the_program_not_the_container(fresh: DockerSandbox) -> None:
    old = fresh.container.name
    hog = (  # 6 x 120 MB children, then the program grows until the container's memory is gone
        "    import os, time\n"
        "    for _ in range(6):\n"
        "        if os.fork() == 0:\n"
        "            b = bytearray(120 << 20)\n"
        "            time.sleep(30)\n"
        "    chunks = []\n"
        "    while True:\n"
        "        chunks.append(bytearray(10 << 20))\n"
    )
    verdict = run(fresh, hog, timeout=20)
    assert verdict["status"] == "crashed"
    assert "SIGKILL" in verdict["reason"]
    assert runner_only(fresh), "the children were not killed"
    assert run(fresh, CORRECT)["status"] == "passed"
    assert fresh.container.name == old


def test_pid_exhaustion_leaves_the_container_usable(fresh: DockerSandbox) -> None:
    bomb = (  # processes and threads until fork or thread creation fails, all kept alive
        "    import os, threading, time\n"
        "    n = 0\n"
        "    try:\n"
        "        while True:\n"
        "            if os.fork() == 0:\n"
        "                try:\n"
        "                    while True:\n"
        "                        threading.Thread(target=time.sleep, args=(60,)).start()\n"
        "                finally:\n"
        "                    time.sleep(60)\n"
        "            n += 1\n"
        "    except OSError:\n"
        "        raise RuntimeError('out of processes after %d forks' % n)\n"
    )
    verdict = run(fresh, bomb, timeout=5)
    assert verdict["status"] == "error", verdict
    assert "out of processes" in verdict["reason"]
    assert runner_only(fresh)
    assert run(fresh, CORRECT)["status"] == "passed"


def test_wedged_container_is_replaced(fresh: DockerSandbox) -> None:
    old = fresh.container
    old.pause()
    start = time.monotonic()
    verdict = run(fresh, CORRECT, timeout=0.5)
    assert verdict["status"] == "passed", "run again in a fresh container: the wedge was not the program's"
    assert fresh.restarts == 1
    # The host waits for the longest the runner may stretch a crowded-out program's limit, then the grace.
    assert time.monotonic() - start < fresh.longest_run(0.5) + fresh.grace_s + 5
    assert run(fresh, CORRECT)["status"] == "passed"
    assert fresh.container.name != old.name


def test_interrupt_mid_program_removes_the_container(fresh: DockerSandbox, client: Any) -> None:
    old = fresh.container.name
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, also in xdist
    try:
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        with pytest.raises(KeyboardInterrupt):
            run(fresh, "    while True:\n        pass\n", timeout=30)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert fresh.container is None
    assert old not in [c.name for c in ours(client, fresh.run_id)]
    assert run(fresh, CORRECT)["status"] == "passed"


# ---------------------------------------------------------------------------------------- clean-up


def test_close_removes_the_container(image: str, client: Any) -> None:
    sb = new_sandbox(image)
    sb.start()
    assert len(ours(client, sb.run_id)) == 1
    sb.close()
    assert ours(client, sb.run_id) == []


WORKER = """
import sys, time
from pytest_humaneval.sandbox import Job, Limits
from pytest_humaneval.sandbox.docker_sandbox import DockerSandbox
sb = DockerSandbox(Limits(), image=sys.argv[1], run_id=sys.argv[2])
sb.start()
print(sb.container.name, flush=True)
sb.run(Job("def f():\\n    import time\\n    time.sleep(120)\\n", "def check(c):\\n    c()\\n", "f", 120))
"""


def test_crashed_workers_container_is_removed_by_run_id(image: str, client: Any) -> None:
    run_id = f"test-crash-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, image, run_id], stdout=subprocess.PIPE, text=True
    )
    assert worker.stdout is not None
    name = worker.stdout.readline().strip()
    time.sleep(0.5)  # the program is running
    worker.kill()  # as an xdist worker dies: no close(), no atexit
    worker.wait()
    assert [c.name for c in ours(client, run_id)] == [name], "the busy container outlives its owner"
    assert remove_containers(run_id) == 1
    assert ours(client, run_id) == []


def test_stale_pool_is_swept_at_start(image: str, client: Any, tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    host, now = socket.gethostname(), time.time()
    mine = str(os.getpid()), procs.start_time(os.getpid())
    made = {}
    for role, pid, start, owner_host, created in (
        ("dead-owner", str(dead.pid), "", host, now),
        ("old", *mine, "elsewhere", now - 2 * ds.STALE_AFTER_S),
        ("live-owner", *mine, host, now),
        ("other-host", "1", "", "elsewhere", now),
    ):
        run_id = f"test-stale-{role}-{uuid.uuid4().hex[:6]}"
        labels = {
            ds.LABEL_RUN: run_id,
            ds.LABEL_PID: pid,
            ds.LABEL_START: start,
            ds.LABEL_HOST: owner_host,
            ds.LABEL_CREATED: f"{created:.0f}",
        }
        client.containers.run(image, ["sleep", "600"], detach=True, labels=labels, network_mode="none")
        made[role] = run_id
    try:
        # A fresh process, as a new pytest run would be: it sweeps at its first start.
        code = (
            "import sys\nfrom pytest_humaneval.sandbox import Limits\n"
            "from pytest_humaneval.sandbox.docker_sandbox import DockerSandbox\n"
            "sb = DockerSandbox(Limits(), image=sys.argv[1]); sb.start(); sb.close()\n"
        )
        subprocess.run([sys.executable, "-c", code, image], check=True, timeout=120)
        left = {role for role, run_id in made.items() if ours(client, run_id)}
        assert left == {"live-owner", "other-host"}
    finally:
        for run_id in made.values():
            remove_containers(run_id)


# ---------------------------------------------------------------------------------------- errors


def test_missing_docker_package_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)  # import docker now raises ImportError
    with pytest.raises(HumanEvalError) as e:
        connect()
    message = str(e.value)
    assert message.startswith("--humaneval-sandbox=docker needs the docker Python package")
    assert "pip install 'pytest-humaneval[docker]'" in message and "--humaneval-sandbox=subprocess" in message


def test_no_daemon_is_one_clear_error(image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(HumanEvalError) as e:
        new_sandbox(image).start()
    message = str(e.value)
    assert message.startswith(f"cannot reach the Docker daemon at unix://{tmp_path}/docker.sock (")
    assert "start the Docker daemon" in message and "DOCKER_HOST" in message
    assert "--humaneval-sandbox=subprocess" in message
    assert remove_containers("anything") == 0, "clean-up at session end must not fail a second time"


@pytest.fixture
def tag(client: Any) -> Iterator[str]:
    """A fresh image name, removed after the test."""
    name = f"pytest-humaneval-test-{uuid.uuid4().hex[:8]}:latest"
    yield name
    try:
        client.images.remove(name, force=True)
    except Exception:
        pass


def context(tmp_path: Path, dockerfile: str, files: dict[str, bytes] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, data in (files or {}).items():
        (ctx / name).write_bytes(data)
    return ctx


def test_image_without_python3_is_one_clear_error(client: Any, tag: str, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM scratch\nCOPY hello /hello\n", {"hello": b"not a program\n"})
    client.images.build(path=str(ctx), tag=tag, rm=True)
    sb = new_sandbox(tag)
    with pytest.raises(HumanEvalError) as e:
        sb.start()
    assert str(e.value).startswith(f"image {tag} has no python3 (")
    assert "--humaneval-sandbox-image=NAME" in str(e.value)
    assert ours(client, sb.run_id) == [], "the failed container was left behind"
    sb.close()


def test_missing_image_that_cannot_be_built_is_one_clear_error(client: Any, tag: str, tmp_path: Path) -> None:
    ctx = context(tmp_path, f"FROM {ensure_test_image()}\nRUN echo step-before-failure && exit 3\n")
    sb = new_sandbox(tag, build_context=ctx)
    with pytest.raises(HumanEvalError) as e:
        sb.start()
    message = str(e.value)
    assert message.startswith(f"image {tag} is not present and building it from {ctx / 'Dockerfile'} failed:")
    assert "step-before-failure" in message, "the build log's tail is missing"
    assert "Fix:" in message and "--humaneval-sandbox-image=NAME" in message
    sb.close()


def test_missing_image_is_built_once_on_first_use(client: Any, tag: str, tmp_path: Path) -> None:
    ctx = context(tmp_path, f"FROM {ensure_test_image()}\nUSER 65534:65534\n")
    built: list[bool] = []
    threads = [
        threading.Thread(target=lambda: built.append(ensure_image(docker_client(), tag, ctx)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(built) == [False, False, True], "the image was built more than once"
    sb = new_sandbox(tag, build_context=ctx)
    try:
        assert run(sb, CORRECT)["status"] == "passed"
    finally:
        sb.close()


def test_bundled_dockerfile_is_the_minimal_image() -> None:
    from pytest_humaneval.datasets.dataset import data_dir

    text = (data_dir("sandbox") / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "FROM python:3.12-slim"
    assert any("pip install" in line and "numpy" in line for line in lines)
    assert "USER 65534:65534" in lines


# ---------------------------------------------------------------------------------- the plugin


def leaked_since(client: Any, started: float) -> list[str]:
    """Sandbox containers created since ``started`` whose owner process has ended (clean-up failed)."""
    return [
        c.name
        for c in ds._ours(client)
        if float(c.labels.get(ds.LABEL_CREATED, "0")) >= started
        and not ds._owner_alive(c.labels)
        and not c.labels[ds.LABEL_RUN].startswith(("test-stale-", "test-crash-"))  # made so on purpose
    ]


def test_plugin_under_xdist_leaves_no_container(pytester: pytest.Pytester, image: str, client: Any) -> None:
    started = time.time() - 1
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--humaneval-debug",
        "--humaneval-completions=canonical",
        "--humaneval-sandbox=docker",
        f"--humaneval-sandbox-image={image}",
        "--humaneval-report=report.json",
        "-n",
        "2",
    )
    result.assert_outcomes(passed=4)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["humaneval: docker sandbox: container (no network, read-only root, *"])
    assert json.loads((pytester.path / "report.json").read_text())["sandbox"].startswith("docker sandbox")
    assert leaked_since(client, started) == []


def test_hostile_programs_through_the_plugin(pytester: pytest.Pytester, image: str, client: Any) -> None:
    started = time.time() - 1
    dataset = write_dataset(pytester.path / "hostile.jsonl", ALL_CASES)
    completions = write_completions(
        pytester.path / "hostile_completions.jsonl", ALL_CASES, 9, OUTSIDE_IN_CONTAINER
    )
    pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--humaneval",
        f"--humaneval-dataset={dataset}",
        f"--humaneval-completions={completions}",
        "--humaneval-timeout=2",
        "--humaneval-sandbox=docker",
        f"--humaneval-sandbox-image={image}",
        "--humaneval-report=report.json",
        "-n",
        "2",
    )
    report = json.loads((pytester.path / "report.json").read_text())
    statuses = {r["task_id"].split("/")[1]: r["status"] for r in report["results"]}
    expected = {c.name: CONTAINER_EXPECTED.get(c.name, (c.status,))[0].split("|") for c in ALL_CASES}
    wrong = [r for r in report["results"] if r["status"] not in expected[r["task_id"].split("/")[1]]]
    assert set(statuses) == set(expected) and not wrong, wrong
    # What the programs left (leaves_daemon_*, fork_bomb) died with the containers, which are all gone.
    assert leaked_since(client, started) == []
