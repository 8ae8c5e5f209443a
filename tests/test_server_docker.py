"""The SGLang server lifecycle against a real Docker engine, with a stand-in image.

``test_sglang_docker.py`` runs the real SGLang (CPU engine) in Docker: start-up, the readiness wait, the
log, the model mount, reuse, removal after a normal end and after Ctrl-C, a server argument SGLang
rejects, a busy port. This module covers what a CPU run cannot show (the GPU runtime errors) and the
lifecycle corners that would each cost the real server a 30-60 s start-up (a start-up timeout, SIGTERM,
a forgotten ``stop()``, a configuration change, a foreign container, the API key). The stand-in image is
the debootstrap test base plus ``sglang_standin/``, a stdlib server with SGLang's flags, its 503-then-200
``/health`` and an OpenAI chat endpoint.
"""

from __future__ import annotations

import dataclasses
import io
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_support import ensure_test_image
from server_support import STANDIN_DIR, STANDIN_MODEL, make_settings, spawn_child

from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.generation import server_docker
from pytest_humaneval.generation.server import start_server
from pytest_humaneval.generation.server_docker import CONTAINER_HF_HOME, LABEL, LABEL_CONFIG, ROLE
from pytest_humaneval.generation.server_lifecycle import ServerHandle
from pytest_humaneval.options import Settings

STANDIN_IMAGE = "pytest-humaneval-sglang-standin:test"
WARMUP_S = 2.0  # the stand-in's default: /health answers 503 this long


@pytest.fixture(scope="module")
def standin_image(client: Any) -> str:
    base = ensure_test_image()
    client.images.build(path=str(STANDIN_DIR), tag=STANDIN_IMAGE, buildargs={"BASE": base}, rm=True)
    return STANDIN_IMAGE


@pytest.fixture(scope="module")
def variant(client: Any, standin_image: str) -> Any:
    """The stand-in image with extra environment (STANDIN_FAIL, STANDIN_WARMUP) baked in."""

    def build(**env: str) -> str:
        tag = standin_image.replace(
            ":test", "-" + "-".join(f"{k}-{v}" for k, v in env.items()).lower() + ":test"
        )
        lines = [f"FROM {standin_image}", *(f"ENV {k}={v}" for k, v in env.items())]
        client.images.build(fileobj=io.BytesIO("\n".join(lines).encode()), tag=tag, rm=True)
        return tag

    return build


@pytest.fixture
def settings(tmp_path: Path, client: Any, standin_image: str) -> Iterator[Settings]:
    settings = make_settings(tmp_path, image=standin_image)
    yield settings
    for container in client.containers.list(all=True, filters={"name": settings.container_name}):
        container.remove(force=True)  # a safety net only: each test asserts removal itself


def our_containers(client: Any, name: str) -> list[Any]:
    found = client.containers.list(all=True, filters={"label": f"{LABEL}={ROLE}"})
    return [c for c in found if c.name == name]


