"""A model server's life, whichever kind: the handle a healthy one gives the pipeline, the wait for its
``/health``, what both kinds check before they start (the model path, the GPUs, the port), and the clean-up
that removes every started server on ``stop()``, Ctrl-C, SIGTERM, errors and at interpreter exit."""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import http.client
import json
import logging
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from ..errors import HumanEvalError
from ..options import Settings
from . import gguf
from .launch import Launch

log = logging.getLogger(__name__)

Notify = Callable[[str], None]

LOG_NAME = "server.log"
CONFIG_VERSION = 2
TAIL_LINES = 30
POLL_S = 0.5
NOTE_EVERY_S = 30.0
TERM_GRACE_S = 10.0


@dataclass(eq=False)
class ServerHandle:
    """A healthy server. ``stop()`` removes it, or leaves it running under keep_server; safe to repeat."""

    base_url: str  # e.g. http://127.0.0.1:30000/v1
    model: str  # the name to send in requests (--served-model-name)
    api_key: str | None
    log_path: Path | None = None
    ident: str = ""  # container id, or the process id
    reused: bool = False  # an earlier run's server, still running with the same configuration
    startup_s: float = 0.0  # seconds until /health answered 200
    #: What the server was started with (for the report): ``python -m sglang.launch_server`` arguments
    #: less the API key, and the reasoning parser (None: the plugin strips <think> itself).
    args: list[str] = field(default_factory=list)
    reasoning_parser: str | None = None
    _server: _Server | None = field(default=None, repr=False)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close(keep=server.settings.keep_server)


# -- clean-up that survives Ctrl-C, SIGTERM and a forgotten stop() -----------------------------------------


class _Server(Protocol):
    settings: Settings
    healthy: bool

    def start(self) -> ServerHandle: ...
    def close(self, keep: bool) -> None: ...


_LIVE: list[_Server] = []
_LIVE_LOCK = threading.Lock()
_atexit_registered = False


def _track(server: _Server) -> None:
    global _atexit_registered
    with _LIVE_LOCK:
        _LIVE.append(server)
        if not _atexit_registered:
            atexit.register(_close_all)
            _atexit_registered = True
    _guard_sigterm()


def _untrack(server: _Server) -> None:
    with _LIVE_LOCK:
        if server in _LIVE:
            _LIVE.remove(server)
        empty = not _LIVE
    if empty:
        _release_sigterm()


def _close_all() -> None:
    """atexit fallback: the controller should have called stop(); a crash or a forgotten stop did not."""
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.close(keep=server.settings.keep_server and server.healthy)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"terminated by signal {signum}")


def _guard_sigterm() -> None:
    """SIGTERM (a cancelled CI job) skips all clean-up: while a server runs, make it unwind like Ctrl-C."""
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)


