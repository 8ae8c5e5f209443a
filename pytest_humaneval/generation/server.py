"""The model server that generation talks to: SGLang in a Docker container (default) or a local process.

One job: hand the generation pipeline a healthy OpenAI-compatible base URL, and make sure the server is
gone afterwards - at ``stop()``, on Ctrl-C or SIGTERM, on errors and at interpreter exit - unless
``--humaneval-keep-server`` asks to leave it running for the next run to reuse.

Every server gets a random API key: the port is published on 127.0.0.1 only, but on a shared GPU machine
other local users (or a stale client) could otherwise send requests to it. SGLang leaves ``/health`` open,
so the readiness wait needs no key.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import http.client
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from .. import docker_daemon
from ..errors import HumanEvalError, clip, describe
from ..options import Settings
from ..report import write_json
from ..user_cache import cache_home
from . import gguf
from .launch import Launch, docker_host_memory, plan_launch

log = logging.getLogger(__name__)

Notify = Callable[[str], None]

LABEL = "pytest-humaneval"  # value ROLE: finds our containers (and only ours)
ROLE = "sglang-server"
LABEL_CONFIG = "pytest-humaneval.config"  # hash of everything that shapes the server: reuse only on a match
LABEL_API_KEY = "pytest-humaneval.api-key"  # a reused container's key
LABEL_MODEL = "pytest-humaneval.model"
CONTAINER_PORT = 30000
CONTAINER_HF_HOME = "/root/.cache/huggingface"
CONTAINER_MODEL_DIR = "/model"
PASS_ENV = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE")
SECRET_ENV = frozenset({"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})  # passed, but not part of the config hash
LOG_NAME = "server.log"
STATE_NAME = "server-process.json"  # --humaneval-server=process: what a later run needs to reuse or kill it
CONFIG_VERSION = 2
TAIL_LINES = 30
POLL_S = 0.5
NOTE_EVERY_S = 30.0
TERM_GRACE_S = 10.0
#: Present wherever the NVIDIA driver is loaded (the device every CUDA process opens first).
NVIDIA_DEVICE = "/dev/nvidiactl"
#: For the Docker messages: what needs Docker here, and how to serve without it.
DOCKER_USER = "--humaneval-server=docker (the default)"
WITHOUT_DOCKER = "serve without Docker: --humaneval-server=process or --humaneval-endpoint=URL"
GPU_FIX = (
    "install the NVIDIA Container Toolkit, run `sudo nvidia-ctk runtime configure --runtime=docker` and "
    "restart Docker; or use a server that is already running (--humaneval-endpoint=URL), or "
    "--humaneval-gpus=none for an image that runs without a GPU"
)


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


def start_server(settings: Settings, notify: Notify | None = None) -> ServerHandle:
    """Start (or reuse) the server ``settings`` describe and block until ``/health`` answers 200.

    ``notify`` gets one-line progress messages (pulling, reusing, waiting); default: this module's logger.
    On any failure, Ctrl-C included, whatever was started is removed before the exception propagates.
    """
    note = notify or log.info
    server: _Server
    if settings.server == "process":
        server = _ProcessServer(settings, note)
    else:
        server = _DockerServer(settings, note)
    _track(server)
    try:
        handle = server.start()
    except BaseException:
        try:
            server.close(keep=False)
        except HumanEvalError as e:  # the start-up failure is the news; still say what was left behind
            note(str(e))
        raise
    handle._server = server
    return handle


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


class _DockerServer:
    """SGLang in a container started through the docker SDK; its log is copied to OUTPUT/server.log."""

    def __init__(self, settings: Settings, notify: Notify) -> None:
        self.settings = settings
        self.notify = notify
        self.log_path = settings.output / LOG_NAME
        self.client: Any = None
        self.log_client: Any = None
        self.container: Any = None  # set only once the container is ours to remove
        self.log_stream: Any = None
        self.log_thread: threading.Thread | None = None
        self.creating_key: str | None = None  # set while create() runs: an interrupt there leaves no handle
        self.launch: Launch | None = None
        self.healthy = False
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> ServerHandle:
        s = self.settings
        model_path = _checked_model_path(s, self.notify)  # before anything starts
        gpus = _parse_gpus(s.gpus, s.tp, s.dp)
        docker = docker_daemon.import_docker(DOCKER_USER, "generate", WITHOUT_DOCKER)
        self.client = docker_daemon.connect(DOCKER_USER, "generate", WITHOUT_DOCKER)
        image_id = _ensure_image(self.client, s.image, self.notify, needs_gpu=gpus is not None)

        volumes, env = self._model_mounts(model_path)
        model_arg = CONTAINER_MODEL_DIR if model_path is not None else s.model
        self.launch = plan_launch(
            s,
            model_arg,
            "0.0.0.0",
            CONTAINER_PORT,
            memory=lambda: docker_host_memory(self.client.info(), _local_daemon()),
        )
        env.update(self.launch.env)
        command = ["python3", *self.launch.args]
        config = _digest(
            {
                "version": CONFIG_VERSION,
                "image": image_id,
                "command": ["python3", *self.launch.stable_args],
                "sized": bool(self.launch.sized),
                "env": {k: v for k, v in env.items() if k not in SECRET_ENV},
                "volumes": volumes,
                "gpus": gpus,
                "port": s.port,
            }
        )
        started = time.monotonic()
        reused = self._take_existing(config)
        if reused:
            api_key = self.container.labels.get(LABEL_API_KEY) or None
            self.notify(f"reusing the running SGLang container {s.container_name} (same configuration)")
        else:
            _check_port_free(s.port)
            api_key = secrets.token_hex(16)  # hex: a key starting with "-" would read as a flag
            self._create(docker, [*command, "--api-key", api_key], env, volumes, gpus, config, api_key)
            self.notify(
                f"started SGLang container {s.container_name} ({s.image}{_describe_launch(self.launch)}); "
                f"log: {self.log_path}"
            )
        self._copy_log(docker, append=reused)
        return _healthy_handle(
            self,
            f"the SGLang container {s.container_name}",
            self._tail,
            api_key,
            self.container.id,
            reused,
            started,
        )

    def _model_mounts(self, model_path: Path | None) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
        env = {k: os.environ[k] for k in PASS_ENV if os.environ.get(k)}
        if model_path is not None:
            return {str(model_path): {"bind": CONTAINER_MODEL_DIR, "mode": "ro"}}, env
        home = _hf_home()
        home.mkdir(parents=True, exist_ok=True)  # else dockerd creates it, owned by root
        volumes = {str(home): {"bind": CONTAINER_HF_HOME, "mode": "rw"}}
        hub = os.environ.get("HF_HUB_CACHE")
        if hub:
            Path(hub).mkdir(parents=True, exist_ok=True)
            volumes[str(Path(hub).resolve())] = {"bind": CONTAINER_HF_HOME + "/hub", "mode": "rw"}
        env["HF_HOME"] = CONTAINER_HF_HOME
        return volumes, env

    def _take_existing(self, config: str) -> bool:
        """Adopt a running container of ours with this configuration; remove one that differs or has died."""
        from docker.errors import NotFound

        name = self.settings.container_name
        try:
            found = self.client.containers.get(name)
        except NotFound:
            return False
        if found.labels.get(LABEL) != ROLE:
            raise HumanEvalError(
                f"a container named {name} exists and was not started by pytest-humaneval: remove it "
                f"(docker rm -f {name}) or choose another name with --humaneval-container-name"
            )
        if found.status == "running" and found.labels.get(LABEL_CONFIG) == config:
            self.container = found
            return True
        why = "has another configuration" if found.status == "running" else f"is {found.status}"
        self.notify(f"replacing the SGLang container {name}: it {why}")
        with contextlib.suppress(NotFound):
            found.remove(force=True)
        return False

    def _create(
        self,
        docker: Any,
        command: list[str],
        env: dict[str, str],
        volumes: dict[str, dict[str, str]],
        gpus: list[str] | None,
        config: str,
        api_key: str,
    ) -> None:
        s = self.settings
        devices = None
        if gpus is not None:
            devices = [
                docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])
                if not gpus
                else docker.types.DeviceRequest(device_ids=gpus, capabilities=[["gpu"]])
            ]
        self.creating_key = api_key
        try:
            self.container = self.client.containers.create(
                s.image,  # by name, for `docker ps`; the config hash holds the id
                command=command,
                name=s.container_name,
                labels={LABEL: ROLE, LABEL_CONFIG: config, LABEL_API_KEY: api_key, LABEL_MODEL: s.model},
                environment=env,
                volumes=volumes,
                ports={f"{CONTAINER_PORT}/tcp": ("127.0.0.1", s.port)},
                ipc_mode="host",
                device_requests=devices,
                detach=True,
            )
            self.container.start()
        except docker.errors.APIError as e:
            raise _start_error(e, s) from None

    def _copy_log(self, docker: Any, append: bool) -> None:
        """Stream the container's log into OUTPUT/server.log (a separate client: the stream blocks)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab" if append else "wb")
        if append:
            out.write(f"--- pytest-humaneval: reusing this container at {time.ctime()} ---\n".encode())
        self.log_client = docker.from_env(timeout=None)  # no read timeout: SGLang can be quiet for minutes
        since = int(time.time()) if append else None
        self.log_stream = self.log_client.api.logs(self.container.id, stream=True, follow=True, since=since)
        self.log_thread = threading.Thread(
            target=_copy_stream, args=(self.log_stream, out), name="humaneval-server-log", daemon=True
        )
        self.log_thread.start()

    def _exited(self) -> str | None:
        self.container.reload()
        if self.container.status not in ("exited", "dead"):
            return None
        state = self.container.attrs.get("State", {})
        oom = " (killed: out of memory)" if state.get("OOMKilled") else ""
        return f"exited with code {state.get('ExitCode')}{oom}"

    def _tail(self) -> str:
        try:
            log: str = self.container.logs(tail=TAIL_LINES).decode("utf-8", "replace")  # docker: untyped
            return log
        except Exception as e:  # the log is a courtesy in an error message; never mask that error
            return f"(could not read the log: {e})"

    def close(self, keep: bool) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        problem: HumanEvalError | None = None
        try:
            with _deferred_signals():
                problem = self._close(keep)
        finally:
            _untrack(self)
        if problem is not None:
            raise problem

    def _close(self, keep: bool) -> HumanEvalError | None:
        from docker.errors import DockerException, NotFound

        name = self.settings.container_name
        problem = None
        if self.container is None and self.creating_key is not None:
            self.container = self._interrupted_create(name)
        if self.container is not None and keep and self.healthy:
            self.notify(
                f"SGLang container {name} left running at http://127.0.0.1:{self.settings.port}/v1 "
                f"(--humaneval-keep-server): a run with the same configuration reuses it; remove it with "
                f"`docker rm -f {name}`"
            )
            self._stop_log(wait=False)
        else:
            if self.container is not None:
                try:
                    self.container.remove(force=True)
                except NotFound:
                    pass
                except DockerException as e:
                    problem = HumanEvalError(
                        f"could not remove the SGLang container {name} ({describe(e)}): remove it with "
                        f"`docker rm -f {name}`"
                    )
            self._stop_log(wait=True)
        for client in (self.log_client, self.client):
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()
        return problem

    def _interrupted_create(self, name: str) -> Any:
        """The container an interrupted create() may have made: ours if it carries this run's key."""
        try:
            found = self.client.containers.get(name)
        except Exception:
            return None
        return found if found.labels.get(LABEL_API_KEY) == self.creating_key else None

    def _stop_log(self, wait: bool) -> None:
        """After removal the stream ends by itself once the last lines are in; a kept container's does not."""
        if self.log_thread is None:
            return
        if wait:
            self.log_thread.join(5)
        if self.log_thread.is_alive():
            with contextlib.suppress(Exception):
                self.log_stream.close()
            self.log_thread.join(5)


