"""What every sandbox shares: the job it takes, its limits, and the framed protocol to the runner."""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

from .runner.framing import Closed
from .runner.framing import read_frame as _read_frame
from .runner.framing import write_frame as write_frame

#: The runner gives a program that waited for a CPU beyond its fair share that wait back, up to this many
#: times its limit: on a machine loaded ten times over, a correct solution still gets the CPU time its
#: limit allows (MBPP+ on a shared 2-core machine at load 18), and a loop still stops.
MAX_STRETCH = 10.0


@dataclass(frozen=True)
class Limits:
    """Resource bounds for one program (enforced inside the runner's child)."""

    memory_mb: int = 2048
    file_mb: int = 16
    open_files: int = 256
    processes: int = 64

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Job:
    """One program: the solution text (prompt + completion), the test, and how to call it.

    ``definitions``: the prompt's own helpers (imports, functions such as HumanEval/32's ``poly``), which
    the test runs as the dataset wrote them, whatever the program redefines. ``call_limits``: seconds each
    call of the entry point may take, by call order (EvalPlus's per-input budgets): ``{"default": seconds,
    "slow": {"index": seconds}}``. ``reference_digests``: digests of the reference's answers by arguments
    (``Dataset.answer_digests``), which spare the test's calls of ``ref_func``. ``measure_calls``: the
    verdict lists each call's CPU time (measuring reference solutions). ``mode="inprocess"``: a
    measurement run with program and test in one process (``--humaneval-efficiency``), never a verdict.
    """

    solution: str
    test: str
    entry_point: str
    timeout: float
    definitions: str = ""
    call_limits: dict[str, Any] | None = None
    reference_digests: dict[str, str] | None = None
    measure_calls: bool = False
    mode: str | None = None

    def frame(self) -> dict[str, Any]:
        frame = {"op": "run", **vars(self)}  # shallow: every field is a plain value
        return {k: v for k, v in frame.items() if v is not None}


class Isolation(TypedDict, total=False):
    """What a sandbox's isolation holds, as its runner probed it at start (each key where it applies):
    the header's line and the report's ``sandbox`` field are built from it (:func:`describe_isolation`)."""

    platform: str
    python: str
    network: bool  # no network: a network namespace of its own
    read_only_fs: bool
    hidden: list[str]  # home directories hidden from programs
    own_scratch: bool  # a fresh /tmp, /var/tmp, /dev/shm and /proc per program
    pid_namespace: bool
    program_pid_namespace: bool
    uts_namespace: bool
    user_namespace: bool
    own_user_namespace: bool
    capabilities: bool  # programs still hold capabilities
    no_new_privs: bool
    root: bool  # programs run as uid 0
    uids: dict[str, Any]  # the uids programs run as (``programs``: low, high)
    program_uid: str
    tree_limits: str | None  # "cgroup", "polled", or None: per process only
    cgroup: str | None
    cgroup_version: int | None
    subreaper: bool
    zygote: bool
    fair_deadline: bool  # a program's wait for a CPU is given back
    judge_process: bool  # verdicts decided outside the program's process
    unreadable: str  # what programs cannot read (they may fail to import)
    container: bool
    container_name: str
    image: str
    hardening: list[str]
    hardening_missing: list[str]


class RunnerGone(Exception):
    """The runner process died or stopped answering."""


class Sandbox(ABC):
    """Runs jobs; lives as long as a pytest process (one per xdist worker)."""

    kind: str = "?"
    isolation: Isolation
    #: Programs it runs at once; above 1, ``submit`` returns before the job is done.
    concurrency: int = 1

    @abstractmethod
    def start(self) -> Isolation:
        """Start (if not running) and return what isolation holds (``isolation``)."""

    @abstractmethod
    def run(self, job: Job) -> dict[str, Any]:
        """Run ``job``; return the runner's verdict dict (status, reason, duration_s, stdout, ...)."""

    @abstractmethod
    def close(self) -> None:
        """Stop every process or container this sandbox started."""

    def longest_run(self, timeout: float) -> float:
        """The longest a program with this time limit may run: where the runner can tell a program that
        waited for a CPU (``fair_deadline``), it stretches the limit up to MAX_STRETCH times."""
        return timeout * (MAX_STRETCH if self.isolation.get("fair_deadline") else 1.0)

    def submit(self, job: Job) -> Future[dict[str, Any]]:
        """Start ``job``; its verdict arrives on the future. Here: run it now (one at a time)."""
        future: Future[dict[str, Any]] = Future()
        future.set_result(self.run(job))
        return future


