"""The real SGLang server (CPU engine, tiny Qwen3) as ``--humaneval-server=process`` under whole pytest runs.

Two full start-ups serve the module: the first run starts a server and keeps it
(``--humaneval-keep-server``); the next runs reuse it (thinking on, then a run during which the test
kills it); the rerun after the kill starts the second one and removes it at its normal end. The
failures before or during start-up (port in use, missing model, a bad server argument, Ctrl-C) cost
no full start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from plugin_support import cache_records
from server_support import alive
from sglang_support import (
    MAX_TOKENS,
    MEMORY_LIMIT_BYTES,
    SGLANG_PYTHON,
    STARTUP_TIMEOUT_S,
    PeakMemory,
    Run,
    end_run,
    group_pids,
    plugin_args,
    read_lines_until,
    report,
    require_sglang_python,
    run_plugin,
    say,
    start_run,
)
from tiny_server import free_port

from pytest_humaneval.generation.server_process import STATE_NAME

pytestmark = pytest.mark.slow


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@dataclass
class Served:
    """The module's server: the first run's output and where everything lies."""

    model: Path
    port: int
    output: Path
    cwd: Path
    first: Run
    pid: int
    startup_s: float
    peak_bytes: int

    def args(self, *extra: str) -> list[str]:
        server = ("--humaneval-server=process", sglang_flag(SGLANG_PYTHON))
        return plugin_args(self.model, self.port, self.output, *server, *extra)


def sglang_flag(python: Path) -> str:
    return f"--humaneval-sglang-python={python}"


@pytest.fixture(scope="module")
def served(
    tiny_qwen3_40k: Path, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Served]:
    python = require_sglang_python()
    root = tmp_path_factory.mktemp("sglang-process")
    output, port = root / "out", free_port()
    state = output / STATE_NAME
    pgid: list[int] = []

    def pids() -> list[int]:
        if not pgid and state.exists():
            pgid.append(json.loads(state.read_text())["pid"])
        return group_pids(pgid[0]) if pgid else []

    args = plugin_args(
        tiny_qwen3_40k,
        port,
        output,
        "--humaneval-server=process",
        sglang_flag(python),
        f"--humaneval-max-tokens={MAX_TOKENS}",
        "--humaneval-keep-server",
    )
    with PeakMemory(pids) as memory:
        first = run_plugin(args, root)
    assert state.exists(), first.output
    pid = json.loads(state.read_text())["pid"]
    startup = report(output)["provenance"]["generation"]["server"]["startup_s"]
    say(
        pytestconfig,
        f"real SGLang (process, CPU engine, tiny Qwen3): start-up {startup:.1f} s, "
        f"peak memory {memory.peak / 1e9:.2f} GB (PSS of its process group)",
    )
    yield Served(tiny_qwen3_40k, port, output, root, first, pid, startup, memory.peak)
    if alive(pid):  # a safety net: the tests below end it themselves
        os.killpg(pid, signal.SIGKILL)


def test_first_run_starts_the_cpu_server_waits_for_health_and_generates(served: Served) -> None:
    out = served.first.output
    assert served.first.returncode in (0, 1), out  # 1: the random model's answers fail their tests
    assert (
        "started SGLang, process" in out and "reasoning parser qwen3, CPU engine, --max-total-tokens" in out
    )
    assert "4 samples of tiny-qwen3: 0 from the cache, 4 generated" in out
    assert "SGLang server left running (process" in out and alive(served.pid), "kept for the next run"

    server = report(served.output)["provenance"]["generation"]["server"]
    assert server["reused"] is False and server["reasoning_parser"] == "qwen3"
    args = server["args"]
    assert "--sleep-on-idle" in args and int(args[args.index("--max-total-tokens") + 1]) >= 4096
    assert not any("api-key" in a for a in args), "the key stays out of the report"
    env = environ(served.pid)
    assert env["SGLANG_USE_CPU_ENGINE"] == "1" and env["CUDA_VISIBLE_DEVICES"] == ""

    log = (served.output / "server.log").read_text()
    health = [line.split('HTTP/1.1" ')[1][:3] for line in log.splitlines() if "GET /health HTTP/1.1" in line]
    assert "503" in health and health[-1] == "200", "the wait saw SGLang warm up, then stopped at 200"
    assert "POST /v1/chat/completions HTTP/1.1" in log and "max_total_num_tokens=" in log

    records = cache_records(served.output)
    assert len(records) == 4 and all(r["usage"]["completion_tokens"] <= MAX_TOKENS for r in records)
    assert all(r["finish_reason"] in ("stop", "length") and isinstance(r["raw"], str) for r in records)
    assert served.startup_s > 0 and served.peak_bytes < MEMORY_LIMIT_BYTES


def test_kept_server_is_reused_and_thinking_answers_come_through_the_qwen3_parser(served: Served) -> None:
    first = cache_records(served.output)
    started = time.monotonic()
    args = served.args(
        "--think", f"--humaneval-max-tokens={MAX_TOKENS}", "--humaneval-samples=2", "--humaneval-keep-server"
    )
    run = run_plugin(args, served.cwd)
    assert "reusing the running SGLang server, process" in run.output, run.output
    assert json.loads((served.output / STATE_NAME).read_text())["pid"] == served.pid
    assert time.monotonic() - started < STARTUP_TIMEOUT_S

    thinking = [r for r in cache_records(served.output) if r["key"] not in {f["key"] for f in first}]
    assert len(thinking) == 8, run.output
    for record in thinking:
        assert isinstance(record["reasoning_content"], str) and isinstance(record["raw"], str)
    cut = [r for r in thinking if r["finish_reason"] == "length" and r["raw"] == ""]
    assert cut, "a random model thinking within 48 tokens runs past max_tokens"
    assert {r["status"] for r in cut} == {"truncated"}, cut
    assert all(r["reasoning_content"] for r in cut), "the thoughts came back in reasoning_content"

    # enable_thinking went out as asked: Qwen3's template pre-fills an empty think block when it is false
    off = {r["task_id"]: r["usage"]["prompt_tokens"] for r in first}
    shorter = {off[r["task_id"]] - r["usage"]["prompt_tokens"] for r in thinking}
    assert len(shorter) == 1 and shorter.pop() > 0, "thinking-on prompts lack the empty think block"


def test_killed_server_keeps_the_answers_that_arrived_and_the_rerun_completes(served: Served) -> None:
    args = served.args(
        "--humaneval-max-tokens=32",
        "--humaneval-samples=6",
        "--humaneval-concurrency=1",
        "--humaneval-server-grace=3",  # no server comes back: waiting longer would show nothing more
    )
    before = len(cache_records(served.output))
    proc = start_run(args, served.cwd)
    seen: list[str] = []
    try:
        read_lines_until(proc, lambda line: "reusing the running SGLang server" in line, 120, seen)
        deadline = time.monotonic() + 120
        while len(cache_records(served.output)) < before + 3:
            assert proc.poll() is None and time.monotonic() < deadline, "".join(seen)
            time.sleep(0.05)
        os.killpg(served.pid, signal.SIGKILL)  # the server dies mid-run
        out, _ = proc.communicate(timeout=300)
    finally:
        end_run(proc)
    out = "".join(seen) + out
    arrived = len(cache_records(served.output)) - before
    assert proc.returncode == 4, out  # a usage error: the run stops with one message
    assert "stopped answering" in out and f"The {arrived} answers that arrived are cached" in out, out
    assert 3 <= arrived < 24

    rerun = run_plugin(args, served.cwd)
    assert "stopping the SGLang server left by an earlier run" not in rerun.output
    assert f"24 samples of tiny-qwen3: {arrived} from the cache, {24 - arrived} generated" in rerun.output, (
        rerun.output
    )
    assert "started SGLang, process" in rerun.output
    pid = int(rerun.output.split("started SGLang, process ")[1].split()[0])
    assert not alive(pid) and not group_pids(pid), "removed with its whole group at the normal end"
    assert not (served.output / STATE_NAME).exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_while_the_server_starts_removes_its_process_group(
    tiny_qwen3_40k: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C, or SIGTERM as a cancelled CI job sends, while SGLang imports: its whole group goes."""
    python = require_sglang_python()
    output = tmp_path / "out"
    proc = start_run(
        plugin_args(tiny_qwen3_40k, free_port(), output, "--humaneval-server=process", sglang_flag(python)),
        tmp_path,
    )
    seen: list[str] = []
    try:
        line = read_lines_until(proc, lambda text: "started SGLang, process" in text, 120, seen)
        pid = int(line.split("started SGLang, process ")[1].split()[0])
        time.sleep(3)  # SGLang is importing: its scheduler processes are on their way
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        end_run(proc)
    assert proc.returncode == 2 and "KeyboardInterrupt" in out, "".join(seen) + out
    assert not alive(pid) and not group_pids(pid)
    assert not (output / STATE_NAME).exists()


