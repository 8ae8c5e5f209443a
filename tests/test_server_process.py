"""``--humaneval-server=process``: the stand-in SGLang (``sglang_standin/``) as a real local process group."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from server_support import STANDIN_DIR, STANDIN_MODEL, alive, make_settings, spawn_child

from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.generation.server import start_server
from pytest_humaneval.generation.server_process import STATE_NAME
from pytest_humaneval.options import Settings

pytestmark = pytest.mark.slow

WARMUP_S = 2.0


def scheduler_pid(log: Path) -> int:
    match = re.search(r"scheduler pid (\d+)", log.read_text())
    assert match, log.read_text()
    return int(match.group(1))


@pytest.fixture
def standin_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in `sglang` importable here (find_spec) and in the server process (PYTHONPATH)."""
    monkeypatch.syspath_prepend(str(STANDIN_DIR))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(STANDIN_DIR), os.environ.get("PYTHONPATH")]))
    )


@pytest.fixture
def settings(tmp_path: Path, standin_on_path: None) -> Iterator[Settings]:
    settings = make_settings(tmp_path, server="process")
    yield settings
    state = settings.output / STATE_NAME
    if state.exists():  # a safety net only: each test asserts the clean-up itself
        pid = json.loads(state.read_text())["pid"]
        if alive(pid):
            os.killpg(pid, signal.SIGKILL)


def test_process_server_waits_serves_and_is_killed_with_its_children(settings: Settings) -> None:
    import openai

    started = time.monotonic()
    handle = start_server(settings)
    try:
        assert time.monotonic() - started >= WARMUP_S, "returned before /health stopped answering 503"
        assert handle.base_url == f"http://127.0.0.1:{settings.port}/v1" and handle.model == STANDIN_MODEL
        pid, child = int(handle.ident), scheduler_pid(settings.output / "server.log")
        assert alive(pid) and alive(child) and os.getpgid(child) == pid
        api = openai.OpenAI(base_url=handle.base_url, api_key=handle.api_key, max_retries=0, timeout=30)
        completion = api.chat.completions.create(
            model=handle.model,
            messages=[{"role": "user", "content": "def below_zero(operations):\n"}],
            extra_body={"chat_template_kwargs": {"enable_thinking": False}},
        )
        api.close()
        assert "```python\ndef below_zero(" in (completion.choices[0].message.content or "")
    finally:
        handle.stop()
    assert not alive(pid) and not alive(child), "the whole process group is gone"
    assert not (settings.output / STATE_NAME).exists()
    log = (settings.output / "server.log").read_text()
    assert re.search(r'"GET /health HTTP/1.1" 503', log) and "POST /v1/chat/completions" in log
    assert "'reasoning_parser': 'qwen3'" in log and "'host': '127.0.0.1'" in log


def test_process_that_dies_during_startup_fails_with_its_last_lines(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_FAIL", "1")
    with pytest.raises(HumanEvalError) as info:
        start_server(settings)
    message = str(info.value)
    assert message.startswith("the SGLang server process exited with code 1 while starting")
    assert "RuntimeError: stand-in start-up failure (STANDIN_FAIL is set)" in message
    assert not (settings.output / STATE_NAME).exists()


def test_kept_process_is_reused_then_replaced_on_a_new_configuration(settings: Settings) -> None:
    kept = dataclasses.replace(settings, keep_server=True)
    first = start_server(kept)
    first.stop()
    assert alive(int(first.ident)), "keep_server leaves it running"
    started = time.monotonic()
    second = start_server(kept)
    assert time.monotonic() - started < WARMUP_S and second.reused and second.ident == first.ident
    assert second.api_key == first.api_key
    second.stop()

    third = start_server(dataclasses.replace(kept, keep_server=False, model="standin/another-model"))
    assert not third.reused and third.ident != first.ident
    assert not alive(int(first.ident)), "the server with the old configuration was stopped"
    third.stop()
    assert not alive(int(third.ident)) and not (settings.output / STATE_NAME).exists()


def test_ctrl_c_during_startup_kills_the_process_group(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_WARMUP", "600")
    child = spawn_child(tmp_path, server="process", port=settings.port)
    log = tmp_path / "out" / "server.log"
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and "listening on" in log.read_text()):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the server never started"
            time.sleep(0.1)
        server_pid = int(re.search(r"started SGLang, process (\d+)", child.stdout.readline()).group(1))  # type: ignore[union-attr]
        scheduler = scheduler_pid(log)
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode != 0 and "KeyboardInterrupt" in err, err
    assert not alive(server_pid) and not alive(scheduler)


def test_missing_sglang_is_one_clear_error(tmp_path: Path) -> None:
    if importlib.util.find_spec("sglang") is not None:
        pytest.skip("SGLang is installed here")
    with pytest.raises(HumanEvalError) as info:
        start_server(make_settings(tmp_path, server="process"))
    assert str(info.value).startswith("SGLang is not installed in this Python (")
    assert "--humaneval-server=docker" in str(info.value) and "--humaneval-endpoint" in str(info.value)


def test_a_recycled_pid_in_the_state_file_is_neither_reused_nor_killed(settings: Settings) -> None:
    """The state file names a pid that is now another SGLang-looking process (started later): left alone."""
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "sglang.launch_server"], start_new_session=True
    )
    try:
        state = settings.output / STATE_NAME
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"pid": other.pid, "started": "1", "config": "x", "api_key": "k"}))
        handle = start_server(dataclasses.replace(settings, keep_server=False))
        try:
            assert handle.ident != str(other.pid) and not handle.reused
            assert alive(other.pid), "a process that merely has the old pid was killed"
        finally:
            handle.stop()
    finally:
        other.kill()
        other.wait()