def describe_isolation(kind: str, info: Isolation) -> tuple[str, list[str]]:
    """A one-line summary of what isolation held, and the list of what is missing."""
    verdicts = "verdicts decided outside the program's process" if info.get("judge_process", True) else ""
    if info.get("container"):  # the container is the boundary; the runner's namespaces fail inside it
        held = info.get("hardening") or []
        missing = list(info.get("hardening_missing") or [])
        summary = f"{kind} sandbox: container" + (f" ({', '.join(held)})" if held else "")
        summary += ", fresh scratch per program, " + verdicts + ", rlimits"
        if missing:
            summary += " -- REDUCED ISOLATION, missing: " + "; ".join(missing)
        return summary, missing
    wanted = {  # key: (what holds, what is missing)
        "network": ("no network", "network isolation"),
        "read_only_fs": ("read-only file system", "read-only file system and hidden home directories"),
        "own_scratch": (
            "own /tmp, /var/tmp, /dev/shm and /proc per program",
            "a private scratch per program (programs share /tmp; host sockets under /tmp reachable)",
        ),
        "program_pid_namespace": (
            "own PID namespace per program",
            "a PID namespace per program (leftover processes are killed by process group)",
        ),
        "uts_namespace": ("own host name", "UTS namespace"),
    }
    have = [held for key, (held, _) in wanted.items() if info.get(key)]
    missing = [lack for key, (_, lack) in wanted.items() if not info.get(key)]
    if info.get("read_only_fs") and info.get("hidden"):
        have.append("home directories hidden")
    if info.get("capabilities"):
        missing.append("dropped capabilities (programs hold the runner's capabilities)")
    elif "capabilities" in info:
        have.append("no capabilities")
    if info.get("root"):
        missing.append("an unprivileged uid (programs run as root)")
    if info.get("unreadable"):
        missing.append(f"{info['unreadable']} (programs may fail to import)")
    uids = info.get("uids")
    if uids:
        low, high = uids["programs"]
        have.append(f"a uid per program ({low}-{high})")
    elif info.get("own_user_namespace"):
        have.append("a user namespace per program")
    elif "program_uid" in info:
        missing.append("a uid per program (programs share one, and its process limit)")
    if info.get("tree_limits") == "cgroup":
        have.append(f"memory and processes per program tree (cgroup v{info.get('cgroup_version')})")
    elif info.get("tree_limits") == "polled":
        have.append("memory per program tree (polled; no cgroup)")
    elif "tree_limits" in info:
        missing.append("memory and process limits per program tree (per process only)")
    if verdicts:
        have.append(verdicts)
    have.append("rlimits")
    summary = f"{kind} sandbox: " + ", ".join(have)
    if missing:
        summary += " -- REDUCED ISOLATION, missing: " + "; ".join(missing)
    return summary, missing


def read_frame(fd: int, deadline: float) -> dict[str, Any]:
    """Read one frame from ``fd`` before ``deadline`` (monotonic); raise RunnerGone or TimeoutError."""
    try:
        frame: dict[str, Any] = _read_frame(fd, deadline)
    except Closed:
        raise RunnerGone("the sandbox runner exited") from None
    return frame


class PooledSandbox(Sandbox):
    """Several one-job-at-a-time sandboxes (e.g. docker containers) behind one, so programs overlap.

    Members are started as they are needed, up to ``size``; each runs one job at a time on a thread.
    """

    def __init__(self, make: Callable[[], Sandbox], size: int) -> None:
        self._make = make
        self.concurrency = max(1, size)
        self._free: queue.SimpleQueue[Sandbox] = queue.SimpleQueue()
        self._members: list[Sandbox] = []
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix="humaneval-sandbox")
        self.isolation = {}

    @property
    def kind(self) -> str:  # type: ignore[override]
        return self._members[0].kind if self._members else "?"

    def start(self) -> Isolation:
        member = self._take()
        self._free.put(member)
        return self.isolation

    def _take(self) -> Sandbox:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            grow = len(self._members) < self.concurrency
            if grow:
                member = self._make()
                self._members.append(member)
        if not grow:
            return self._free.get()
        self.isolation = member.start()
        return member

    def run(self, job: Job) -> dict[str, Any]:
        member = self._take()
        try:
            return member.run(job)
        finally:
            self._free.put(member)

    def submit(self, job: Job) -> Future[dict[str, Any]]:
        return self._threads.submit(self.run, job)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)  # queued jobs never start
        with self._lock:
            members = list(self._members)
        for member in members:
            member.close()  # a job still running fails fast once its container is gone
        self._threads.shutdown(wait=True)
        with self._lock:
            members, self._members = self._members, []
        for member in members:  # again: a job that ended meanwhile may have started a replacement
            member.close()