def _release_sigterm() -> None:
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def _deferred_signals() -> Iterator[None]:
    """A Ctrl-C (or SIGTERM) during clean-up takes effect after it: the clean-up is never cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        old = signal.getsignal(sig)
        if old is not None:  # None: installed outside Python, cannot be restored
            previous[sig] = old
            signal.signal(sig, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
        if caught and previous[caught[0]] is not signal.SIG_IGN:
            raise KeyboardInterrupt(f"signal {caught[0]} during server clean-up")


# -- shared by both kinds of server --------------------------------------------------------------------------


def _checked_model_path(settings: Settings, notify: Notify) -> Path | None:
    """The checkpoint directory the server loads: the one given, or the conversion of a GGUF file."""
    path = settings.model_path
    if path is None:
        return None
    file = gguf.gguf_file(path)
    if file is not None:
        return gguf.converted_checkpoint(file, notify)
    if not path.is_dir():
        what = "not a directory" if path.exists() else "no such directory"
        raise HumanEvalError(
            f"--humaneval-model-path={path}: {what}. Give the directory that holds the model's config.json "
            f"and weights (or a GGUF file), or leave the option out to load {settings.model} through the "
            "Hugging Face cache"
        )
    return path


def _parse_gpus(gpus: str, tp: int, dp: int = 1) -> list[str] | None:
    """None: no GPUs; []: all of them; else the device ids (at least tp x dp of them)."""
    value = gpus.strip()
    if value.lower() == "none":
        return None
    if value.lower() == "all":
        return []
    ids = [part.strip() for part in value.split(",") if part.strip()]
    # An index, or a GPU's or a MIG instance's UUID (what CUDA_VISIBLE_DEVICES and Docker accept).
    if not ids or not all(i.isdigit() or i.startswith(("GPU-", "MIG-")) for i in ids):
        raise HumanEvalError(f"--humaneval-gpus={gpus!r}: give all, none, or device ids like 0,1")
    if len(ids) < tp * dp:
        need = f"--humaneval-tp={tp}" if dp == 1 else f"--humaneval-tp={tp} x --humaneval-dp={dp}"
        lower = "--humaneval-tp" if dp == 1 else "--humaneval-tp or --humaneval-dp"
        raise HumanEvalError(
            f"{need} needs {tp * dp} GPUs but --humaneval-gpus={gpus} gives {len(ids)}: "
            f"name more GPUs or lower {lower}"
        )
    return ids


def _check_port_free(port: int) -> None:
    if not 0 < port < 65536:
        raise HumanEvalError(f"--humaneval-port={port}: give a port between 1 and 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise HumanEvalError(_port_in_use(port)) from None
            raise HumanEvalError(
                f"cannot use port {port} on 127.0.0.1 ({e.strerror}): choose another with --humaneval-port=N"
            ) from None


def _port_in_use(port: int) -> str:
    return (
        f"port {port} on 127.0.0.1 is already in use by something else: stop what listens there, or give "
        f"the server another port with --humaneval-port=N (or use that server with "
        f"--humaneval-endpoint=http://127.0.0.1:{port}/v1)"
    )


def _digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # http_proxy must not see 127.0.0.1


def _health(port: int) -> str:
    """'200', '503', ... or why nothing answered (connection refused until the server binds its port)."""
    try:
        with _NO_PROXY.open(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return str(response.status)
    except urllib.error.HTTPError as e:
        return str(e.code)
    except (OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", e)
        return f"no answer ({reason.__class__.__name__})"


def _wait_healthy(
    port: int,
    timeout: float,
    what: str,
    exited: Callable[[], str | None],
    tail: Callable[[], str],
    log_path: Path,
    notify: Notify,
) -> float:
    """Poll /health until 200; fail at once if the server dies, with its last log lines."""
    started = time.monotonic()
    deadline = started + timeout
    next_note = started + NOTE_EVERY_S
    while True:
        status = exited()
        if status is not None:
            raise HumanEvalError(
                f"{what} {status} while starting. Its last log lines:\n{_indent(tail())}\n"
                f"Fix the cause shown there (full log: {log_path})"
            )
        answer = _health(port)
        now = time.monotonic()
        if answer == "200":
            return now - started
        if now >= deadline:
            raise HumanEvalError(
                f"{what} did not become healthy within {timeout:g} s (GET /health: {answer}). Its last log "
                f"lines:\n{_indent(tail())}\nFix: a first start downloads the weights and captures CUDA "
                f"graphs, so raise --humaneval-startup-timeout; or fix the cause in the log ({log_path})"
            )
        if now >= next_note:
            notify(f"waiting for {what} to become healthy: {now - started:.0f} s, GET /health: {answer}")
            next_note += NOTE_EVERY_S
        time.sleep(POLL_S)


def _indent(text: str) -> str:
    lines = text.rstrip().splitlines()[-TAIL_LINES:] or ["(no output)"]
    return "\n".join("    " + line for line in lines)


# -- Docker ------------------------------------------------------------------------------------------------


def _healthy_handle(
    server: Any,
    what: str,
    tail: Callable[[], str],
    api_key: str | None,
    ident: str,
    reused: bool,
    started: float,
) -> ServerHandle:
    """Wait until ``server`` answers /health, then describe it (the same for a container and a process)."""
    s = server.settings
    _wait_healthy(s.port, s.startup_timeout, what, server._exited, tail, server.log_path, server.notify)
    server.healthy = True
    return ServerHandle(
        base_url=f"http://127.0.0.1:{s.port}/v1",
        model=s.model,
        api_key=api_key,
        log_path=server.log_path,
        ident=ident,
        reused=reused,
        startup_s=round(time.monotonic() - started, 3),
        args=list(server.launch.args),
        reasoning_parser=server.launch.reasoning_parser,
    )


def _describe_launch(launch: Launch) -> str:
    """What the plugin chose that the user may want to know: the parser and a CPU server's set-up."""
    parts = [f"reasoning parser {launch.reasoning_parser or 'none'}"]
    if launch.env.get("SGLANG_USE_CPU_ENGINE") == "1":
        cpu = "CPU engine"
        if launch.sized:
            cpu += f", {' '.join(launch.sized)} (sized to the free memory)"
        parts.append(cpu)
    return "; " + ", ".join(parts)
