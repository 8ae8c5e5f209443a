"""Lost connections: is the server busy or gone? How many requests may be in flight?

A connection error (refused, reset, closed mid-answer) says little by itself: a server whose listen
backlog overflows under a burst of connections resets some of them while it works fine, and a
server that restarts refuses them for a while. So a connection error leads to a **liveness check**
(:class:`Liveness`): ``GET /health``, else ``GET /v1/models``, one probe at a time for the whole
run. While the server answers, the request is retried after a backoff and the **window**
(:class:`Window`, requests in flight) is halved; every answer widens it by one again, up to
``--humaneval-concurrency``. While the server does not answer, no request is sent and the
probe repeats; only when it stayed unreachable for the **grace period**
(``--humaneval-server-grace``) is the server declared gone.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from ..errors import clip

#: Seconds one probe request may take (a server too busy to answer /health in this long is not gone:
#: the probe is repeated until the grace period ends).
PROBE_TIMEOUT_S = 5.0
#: Seconds between probes while the server does not answer: doubling from the first to the last.
PROBE_INTERVAL_S = (0.25, 2.0)


class ServerGoneError(Exception):
    """The server stayed unreachable for the grace period (the message says so and what to do)."""


class Window:
    """AIMD limit on requests in flight: halved on a congestion signal, one more per answer.

    A cut halves what was really in flight (with 164 requests under a ceiling of 256, 82, not 128). A
    burst of failures cuts once: a failure counts only if its request was sent after the last cut (as
    TCP counts one loss per window). Each answer widens the window by one, so a cut is made good in
    as many answers as it took places: a server that resets a burst of connections, or restarts,
    costs a few retries, not the rest of the run's throughput. The window never drops below 1 nor
    grows above ``ceiling``.
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.size = float(ceiling)
        self.smallest = ceiling
        self.cuts = 0
        self.in_flight = 0
        self._cut_at = float("-inf")
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def limit(self) -> int:
        return max(1, int(self.size))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one place in flight (first come, first served)."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # _wake counted this request in before waking it
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
        try:
            yield
        finally:
            self._release()

    def answered(self) -> None:
        """Additive increase: one more in flight per answer."""
        if self.size < self.ceiling:
            self.size = min(float(self.ceiling), self.size + 1.0)
            self._wake()

    def congested(self, sent_at: float) -> None:
        """Multiplicative decrease, once per window: a request sent before the last cut does not cut.

        Called after the failed request left its slot (so it counts among those in flight here)."""
        if sent_at <= self._cut_at:
            return
        self._cut_at = time.monotonic()
        self.size = max(1.0, min(self.size, self.in_flight + 1) / 2)
        self.smallest = min(self.smallest, self.limit)
        self.cuts += 1

    def _release(self) -> None:
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)


class Liveness:
    """One shared answer to "is the server still there?" after connection errors.

    ``heard()`` records every answer the server gives; ``check(since)`` returns once the server has
    answered after ``since`` (at once when another request's answer already shows it), probing when
    nothing has. ``ready()`` holds new requests while a probe finds the server unreachable.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        grace: float,
        notify: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else None
        self.urls = [u for u in (f"{root}/health" if root else None, f"{self.base_url}/models") if u]
        self.api_key = api_key
        self.grace = grace
        self.notify = notify
        self.heard_at = time.monotonic()
        self.probes = 0
        self.outages = 0
        self.outage_s = 0.0
        self.gone: ServerGoneError | None = None
        self._failed_at = float("-inf")  # the last probe that got no answer
        self._up = asyncio.Event()
        self._up.set()
        self._probing: asyncio.Task[None] | None = None

    def heard(self) -> None:
        self.heard_at = time.monotonic()

    async def ready(self) -> None:
        """Wait while the server is unreachable; raise once it is declared gone."""
        await self._up.wait()
        if self.gone is not None:
            raise self.gone

    async def check(self, since: float) -> bool:
        """Return once the server has answered after ``since``: True when a probe found it unreachable in
        between (an outage, not a busy server); raise :class:`ServerGoneError` after the grace period."""
        while self.gone is None and self.heard_at < since:
            if self._probing is None or self._probing.done():
                # nothing new is sent until the probe answers: a request sent now into a server that just
                # went away fails at once, and each such failure is one more connection error and retry
                self._up.clear()
                self._probing = asyncio.ensure_future(self._probe_until_answered())
            await asyncio.shield(self._probing)
        if self.gone is not None:
            raise self.gone
        return self._failed_at >= since

    def close(self) -> None:
        if self._probing is not None:
            self._probing.cancel()

    async def _probe_until_answered(self) -> None:
        try:
            await self._probe_loop()
        finally:
            self._up.set()  # however it ends (answered, gone, cancelled), no request waits on it any more

    async def _probe_loop(self) -> None:
        down_since: float | None = None
        interval, longest = PROBE_INTERVAL_S
        while True:
            self.probes += 1
            cause = await asyncio.to_thread(self._probe)
            now = time.monotonic()
            if cause is None:
                self.heard_at = now
                if down_since is not None:
                    self.outage_s += now - down_since
                    waited = f"{now - down_since:.1f} s"
                    self.notify(f"humaneval: the server at {self.base_url} answers again after {waited}")
                return
            self._failed_at = now
            if down_since is None:
                down_since = now
                self.outages += 1
                self.notify(
                    f"humaneval: the server at {self.base_url} does not answer ({cause}); waiting up to "
                    f"{self.grace:g} s for it (--humaneval-server-grace)"
                )
            left = down_since + self.grace - now
            if left <= 0:
                self.outage_s += now - down_since
                self.gone = ServerGoneError(
                    f"the model server at {self.base_url} stopped answering: still unreachable ({cause}) "
                    f"after the grace period of {self.grace:g} s (--humaneval-server-grace)"
                )
                return  # the waiting requests are released: they raise self.gone
            await asyncio.sleep(min(interval, left))
            interval = min(longest, interval * 2)

    def _probe(self) -> str | None:
        """None when ``/health`` or ``/v1/models`` answers 200, else why not (blocking: run in a thread)."""
        cause = "no answer"
        for url in self.urls:
            request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.api_key}"})
            try:
                with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as response:
                    if response.status == 200:
                        return None
                    cause = f"{url} answered {response.status}"
            except urllib.error.HTTPError as e:
                cause = f"{url} answered {e.code}"
            except (OSError, ValueError, http.client.HTTPException) as e:
                reason = getattr(e, "reason", None) or e  # URLError wraps the socket's error
                text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
                cause = clip(text or type(reason).__name__)
        return cause
