"""The real SGLang server (CPU engine, tiny Qwen3) in the local CPU image, under whole pytest runs.

One full start-up serves the module: the first run starts the container and keeps it; the second reuses it
and removes it at its normal end. Ctrl-C during a start, a bad server argument, a busy port and a missing
model cost no full start. ``.ci/sglang-up`` builds the image (``PYTEST_HUMANEVAL_SGLANG_IMAGE``).
"""

from __future__ import annotations

import signal
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from plugin_support import cache_records
from sglang_support import (
    MAX_TOKENS,
    MEMORY_LIMIT_BYTES,
    PeakMemory,
    Run,
    container_pids,
    end_run,
    plugin_args,
    read_lines_until,
    report,
    require_sglang_image,
    run_plugin,
    say,
    start_run,
)
from tiny_server import free_port

from pytest_humaneval.generation.server_docker import CONTAINER_MODEL_DIR, LABEL, ROLE

pytestmark = [pytest.mark.slow, pytest.mark.docker]


def unique_name() -> str:
    return f"pytest-humaneval-sglang-cpu-test-{uuid.uuid4().hex[:10]}"


def ours(client: Any, name: str) -> list[Any]:
    return [
        c for c in client.containers.list(all=True, filters={"label": f"{LABEL}={ROLE}"}) if c.name == name
    ]


@dataclass
class Served:
    model: Path
    image: str
    name: str
    port: int
    output: Path
    cwd: Path
    first: Run
    peak_bytes: int

    def args(self, *extra: str) -> list[str]:
        return container_args(
            self.model,
            self.port,
            self.output,
            self.image,
            self.name,
            f"--humaneval-max-tokens={MAX_TOKENS}",
            *extra,
        )


def container_args(model: Path, port: int, output: Path, image: str, name: str, *extra: str) -> list[str]:
    """The plugin's arguments for a run that serves ``model`` from container ``name`` of ``image``."""
    return plugin_args(
        model, port, output, f"--humaneval-image={image}", f"--humaneval-container-name={name}", *extra
    )


@pytest.fixture(scope="module")
def sglang_image(client: Any) -> str:
    return require_sglang_image(client)