def _copy_stream(stream: Iterator[bytes], out: Any) -> None:
    try:
        for chunk in stream:
            out.write(chunk)
            out.flush()
    except Exception:  # the stream was closed under us: the container went away or we stopped copying
        pass
    finally:
        out.close()


def _ensure_image(client: Any, ref: str, notify: Notify, needs_gpu: bool = False) -> str:
    """The image's id; pulled through the SDK when it is not present locally (not when the server would
    need a GPU this machine does not have: the pull is several GB, the start would fail after it)."""
    from docker.errors import DockerException, ImageNotFound

    try:
        image_id: str = client.images.get(ref).id  # docker: untyped
        return image_id
    except ImageNotFound:
        pass
    except DockerException as e:
        raise HumanEvalError(f"Docker could not inspect the image {ref} ({describe(e)})") from None
    if needs_gpu and _local_daemon() and not os.path.exists(NVIDIA_DEVICE):
        raise HumanEvalError(
            f"this machine has no NVIDIA GPU ({NVIDIA_DEVICE} is missing), so the SGLang server cannot "
            f"start; {ref} (several GB) was not pulled. Fix: run on a GPU machine, use a server that is "
            "already running (--humaneval-endpoint=URL), generate on the CPU with "
            "--humaneval-backend=transformers, "
            "or pass --humaneval-gpus=none for an image that runs without a GPU"
        )
    notify(f"pulling {ref}: SGLang images are several GB, this takes minutes")
    try:
        last_note = time.monotonic()
        for event in client.api.pull(ref, stream=True, decode=True):
            if "error" in event:
                raise HumanEvalError(_pull_error(ref, str(event["error"])))
            if time.monotonic() - last_note > NOTE_EVERY_S:
                notify(f"pulling {ref}: {event.get('status', '')} {event.get('progress', '')}".rstrip())
                last_note = time.monotonic()
        image_id = client.images.get(ref).id
        return image_id
    except DockerException as e:
        raise HumanEvalError(_pull_error(ref, describe(e))) from None


