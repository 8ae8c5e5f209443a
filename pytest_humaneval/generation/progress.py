"""The generation progress display: a live rich bar on a terminal, a few plain lines otherwise (CI logs).

Shows done/total, requests in flight, output tokens per second and an ETA. The transformers backend reports
tokens as they are generated (``step``), so a slow CPU batch shows its rate, and a line at least every
``PLAIN_EVERY_S`` without a terminal, long before its first answer ends. The ETA comes from what was observed:
the tokens still to come (answers left times the mean length of the finished ones) at the observed token rate
where tokens are seen as they come; else the mean time of an answer, spread over the requests in flight.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

#: Without a terminal, print a line at every tenth of the work and at least this often.
PLAIN_EVERY_S = 30.0


class Progress:
    """Counts requests; ``show`` decides how they are displayed."""

    def __init__(self, total: int, *, file: IO[str] | None = None, label: str = "generating") -> None:
        self.total = total
        self.done = 0
        self.in_flight = 0
        self.tokens = 0  # of finished answers
        self.live_tokens = 0  # generated so far for answers still in flight (``step``)
        self.stepped = False  # tokens are reported as they come
        self.latencies: list[float] = []
        self.peak_in_flight = 0
        self.failed = 0
        self.label = label
        self.file = file or sys.stdout
        self.started = time.monotonic()
        self._live: Any = None
        self._task: Any = None
        self._next_plain = 0
        self._last_plain = self.started
        self._printed = -1  # the done count of the last plain line

    # -- events ---------------------------------------------------------------------------------

    def __enter__(self) -> Progress:
        if self.total and _is_tty(self.file):
            self._start_rich()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._refresh()
            self._live.stop()
            self._live = None
        else:
            self._plain(force=True)

    def sent(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self._refresh()

    def finished(self, tokens: int = 0, failed: bool = False, latency: float | None = None) -> None:
        self._count(tokens, failed, latency)
        self._refresh()
        self._plain()

    def finished_batch(self, answers: list[tuple[int, bool]]) -> None:
        """A batch whose answers ended together ((tokens, failed) each): counted at once, one line."""
        for tokens, failed in answers:
            self._count(tokens, failed, None)
        self.live_tokens = 0
        self._refresh()
        self._plain()

    def step(self, tokens: int) -> None:
        """``tokens`` more generated for the answers in flight (a decoding step of a batch)."""
        self.stepped = True
        self.live_tokens += tokens
        self._refresh()
        self._plain(tick=True)

    def _count(self, tokens: int, failed: bool, latency: float | None) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.done += 1
        self.tokens += tokens
        self.failed += failed
        if latency is not None:
            self.latencies.append(latency)

    def abandoned(self) -> None:
        """A request that was in flight when the run stopped."""
        self.in_flight = max(0, self.in_flight - 1)
        self._refresh()

    def note(self, line: str) -> None:
        """A line about the run (e.g. the server stopped answering), above the live display if any."""
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.file, flush=True)

    # -- numbers --------------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def tokens_per_s(self) -> float:
        return (self.tokens + self.live_tokens) / self.elapsed if self.elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        """Seconds left, from what was observed; None until an answer has ended."""
        if not self.done or self.done >= self.total:
            return None
        left = self.total - self.done
        if self.stepped:
            rate = self.tokens_per_s
            if rate <= 0:
                return None
            return max(0.0, left * self.tokens / self.done - self.live_tokens) / rate
        if self.latencies:
            per_answer = sum(self.latencies) / len(self.latencies)
            return per_answer * left / max(1, self.peak_in_flight)
        return self.elapsed / self.done * left

    def line(self) -> str:
        eta = self.eta_s()
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"humaneval: {self.label} {self.done}/{self.total} done, {self.in_flight} in flight{failed}, "
            f"{self.tokens_per_s:,.0f} tok/s, {self.elapsed:.0f} s elapsed"
            + (f", ETA {eta:.0f} s" if eta is not None and self.done < self.total else "")
        )

    # -- display --------------------------------------------------------------------------------

    def _start_rich(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._live = RichProgress(
            TextColumn(f"humaneval: {self.label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[in_flight]} in flight"),
            TextColumn("{task.fields[tps]} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=self.file),
            transient=False,
        )
        self._task = self._live.add_task(self.label, total=self.total, in_flight=0, tps="0")
        self._live.start()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(
                self._task, completed=self.done, in_flight=self.in_flight, tps=f"{self.tokens_per_s:,.0f}"
            )

    def _plain(self, force: bool = False, tick: bool = False) -> None:
        if self._live is not None or not self.total:
            return
        now = time.monotonic()
        step = max(1, self.total // 10)
        late = now - self._last_plain >= PLAIN_EVERY_S
        due = self.done >= self._next_plain or late
        if (due or force) and (self._printed != self.done or (tick and late)):
            self._next_plain = (self.done // step + 1) * step
            self._last_plain = now
            self._printed = self.done
            print(self.line(), file=self.file, flush=True)


def _is_tty(file: IO[str]) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False