def test_startup_timeout_names_the_option_and_removes_its_process_group(
    tiny_qwen3_40k: Path, tmp_path: Path
) -> None:
    """SGLang not healthy within --humaneval-startup-timeout (here 4 s: it is still importing): one message
    naming the option, and nothing of the server left."""
    python = require_sglang_python()
    output = tmp_path / "out"
    args = ("--humaneval-server=process", sglang_flag(python), "--humaneval-startup-timeout=4")
    result = run_plugin(plugin_args(tiny_qwen3_40k, free_port(), output, *args), tmp_path)
    assert result.returncode == 4, result.output
    assert "did not become healthy within 4 s" in result.output, result.output
    assert "raise --humaneval-startup-timeout" in result.output
    assert "Traceback" not in result.output
    pid = int(result.output.split("started SGLang, process ")[1].split()[0])
    assert not alive(pid) and not group_pids(pid)
    assert not (output / STATE_NAME).exists()


def test_port_in_use_missing_model_and_bad_server_args_are_one_message_each(
    tiny_qwen3_40k: Path, tmp_path: Path
) -> None:
    python = require_sglang_python()
    common = ("--humaneval-server=process", sglang_flag(python))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = run_plugin(plugin_args(tiny_qwen3_40k, port, tmp_path / "a", *common), tmp_path)
    assert taken.returncode == 4 and f"ERROR: port {port} on 127.0.0.1 is already in use" in taken.output
    assert "--humaneval-port=N" in taken.output

    missing = tmp_path / "no-such-model"
    absent = run_plugin(plugin_args(missing, free_port(), tmp_path / "b", *common), tmp_path)
    assert (
        absent.returncode == 4
        and f"ERROR: --humaneval-model-path={missing}: no such directory" in absent.output
    )

    bad = run_plugin(
        plugin_args(
            tiny_qwen3_40k,
            free_port(),
            tmp_path / "c",
            *common,
            "--humaneval-server-args=--max-total-tokens=lots",
        ),
        tmp_path,
    )
    assert bad.returncode == 4, bad.output
    assert (
        "ERROR: the SGLang server process exited with code 2 while starting. Its last log lines:"
        in bad.output
    )
    assert "error: argument --max-total-tokens: Invalid integer value: 'lots'" in bad.output
    assert "Fix the cause shown there (full log: " in bad.output
    assert not (tmp_path / "c" / STATE_NAME).exists()


def test_sglang_python_that_cannot_serve_is_one_message(tiny_qwen3_40k: Path, tmp_path: Path) -> None:
    def run(python: str) -> Run:
        flag = f"--humaneval-sglang-python={python}"
        args = plugin_args(tiny_qwen3_40k, free_port(), tmp_path / "out", "--humaneval-server=process", flag)
        return run_plugin(args, tmp_path)

    absent = tmp_path / "no-venv" / "bin" / "python"
    missing = run(str(absent))
    assert missing.returncode == 4, missing.output
    assert f"ERROR: --humaneval-sglang-python={absent} cannot run (" in missing.output
    plain = run(sys.executable)  # the test environment: no SGLang in it
    if "SGLang is not installed" not in plain.output:
        pytest.skip("this Python has SGLang")
    assert plain.returncode == 4
    assert f"ERROR: SGLang is not installed in --humaneval-sglang-python={sys.executable}: " in plain.output