@pytest.fixture(scope="module")
def served(
    client: Any,
    sglang_image: str,
    tiny_qwen3_40k: Path,
    tmp_path_factory: pytest.TempPathFactory,
    pytestconfig: pytest.Config,
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("sglang-docker")
    name = unique_name()
    served = Served(tiny_qwen3_40k, sglang_image, name, free_port(), root / "out", root, Run(0, ""), 0)
    with PeakMemory(lambda: container_pids(client, name)) as memory:
        served.first = run_plugin(served.args("--humaneval-keep-server"), root)
    served.peak_bytes = memory.peak
    startup = report(served.output)["provenance"]["generation"]["server"]["startup_s"]
    say(
        pytestconfig,
        f"real SGLang (docker {sglang_image}, CPU engine, tiny Qwen3): start-up {startup:.1f} s, "
        f"peak memory {memory.peak / 1e9:.2f} GB (PSS of the container's processes)",
    )
    yield served
    for container in ours(client, name):  # a safety net: the tests end it themselves
        container.remove(force=True)


def test_first_run_serves_from_the_cpu_image_and_keeps_the_container(served: Served, client: Any) -> None:
    out = served.first.output
    assert served.first.returncode in (0, 1), out
    assert (
        f"started SGLang container {served.name} ({served.image}; reasoning parser qwen3, CPU engine" in out
    )
    assert "4 samples of tiny-qwen3: 0 from the cache, 4 generated" in out
    [container] = ours(client, served.name)
    assert container.status == "running", "--humaneval-keep-server left it running"
    env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"])
    assert env["SGLANG_USE_CPU_ENGINE"] == "1"
    cmd = container.attrs["Config"]["Cmd"]
    assert cmd[cmd.index("--model-path") + 1] == CONTAINER_MODEL_DIR and "--sleep-on-idle" in cmd
    assert int(cmd[cmd.index("--max-total-tokens") + 1]) >= 4096
    assert not container.attrs["HostConfig"].get("DeviceRequests"), "no GPU asked for"
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert (
        mounts[CONTAINER_MODEL_DIR]["Source"] == str(served.model) and not mounts[CONTAINER_MODEL_DIR]["RW"]
    )

    log = (served.output / "server.log").read_text()
    health = [line.split('HTTP/1.1" ')[1][:3] for line in log.splitlines() if "GET /health HTTP/1.1" in line]
    assert "503" in health and "200" in health, "the wait saw SGLang warm up, then answer"
    assert "POST /v1/chat/completions HTTP/1.1" in log
    records = cache_records(served.output)
    assert len(records) == 4 and all(r["usage"]["completion_tokens"] <= MAX_TOKENS for r in records)
    assert served.peak_bytes < MEMORY_LIMIT_BYTES


def test_next_run_reuses_the_kept_container_and_removes_it_at_the_end(served: Served, client: Any) -> None:
    [kept] = ours(client, served.name)
    started = time.monotonic()
    run = run_plugin(served.args("--humaneval-samples=2"), served.cwd)
    assert f"reusing the running SGLang container {served.name}" in run.output, run.output
    assert "8 samples of tiny-qwen3: 4 from the cache, 4 generated" in run.output, run.output
    assert report(served.output)["provenance"]["generation"]["server"]["reused"] is True
    assert time.monotonic() - started < 120, "no second start-up"
    assert ours(client, served.name) == [], f"{kept.name} removed at the normal end"
    assert "--- pytest-humaneval: reusing this container" in (served.output / "server.log").read_text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_while_the_container_starts_removes_it(
    client: Any, sglang_image: str, tiny_qwen3_40k: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C, or SIGTERM as a cancelled CI job sends, while SGLang imports in its container: removed."""
    name = unique_name()
    args = container_args(tiny_qwen3_40k, free_port(), tmp_path / "out", sglang_image, name)
    proc = start_run(args, tmp_path)
    seen: list[str] = []
    try:
        read_lines_until(proc, lambda line: f"started SGLang container {name}" in line, 120, seen)
        time.sleep(2)  # SGLang is importing inside the container
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        end_run(proc)
    assert proc.returncode == 2 and "KeyboardInterrupt" in out, "".join(seen) + out
    assert ours(client, name) == []


def test_startup_timeout_names_the_option_and_removes_the_container(
    client: Any, sglang_image: str, tiny_qwen3_40k: Path, tmp_path: Path
) -> None:
    """The container not healthy within --humaneval-startup-timeout (4 s: SGLang is still importing): one
    message naming the option, and the container removed."""
    name = unique_name()
    timeout = "--humaneval-startup-timeout=4"
    args = container_args(tiny_qwen3_40k, free_port(), tmp_path / "out", sglang_image, name, timeout)
    result = run_plugin(args, tmp_path)
    assert result.returncode == 4, result.output
    assert "did not become healthy within 4 s" in result.output, result.output
    assert "raise --humaneval-startup-timeout" in result.output
    assert "Traceback" not in result.output
    assert ours(client, name) == []


def test_bad_server_args_port_in_use_and_missing_model_are_one_message_each(
    client: Any, sglang_image: str, tiny_qwen3_40k: Path, tmp_path: Path
) -> None:
    name = unique_name()

    def args(model: Path, port: int, *extra: str) -> list[str]:
        return container_args(model, port, tmp_path / "out", sglang_image, name, *extra)

    bad = run_plugin(
        args(tiny_qwen3_40k, free_port(), "--humaneval-server-args=--max-total-tokens lots"), tmp_path
    )
    assert bad.returncode == 4, bad.output
    assert (
        f"ERROR: the SGLang container {name} exited with code 2 while starting. Its last log lines:"
        in bad.output
    )
    assert "error: argument --max-total-tokens: Invalid integer value: 'lots'" in bad.output
    assert ours(client, name) == []

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_plugin(args(tiny_qwen3_40k, port), tmp_path)
    assert taken.returncode == 4 and f"ERROR: port {port} on 127.0.0.1 is already in use" in taken.output
    missing = tmp_path / "no-such-model"
    absent = run_plugin(args(missing, free_port()), tmp_path)
    assert (
        absent.returncode == 4
        and f"ERROR: --humaneval-model-path={missing}: no such directory" in absent.output
    )
    assert ours(client, name) == []
