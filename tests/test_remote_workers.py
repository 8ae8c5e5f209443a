"""xdist workers on other hosts, with no file system shared with the controller.

Everything a worker needs crosses in ``workerinput`` (the completions themselves, the sample count, the
time limits, the run id); each worker loads the dataset from its own installation and checks the
controller's digest. The first tests run local workers in another directory (``--tx popen//chdir=``),
where the completions path given relatively names a different file; the docker ones run the workers in
two containers of the test base image with this repo's wheel installed, reached over execnet's socket
gateway (``--tx socket=IP:8888``; ``tests/remote_worker_server.py`` listens there).
"""

from __future__ import annotations

import platform
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from docker_support import REPO_ROOT, docker_client, ensure_test_image, require_docker
from plugin_support import canonical_completions, problems, report, run, write_jsonl

#: Tasks whose completion in ``c.jsonl`` fails (``return None``).
WRONG = ("HumanEval/1", "HumanEval/3")
#: Compared between two runs of the same items: everything that does not depend on timing.
SAME_KEYS = (
    "dataset",
    "dataset_sha",
    "passed",
    "total",
    "scored",
    "pass_at_k",
    "status_counts",
    "sandbox_errors",
)


def verdicts(data: dict) -> list[tuple]:
    return sorted(
        (r["task_id"], r["sample"], r.get("mode"), r["status"], r["reason"]) for r in data["results"]
    )


def assert_same_report(local: dict, other: dict) -> None:
    assert verdicts(other) == verdicts(local)
    assert {k: other.get(k) for k in SAME_KEYS} == {k: local.get(k) for k in SAME_KEYS}


#: While workers live, the controller's completions file is gone (it has read it; it reads it again at
#: the end, for the HTML report): a worker reading it by path, even by its absolute path, finds nothing.
HIDE_COMPLETIONS = """
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    if (HERE / "c.jsonl").exists():
        (HERE / "c.jsonl").rename(HERE / "c.jsonl.hidden")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    if (HERE / "c.jsonl.hidden").exists():
        (HERE / "c.jsonl.hidden").rename(HERE / "c.jsonl")
"""


def mismatch_lines(result: pytest.RunResult) -> list[str]:
    """The lines of the one message a worker with another dataset ends the run with (pytest's ``Exit``)."""
    both = result.stdout.lines + result.stderr.lines
    return [line for line in both if "has another dataset than the controller" in line]


