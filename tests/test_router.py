"""SGLang's own load balancer (the ``sglang-router`` package, 0.3.2) in front of two real SGLang CPU servers,
as one ``--humaneval-endpoint``.

The module starts two servers of the tiny Qwen3 (launched as the plugin would launch a CPU server) and
the router once. The first test runs the plugin through the router and checks both servers answered;
the second kills one server while it is generating an answer and checks the run still gets every
answer: the router retries a request whose worker dropped the connection on the other worker, and
its circuit breaker then takes the dead worker out of the rotation.

The router lives in a venv of its own (``PYTEST_HUMANEVAL_SGLANG_ROUTER_PYTHON``; default: where the
CI set-up puts it); without it the tests skip locally and fail under CI, as the SGLang ones do.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from plugin_support import cache_records
from server_support import alive, default_settings
from sglang_support import (
    CACHE_DIR,
    MAX_TOKENS,
    MODEL,
    STARTUP_TIMEOUT_S,
    end_run,
    group_pids,
    report,
    require_sglang_python,
    run_plugin,
    say,
    start_run,
    unavailable,
)
from tiny_server import free_port

from pytest_humaneval.generation.launch import plan_launch

pytestmark = pytest.mark.slow

ROUTER_VERSION = "0.3.2"
ROUTER_PYTHON = Path(
    os.environ.get("PYTEST_HUMANEVAL_SGLANG_ROUTER_PYTHON")
    or CACHE_DIR / f"sglang-router-{ROUTER_VERSION}" / "bin" / "python"
)
#: The router answers /health at once but registers its workers in the background (~1.5 s here).
ROUTER_READY_TIMEOUT_S = 60
#: Attempts per request. The router re-picks a worker for each attempt, and round robin may pick the
#: dead one again until the circuit breaker opens after CB_FAILURES failed sends to it: with more
#: attempts than that, no request can run out of them (the defaults, 5 and 10, lost none in 3 runs here,
#: but do not rule it out).
CB_FAILURES = 10
ROUTER_ATTEMPTS = CB_FAILURES + 1
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ANSWERED = '"POST /v1/chat/completions HTTP/1.1" 200'


def require_router_python() -> Path:
    if not os.access(ROUTER_PYTHON, os.X_OK):
        unavailable(
            f"no sglang-router venv at {ROUTER_PYTHON} (PYTEST_HUMANEVAL_SGLANG_ROUTER_PYTHON; "
            f"pip install sglang-router=={ROUTER_VERSION} into a venv of its own)"
        )
    return ROUTER_PYTHON


@dataclass
class Worker:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def answered(self) -> int:
        return self.text().count(ANSWERED)


@dataclass
class Routed:
    workers: list[Worker]
    router: subprocess.Popen[bytes]
    router_log: Path
    port: int
    ready_s: float
    root: Path
    model: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def router_text(self) -> str:
        return ANSI.sub("", self.router_log.read_text(errors="replace"))

    def args(self, output: Path, *extra: str) -> list[str]:
        """A --humaneval-debug run (HumanEval/0..3) through the router, with small answers."""
        return [
            sys.executable,
            *("-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly"),
            "--humaneval-debug",
            f"--humaneval-model={MODEL}",
            f"--humaneval-endpoint={self.endpoint}",
            f"--humaneval-output={output}",
            *extra,
        ]


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def status(url: str) -> int:
    """The HTTP status of GET ``url`` (an error status raises HTTPError, an OSError)."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path, timeout: float) -> float:
    """Seconds until ``ready()`` is true; fails with the log's tail if ``proc`` exits or time runs out."""
    started = time.monotonic()
    command = cast("list[str]", proc.args)  # both Popen calls here pass a list
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            pytest.fail(f"{command[:4]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ready():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"{command[:4]} not ready within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def healthy_workers(port: int) -> int:
    workers = get_json(f"http://127.0.0.1:{port}/workers")["workers"]
    return sum(1 for w in workers if w["is_healthy"])


def start_worker(python: Path, model: Path, root: Path, index: int) -> Worker:
    """One SGLang server of ``model``, with the arguments and environment the plugin gives a CPU server."""
    port = free_port()
    settings = default_settings(root, model=MODEL, model_path=model, gpus="none", port=port)
    launch = plan_launch(settings, str(model), "127.0.0.1", port, memory=lambda: None)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1", **launch.env}
    log = root / f"server{index}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(python), *launch.args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own group: the tests kill the server with its scheduler processes
        )
    return Worker(port, proc, log)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while group_pids(proc.pid) and time.monotonic() < deadline:
            proc.poll()
            time.sleep(0.2)
        if not group_pids(proc.pid):
            break
    proc.wait()


