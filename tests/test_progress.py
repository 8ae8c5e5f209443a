"""The generation progress lines without a terminal: exact counts, a line while a slow batch runs, and an ETA
from what was observed (the transformers backend end to end: tests/test_generation_local.py)."""

from __future__ import annotations

import io
import time

import pytest

from pytest_humaneval.generation import progress as progress_mod
from pytest_humaneval.generation.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake)  # the time module progress reads its clock from
    return fake


def lines(out: io.StringIO) -> list[str]:
    return [line for line in out.getvalue().splitlines() if line]


def test_a_batch_that_ends_is_counted_whole(clock: Clock) -> None:
    """Eight answers ending together: one line, 8 done and none in flight (it said '1/164 done, 7 in flight')."""
    out = io.StringIO()
    with Progress(164, file=out) as progress:
        for _ in range(8):
            progress.sent()
        clock.now += 60
        progress.finished_batch([(100, False)] * 8)
        assert lines(out) == [
            "humaneval: generating 8/164 done, 0 in flight, 13 tok/s, 60 s elapsed, ETA 1170 s"
        ]


def test_a_slow_batch_prints_while_it_runs(clock: Clock) -> None:
    """Without a terminal, a batch of several minutes shows its token rate every PLAIN_EVERY_S."""
    out = io.StringIO()
    progress = Progress(16, file=out)
    for _ in range(8):
        progress.sent()
    for _ in range(int(progress_mod.PLAIN_EVERY_S) * 2 + 1):  # 8 tokens a second
        clock.now += 1
        progress.step(8)
    assert lines(out) == [
        "humaneval: generating 0/16 done, 8 in flight, 8 tok/s, 1 s elapsed",  # the first tokens
        "humaneval: generating 0/16 done, 8 in flight, 8 tok/s, 31 s elapsed",
        "humaneval: generating 0/16 done, 8 in flight, 8 tok/s, 61 s elapsed",
    ]


def test_the_eta_comes_from_the_observed_token_rate(clock: Clock) -> None:
    progress = Progress(16, file=io.StringIO())
    for _ in range(8):
        progress.sent()
    clock.now += 10
    progress.step(80)
    progress.finished_batch([(10, False)] * 8)  # 80 tokens in 10 s; answers of 10 tokens
    # 8 answers left x 10 tokens, at 8 tok/s
    assert progress.eta_s() == pytest.approx(10.0)


def test_the_eta_of_a_server_counts_the_requests_in_flight(clock: Clock) -> None:
    """Eight requests at once, the first ends after 10 s: 163 left at 8 at a time is ~200 s, not 1,630 s."""
    progress = Progress(164, file=io.StringIO())
    for _ in range(8):
        progress.sent()
    clock.now += 10
    progress.finished(300, latency=10.0)
    assert progress.eta_s() == pytest.approx(10.0 * 163 / 8)
