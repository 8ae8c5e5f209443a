"""Programs against the host and against each other (``hostile.ISOLATION``): a host socket under /tmp and the
user's tmux server, files planted for a later or concurrent program, a scratch filled for the next one, the
memory of a process tree, a neighbour's forks, kill(-1), ptrace. In the subprocess sandbox in every setup
(root with the interpreter under a mode-0700 directory, root with a readable venv, an ordinary user made with
useradd), and in the docker sandbox. Under ``-n 2`` and through the plugin: ``test_privileged_programs.py``."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hostile import ISOLATION, TEST, Scenario, scenario_programs
from venv_support import open_dir, ordinary_user, unavailable

from pytest_humaneval.sandbox import Job, Limits, make_sandbox

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="namespaces are Linux-only"),
]

PROBE = Path(__file__).with_name("isolation_probe.py")


@dataclass
class Host:
    """What programs must not reach: a socket anyone may connect to, a tmux server, a file a command on
    the host would make."""

    socket_path: str
    server: socket.socket
    tmux: str
    outside: Path

    def args(self, mark: str) -> list[str]:
        return [self.socket_path, self.tmux, str(self.outside), mark]

    def untouched(self) -> None:
        with pytest.raises(BlockingIOError):
            self.server.accept()  # nobody connected
        assert not self.outside.exists(), "a program ran a command on the host"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    """Under /tmp, open to everyone (mode 777 sockets in mode 755 directories): only the sandbox stands
    between a program and them, whoever it runs as."""
    top = open_dir("humaneval-host-")
    path = str(top / "service.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    os.chmod(path, 0o777)
    server.listen(8)
    server.setblocking(False)
    tmux = shutil.which("tmux")
    if tmux is None:
        unavailable("tmux is not installed (apt-get install tmux)")
    tmux_socket = str(top / "tmux" / "default")
    (top / "tmux").mkdir(mode=0o755)
    subprocess.run([tmux, "-S", tmux_socket, "new-session", "-d", "-s", "hev", "sleep 900"], check=True)
    os.chmod(tmux_socket, 0o777)
    outside = top / "out" / "pwned"
    outside.parent.mkdir(mode=0o777)
    os.chmod(outside.parent, 0o777)
    yield Host(path, server, tmux_socket, outside)
    subprocess.run([tmux, "-S", tmux_socket, "kill-server"], capture_output=True)
    server.close()
    shutil.rmtree(top, ignore_errors=True)


def check(scenario: Scenario, verdicts: list[dict[str, Any]], host: Host) -> None:
    statuses = [v["status"] for v in verdicts]
    assert all(s in allowed for s, allowed in zip(statuses, scenario.expect, strict=True)), verdicts
    for fragment, v in zip(scenario.reason_has or ("",) * len(verdicts), verdicts, strict=True):
        assert fragment in v["reason"], verdicts
    host.untouched()


# -------------------------------------------------------------------------- the subprocess sandbox


@dataclass
class Setup:
    python: str
    user: pwd.struct_passwd | None = None


@pytest.fixture(scope="module")
def user() -> Iterator[pwd.struct_passwd]:
    with ordinary_user() as made:
        yield made


@pytest.fixture(scope="module", params=["root-closed", "root-readable", "user"])
def setup(request: pytest.FixtureRequest) -> Setup:
    """Who runs the sandbox, with which interpreter: as root, this Python (pyenv under /root: mode 0700) or
    a readable venv of the Debian Python; as an ordinary user, that venv. Without root, this user alone."""
    if os.geteuid() != 0:
        if request.param != "user":
            pytest.skip("needs root")
        return Setup(sys.executable)
    if request.param == "root-closed":
        return Setup(sys.executable)
    venv = str(request.getfixturevalue("debian_venv"))
    if request.param == "root-readable":
        return Setup(venv)
    return Setup(venv, request.getfixturevalue("user"))


def probe(
    setup: Setup, scenario: Scenario | str, host: Host, plugin: Path, tmp: Path, *flags: str
) -> dict[str, Any]:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONPATH": str(plugin)}
    name = scenario if isinstance(scenario, str) else scenario.name
    cmd = [setup.python, str(PROBE), name, *host.args(f"mark{uuid.uuid4().hex[:8]}"), *flags]
    who: dict[str, Any] = {}
    if setup.user is not None:
        who = {"user": setup.user.pw_uid, "group": setup.user.pw_gid, "extra_groups": []}
        env["HOME"] = setup.user.pw_dir
    proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=300, **who)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def plugin(readable_plugin_tree: Path) -> Path:
    """The plugin's source and the tests' helpers, where any user can read them."""
    for name in ("hostile.py", "isolation_probe.py"):
        shutil.copy(Path(__file__).with_name(name), readable_plugin_tree / name)
        os.chmod(readable_plugin_tree / name, 0o644)
    return readable_plugin_tree


@pytest.mark.parametrize("scenario", ISOLATION, ids=lambda s: s.name)
def test_subprocess_sandbox(
    setup: Setup, scenario: Scenario, host: Host, plugin: Path, open_tmp: Any
) -> None:
    out = probe(setup, scenario, host, plugin, open_tmp("humaneval-isolation-"))
    isolation = out["isolation"]
    assert isolation["own_scratch"] and isolation["program_pid_namespace"], isolation
    assert isolation["uids"] or isolation["own_user_namespace"], "no uid (or user namespace) per program"
    check(scenario, out["verdicts"], host)


def test_programs_run_with_the_per_program_isolation_off(
    setup: Setup, host: Host, plugin: Path, open_tmp: Any
) -> None:
    """A runner that gives programs no namespaces or scratch of their own (where the host allows none, and
    in the benchmarks' plain side, which also drops the cgroups): programs still run and are judged, in every
    setup (an ordinary user's runner once asked each program's process to map a user namespace it was never
    given, and every program failed in the harness)."""
    out = probe(setup, "plain", host, plugin, open_tmp("humaneval-plain-"), "--no-own-scratch")
    assert [v["status"] for v in out["verdicts"]] == ["passed", "failed"], out["verdicts"]
    isolation = out["isolation"]
    assert not isolation["own_scratch"] and not isolation["own_user_namespace"], isolation
    host.untouched()


# ------------------------------------------------------------------------------ the docker sandbox


@pytest.mark.docker
@pytest.mark.parametrize("scenario", [s for s in ISOLATION if not s.host_only], ids=lambda s: s.name)
def test_docker_sandbox(image: str, scenario: Scenario, host: Host) -> None:
    programs = scenario_programs(scenario, *host.args(f"mark{uuid.uuid4().hex[:8]}"))
    sandbox = make_sandbox(
        "docker", Limits(memory_mb=1024, processes=64), image=image, concurrency=len(programs)
    )
    try:
        if scenario.together:
            verdicts = [f.result() for f in [sandbox.submit(Job(p, TEST, "double", 15)) for p in programs]]
        else:
            verdicts = [sandbox.run(Job(p, TEST, "double", 15)) for p in programs]
    finally:
        sandbox.close()
    check(scenario, verdicts, host)