def _local_daemon() -> bool:
    """Docker runs on this machine (its devices are ours to look at)."""
    return os.environ.get("DOCKER_HOST", "unix://").startswith("unix://")


def _pull_error(ref: str, why: str) -> str:
    return (
        f"image {ref} is not present and cannot be pulled: {why}. Fix: make its registry reachable (and "
        "`docker login` if it is private), load it from a file (`docker save` elsewhere, `docker load` "
        "here), or name a local image with --humaneval-image"
    )


def _start_error(e: Exception, s: Settings) -> HumanEvalError:
    why = describe(e, limit=1000)  # searched for the known causes below
    if "could not select device driver" in why:
        return HumanEvalError(
            f"Docker cannot give the SGLang container GPUs: the NVIDIA container runtime is missing (Docker "
            f"said: {why}). Fix: {GPU_FIX}"
        )
    if "port is already allocated" in why or "address already in use" in why:
        return HumanEvalError(_port_in_use(s.port))
    return HumanEvalError(f"Docker could not start the SGLang container {s.container_name}: {why}")


def _hf_home() -> Path:
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser().resolve()
    return cache_home().resolve() / "huggingface"


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
                "started": _start_time(self.pid),
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
        _kill_group(pid)
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
                    _kill_group(self.pid)
                    if self.proc is not None:
                        self.proc.poll()  # already reaped: records it, so no "still running" warning
                    self.state_path.unlink(missing_ok=True)
        finally:
            _untrack(self)


