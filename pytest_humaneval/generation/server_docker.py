"""SGLang in a Docker container, started through the docker SDK (``--humaneval-server=docker``, the
default): the image pulled when missing, the GPUs and the Hugging Face cache passed in, a container with
the same configuration reused, its log copied to ``OUTPUT/server.log``."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import docker_daemon
from ..errors import HumanEvalError, describe
from ..options import Settings
from ..user_cache import cache_home
from .launch import Launch, docker_host_memory, plan_launch
from .server_lifecycle import (
    CONFIG_VERSION,
    LOG_NAME,
    NOTE_EVERY_S,
    TAIL_LINES,
    Notify,
    ServerHandle,
    _check_port_free,
    _checked_model_path,
    _deferred_signals,
    _describe_launch,
    _digest,
    _healthy_handle,
    _parse_gpus,
    _port_in_use,
    _untrack,
)

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
