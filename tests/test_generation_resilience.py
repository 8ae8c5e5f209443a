"""Generation against a server that drops connections, restarts, or dies.

The servers are real: ``openai_stub.py`` over real sockets, in this process where a test only needs
its behaviour (a burst of connection resets), in a process of its own where the test kills it and
starts it again on the same port (``spawn_stub``). Requests are counted server-side, in a log the
server appends one line to per answer sent (it survives SIGKILL): what each run asked for, and
that no answer is asked for twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_stub import StubConfig, spawn_stub, stub_server
from plugin_support import cache_records
from server_support import default_settings, run_generator
from tiny_server import free_port

from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.generation.client import (
    Answer,
    Generator,
    Request,
    ServerGone,
    sampling_from,
)
from pytest_humaneval.generation.prompts import DEFAULT_TEMPLATE, render
from pytest_humaneval.generation.resilience import Liveness, ServerGoneError, Window

HUMANEVAL = load_dataset("humaneval")


def humaneval_requests() -> list[Request]:
    """One request per HumanEval problem, with the default prompt (the stub recognises the problem)."""
    return [
        Request(p.task_id, 0, p.task_id, [{"role": "user", "content": render(DEFAULT_TEMPLATE, p)}])
        for p in HUMANEVAL
    ]


def generate(
    url: str, requests: list[Request], tmp_path: Path, *, concurrency: int = 256, grace: float = 30.0
) -> tuple[Generator, dict[str, Answer], list[str]]:
    """Run the Generator as the plugin does: the answers by key, and the lines it printed."""
    sampling = sampling_from(default_settings(tmp_path, model="stub-model", seed=0))
    return run_generator(url, requests, sampling, concurrency=concurrency, timeout=60, grace=grace)


def served(log: Path) -> list[tuple[str, int]]:
    """(task_id, seed) of every answer the server sent, from its log."""
    if not log.exists():
        return []
    return [(d["task_id"], d["seed"]) for d in map(json.loads, log.read_text().splitlines())]


@contextlib.contextmanager
def stub_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc, url = spawn_stub(*args)
    try:
        yield proc, url
    finally:
        proc.kill()
        proc.wait()


# -- the window: fewer requests in flight after connection errors, and back ---------------------------


def test_window_halves_once_per_burst_and_grows_back() -> None:
    async def main() -> None:
        window = Window(8)
        async with contextlib.AsyncExitStack() as held:
            for _ in range(8):
                await held.enter_async_context(window.slot())
            ninth = asyncio.ensure_future(held.enter_async_context(window.slot()))
            await asyncio.sleep(0.01)
            assert window.in_flight == 8 and not ninth.done()  # the ceiling holds
            sent = time.monotonic()
            await asyncio.sleep(0.01)
            for _ in range(8):  # a burst: eight requests sent together fail together
                window.congested(sent)
            assert (window.limit, window.cuts) == (4, 1)  # one cut for the burst, not eight
            window.congested(time.monotonic())  # a request sent after the cut fails: a new signal
            assert (window.limit, window.cuts) == (2, 2)
            ninth.cancel()
        assert window.in_flight == 0
        for _ in range(3):
            window.congested(time.monotonic())
            await asyncio.sleep(0.001)
        assert window.limit == 1 == window.smallest  # never below one
        for expected in range(2, 9):  # additive: one more per answer
            window.answered()
            assert window.limit == expected
        for _ in range(100):
            window.answered()
        assert window.limit == 8  # never above the ceiling

    asyncio.run(main())


def test_window_serves_waiters_first_come_first_served() -> None:
    async def main() -> list[int]:
        window = Window(1)
        order: list[int] = []

        async def one(i: int) -> None:
            async with window.slot():
                order.append(i)
                await asyncio.sleep(0.001)

        await asyncio.gather(*(one(i) for i in range(20)))
        return order

    assert asyncio.run(main()) == list(range(20))


# -- the liveness check --------------------------------------------------------------------------------


def test_liveness_asks_health_then_models_and_gives_up_after_the_grace_period() -> None:
    async def check(url: str, grace: float, lines: list[str]) -> tuple[bool, Liveness]:
        liveness = Liveness(url, "EMPTY", grace, lines.append)
        try:
            return await liveness.check(since=time.monotonic()), liveness
        finally:
            liveness.close()

    for health in (True, False):  # without /health (404), /v1/models answers for the server
        with stub_server(StubConfig(health=health)) as stub:
            outage, liveness = asyncio.run(check(stub.base_url, 5, []))
        assert outage is False and liveness.probes == 1 and liveness.outages == 0

    url = f"http://127.0.0.1:{free_port()}/v1"
    lines: list[str] = []
    started = time.monotonic()
    with pytest.raises(ServerGoneError) as e:
        asyncio.run(check(url, 1.5, lines))
    took = time.monotonic() - started
    assert 1.5 <= took < 10
    assert str(e.value) == (
        f"the model server at {url} stopped answering: still unreachable (Connection refused) after the "
        "grace period of 1.5 s (--humaneval-server-grace)"
    )
    assert lines == [
        f"humaneval: the server at {url} does not answer (Connection refused); waiting up to 1.5 s for it "
        "(--humaneval-server-grace)"
    ]


def test_no_request_is_sent_while_a_connection_error_is_being_checked() -> None:
    """From a connection error until the probe answers, new requests wait: sent into a server that just went
    away, each would fail at once and count one more connection error (7 for 2 in flight, seen in CI)."""

    async def main() -> tuple[bool, bool, bool]:
        liveness = Liveness("http://127.0.0.1:9/v1", "EMPTY", 5, lambda line: None)
        liveness._probe = lambda: time.sleep(0.3)  # type: ignore[method-assign]  # answers, 0.3 s later
        checking = asyncio.ensure_future(liveness.check(since=time.monotonic()))
        await asyncio.sleep(0)  # the check starts its probe
        waiting = asyncio.ensure_future(liveness.ready())
        await asyncio.sleep(0.1)
        held = not waiting.done()
        outage = await checking
        await asyncio.sleep(0)
        liveness.close()
        return held, waiting.done(), outage

    assert asyncio.run(main()) == (True, True, False)


# -- connection resets from a server that is up ---------------------------------------------------------


def test_a_burst_of_connection_resets_is_retried_without_a_storm(tmp_path: Path) -> None:
    """40 of 164 concurrent requests are reset (ReadError, as from an overflowing backlog): the run used to
    stop with "stopped answering (ReadError) after 1 attempts"; each reset now costs one more request."""
    with stub_server(StubConfig(reset_connections=40)) as stub:
        gen, answers, lines = generate(stub.base_url, humaneval_requests(), tmp_path)
        received = stub.chat_requests
    assert len(answers) == 164 and all(a.error is None for a in answers.values())
    assert received == 164 + 40  # every reset retried once, nothing more
    assert sum(a.attempts for a in answers.values()) == 164 + 40
    stats = gen.stats()
    assert stats["connection_errors"] == 40 and stats["outages"] == 0 and lines == []
    assert stats["window_cuts"] >= 1 and stats["window_min"] <= 82  # fewer in flight after the burst


@pytest.mark.slow
def test_small_backlog_server_answers_all_164_concurrent_requests(tmp_path: Path) -> None:
    """A real server with Python's http.server listen backlog (5), 164 requests at once: all answered,
    each problem answered once by the server, however many connections the burst reset."""
    log = tmp_path / "served.jsonl"
    with stub_process("--backlog=5", "--canonical", f"--log={log}") as (_, url):
        gen, answers, _ = generate(url, humaneval_requests(), tmp_path)
    assert len(answers) == 164 and all(a.error is None for a in answers.values())
    assert Counter(task for task, _ in served(log)) == Counter(p.task_id for p in HUMANEVAL)
    stats = gen.stats()
    assert stats["outages"] == 0
    assert sum(a.attempts for a in answers.values()) == 164 + stats["connection_errors"]
    assert stats["connection_errors"] < 164  # one resend per reset, and fewer in flight: no storm (0-72 seen)
    print(f"small backlog: {stats}")


# -- a server that restarts, a server that is gone --------------------------------------------------


def run_pytest(cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_answers(root: Path, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while len(cache_records(root / ".humaneval")) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run produced no answers"
        time.sleep(0.02)


EXPECTED = {(f"HumanEval/{t}", s) for t in range(4) for s in range(5)}  # --humaneval-debug, 5 samples
ARGS = ("--humaneval-debug", "--humaneval-samples=5", "--humaneval-seed=0", "--humaneval-model=stub-model")


@pytest.mark.slow
def test_server_restarted_on_the_same_port_the_run_completes(pytester: pytest.Pytester) -> None:
    """Killed mid-run and up again 10 s later: the run waits (default grace, 30 s), completes, and counts
    every answer once."""
    port, log = free_port(), pytester.path / "served.jsonl"
    server = ("--canonical", "--latency=0.2", f"--port={port}", f"--log={log}")
    with stub_process(*server) as (first, url):
        proc = run_pytest(pytester.path, *ARGS, f"--humaneval-endpoint={url}", "--humaneval-concurrency=2")
        wait_for_answers(pytester.path, 6, proc)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        time.sleep(10)
        with stub_process(*server):
            out, err = proc.communicate(timeout=120)
            finished = time.monotonic() - killed_at
    assert proc.returncode == pytest.ExitCode.OK, out + err
    assert f"humaneval: the server at {url} does not answer (Connection refused); waiting up to 30 s" in out
    assert f"humaneval: the server at {url} answers again after " in out
    assert 10 <= finished < 60
    records = cache_records(pytester.path / ".humaneval")
    assert Counter((r["task_id"], r["sample"]) for r in records) == Counter(EXPECTED)  # each once
    report = json.loads((pytester.path / ".humaneval" / "report.json").read_text())
    assert (report["passed"], report["total"], report["pass_at_k"]["1"]) == (20, 20, 1.0)
    connection = report["generation"]["connection"]
    assert connection["outages"] == 1 and 9 <= connection["outage_s"] < 15
    # while the server was down: the probes (every 2 s at most often), and no request beyond the few in flight
    assert connection["probes"] < 15 and connection["connection_errors"] <= 6
    sent = served(log)  # across both processes: every answer; at most the two in flight at the kill twice
    assert set(sent) == EXPECTED and len(sent) <= len(EXPECTED) + 2


@pytest.mark.slow
def test_server_killed_for_good_stops_with_one_message_and_the_rerun_asks_for_the_rest(
    pytester: pytest.Pytester,
) -> None:
    """The grace period (ini key here) runs out: one message; every answer sent is cached; the rerun
    against a new server asks for exactly the answers that never arrived."""
    pytester.makeini("[pytest]\nhumaneval_server_grace = 2\n")
    log = pytester.path / "served.jsonl"
    with stub_process("--canonical", "--latency=0.3", f"--log={log}") as (_, url):
        proc = run_pytest(pytester.path, *ARGS, f"--humaneval-endpoint={url}", "--humaneval-concurrency=1")
        wait_for_answers(pytester.path, 3, proc)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out + err
    assert "Traceback" not in out + err
    (line,) = [x for x in err.splitlines() if x.startswith("ERROR:")]
    assert line.startswith(
        f"ERROR: the model server at {url} stopped answering: still unreachable (Connection refused) "
        "after the grace period of 2 s (--humaneval-server-grace). The "
    )
    assert line.endswith("fix the cause and rerun to generate the rest")
    kept = {(r["task_id"], r["sample"]) for r in cache_records(pytester.path / ".humaneval")}
    assert 3 <= len(kept) < 20 and f"The {len(kept)} answers that arrived are cached in" in line
    assert set(served(log)) <= kept  # every answer the server sent is in the cache

    rerun_log = pytester.path / "rerun.jsonl"
    with stub_process("--canonical", f"--log={rerun_log}") as (_, new_url):
        rerun = run_pytest(pytester.path, *ARGS, f"--humaneval-endpoint={new_url}")
        out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == pytest.ExitCode.OK, out + err
    asked = served(rerun_log)
    assert len(asked) == len(set(asked)) and set(asked) == EXPECTED - kept
    assert Counter(
        (r["task_id"], r["sample"]) for r in cache_records(pytester.path / ".humaneval")
    ) == Counter(EXPECTED)


def test_negative_grace_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--humaneval-debug", "--humaneval-endpoint=http://127.0.0.1:9/v1", "--humaneval-server-grace=-1"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --humaneval-server-grace=-1: give seconds >= 0"])


def test_server_gone_is_fatal(tmp_path: Path) -> None:
    """Nothing listens any more (grace 0): the run stops at the first failed probe, with ServerGone."""
    with stub_server() as stub:
        url = stub.base_url
    with pytest.raises(
        ServerGone, match=r"still unreachable \(Connection refused\) after the grace period of 0 s"
    ):
        generate(url, humaneval_requests()[:3], tmp_path, grace=0)
