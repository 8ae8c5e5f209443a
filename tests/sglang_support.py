"""The real SGLang server (sglang==0.5.23, CPU engine) for the end-to-end tests.

``.ci/sglang-up`` builds a venv with it and a Docker image from that venv; the tests find them through
``PYTEST_HUMANEVAL_SGLANG_PYTHON`` and ``PYTEST_HUMANEVAL_SGLANG_IMAGE`` (defaults: where the script puts
them). Without them the tests skip locally and fail under CI. Each start-up costs 30-60 s of two cores, so
the tests share servers wherever the lifecycle is not what they test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from docker_support import running_in_ci
from server_support import interruptible

REPO_ROOT = Path(__file__).resolve().parent.parent
SGLANG_UP = REPO_ROOT / ".ci" / "sglang-up"
CACHE_DIR = Path(
    os.environ.get("PYTEST_HUMANEVAL_CACHE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pytest-humaneval"
)
SGLANG_PYTHON = Path(
    os.environ.get("PYTEST_HUMANEVAL_SGLANG_PYTHON") or CACHE_DIR / "sglang-0.5.23-cpu-r1" / "bin" / "python"
)
SGLANG_IMAGE = os.environ.get("PYTEST_HUMANEVAL_SGLANG_IMAGE") or "pytest-humaneval-sglang-cpu:0.5.23-r1"
MODEL = "tiny-qwen3"  # --humaneval-model: the served name
#: Small answers: the random model would otherwise run on for ~1,600 tokens.
MAX_TOKENS = 48
#: A real start-up takes 30-60 s on a quiet 2-core machine and minutes on a loaded one.
STARTUP_TIMEOUT_S = 600
MEMORY_LIMIT_BYTES = 3 * 1000**3  # the ceiling for the tiny model's server


def unavailable(why: str) -> NoReturn:
    """Skip locally; under CI, the SGLang set-up is required."""
    fix = f"run {SGLANG_UP.relative_to(REPO_ROOT)} (it prints the two PYTEST_HUMANEVAL_SGLANG_* variables)"
    if running_in_ci():
        pytest.fail(f"the real SGLang is required under CI: {why}; {fix}", pytrace=False)
    pytest.skip(f"real SGLang unavailable: {why}; {fix}")


def require_sglang_python() -> Path:
    if not os.access(SGLANG_PYTHON, os.X_OK):
        unavailable(f"no SGLang venv at {SGLANG_PYTHON} (PYTEST_HUMANEVAL_SGLANG_PYTHON)")
    return SGLANG_PYTHON


def require_sglang_image(client: Any) -> str:
    from docker.errors import ImageNotFound

    try:
        client.images.get(SGLANG_IMAGE)
    except ImageNotFound:
        unavailable(f"no image {SGLANG_IMAGE} (PYTEST_HUMANEVAL_SGLANG_IMAGE)")
    return SGLANG_IMAGE


# -- pytest runs of the plugin against the real server ---------------------------------------------------


def plugin_args(model_path: Path, port: int, output: Path, *extra: str) -> list[str]:
    """A --humaneval-debug run (HumanEval/0..3) serving the tiny model, with small answers."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--humaneval-debug",
        f"--humaneval-model={MODEL}",
        f"--humaneval-model-path={model_path}",
        "--humaneval-gpus=none",
        f"--humaneval-port={port}",
        f"--humaneval-output={output}",
        f"--humaneval-startup-timeout={STARTUP_TIMEOUT_S}",
        *extra,
    ]


def start_run(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=env,
        preexec_fn=interruptible,
    )


@dataclass
class Run:
    returncode: int
    output: str


def end_run(proc: subprocess.Popen[str]) -> None:
    """A run the test gives up on: Ctrl-C first, so the plugin removes the server it started (a killed
    pytest would leave it running), then SIGKILL if it does not end."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def run_plugin(
    args: Sequence[str],
    cwd: Path,
    timeout: float = STARTUP_TIMEOUT_S + 300,
    env: dict[str, str] | None = None,
) -> Run:
    proc = start_run(args, cwd, env)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        end_run(proc)
    return Run(proc.returncode, out)


def read_lines_until(
    proc: subprocess.Popen[str], found: Callable[[str], bool], timeout: float, seen: list[str]
) -> str:
    """Read ``proc``'s output line by line until ``found(line)`` (appending to ``seen``); that line."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if found(line):
            return line
    raise AssertionError("".join(seen)[-5000:] or "(no output)")


def report(output: Path) -> dict[str, Any]:
    return json.loads((output / "report.json").read_text())


# -- processes and their memory ---------------------------------------------------------------------------


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if stat[2] == str(pgid) and stat[0] != "Z":
                pids.append(int(entry.name))
    return pids


def pss_bytes(pids: Iterable[int]) -> int:
    """Proportional set size of ``pids`` together: shared pages counted once across them."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


class PeakMemory:
    """Samples the memory of the processes ``pids()`` names, twice a second, in a thread; ``peak`` bytes."""

    def __init__(self, pids: Callable[[], Iterable[int]]) -> None:
        self.pids = pids
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="sglang-memory", daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.peak = max(self.peak, pss_bytes(self.pids()))
            except Exception:  # a process or container that is gone between listing and reading
                continue


def container_pids(client: Any, name: str) -> list[int]:
    """Host pids of the processes in container ``name`` (none while it is not running)."""
    try:
        top = client.containers.get(name).top(ps_args="-eo pid")
    except Exception:
        return []
    return [int(row[0]) for row in top.get("Processes") or [] if row and row[0].isdigit()]


def say(config: pytest.Config, line: str) -> None:
    """A line in the test log, even while output is captured."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        print(line, flush=True)
        return
    with capman.global_and_fixture_disabled():
        print(f"\n{line}", flush=True)
