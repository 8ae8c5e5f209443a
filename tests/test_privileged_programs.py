"""Programs running with the runner's privileges, through the plugin, whoever runs pytest and wherever its
Python lives: as root with the interpreter under a mode-0700 directory, as root with a readable one, and
as an ordinary user; in one process and under ``-n 2``. Each attempt must fail, change nothing on the
host and leave the run going; secrets read by absolute path must not reach the terminal, the JSON report
or the JUnit file. (The same family in the docker sandbox: ``test_docker_sandbox.py``.)"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hostile import (
    CASES,
    PRIVILEGED_CASES,
    SECRETS_CASE,
    host_state,
    leftovers,
    unique_mark,
    write_completions,
    write_dataset,
)
from venv_support import PLUGIN_REQUIREMENTS, make_venv, open_dir, ordinary_user

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="namespaces are Linux-only"),
    pytest.mark.skipif(os.geteuid() != 0, reason="runs pytest as root and as a user it creates"),
]

CORRECT = next(c for c in CASES if c.name == "correct")
FAMILY = [*PRIVILEGED_CASES, SECRETS_CASE, CORRECT]


@dataclass
class Invoker:
    """Who runs pytest, with which interpreter, and where its home (with the secret in it) is."""

    python: Path
    home: Path
    user: pwd.struct_passwd | None = None  # None: root

    def own(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)


def plant_secret(invoker: Invoker) -> tuple[Path, str]:
    """A mode-0600 canary in the invoker's home, where keys and tokens live."""
    secret = secrets.token_hex(16)
    ssh = invoker.home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    path = ssh / "id_canary"
    path.write_text(f"CANARY-{secret}\n")
    path.chmod(0o600)
    invoker.own(ssh)
    invoker.own(path)
    return path, secret


def shadow_line() -> str | None:
    try:
        lines = Path("/etc/shadow").read_text().splitlines()
    except OSError:
        return None
    return next((line for line in lines if line.startswith("root:")), None)


def run_family(invoker: Invoker, plugin: Path, run_dir: Path, *args: str) -> None:
    invoker.own(run_dir)
    secret_path, secret = plant_secret(invoker)
    outside = run_dir / "outside.txt"
    mark = unique_mark()
    dataset = write_dataset(run_dir / "family.jsonl", FAMILY)
    completions = write_completions(run_dir / "answers.jsonl", FAMILY, 9, outside, mark, secret_path)
    for path in (dataset, completions):
        path.chmod(0o644)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(invoker.home)}
    # This plugin from the readable copy, and xdist; nothing else the interpreter may have installed.
    env.update(PYTHONPATH=str(plugin), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    cmd = [str(invoker.python), "-m", "pytest", "-p", "pytest_humaneval.plugin", "-p", "xdist.plugin"]
    cmd += ["-p", "no:cacheprovider", "-q", "--humaneval", f"--humaneval-dataset={dataset}"]
    cmd += [
        f"--humaneval-completions={completions}",
        "--humaneval-timeout=10",
        "--humaneval-report=report.json",
    ]
    cmd += ["--junitxml=junit.xml", "-o", "junit_logging=all", *args]
    user: dict[str, Any] = (
        {} if invoker.user is None else {"user": invoker.user.pw_uid, "group": invoker.user.pw_gid}
    )
    before = host_state()
    proc = subprocess.run(
        cmd, cwd=run_dir, env=env, capture_output=True, text=True, timeout=300, extra_groups=[], **user
    )
    after = host_state()
    output = proc.stdout + proc.stderr
    assert (run_dir / "report.json").exists(), output[-3000:]
    report_text = (run_dir / "report.json").read_text()
    report = json.loads(report_text)
    statuses = {r["task_id"].split("/")[1]: r["status"] for r in report["results"]}
    assert statuses == {c.name: c.status for c in FAMILY}, output[-3000:]
    # An error for the wrong cause (a typo, no target in sight) is no refusal: each names what refused it.
    reasons = {r["task_id"].split("/")[1]: r["reason"] for r in report["results"]}
    wrong = {c.name: reasons[c.name] for c in FAMILY if c.reason_has not in reasons[c.name]}
    assert not wrong, wrong
    assert "REDUCED ISOLATION" not in report["sandbox"], report["sandbox"]
    assert after == before, "a program changed the host"
    assert not outside.exists(), "a program wrote outside its directory"
    assert leftovers(mark) == [], "a process a program started is still running"
    shadow = shadow_line()
    junit = (run_dir / "junit.xml").read_text()
    for where, text in (("terminal", output), ("JSON report", report_text), ("JUnit", junit)):
        assert secret not in text, f"the secret in the home directory reached the {where}"
        assert shadow is None or shadow not in text, f"/etc/shadow reached the {where}"
    # The program did run, and its output reached the terminal and JUnit: what it printed is the refusal.
    assert f"denied {secret_path}" in junit and f"denied {secret_path}" in output


@pytest.fixture(scope="module")
def closed_venv() -> Iterator[Path]:
    """A venv (``--copies``: the interpreter binary too) under a mode-0700 directory, like pyenv or a venv
    under /root; from the Python running the tests."""
    root = open_dir("humaneval-closed-")
    python = make_venv(sys.executable, root / "home" / "venv", "--copies", packages=PLUGIN_REQUIREMENTS)
    (root / "home").chmod(0o700)
    yield python
    subprocess.run(["rm", "-rf", str(root)])


@pytest.fixture
def root_home() -> Iterator[Path]:
    """The invoking (root) user's home for the run, wherever it is: here a mode-0700 directory of its own."""
    home = open_dir("humaneval-root-home-")
    home.chmod(0o700)
    yield home
    subprocess.run(["rm", "-rf", str(home)])


@pytest.fixture
def run_dir(open_tmp: Callable[[str], Path]) -> Path:
    """Where pytest runs, with the dataset, the answers and the reports; removed afterwards."""
    return open_tmp("humaneval-privileged-")


WORKERS = pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "n2"])


@WORKERS
def test_as_root_with_the_interpreter_under_a_closed_directory(
    closed_venv: Path, root_home: Path, readable_plugin_tree: Path, run_dir: Path, workers: tuple[str, ...]
) -> None:
    run_family(Invoker(closed_venv, root_home), readable_plugin_tree, run_dir, *workers)


@WORKERS
def test_as_root_with_a_readable_interpreter(
    debian_venv: Path, root_home: Path, readable_plugin_tree: Path, run_dir: Path, workers: tuple[str, ...]
) -> None:
    run_family(Invoker(debian_venv, root_home), readable_plugin_tree, run_dir, *workers)


@pytest.fixture(scope="module")
def user() -> Iterator[pwd.struct_passwd]:
    with ordinary_user() as made:
        yield made


@WORKERS
def test_as_an_ordinary_user(
    debian_venv: Path,
    readable_plugin_tree: Path,
    run_dir: Path,
    user: pwd.struct_passwd,
    workers: tuple[str, ...],
) -> None:
    run_family(Invoker(debian_venv, Path(user.pw_dir), user), readable_plugin_tree, run_dir, *workers)
