"""Host half of the docker sandbox: one warm, hardened container per pytest process (per xdist worker).

The container runs the same ``runner.py`` as the subprocess sandbox (its source goes to ``python3 -c``,
so any image with python3 works) as PID 1 of its own PID namespace: every orphan a program leaves is
re-parented to the runner, which kills and reaps it after each program. Programs travel as frames over
the container's attached stdin/stdout (about 0.3 ms a round trip), because a container per program
costs about 0.6 s and ``docker exec`` about 70 ms. The container is created with ``StdinOnce``, so it
ends by itself when this process closes its end or dies.

Only the ``docker`` SDK is used, never the docker CLI.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import json
import os
import select
import signal
import socket
import struct
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

from .. import docker_daemon
from ..errors import HumanEvalError, describe
from ..options import DEFAULT_SANDBOX_IMAGE
from .base import MAX_STRETCH, Isolation, Job, Limits, RunnerGone, Sandbox
from .runner import launch, procs
from .uids import BLOCK, UidBlock

LABEL_RUN = "pytest-humaneval.run-id"
LABEL_PID = "pytest-humaneval.owner-pid"
LABEL_START = "pytest-humaneval.owner-start"
LABEL_HOST = "pytest-humaneval.owner-host"
LABEL_CREATED = "pytest-humaneval.created"
#: A container of ours older than this is stale even if its owner seems alive (pid reuse, other host).
STALE_AFTER_S = 24 * 3600.0
START_TIMEOUT_S = 60.0
#: Extra seconds the host waits past a program's limit before it declares the container wedged.
GRACE_S = 10.0
#: The container's tmpfs: the runner's work dir, the only writable place besides a small /dev/shm.
WORKBASE = "/tmp"
TMPFS_OPTIONS = "rw,noexec,nosuid,nodev,size=256m,mode=1777"
#: The work directory's: a compiled language's program is built there and run (a Python program can run
#: machine code anyway, through ctypes; noexec stops nothing the container's limits do not).
WORK_TMPFS_OPTIONS = "rw,exec,nosuid,nodev,size=256m,mode=1777"
#: Container memory beyond one program's address-space limit: the runner, the tmpfs and page cache.
MEMORY_HEADROOM_MB = 512
#: Processes beyond a program's RLIMIT_NPROC, so the runner can always fork the next program.
PIDS_HEADROOM = 16
BUILD_TIMEOUT_S = 1800
#: Emptied after every program: what one program writes, the next never sees.
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
CONTAINER_ENV = {
    "LANG": "C.UTF-8",
    "HOME": WORKBASE,
    "TMPDIR": WORKBASE,
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONHASHSEED": "0",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_swept = False


# ------------------------------------------------------------------------------- the daemon


def connect(timeout: int = 60) -> Any:
    """A client of the Docker daemon that has answered, or one clear error naming cause and fix."""
    return docker_daemon.connect(
        "--humaneval-sandbox=docker", "docker", "use --humaneval-sandbox=subprocess", timeout=timeout
    )


def _owner_alive(labels: dict[str, str]) -> bool:
    try:
        pid = int(labels.get(LABEL_PID, ""))
    except ValueError:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = labels.get(LABEL_START, "")
    return not start or procs.start_time(pid) in ("", start)


def _remove(container: Any) -> None:
    """Remove a container, running or not; one that is already gone is fine."""
    from docker.errors import APIError, NotFound

    try:
        container.remove(force=True)
    except NotFound:
        pass
    except APIError as e:
        if "already in progress" not in str(e) and "No such container" not in str(e):
            name = getattr(container, "name", None) or container.id[:12]
            warnings.warn(
                f"could not remove sandbox container {name} ({describe(e, typed=True)}); remove it with "
                f"`docker rm -f {name}`",
                stacklevel=2,
            )


def _ours(client: Any, run_id: str | None = None) -> list[Any]:
    label = f"{LABEL_RUN}={run_id}" if run_id else LABEL_RUN
    # ignore_removed: another run may remove its containers between the list and their inspection
    return list(client.containers.list(all=True, filters={"label": label}, ignore_removed=True))


def sweep_stale(client: Any) -> int:
    """Remove sandbox containers left by earlier runs that were killed: their owner process on this host
    is gone, or they are older than a day. Returns how many were removed."""
    host, now, removed = socket.gethostname(), time.time(), 0
    for container in _ours(client):
        labels = container.labels or {}
        try:
            created = float(labels.get(LABEL_CREATED, "0"))
        except ValueError:
            created = 0.0
        dead = labels.get(LABEL_HOST) == host and not _owner_alive(labels)
        if dead or now - created > STALE_AFTER_S:
            _remove(container)
            removed += 1
    return removed


def remove_containers(run_id: str) -> int:
    """Remove every sandbox container of run ``run_id`` (all its xdist workers'), e.g. ones a crashed
    worker left. Best effort, and silent without a daemon (the run has reported that already). Returns
    how many were removed."""
    try:
        client = connect(timeout=30)
    except HumanEvalError:
        return 0
    try:
        found = _ours(client, run_id)
        for container in found:
            _remove(container)
        return len(found)
    finally:
        client.close()


# -------------------------------------------------------------------------------- the image


def ensure_image(client: Any, image: str, context: Path | None = None) -> bool:
    """Make sure ``image`` exists locally; if not, build it from the bundled Dockerfile (``context``).

    A file lock keeps xdist workers from building it twice. Returns True if this call built it.
    """
    if _has_image(client, image):
        return False
    from filelock import FileLock

    from ..datasets.dataset import data_dir

    context = context or data_dir("sandbox")
    key = hashlib.sha256(f"{os.environ.get('DOCKER_HOST', '')}|{image}".encode()).hexdigest()[:16]
    with FileLock(str(Path(tempfile.gettempdir()) / f"pytest-humaneval-image-{key}.lock")):
        if _has_image(client, image):
            return False
        _build(client, image, context)
    return True


def _has_image(client: Any, image: str) -> bool:
    from docker.errors import APIError, ImageNotFound

    try:
        client.images.get(image)
    except ImageNotFound:
        return False
    except APIError as e:
        raise HumanEvalError(
            f"the Docker daemon could not look up image {image} ({describe(e, typed=True)})"
        ) from None
    return True


def _build(client: Any, image: str, context: Path) -> None:
    from docker.errors import APIError, BuildError

    try:
        client.images.build(path=str(context), tag=image, rm=True, forcerm=True, timeout=BUILD_TIMEOUT_S)
    except BuildError as e:
        tail = _log_tail(e.build_log)
        cause = " ".join(str(e.msg).split())
    except (APIError, OSError) as e:
        tail, cause = "", describe(e, typed=True)
    else:
        return
    raise HumanEvalError(
        f"image {image} is not present and building it from {context / 'Dockerfile'} failed: {cause}"
        + (f"\n--- build log (last lines) ---\n{tail}\n---\n" if tail else "; ")
        + "Fix: make the Dockerfile's base image reachable (a registry, or `docker load`) and run again, "
        "or pass --humaneval-sandbox-image=NAME of an image you have that contains python3"
    )


def read_file(image: str, path: str) -> bytes | None:
    """The file ``path`` of ``image``, or None where it has none: copied out of a container that is created
    and never started (no program runs). One clear error when the image is not there."""
    import tarfile
    from io import BytesIO

    from docker.errors import APIError, NotFound

    client = connect()
    if not _has_image(client, image):
        raise HumanEvalError(f"image {image} is not present in this Docker daemon")
    try:
        container = client.containers.create(image, command=["true"], network_mode="none")
    except APIError as e:
        raise HumanEvalError(
            f"could not read {path} from image {image} ({describe(e, typed=True)})"
        ) from None
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            found = tar.extractfile(member) if member is not None else None
            return found.read() if found is not None else None
    except NotFound:
        return None
    finally:
        _remove(container)


def _log_tail(log: Any, lines: int = 15) -> str:
    text: list[str] = []
    for chunk in log or ():
        if isinstance(chunk, dict):
            for key in ("stream", "status", "error"):
                if chunk.get(key):
                    text.extend(line for line in str(chunk[key]).splitlines() if line.strip())
    return "\n".join(text[-lines:])[-3000:]


def _no_python3(image: str, detail: str) -> HumanEvalError:
    return HumanEvalError(
        f"image {image} has no python3 ({detail}): the docker sandbox runs its runner with python3 "
        "inside the image. Pass --humaneval-sandbox-image=NAME of an image with python3 on its PATH, "
        f"or leave the option unset to use {DEFAULT_SANDBOX_IMAGE} (built from the bundled Dockerfile)"
    )


# ------------------------------------------------------------------------- the attached stream


class _Stream:
    """The container's attached stdin/stdout/stderr: frames out; demultiplexed stdout frames in.

    Without a TTY, Docker prefixes every chunk of output with an 8-byte header: stream (1 = stdout,
    2 = stderr), three zero bytes, and the payload length (big-endian).
    """

    def __init__(self, raw: Any) -> None:
        self.raw = raw  # keeps the HTTP response (and so the socket) alive
        self.sock: socket.socket = getattr(raw, "_sock", raw)
        self.sock.setblocking(True)
        self.sock.settimeout(None)
        self.buf = bytearray()
        self.out = bytearray()
        self.err = bytearray()
        self.eof = False

    def send_frame(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.sock.sendall(struct.pack(">I", len(data)) + data)

    def read_frame(self, deadline: float) -> dict[str, Any]:
        """The next frame the runner wrote, before ``deadline``; RunnerGone at EOF, else TimeoutError."""
        while True:
            if len(self.out) >= 4:
                (size,) = struct.unpack(">I", self.out[:4])
                if len(self.out) >= 4 + size:
                    body = bytes(self.out[4 : 4 + size])
                    del self.out[: 4 + size]
                    frame: dict[str, Any] = json.loads(body)
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            self._fill(remaining)

    def _fill(self, timeout: float) -> None:
        if self.eof:
            raise RunnerGone("the sandbox container's output ended")
        pending = getattr(self.sock, "pending", None)
        if not (pending and pending()):
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return
        data = self.sock.recv(1 << 20)
        if not data:
            self.eof = True
            raise RunnerGone("the sandbox container's output ended")
        self.buf += data
        while len(self.buf) >= 8:
            (size,) = struct.unpack(">I", self.buf[4:8])
            if len(self.buf) < 8 + size:
                break
            target = self.out if self.buf[0] == 1 else self.err
            target += self.buf[8 : 8 + size]
            del self.buf[: 8 + size]
        if len(self.err) > 8192:
            del self.err[:-8192]

    def dead(self) -> bool:
        """True if the container's output has ended (checked between jobs, without waiting)."""
        try:
            while not self.eof:
                ready, _, _ = select.select([self.sock], [], [], 0)
                if not ready:
                    return False
                self._fill(0)
        except (RunnerGone, OSError):
            self.eof = True
        return True

    def stderr_tail(self, n: int = 1500) -> str:
        text = self.err.decode("utf-8", "replace").strip()
        return text[-n:]

    def close(self) -> None:
        for closer in (self.sock.close, getattr(self.raw, "close", None)):
            try:
                if closer is not None:
                    closer()
            except OSError:
                pass


# --------------------------------------------------------------------------------- the sandbox


def hardening(attrs: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What Docker reports for the container: the protections that hold, and the ones missing."""
    host = attrs.get("HostConfig") or {}
    user = str((attrs.get("Config") or {}).get("User") or "").split(":")[0]
    host_mounts = [m for m in attrs.get("Mounts") or [] if m.get("Type") in ("bind", "volume")]
    checks = (
        ("no network", "network isolation", host.get("NetworkMode") == "none"),
        ("read-only root", "read-only root file system", bool(host.get("ReadonlyRootfs"))),
        ("no capabilities", "dropped capabilities", "ALL" in (host.get("CapDrop") or [])),
        (
            "no-new-privileges",
            "no-new-privileges",
            any(str(o).startswith("no-new-privileges") for o in host.get("SecurityOpt") or []),
        ),
        (f"uid {user}", "a non-root user", user not in ("", "0", "root")),
        (
            "pids/memory/CPU limits",
            "pids, memory and CPU limits",
            bool(host.get("PidsLimit")) and bool(host.get("Memory")) and bool(host.get("NanoCpus")),
        ),
        ("no host mounts", "no host mounts", not host_mounts),
    )
    held = [h for h, _, ok in checks if ok]
    missing = [m for _, m, ok in checks if not ok]
    return held, missing


_CONTAINER_SERIAL = itertools.count(1)
_UIDS: list[UidBlock] = []


def container_uid() -> int:
    """A uid of this process's block, for one container: programs running at once in different containers
    never share a uid (nor its process limit). Uids are reused only after BLOCK containers."""
    if not _UIDS:
        _UIDS.append(UidBlock.acquire())
    return _UIDS[0].first + 2 + next(_CONTAINER_SERIAL) % (BLOCK - 2)


class DockerSandbox(Sandbox):
    """Runs jobs in one warm container, replaced whenever a program breaks it."""

    kind = "docker"

    def __init__(
        self,
        limits: Limits,
        preload: tuple[str, ...] = (),
        image: str | None = None,
        run_id: str | None = None,
        *,
        build_context: Path | None = None,
        grace_s: float = GRACE_S,
    ) -> None:
        self.limits = limits
        self.preload = tuple(preload)
        self.image = image or DEFAULT_SANDBOX_IMAGE
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.build_context = build_context
        self.grace_s = grace_s
        self.client: Any = None
        self.container: Any = None
        self.stream: _Stream | None = None
        self.isolation: Isolation = {}
        self.restarts = 0
        self._serial = 0
        self._at_exit = False
        self.uid = container_uid()

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> Isolation:
        if self.stream is not None:
            return self.isolation
        global _swept
        if self.client is None:
            self.client = connect()
        if not _swept:
            sweep_stale(self.client)
            _swept = True
        ensure_image(self.client, self.image, self.build_context)
        if not self._at_exit:  # in case nobody calls close(): the container goes with this process
            atexit.register(self.close)
            self._at_exit = True
        self.container = self._create()
        try:
            self.stream = self._attach_and_start(self.container)
            ready = self._handshake(self.stream)
        except BaseException:
            self._discard()
            raise
        self.container.reload()
        held, missing = hardening(self.container.attrs)
        probed: Isolation = ready["isolation"]  # the runner's probe (JSON), then what the container adds
        self.isolation = {
            **probed,
            "container": True,
            "container_name": self.container.name,
            "image": self.image,
            "hardening": held,
            "hardening_missing": missing,
        }
        return self.isolation

    def _create(self) -> Any:
        from docker.errors import APIError, ImageNotFound

        self._serial = next(_CONTAINER_SERIAL)  # unique in this process, across pooled sandboxes
        pid = os.getpid()
        memory = f"{self.limits.memory_mb + MEMORY_HEADROOM_MB}m"
        try:
            return self.client.containers.create(
                self.image,
                entrypoint=["python3", "-I", "-S", "-u", "-c", launch.BOOT],
                name=f"pytest-humaneval-{self.run_id}-{pid}-{self._serial}",
                labels={
                    LABEL_RUN: self.run_id,
                    LABEL_PID: str(pid),
                    LABEL_START: procs.start_time(pid),
                    LABEL_HOST: socket.gethostname(),
                    LABEL_CREATED: f"{time.time():.0f}",
                },
                detach=False,  # with stdin_open: StdinOnce, so the container ends when we hang up
                stdin_open=True,
                tty=False,
                init=False,  # the runner is PID 1: as subreaper of the namespace it reaps every orphan
                network_mode="none",
                read_only=True,
                tmpfs={WORKBASE: WORK_TMPFS_OPTIONS, "/var/tmp": TMPFS_OPTIONS},
                shm_size="16m",
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                user=f"{self.uid}:{self.uid}",
                pids_limit=self.limits.processes + PIDS_HEADROOM,
                mem_limit=memory,
                memswap_limit=memory,
                nano_cpus=1_000_000_000,
                working_dir=WORKBASE,
                environment=CONTAINER_ENV,
                hostname="sandbox",
                log_config={"type": "none", "config": {}},  # frames are not worth a log on disk
            )
        except ImageNotFound:
            raise HumanEvalError(
                f"image {self.image} disappeared while the run was using it; run again to rebuild it"
            ) from None
        except APIError as e:
            raise HumanEvalError(
                f"the Docker daemon refused to create a sandbox container from {self.image} "
                f"({describe(e, typed=True)}); "
                f"check the daemon's log, or use --humaneval-sandbox=subprocess"
            ) from None

    def _attach_and_start(self, container: Any) -> _Stream:
        from docker.errors import APIError

        raw = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
        stream = _Stream(raw)
        try:
            container.start()
        except APIError as e:
            stream.close()
            text = str(e)
            if "python3" in text and ("not found" in text or "no such file" in text.lower()):
                raise _no_python3(self.image, "executable file not found in $PATH") from None
            raise HumanEvalError(
                f"the sandbox container of image {self.image} did not start ({describe(e, typed=True)}); "
                "check the image and the daemon's log, or use --humaneval-sandbox=subprocess"
            ) from None
        return stream

    def _handshake(self, stream: _Stream) -> dict[str, Any]:
        init = {
            "workbase": WORKBASE,
            "preload": list(self.preload),
            "limits": self.limits.as_dict(),
            "slots": 1,  # one program at a time per container
            "cgroups": False,  # the container's limits bound the whole tree
            "poll_memory": False,
            "wipe_scratch": list(SCRATCH),
            "isolate": True,  # namespaces fail harmlessly in an unprivileged container
            "max_stretch": MAX_STRETCH,  # a program crowded off the host's CPUs gets that wait back
        }
        try:
            stream.sock.sendall(launch.sources_frame())
            stream.send_frame(init)
            ready = stream.read_frame(time.monotonic() + START_TIMEOUT_S)
        except (RunnerGone, TimeoutError, OSError) as e:
            detail = stream.stderr_tail() or ("no output" if not isinstance(e, TimeoutError) else "timed out")
            code = self._exit_code()
            if code == 127 or "python3: not found" in detail or "No such file" in detail:
                raise _no_python3(self.image, detail.splitlines()[-1] if detail else "exit 127") from None
            raise HumanEvalError(
                f"the sandbox runner did not start in image {self.image} ({detail}); the image needs a "
                "working python3 (3.8 or newer): pass --humaneval-sandbox-image=NAME of such an image"
            ) from None
        if not ready.get("ready"):
            raise HumanEvalError(f"the sandbox runner in image {self.image} answered {ready!r} to start")
        return ready

    def _exit_code(self) -> int | None:
        try:
            self.container.wait(timeout=5)
            self.container.reload()
            return int(self.container.attrs["State"]["ExitCode"])
        except Exception:
            return None

    # -- jobs ------------------------------------------------------------------------------------

    def run(self, job: Job) -> dict[str, Any]:
        """The verdict of ``job``. A container that dies under a program runs it again, alone, in a fresh
        one: dying twice is the program's doing (``crashed``); a container that cannot be had at all is the
        harness's failure (``sandbox_error``)."""
        first = self._run_once(job)
        if not first.pop("container_died", False):
            return first
        try:
            again = self._run_once(job)
        except HumanEvalError as e:
            return {"status": "sandbox_error", "reason": str(e), "exc_type": "SandboxError"}
        if again.pop("container_died", False):
            again["reason"] += " (twice: the program broke its container)"
        return again

    def _run_once(self, job: Job) -> dict[str, Any]:
        if self.stream is not None and self.stream.dead():  # it died between jobs (killed from outside)
            self._discard()
            self.restarts += 1
        self.start()
        assert self.stream is not None
        try:
            self.stream.send_frame(job.frame())
            return self.stream.read_frame(time.monotonic() + self.longest_run(job.timeout) + self.grace_s)
        except TimeoutError:
            why = self._state()
            return self._replaced(
                f"the sandbox container stopped answering {self.grace_s:g} s past the program's time "
                f"limit (wedged{': ' + why if why else ''})"
            )
        except (RunnerGone, OSError):
            return self._replaced(f"the sandbox container died during the program ({self._death()})")
        except BaseException:
            # Interrupted mid-job (pytest-timeout, Ctrl-C): the runner's late answer would be read as the
            # next job's, so the container goes, with the program it is running.
            self._discard()
            raise

    def _state(self) -> str:
        """What Docker says about a container that stopped answering."""
        try:
            self.container.reload()
            state = self.container.attrs["State"]
        except Exception:
            return ""
        if state.get("OOMKilled"):
            return "out of memory"
        return str(state.get("Status") or "")

    def _death(self) -> str:
        """Why the runner's output ended: out of memory, a signal, or its own exit (with its stderr)."""
        code = self._exit_code()
        oom = False
        try:
            oom = bool(self.container.attrs["State"].get("OOMKilled"))
        except Exception:
            pass
        if oom:
            return f"out of memory: its {self.limits.memory_mb + MEMORY_HEADROOM_MB} MB limit was reached"
        if code is not None and code > 128:
            try:
                name = signal.Signals(code - 128).name
            except ValueError:
                name = f"signal {code - 128}"
            return f"its runner was killed by {name}"
        tail = self.stream.stderr_tail(300).splitlines() if self.stream is not None else []
        detail = f": {tail[-1]}" if tail else ""
        return f"its runner exited with status {code}{detail}" if code is not None else "its runner vanished"

    def _replaced(self, why: str) -> dict[str, Any]:
        """The program's verdict when its container failed under it; the next job gets a fresh one."""
        self._discard()
        self.restarts += 1
        return {"status": "crashed", "reason": f"{why}; a fresh container took over", "container_died": True}

    def _discard(self) -> None:
        stream, self.stream = self.stream, None
        container, self.container = self.container, None
        if stream is not None:
            stream.close()
        if container is not None:
            _remove(container)

    def close(self) -> None:
        stream = self.stream
        if stream is not None and not stream.eof:
            try:
                stream.send_frame({"op": "exit"})
            except OSError:
                pass
        try:
            self._discard()
        finally:
            if self.client is not None:
                self.client.close()
                self.client = None
            if self._at_exit:
                atexit.unregister(self.close)
                self._at_exit = False