def _kill_group(pgid: int) -> None:
    """SIGTERM to the whole group (SGLang's scheduler processes too), SIGKILL if any of it lingers."""
    for sig, wait in ((signal.SIGTERM, TERM_GRACE_S), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _group_gone(pgid):
                return
            time.sleep(0.1)


def _group_gone(pgid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)  # the leader may be our child: reap it, or it lingers as a zombie
    if Path("/proc/self/stat").exists():  # zombies only wait for init to reap them: they do not count
        for entry in os.scandir("/proc"):
            fields = _proc_stat(entry.name) if entry.name.isdigit() else None
            if fields and fields[2] == str(pgid) and fields[0] != "Z":
                return False
        return True
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _proc_stat(pid: int | str) -> list[str] | None:
    """State, parent pid, process group, ... from /proc/PID/stat (Linux); None if there is none."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _start_time(pid: int) -> str:
    """When ``pid`` started (clock ticks since boot; "" where unknown): tells it from a recycled pid."""
    fields = _proc_stat(pid)
    return fields[19] if fields and len(fields) > 19 else ""


def _is_sglang_process(pid: int, started: str = "") -> bool:
    """Alive and still the SGLang server we started (``started``: its start time in /proc/PID/stat), not
    a recycled pid, which must not be killed."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not Path("/proc/self/stat").exists():
        return True  # no /proc to check the command line with
    fields = _proc_stat(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if not fields or fields[0] == "Z" or (started and _start_time(pid) != started):
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


def _describe_launch(launch: Launch) -> str:
    """What the plugin chose that the user may want to know: the parser and a CPU server's set-up."""
    parts = [f"reasoning parser {launch.reasoning_parser or 'none'}"]
    if launch.env.get("SGLANG_USE_CPU_ENGINE") == "1":
        cpu = "CPU engine"
        if launch.sized:
            cpu += f", {' '.join(launch.sized)} (sized to the free memory)"
        parts.append(cpu)
    return "; " + ", ".join(parts)
