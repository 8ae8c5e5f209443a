"""Shared by the server lifecycle tests: Settings for the stand-in SGLang, free ports, a child script,
whether a process still runs, the Generator run against a server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from tiny_server import free_port

from pytest_humaneval.generation.client import Answer, Generator, Request, Sampling, make_client
from pytest_humaneval.generation.progress import Progress
from pytest_humaneval.options import OPTIONS, Settings

TESTS_DIR = Path(__file__).resolve().parent
STANDIN_DIR = TESTS_DIR / "sglang_standin"  # holds the stand-in `sglang` package and its Dockerfile
STANDIN_MODEL = "standin/Qwen3-0.6B"


def unique_name() -> str:
    return f"pytest-humaneval-sglang-test-{uuid.uuid4().hex[:10]}"


def default_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Every option at its default, output under ``tmp_path``, then ``overrides``."""
    values: dict[str, Any] = {opt.name: opt.default for opt in OPTIONS}
    values.update(output=tmp_path / "out", **overrides)
    return Settings(**values)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """The defaults, then what a stand-in run needs, then ``overrides``."""
    standin: dict[str, Any] = dict(
        model=STANDIN_MODEL, gpus="none", port=free_port(), container_name=unique_name(), startup_timeout=60.0
    )
    return default_settings(tmp_path, **{**standin, **overrides})


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def run_generator(
    url: str,
    requests: list[Request],
    sampling: Sampling,
    *,
    concurrency: int,
    timeout: float,
    grace: float = 30.0,
    api_key: str = "EMPTY",
) -> tuple[Generator, dict[str, Answer], list[str]]:
    """The plugin's Generator against the server at ``url`` (serving ``stub-model``), run as the plugin runs
    it: the generator, the answers by key, and the lines it printed."""
    answers: dict[str, Answer] = {}
    lines: list[str] = []

    async def main() -> Generator:
        client = make_client(url, api_key, timeout)
        try:
            gen = Generator(
                client,
                base_url=url,
                model="stub-model",
                sampling=sampling,
                concurrency=concurrency,
                timeout=timeout,
                grace=grace,
                notify=lines.append,
            )
            with open(os.devnull, "w") as sink, Progress(len(requests), file=sink) as progress:
                await gen.run(requests, lambda r, a: answers.__setitem__(r.key, a), progress)
            return gen
        finally:
            await client.close()

    return asyncio.run(main()), answers, lines


CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from server_support import make_settings
from pytest_humaneval.generation.server import start_server

settings = make_settings(Path({tmp!r}), **{overrides!r})
handle = start_server(settings, notify=lambda message: print(message, flush=True))
print("HEALTHY", handle.ident, flush=True)
"""


def interruptible() -> None:
    """In a child the tests will Ctrl-C, between fork and exec: SIGINT's default back. A suite started where
    SIGINT is ignored (in the background by a shell without job control, or under nohup) would pass that on
    through exec, and Python then installs no KeyboardInterrupt handler: the child would ignore the test's
    Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn_child(tmp_path: Path, env: dict[str, str] | None = None, **overrides: Any) -> subprocess.Popen[str]:
    """A separate Python that starts a server and exits without stop(): for signals and the atexit path."""
    code = CHILD.format(tests=str(TESTS_DIR), tmp=str(tmp_path), overrides=overrides)
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=interruptible,
    )
