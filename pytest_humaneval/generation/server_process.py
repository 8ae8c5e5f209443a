"""SGLang as a local process (``--humaneval-server=process``): ``python -m sglang.launch_server`` in a process
group of its own, for machines with SGLang and no Docker; its state file lets a later run reuse or kill it."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..errors import HumanEvalError, clip, describe
from ..files import write_json
from ..options import Settings
from ..sandbox.runner import procs
from .launch import Launch, plan_launch
from .server_lifecycle import (
    CONFIG_VERSION,
    LOG_NAME,
    TERM_GRACE_S,
    Notify,
    ServerHandle,
    _check_port_free,
    _checked_model_path,
    _deferred_signals,
    _describe_launch,
    _digest,
    _healthy_handle,
    _parse_gpus,
    _untrack,
)

STATE_NAME = "server-process.json"  # --humaneval-server=process: what a later run needs to reuse or kill it


# -- a local process ----------------------------------------------------------------------------------------


class _ProcessServer:
    """``python -m sglang.launch_server`` in its own process group, for machines with SGLang and no Docker.

    A state file in the output dir lets a later run reuse a kept server, or kill one a crashed run left.
    """

    def __init__(self, settings: Settings, notify: Notify) -> None:
        self.settings = settings
        self.notify = notify
        self.log_path = settings.output / LOG_NAME
        self.state_path = settings.output / STATE_NAME
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # set only once the process is ours to kill
        self.launch: Launch | None = None
        self.healthy = False
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> ServerHandle:
        s = self.settings
        model_path = _checked_model_path(s, self.notify)
        gpus = _parse_gpus(s.gpus, s.tp, s.dp)
        python = str(s.sglang_python or sys.executable)
        version = _sglang_in(python, given=s.sglang_python is not None)
        env = dict(os.environ)
        if gpus is None:
            env["CUDA_VISIBLE_DEVICES"] = ""
        elif gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        self.launch = plan_launch(s, str(model_path or s.model), "127.0.0.1", s.port)
        env.update(self.launch.env)
        config = _digest(
            {
                "version": CONFIG_VERSION,
                "python": python,
                "sglang": version,
                "args": self.launch.stable_args,
                "sized": bool(self.launch.sized),
                "env": self.launch.env,
                "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
            }
        )
        started = time.monotonic()
        api_key = self._take_existing(config)
        reused = api_key is not None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if reused:
            with self.log_path.open("ab") as out:
                out.write(f"--- pytest-humaneval: reusing this server at {time.ctime()} ---\n".encode())
            self.notify(f"reusing the running SGLang server, process {self.pid} (same configuration)")
        else:
            _check_port_free(s.port)
            api_key = secrets.token_hex(16)  # hex: a key starting with "-" would read as a flag
            with self.log_path.open("wb") as out:
                self.proc = subprocess.Popen(
                    [python, *self.launch.args, "--api-key", api_key],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,  # its own group: Ctrl-C is ours to handle, and kill reaches all
                )
            self.pid = self.proc.pid
            state = {
                "pid": self.pid,
                "started": procs.start_time(self.pid),
                "config": config,
                "api_key": api_key,
                "port": s.port,
            }
            write_json(self.state_path, state)  # atomic: half a file would orphan the server
            self.notify(
                f"started SGLang, process {self.pid} ({python}{_describe_launch(self.launch)}); "
                f"log: {self.log_path}"
            )
        return _healthy_handle(
            self,
            "the SGLang server process",
            lambda: _read_tail(self.log_path),
            api_key,
            str(self.pid),
            reused,
            started,
        )

    def _take_existing(self, config: str) -> str | None:
        """The API key of a live server with this configuration (now ours); kill one that differs."""
        try:
            state = json.loads(self.state_path.read_text())
            pid, key = int(state["pid"]), str(state["api_key"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not _is_sglang_process(pid, str(state.get("started", ""))):
            self.state_path.unlink(missing_ok=True)
            return None
        if state.get("config") == config:
            self.pid = pid
            return key
        self.notify(
            f"stopping the SGLang server left by an earlier run (process {pid}): another configuration"
        )
        procs.terminate_group(pid, TERM_GRACE_S)
        self.state_path.unlink(missing_ok=True)
        return None

    def _exited(self) -> str | None:
        if self.proc is not None:
            code = self.proc.poll()
            return None if code is None else f"exited with code {code}"
        return None if self.pid is not None and _is_sglang_process(self.pid) else "exited"

    def close(self, keep: bool) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            with _deferred_signals():
                if self.pid is not None and keep and self.healthy:
                    self.notify(
                        f"SGLang server left running (process {self.pid}, --humaneval-keep-server) at "
                        f"http://127.0.0.1:{self.settings.port}/v1: a run with the same configuration "
                        f"reuses it; stop it with `kill -- -{self.pid}`"
                    )
                    if self.proc is not None:
                        self.proc.returncode = 0  # not ours to wait for any more: no "still running" warning
                elif self.pid is not None:
                    procs.terminate_group(self.pid, TERM_GRACE_S)
                    if self.proc is not None:
                        self.proc.poll()  # already reaped: records it, so no "still running" warning
                    self.state_path.unlink(missing_ok=True)
        finally:
            _untrack(self)


def _is_sglang_process(pid: int, started: str = "") -> bool:
    """Alive and still the SGLang server we started (``started``: its start time in /proc/PID/stat), not
    a recycled pid, which must not be killed."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not Path("/proc/self/stat").exists():
        return True  # no /proc to check the command line with
    fields = procs.stat_fields(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if not fields or fields[0] == "Z" or (started and procs.start_time(pid) != started):
        return False
    return b"sglang.launch_server" in cmdline


def _read_tail(path: Path, limit: int = 64 * 1024) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(could not read {path}: {e})"


_PROBE = (
    "import importlib.metadata as m, importlib.util as u\n"
    "if u.find_spec('sglang') is None: print('missing')\n"
    "else:\n"
    "    try: print(m.version('sglang'))\n"
    "    except m.PackageNotFoundError: print('unknown')\n"
)


def _sglang_in(python: str, given: bool) -> str:
    """SGLang's version in ``python`` (``given`` by --humaneval-sglang-python, or this interpreter); one
    clear error when that Python cannot run or has no SGLang. Finds the package without importing it."""
    own = not given
    where = f"this Python ({python})" if own else f"--humaneval-sglang-python={python}"
    try:
        probe = subprocess.run(
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise HumanEvalError(
            f"{where} cannot run ({describe(e)}): give the python executable of the environment that has "
            "SGLang, e.g. --humaneval-sglang-python=/opt/sglang/bin/python"
        ) from None
    found = probe.stdout.strip().splitlines()[-1:] or [""]
    if probe.returncode != 0 or found[0] in ("", "missing"):
        detail = f" ({clip(probe.stderr)})" if probe.returncode != 0 and probe.stderr.strip() else ""
        hint = (
            "point --humaneval-sglang-python at the python of the environment that has SGLang, "
            if own
            else "check the path, "
        )
        raise HumanEvalError(
            f"SGLang is not installed in {where}{detail}: {hint}or pip install 'sglang[all]' there "
            "(see https://docs.sglang.ai), or serve it in Docker (--humaneval-server=docker) or use a "
            "running server (--humaneval-endpoint=URL)"
        )
    return found[0]
