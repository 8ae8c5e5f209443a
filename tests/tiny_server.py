"""Run ``transformers serve`` on a local model directory as a real OpenAI-compatible test server.

The server runs fully offline on 127.0.0.1, pinned to one model (``FORCE_MODEL`` argument, loaded
before the HTTP socket opens), on the CPU, without continuous batching: requests are answered one
after another, each with its own sampling parameters.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class ServerInfo:
    """A running server: where to reach it and what to name in requests."""

    base_url: str  # e.g. "http://127.0.0.1:PORT/v1", for openai.OpenAI(base_url=...)
    model: str  # the `model` field of requests; any other name is answered 400
    process: subprocess.Popen[bytes]
    log_path: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_command(model: str, port: int, extra_args: Sequence[str] = ()) -> list[str]:
    """The command line of ``transformers serve`` for ``model`` on 127.0.0.1:``port``.

    Run through this interpreter (``python -m transformers.cli.transformers`` is the
    ``transformers`` console script) so the server sees the same installed packages as the tests.
    """
    return [
        sys.executable,
        "-m",
        "transformers.cli.transformers",
        "serve",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        *extra_args,
    ]


def server_env() -> dict[str, str]:
    """The environment of the server: the current one, offline, and quiet."""
    env = dict(os.environ)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _get_json(url: str, timeout: float = 2.0) -> object | None:
    """GET ``url`` and decode its JSON, or None when it does not answer 200 yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status != 200:
                return None
            return json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError):  # URLError, connection refused/reset, timeouts, bad JSON
        return None


def _is_ready(root_url: str, model: str) -> bool:
    """True once ``/health`` is ok and ``/v1/models`` lists our model (not some other server's)."""
    health = _get_json(f"{root_url}/health")
    if not isinstance(health, dict) or health.get("status") != "ok":
        return False
    models = _get_json(f"{root_url}/v1/models")
    if not isinstance(models, dict):
        return False
    return any(isinstance(m, dict) and m.get("id") == model for m in models.get("data", []))


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server's whole process group: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, STOP_TIMEOUT_S), (signal.SIGKILL, STOP_TIMEOUT_S)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def serve_tiny_model(
    model_dir: Path,
    port: int | None = None,
    *,
    log_path: Path | None = None,
    startup_timeout: float = STARTUP_TIMEOUT_S,
    extra_args: Sequence[str] = (),
) -> Iterator[ServerInfo]:
    """Serve ``model_dir`` with ``transformers serve`` for the duration of the ``with`` block.

    A free port is picked when ``port`` is None. Waits (at most ``startup_timeout`` seconds)
    until the server answers; raises RuntimeError with the last lines of its log if it exits
    or does not answer in time. The server's process group is always terminated on exit.
    The server's stdout and stderr go to ``log_path`` (a new temporary file when None).
    """
    model = str(Path(model_dir).resolve())
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="tiny-serve-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    log_path = Path(log_path)
    port = free_port() if port is None else port
    root_url = f"http://127.0.0.1:{port}"

    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            serve_command(model, port, extra_args),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=server_env(),
            start_new_session=True,  # own process group, so that killpg reaches every child
        )
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            code = process.poll()
            if code is not None:
                raise RuntimeError(
                    f"transformers serve exited with code {code} before it was ready "
                    f"(log {log_path}):\n{_log_tail(log_path)}"
                )
            if _is_ready(root_url, model):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"transformers serve was not ready on {root_url} after {startup_timeout:.0f} s "
                    f"(log {log_path}):\n{_log_tail(log_path)}"
                )
            time.sleep(0.2)
        yield ServerInfo(base_url=f"{root_url}/v1", model=model, process=process, log_path=log_path)
    finally:
        _stop(process)