@pytest.fixture(scope="module")
def routed(
    tiny_qwen3_40k: Path, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Routed]:
    sglang = require_sglang_python()
    router_python = require_router_python()
    root = tmp_path_factory.mktemp("sglang-router")
    workers: list[Worker] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        started = time.monotonic()
        for index in range(2):  # both start at once: ~30 s on 2 quiet cores, like one alone
            workers.append(start_worker(sglang, tiny_qwen3_40k, root, index))
            procs.append(workers[-1].proc)
        for w in workers:

            def healthy(w: Worker = w) -> bool:
                return status(f"{w.url}/health") == 200

            wait_until(healthy, w.proc, w.log, STARTUP_TIMEOUT_S)
            w.startup_s = time.monotonic() - started

        port = free_port()
        router_log = root / "router.log"
        with router_log.open("wb") as out:
            router = subprocess.Popen(
                [
                    str(router_python),
                    *("-m", "sglang_router.launch_router"),
                    *("--worker-urls", *(w.url for w in workers)),
                    *("--host", "127.0.0.1", "--port", str(port)),
                    *("--policy", "round_robin"),  # the default, cache_aware, spread 24 requests 12/12 too
                    *("--retry-max-retries", str(ROUTER_ATTEMPTS)),
                    *("--cb-failure-threshold", str(CB_FAILURES)),
                    # its metrics listen on 0.0.0.0:29000 otherwise: a second run would collide
                    *("--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port())),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(router)
        # /health says 200 before the workers are registered (requests get 503 until then): wait for both.
        ready = wait_until(lambda: healthy_workers(port) == 2, router, router_log, ROUTER_READY_TIMEOUT_S)
        say(
            pytestconfig,
            f"sglang-router {ROUTER_VERSION} (round_robin) in front of 2 real SGLang CPU servers: "
            f"servers healthy after {workers[0].startup_s:.1f} s and {workers[1].startup_s:.1f} s "
            f"(started together), router ready {ready:.1f} s after its start",
        )
        yield Routed(workers, router, router_log, port, ready, root, tiny_qwen3_40k)
    finally:
        for proc in procs:
            stop_group(proc)


def test_one_endpoint_spreads_the_plugins_requests_over_both_servers(
    routed: Routed, pytestconfig: pytest.Config
) -> None:
    models = get_json(f"{routed.endpoint}/models")
    assert [m["id"] for m in models["data"]] == [MODEL], models
    before = [w.answered() for w in routed.workers]
    output = routed.root / "spread"
    started = time.monotonic()
    run = run_plugin(routed.args(output, f"--humaneval-max-tokens={MAX_TOKENS}"), routed.root)
    wall = time.monotonic() - started
    assert run.returncode in (0, 1), run.output  # 1: the random model's answers fail their tests
    assert f"4 samples of {MODEL}: 0 from the cache, 4 generated" in run.output, run.output
    assert "0 generation errors" in run.output, run.output
    records = cache_records(output)
    assert len(records) == 4 and all(r["attempts"] == 1 for r in records), records
    assert all(r["finish_reason"] in ("stop", "length") for r in records)
    assert report(output)["provenance"]["generation"]["endpoint"] == routed.endpoint

    served = [w.answered() - b for w, b in zip(routed.workers, before, strict=True)]
    assert sum(served) == 4 and min(served) >= 1, f"requests per server: {served}"
    say(pytestconfig, f"plugin run through the router: {served} requests per server, wall {wall:.1f} s")


def test_a_server_killed_mid_answer_costs_no_answer(routed: Routed, pytestconfig: pytest.Config) -> None:
    """One server dies while it generates: the router sends that request, and the rest, to the other."""
    doomed = routed.workers[1]
    assert alive(doomed.proc.pid), "the servers are up (this test kills one)"
    before = [w.answered() for w in routed.workers]
    doomed_offset = len(doomed.text())
    output = routed.root / "killed"
    args = routed.args(
        output,
        "--humaneval-samples=6",  # 24 requests
        "--humaneval-concurrency=2",
        "--humaneval-max-tokens=400",  # ~0.5 s each: the doomed server is mid-answer most of the time
    )
    started = time.monotonic()
    proc = start_run(args, routed.root)
    try:
        killed_with = -1
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            tail = doomed.text()[doomed_offset:].rpartition(ANSWERED)[2]
            if len(cache_records(output)) >= 4 and "Decode batch" in tail:  # generating an answer now
                killed_with = len(cache_records(output))
                os.killpg(doomed.proc.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        out, _ = proc.communicate(timeout=300)
    finally:
        end_run(proc)
    wall = time.monotonic() - started
    assert killed_with >= 0, f"the run ended before the doomed server was caught mid-answer:\n{out}"
    doomed.proc.wait(10)
    assert not alive(doomed.proc.pid)

    assert proc.returncode in (0, 1), out
    assert f"24 samples of {MODEL}: 0 from the cache, 24 generated" in out, out
    assert "0 generation errors" in out, out
    records = cache_records(output)
    assert len(records) == 24 and {r["attempts"] for r in records} == {1}, "the router hid the failure"

    served = [w.answered() - b for w, b in zip(routed.workers, before, strict=True)]
    assert sum(served) >= 24 and served[0] > served[1], f"requests per server: {served}"
    router_log = routed.router_text()
    failed_sends = router_log.count(f"Failed to send typed request worker_url={doomed.url}")
    assert failed_sends >= 1, router_log[-3000:]
    assert "Circuit breaker state transition: closed -> open" in router_log, router_log[-3000:]
    say(
        pytestconfig,
        f"killed one server mid-answer after {killed_with} of 24 answers: all 24 arrived, "
        f"requests per server {served}, {failed_sends} failed sends retried by the router, wall {wall:.1f} s",
    )
