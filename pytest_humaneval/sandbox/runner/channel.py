"""The socket between the judge and the program's process: typed frames, requests and their replies.

A frame is the framing module's length, then one byte naming its kind, then the payload. Either side may
ask while it waits for an answer (the program calls a function the test passed it; the test's callback calls
the program again), so waiting for a reply serves the other side's requests in between.

Kinds, judge to program: ``D`` define the solution, ``C`` one operation on a program object (call, getattr,
iter, next, len, getitem, bool, str), ``B`` a batch of calls answered one by one as each is done, ``X`` stop
the batch. Program to judge: ``d`` the definition's outcome, ``K`` call back one of the test's callables,
``x`` the batch has stopped. Both ways: ``R`` a result, ``E`` an exception.
"""

import os
import select
import time
from collections import deque

from .framing import HEAD

REPLIES = frozenset(b"REdx")
#: What one read() asks for while no large frame is under way. Below glibc's mmap threshold (128 KB): a
#: larger request is a fresh mmap, zeroed pages, an mremap and an munmap for every message, in every
#: forked program, whose malloc starts with the zygote's default threshold.
READ_SIZE = 1 << 16
#: The most one read() asks for (a large answer arriving).
READ_MAX = 1 << 20


class ChannelClosed(BaseException):
    """The other side closed the socket or died (a BaseException: a test's ``except Exception`` must not
    swallow the end of the program)."""


class FrameTooLarge(Exception):
    pass


class Channel:
    def __init__(self, fd, serve=None, max_frame=None):
        self.fd = fd
        self.serve = serve  # (kind, payload) -> None: answers a request of the other side
        self.max_frame = max_frame
        self.buf = bytearray()
        self.frames = deque()
        self.closed = False

    def send(self, kind, payload=b""):
        data = memoryview(HEAD.pack(len(payload) + 1) + kind + payload)
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError as e:
            self.closed = True
            raise ChannelClosed(str(e)) from None

    def _fill(self, timeout):
        """Read what is there (waiting up to ``timeout`` seconds; None: block). False if nothing came."""
        if self.closed:
            raise ChannelClosed("closed")
        if timeout is not None:
            if not select.select([self.fd], [], [], max(0.0, timeout))[0]:
                return False
        try:
            chunk = os.read(self.fd, self._want())
        except OSError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise ChannelClosed("the other side closed the channel")
        self.buf += chunk
        while len(self.buf) >= 4:
            (size,) = HEAD.unpack_from(self.buf)
            if size == 0 or (self.max_frame is not None and size > self.max_frame):
                self.closed = True
                raise FrameTooLarge(f"a message of {size} bytes")
            if len(self.buf) < 4 + size:
                break
            self.frames.append((self.buf[4:5], bytes(self.buf[5 : 4 + size])))
            del self.buf[: 4 + size]
        return True

    def _want(self):
        """How much to ask read() for: READ_SIZE, or the rest of a larger frame under way (up to READ_MAX)."""
        if len(self.buf) >= 4:
            (size,) = HEAD.unpack_from(self.buf)
            return min(max(READ_SIZE, 4 + size - len(self.buf)), READ_MAX)
        return READ_SIZE

    def recv(self, deadline=None):
        """The next frame (kind, payload); TimeoutError once ``deadline`` (monotonic) passes with nothing of
        it here. A frame that has begun to arrive is waited for whole: the deadline bounds the other side's
        work, not the transfer of a large answer (the supervisor's limit bounds that)."""
        while not self.frames:
            timeout = None if deadline is None or self.buf else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                raise TimeoutError
            self._fill(timeout)
        kind, payload = self.frames.popleft()
        return bytes(kind), payload

    def poll(self):
        """A frame if one is there now, else None (never waits)."""
        if not self.frames:
            self._fill(0)
        if self.frames:
            kind, payload = self.frames.popleft()
            return bytes(kind), payload
        return None

    def reply(self, deadline=None):
        """The next reply, answering the other side's requests while it waits."""
        while True:
            kind, payload = self.recv(deadline)
            if kind[0] in REPLIES:
                return kind, payload
            self.serve(kind, payload)