def wait_for_log(path: Path, needle: str, timeout: float = 10.0) -> str:
    """The log is copied by a thread as the container writes it: give the last lines a moment."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def ask(handle: ServerHandle, api_key: str | None = None) -> Any:
    import openai

    api = openai.OpenAI(
        base_url=handle.base_url, api_key=api_key or handle.api_key, max_retries=0, timeout=30
    )
    try:
        return api.chat.completions.create(
            model=handle.model,
            messages=[{"role": "user", "content": "def has_close_elements(numbers, threshold):\n"}],
            extra_body={"chat_template_kwargs": {"enable_thinking": True}},
        ), [m.id for m in api.models.list().data]
    finally:
        api.close()


@pytest.mark.docker
@pytest.mark.slow
def test_start_waits_for_health_serves_and_is_removed(
    settings: Settings, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hf_home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setenv("HF_ENDPOINT", "http://hf-mirror.invalid")
    notes: list[str] = []
    started = time.monotonic()
    handle = start_server(settings, notify=notes.append)
    waited = time.monotonic() - started
    try:
        assert handle.base_url == f"http://127.0.0.1:{settings.port}/v1"
        assert handle.model == STANDIN_MODEL and handle.api_key and not handle.reused
        assert waited >= WARMUP_S, "returned before /health stopped answering 503"
        container = client.containers.get(handle.ident)
        assert container.name == settings.container_name and container.status == "running"
        assert container.labels[LABEL] == ROLE and container.labels[LABEL_CONFIG]
        host = container.attrs["HostConfig"]
        assert host["IpcMode"] == "host" and not host.get("DeviceRequests")
        assert host["PortBindings"]["30000/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(settings.port)}]
        cmd = container.attrs["Config"]["Cmd"]
        assert cmd[:3] == ["python3", "-m", "sglang.launch_server"]
        joined = " ".join(cmd)
        for flag in (
            f"--model-path {STANDIN_MODEL}",
            "--host 0.0.0.0",
            "--port 30000",
            "--tp-size 1",
            "--reasoning-parser qwen3",
            f"--served-model-name {STANDIN_MODEL}",
            f"--api-key {handle.api_key}",
        ):
            assert flag in joined
        env = dict(line.split("=", 1) for line in container.attrs["Config"]["Env"])
        assert env["HF_TOKEN"] == "hf_test_token" and env["HF_ENDPOINT"] == "http://hf-mirror.invalid"
        assert env["HF_HOME"] == CONTAINER_HF_HOME
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        assert mounts[CONTAINER_HF_HOME]["Source"] == str(hf_home) and mounts[CONTAINER_HF_HOME]["RW"]

        completion, models = ask(handle)
        assert models == [STANDIN_MODEL]
        message = completion.choices[0].message
        assert "```python\ndef has_close_elements(" in message.content
        assert (message.model_extra or {}).get("reasoning_content"), "thinking was requested"
        assert completion.usage and completion.usage.completion_tokens > 0

        import openai

        with pytest.raises(openai.AuthenticationError):
            ask(handle, api_key="not-the-key")
        assert any("started SGLang container" in note for note in notes)
    finally:
        handle.stop()
    assert our_containers(client, settings.container_name) == []
    handle.stop()  # idempotent
    log = wait_for_log(settings.output / "server.log", "POST /v1/chat/completions")
    assert "--reasoning-parser" not in log  # the log is the server's, not ours
    assert "'reasoning_parser': 'qwen3'" in log and "'tp_size': 1" in log
    health = re.findall(r'"GET /health HTTP/1.1" (\d+)', log)
    assert "503" in health and health[-1] == "200", health
    assert 'POST /v1/chat/completions HTTP/1.1" 200' in log


@pytest.mark.docker
@pytest.mark.slow
def test_startup_timeout_names_the_option_and_removes_the_container(
    settings: Settings, client: Any, variant: Any
) -> None:
    slow = dataclasses.replace(settings, image=variant(STANDIN_WARMUP="600"), startup_timeout=3.0)
    with pytest.raises(
        HumanEvalError, match=r"did not become healthy within 3 s \(GET /health: 503\)"
    ) as info:
        start_server(slow)
    assert "--humaneval-startup-timeout" in str(info.value) and "warm-up 600 s" in str(info.value)
    assert our_containers(client, settings.container_name) == []


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_during_startup_removes_the_container(
    settings: Settings, client: Any, variant: Any, tmp_path: Path, sig: signal.Signals
) -> None:
    child = spawn_child(
        tmp_path,
        image=variant(STANDIN_WARMUP="600"),
        port=settings.port,
        container_name=settings.container_name,
    )
    try:
        deadline = time.monotonic() + 60
        while not any(c.status == "running" for c in our_containers(client, settings.container_name)):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the container never started"
            time.sleep(0.2)
        time.sleep(1.0)  # well inside the readiness wait (503 for 600 s)
        child.send_signal(sig)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert "HEALTHY" not in out
    assert child.returncode != 0 and "KeyboardInterrupt" in err, err
    assert our_containers(client, settings.container_name) == []


@pytest.mark.docker
@pytest.mark.slow
def test_forgotten_stop_is_caught_at_interpreter_exit(
    settings: Settings, client: Any, tmp_path: Path
) -> None:
    child = spawn_child(
        tmp_path, image=settings.image, port=settings.port, container_name=settings.container_name
    )
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0 and "HEALTHY" in out, err
    assert our_containers(client, settings.container_name) == []


@pytest.mark.docker
@pytest.mark.slow
def test_keep_server_reuses_a_matching_container_and_replaces_a_different_one(
    settings: Settings, client: Any
) -> None:
    kept = dataclasses.replace(settings, keep_server=True)
    first = start_server(kept)
    first.stop()
    assert client.containers.get(first.ident).status == "running", "keep_server leaves it running"

    started = time.monotonic()
    second = start_server(kept)
    assert time.monotonic() - started < WARMUP_S, "a healthy kept server needs no warm-up"
    assert second.ident == first.ident and second.reused and second.api_key == first.api_key
    completion, _ = ask(second)
    assert "def has_close_elements(" in completion.choices[0].message.content
    second.stop()
    assert "reusing this container" in wait_for_log(settings.output / "server.log", "reusing this container")

    other = dataclasses.replace(kept, model="standin/another-model")
    third = start_server(other)
    assert third.ident != first.ident and not third.reused
    assert [c.id for c in our_containers(client, settings.container_name)] == [third.ident]
    third.stop()

    # without keep_server, a matching running container is still reused, then removed at the end
    last = start_server(dataclasses.replace(other, keep_server=False))
    assert last.ident == third.ident and last.reused
    last.stop()
    assert our_containers(client, settings.container_name) == []


@pytest.mark.docker
@pytest.mark.slow
def test_a_foreign_container_with_the_name_is_left_alone(settings: Settings, client: Any) -> None:
    foreign = client.containers.create(settings.image, command=["sleep", "60"], name=settings.container_name)
    with pytest.raises(HumanEvalError, match="was not started by pytest-humaneval") as info:
        start_server(settings)
    assert "--humaneval-container-name" in str(info.value)
    assert client.containers.get(foreign.id).name == settings.container_name


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("gpus", ["all", "0"])
def test_missing_nvidia_runtime_is_translated(settings: Settings, client: Any, gpus: str) -> None:
    if "nvidia" in (client.info().get("Runtimes") or {}):
        pytest.skip("this Docker has the NVIDIA runtime: the GPU request would succeed")
    with pytest.raises(HumanEvalError) as info:
        start_server(dataclasses.replace(settings, gpus=gpus))
    message = str(info.value)
    assert message.startswith("Docker cannot give the SGLang container GPUs: the NVIDIA container runtime")
    assert 'could not select device driver "" with capabilities: [[gpu]]' in message
    assert "NVIDIA Container Toolkit" in message
    assert "--humaneval-gpus=none" in message and "--humaneval-endpoint" in message
    assert our_containers(client, settings.container_name) == []


@pytest.mark.docker
@pytest.mark.slow
def test_missing_image_that_cannot_be_pulled(settings: Settings, client: Any) -> None:
    absent = "pytest-humaneval.invalid/absent:none"
    with pytest.raises(HumanEvalError) as info:
        start_server(dataclasses.replace(settings, image=absent))
    assert str(info.value).startswith(f"image {absent} is not present and cannot be pulled: ")
    assert "--humaneval-image" in str(info.value)
    assert client.containers.list(all=True, filters={"name": settings.container_name}) == []


# -- errors found before Docker is asked anything: no daemon needed --------------------------------------


def test_missing_docker_package_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)  # import docker now raises ImportError
    with pytest.raises(HumanEvalError) as info:
        start_server(make_settings(tmp_path, image=STANDIN_IMAGE))
    message = str(info.value)
    assert message.startswith("--humaneval-server=docker (the default) needs the docker Python package")
    assert "pip install 'pytest-humaneval[generate]'" in message and "--humaneval-endpoint" in message


def test_unreachable_daemon_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"unix://{tmp_path}/dead.sock"
    monkeypatch.setenv("DOCKER_HOST", dead)
    with pytest.raises(HumanEvalError) as info:
        start_server(make_settings(tmp_path, image=STANDIN_IMAGE))
    message = str(info.value)
    assert message.startswith(f"cannot reach the Docker daemon at {dead} (")
    assert "start the Docker daemon" in message and "DOCKER_HOST" in message
    assert "--humaneval-server=process" in message and "--humaneval-endpoint" in message


def test_missing_model_path_fails_before_docker_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")  # would fail if it were reached
    missing = tmp_path / "no-weights-here"
    with pytest.raises(HumanEvalError) as info:
        start_server(make_settings(tmp_path, model_path=missing))
    assert str(info.value).startswith(f"--humaneval-model-path={missing}: no such directory")
    assert not (tmp_path / "out").exists(), "nothing was started or written"


@pytest.mark.parametrize(
    ("gpus", "tp", "error"),
    [
        ("0", 2, "--humaneval-tp=2 needs 2 GPUs but --humaneval-gpus=0 gives 1"),
        (" , ", 1, "give all, none"),
        ("nope", 1, "--humaneval-gpus='nope': give all, none, or device ids like 0,1"),
        ("0,gpu1", 2, "--humaneval-gpus='0,gpu1': give all, none, or device ids like 0,1"),
    ],
)
def test_gpu_selection_is_checked_before_docker_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gpus: str, tp: int, error: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/dead.sock")
    with pytest.raises(HumanEvalError, match=re.escape(error)):
        start_server(make_settings(tmp_path, gpus=gpus, tp=tp))


@pytest.mark.docker
def test_no_gpu_here_means_no_multi_gb_pull(
    settings: Settings, client: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The GPU check comes before the pull: on a machine without one, the image is not fetched at all."""
    monkeypatch.setattr(server_docker, "NVIDIA_DEVICE", str(tmp_path / "nvidiactl"))  # absent
    absent = "pytest-humaneval.invalid/absent:none"
    with pytest.raises(HumanEvalError) as info:
        start_server(dataclasses.replace(settings, image=absent, gpus="all"))
    message = str(info.value)
    assert message.startswith("this machine has no NVIDIA GPU")
    assert f"{absent} (several GB) was not pulled" in message
    assert "--humaneval-endpoint" in message and "--humaneval-backend=transformers" in message
    assert our_containers(client, settings.container_name) == []
