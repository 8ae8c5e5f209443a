"""Host half of the default sandbox: one pre-forked runner process per pytest process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .base import RUNNER_PATH, Job, Limits, RunnerGone, Sandbox, read_frame, write_frame

#: Set to 1 to run without namespaces (as on macOS or in an unprivileged container): rlimits and
#: process-group kill only. For tests of the fallback and for debugging.
NO_NAMESPACES_ENV = "PYTEST_HUMANEVAL_NO_NAMESPACES"
#: Variables a program may see; everything else (tokens, keys, proxies) is scrubbed.
ENV_ALLOW = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
START_TIMEOUT_S = 60.0
#: Extra seconds the host waits past a program's limit before it declares the runner wedged.
GRACE_S = 10.0


def program_env(workbase: str) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        PATH=os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]),
        HOME=workbase,
        TMPDIR=workbase,
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


class SubprocessSandbox(Sandbox):
    kind = "subprocess"

    def __init__(self, limits: Limits, preload: tuple[str, ...] = (), uid: int | None = 65534) -> None:
        self.limits = limits
        self.preload = preload
        self.uid = uid
        self.proc: subprocess.Popen[bytes] | None = None
        self.isolation: dict[str, Any] = {}
        self.restarts = 0
        self._tmp = Path(tempfile.mkdtemp(prefix="pytest-humaneval-"))

    def start(self) -> dict[str, Any]:
        if self.proc is not None and self.proc.poll() is None:
            return self.isolation
        workbase = self._tmp / "work"
        workbase.mkdir(exist_ok=True)
        os.chmod(workbase, 0o1777)
        with (self._tmp / "runner.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-u", str(RUNNER_PATH)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                close_fds=True,
                env=program_env(str(workbase)),
                cwd=str(workbase),
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        write_frame(
            self.proc.stdin.fileno(),
            {
                "workbase": str(workbase),
                "preload": list(self.preload),
                "limits": self.limits.as_dict(),
                "uid": self.uid,
                "pids": self.limits.processes + 8,
                "parent_pid": os.getpid(),
                "isolate": os.environ.get(NO_NAMESPACES_ENV) != "1",
            },
        )
        try:
            ready = read_frame(self.proc.stdout.fileno(), time.monotonic() + START_TIMEOUT_S)
        except (RunnerGone, TimeoutError):
            log_tail = (self._tmp / "runner.log").read_text(errors="replace")[-2000:]
            self._kill()
            raise RuntimeError(f"the sandbox runner did not start: {log_tail or 'no output'}") from None
        self.isolation = ready["isolation"]
        return self.isolation

    def run(self, job: Job) -> dict[str, Any]:
        if self.proc is not None and self.proc.poll() is not None:
            self.restarts += 1
        self.start()
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        try:
            write_frame(self.proc.stdin.fileno(), job.frame())
            return read_frame(self.proc.stdout.fileno(), time.monotonic() + job.timeout + GRACE_S)
        except TimeoutError:
            self._kill()
            return {"status": "timeout", "reason": f"timed out after {job.timeout:.1f} s (runner wedged)"}
        except (RunnerGone, BrokenPipeError):
            self._kill()
            return {"status": "crashed", "reason": "the program killed the sandbox runner"}
        except BaseException:
            # Interrupted mid-job (pytest-timeout, Ctrl-C): the runner's late answer would be read as the
            # next job's, so it goes, with the program it is running.
            self._kill()
            raise

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        self._remove_cgroup()

    def _remove_cgroup(self) -> None:
        path = self.isolation.get("pids_cgroup")
        if path:
            for _ in range(50):
                try:
                    os.rmdir(path)
                    return
                except FileNotFoundError:
                    return
                except OSError:
                    time.sleep(0.02)

    def close(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None and proc.stdin is not None:
            try:
                write_frame(proc.stdin.fileno(), {"op": "exit"})
                proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._kill()
        shutil.rmtree(self._tmp, ignore_errors=True)