def test_workers_read_no_file_of_the_controller(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """Workers in another directory, the completions path relative: there it names another file (every
    answer right), which a worker reading completions by path would evaluate. The verdicts are the
    controller's file's, as in a run without xdist."""
    canonical_completions(pytester.path / "c.jsonl", wrong=WRONG, count=4)
    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    canonical_completions(elsewhere / "c.jsonl", count=4)
    pytester.makeconftest(HIDE_COMPLETIONS)  # the controller's only: the workers' directory has none
    args = ("--humaneval-debug", "--humaneval-completions=c.jsonl")
    local = run(pytester, *args, "--humaneval-report=local.json")
    remote = run(
        pytester, *args, "--humaneval-report=remote.json", "-p", "xdist", "--dist=load",
        f"--tx=2*popen//chdir={elsewhere}",
    )  # fmt: skip
    assert local.ret == remote.ret == pytest.ExitCode.TESTS_FAILED
    remote.stdout.fnmatch_lines(["*2 failed, 2 passed*"])
    assert_same_report(report(pytester, "local.json"), report(pytester, "remote.json"))
    assert report(pytester, "remote.json")["status_counts"] == {"passed": 2, "failed": 2}


def test_canonical_through_chdir_workers(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """``--humaneval-completions=canonical``: workers take the reference solutions of their own dataset."""
    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    result = run(
        pytester, "--humaneval-debug", "--humaneval-completions=canonical", "-p", "xdist", "--dist=load",
        f"--tx=2*popen//chdir={elsewhere}",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.OK
    assert report(pytester)["status_counts"] == {"passed": 4}


def test_worker_with_another_dataset_is_one_usage_error(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """A dataset given by a relative path is another file in the workers' directory (one test changed):
    the run stops at once with one message naming both digests, instead of xdist replacing the worker
    again and again."""
    rows = problems()[:3]
    write_jsonl(pytester.path / "data.jsonl", rows)
    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    rows[1] = dict(rows[1], test=rows[1]["test"] + "\n# changed on the worker\n")
    write_jsonl(elsewhere / "data.jsonl", rows)
    result = run(
        pytester, "--humaneval", "--humaneval-dataset=data.jsonl", "--humaneval-completions=canonical",
        "-p", "xdist", "--dist=load", f"--tx=2*popen//chdir={elsewhere}",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    ours = (pytester.path / "data.jsonl").resolve()
    lines = mismatch_lines(result)
    assert len(lines) == 1, result.stdout.str()[-3000:]
    assert "the controller's is data sha " in lines[0] and f"{elsewhere / 'data.jsonl'}" in lines[0]
    assert str(ours) not in lines[0]
    assert "replacing crashed worker" not in result.stdout.str()


# -- workers in docker containers ------------------------------------------------------------------

WORKER_IMAGE = "pytest-humaneval-remote-worker:test"
MISMATCH_IMAGE = "pytest-humaneval-remote-worker:other-dataset"
PORT = 8888
#: What the worker containers need for the subprocess sandbox's namespaces (user, mount, PID, network,
#: UTS): without them it runs with REDUCED ISOLATION (it says so); ``--privileged`` is not needed.
SANDBOX_OPTIONS = {"security_opt": ["seccomp=unconfined"], "cap_add": ["SYS_ADMIN"]}
#: Plugins of the controller's environment that are not on the workers and expect their output.
REMOTE_ARGS = ("-p", "xdist", "-p", "no:html", "-p", "no:metadata")

DOCKERFILE = f"""\
ARG BASE
FROM ${{BASE}}
COPY wheels /wheels
RUN python3 "$(ls /wheels/pip-*.whl)/pip" install -q --no-index --find-links /wheels \\
      --break-system-packages --root-user-action=ignore /wheels/pytest_humaneval-*.whl pytest-xdist execnet \\
 && rm -rf /wheels
COPY remote_worker_server.py /opt/remote_worker_server.py
CMD ["python3", "/opt/remote_worker_server.py", ":{PORT}"]
"""

#: The worker image with one test of HumanEval/0 changed in its installed dataset.
MISMATCH_DOCKERFILE = f"""\
FROM {WORKER_IMAGE}
RUN python3 -c "import gzip, json, pathlib, pytest_humaneval as p; \\
f = pathlib.Path(p.__file__).parent / '_data/datasets/HumanEval.jsonl.gz'; \\
rows = [json.loads(line) for line in gzip.open(f, 'rt')]; \\
rows[0]['test'] += '\\n# changed\\n'; \\
gzip.open(f, 'wt').write(''.join(json.dumps(r) + '\\n' for r in rows))"
"""


@pytest.fixture(scope="module")
def worker_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The test base image (Debian's python3, no registry) with this checkout's wheel, the wheels of its
    dependencies (pip download: the container's Python, manylinux) and the host's pytest, xdist and
    execnet versions."""
    require_docker()
    base = ensure_test_image()
    client = docker_client(timeout=300)
    context = tmp_path_factory.mktemp("remote-worker-image")
    wheels = context / "wheels"
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, REPO_ROOT], check=True)
    python = client.containers.run(
        base, ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], remove=True
    )
    pins = [f"{name}=={version(name)}" for name in ("pytest", "pytest-xdist", "execnet")]
    platform_tags = [f"--platform=manylinux_2_{minor}_{platform.machine()}" for minor in range(17, 37)]
    subprocess.run(
        [*pip, "download", "-d", wheels, "--only-binary=:all:", "--implementation=cp",
         f"--python-version={python.decode().strip()}", *platform_tags,
         *wheels.glob("pytest_humaneval-*.whl"), *pins, "pip"],
        check=True,
    )  # fmt: skip
    shutil.copy(Path(__file__).with_name("remote_worker_server.py"), context)
    (context / "Dockerfile").write_text(DOCKERFILE)
    client.images.build(path=str(context), tag=WORKER_IMAGE, buildargs={"BASE": base}, rm=True)
    yield WORKER_IMAGE
    client.close()


@pytest.fixture
def start_workers(worker_image: str) -> Iterator[Callable[..., list]]:
    """Start containers of an image as xdist hosts; returns them (``.spec`` is the ``--tx`` value)."""
    client = docker_client()
    started: list = []

    def start(count: int = 2, image: str = worker_image) -> list:
        containers = []
        for _ in range(count):
            container = client.containers.run(image, detach=True, labels={"pytest-humaneval-test": "remote"},
                                              **SANDBOX_OPTIONS)  # fmt: skip
            started.append(container)
            container.reload()
            ip = container.attrs["NetworkSettings"]["IPAddress"]
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection((ip, PORT), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            container.spec = f"socket={ip}:{PORT}"
            containers.append(container)
        return containers

    yield start
    for container in started:
        container.remove(force=True)
    client.close()


def tx(containers: list) -> list[str]:
    return ["-d", *(f"--tx={c.spec}" for c in containers)]


@pytest.mark.docker
def test_docker_workers_match_a_local_run(pytester: pytest.Pytester, start_workers: Callable) -> None:
    canonical_completions(pytester.path / "c.jsonl", wrong=WRONG, count=4)
    args = ("--humaneval-debug", "--humaneval-completions=c.jsonl")
    local = run(pytester, *args, "--humaneval-report=local.json")
    remote = run(
        pytester, *args, "--humaneval-report=remote.json", *REMOTE_ARGS, *tx(start_workers(2)), "-rA"
    )
    assert local.ret == remote.ret == pytest.ExitCode.TESTS_FAILED
    remote.stdout.fnmatch_lines(["*Python 3.11*/usr/bin/python3*", "*2 failed, 2 passed*"])  # on the workers
    assert_same_report(report(pytester, "local.json"), report(pytester, "remote.json"))


@pytest.mark.docker
@pytest.mark.slow
def test_docker_workers_pass_every_canonical_solution(
    pytester: pytest.Pytester, start_workers: Callable
) -> None:
    """The whole of HumanEval's reference solutions on two remote workers; the same on two local ones
    (``-n 2``), for the wall times printed."""
    args = ("--humaneval", "--humaneval-completions=canonical")
    started = time.monotonic()
    remote = run(pytester, *args, "--humaneval-report=remote.json", *REMOTE_ARGS, *tx(start_workers(2)))
    remote_wall = time.monotonic() - started
    started = time.monotonic()
    local = run(pytester, *args, "--humaneval-report=local.json", "-n", "2")
    local_wall = time.monotonic() - started
    assert remote.ret == local.ret == pytest.ExitCode.OK, remote.stdout.str()[-3000:]
    data = report(pytester, "remote.json")
    assert data["passed"] == data["total"] == 164
    assert_same_report(report(pytester, "local.json"), data)
    print(f"164 canonical programs: 2 docker workers {remote_wall:.1f} s, local -n 2 {local_wall:.1f} s")


@pytest.mark.docker
@pytest.mark.slow
def test_docker_worker_killed_mid_run(pytester: pytest.Pytester, start_workers: Callable) -> None:
    """One remote worker's process is killed mid-run: xdist reports the item it was running as a crash
    (no verdict, not in the report), starts another worker on that host and hands it the rest; no program
    is counted twice."""
    # 0.1 s per program, once: at the top level after the function (some tests call it 100 times)
    delay = "\nimport time\n\ntime.sleep(0.1)\n"
    rows = [{"task_id": p["task_id"], "completion": p["canonical_solution"] + delay} for p in problems()]
    write_jsonl(pytester.path / "slow.jsonl", rows)
    first, second = start_workers(2)
    command = [
        sys.executable, "-m", "pytest", "-p", "no:randomly", "-v", "--humaneval",
        "--humaneval-completions=slow.jsonl", "--humaneval-parallel=1", "--humaneval-report=report.json",
        *REMOTE_ARGS, *tx([first, second]),
    ]  # fmt: skip
    log = pytester.path / "out.txt"
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=pytester.path, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while log.read_text().count(" PASSED ") < 20 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        killed = second.exec_run(["sh", "-c", "kill -9 $(cat /tmp/xdist-worker.pid)"])
        assert killed.exit_code == 0, killed.output
        proc.wait(timeout=300)
    output = log.read_text()
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, output[-3000:]
    assert "replacing crashed worker" in output and " crashed while running " in output, output[-3000:]
    data = report(pytester)
    keys = [(r["task_id"], r["sample"]) for r in data["results"]]
    assert len(keys) == len(set(keys)), "a program counted twice"
    crashed = set(re.findall(r"worker '\w+' crashed while running '([^']+)'", output))
    assert len(crashed) == 1
    assert len(keys) + len(crashed) == 164 and data["passed"] == len(keys)
    assert not {task for task, _ in keys} & {nodeid.split("::")[-1] for nodeid in crashed}


@pytest.mark.docker
def test_docker_worker_with_another_dataset(
    pytester: pytest.Pytester, worker_image: str, start_workers: Callable
) -> None:
    """A worker host whose installed plugin ships a changed HumanEval: one usage error, both digests."""
    client = docker_client(timeout=300)
    try:
        context = pytester.path / "mismatch-image"
        context.mkdir()
        (context / "Dockerfile").write_text(MISMATCH_DOCKERFILE)
        client.images.build(path=str(context), tag=MISMATCH_IMAGE, rm=True)
    finally:
        client.close()
    good = start_workers(1)
    other = start_workers(1, image=MISMATCH_IMAGE)
    result = run(
        pytester, "--humaneval-debug", "--humaneval-completions=canonical", *REMOTE_ARGS, *tx(good + other)
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-3000:]
    lines = mismatch_lines(result)
    assert len(lines) == 1, result.stdout.str()[-3000:]
    assert not (pytester.path / "report.json").exists()  # nothing ran
    assert "the controller's is humaneval-4 sha " in lines[0] and "the worker's humaneval-4 sha " in lines[0]
    assert "/usr/local/lib/python3" in lines[0] or "/usr/lib/python3" in lines[0]
