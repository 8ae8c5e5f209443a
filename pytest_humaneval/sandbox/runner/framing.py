"""Frames: a 4-byte big-endian length, then the body (JSON unless said otherwise).

The one codec of the sandbox's pipes, used on both sides: the host and the runner (its protocol on
stdin/stdout), the runner and its zygotes (job bodies), and ``read_frame``'s deadline serves the host.
"""

from __future__ import annotations  # the annotations stay strings: Python 3.8 runs this file too

import json
import os
import select
import struct
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # the runner itself imports no typing
    from typing import Any

HEAD = struct.Struct(">I")


class Closed(Exception):
    """The other end closed the pipe (end of file before a whole frame)."""


def read_exact(fd, n, deadline=None):
    """``n`` bytes from ``fd``; ``Closed`` at end of file, ``TimeoutError`` past ``deadline`` (monotonic)."""
    chunks = []
    while n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if not select.select([fd], [], [], remaining)[0]:
                continue
        try:
            b = os.read(fd, min(n, 1 << 20))
        except BlockingIOError:  # a non-blocking descriptor (see write_body): wait for data
            select.select([fd], [], [])
            continue
        if not b:
            raise Closed("end of file")
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def read_body(fd, deadline=None):
    (size,) = HEAD.unpack(read_exact(fd, 4, deadline))
    return read_exact(fd, size, deadline)


def read_frame(fd: int, deadline: float | None = None) -> Any:
    """The next JSON frame from ``fd``."""
    return json.loads(read_body(fd, deadline))


def write_body(fd: int, body: bytes) -> None:
    """Write one frame, all of it. The descriptor may be non-blocking although we never made it so (a
    container's stdio is shared with the container runtime): a full pipe then means wait, not die."""
    view = memoryview(HEAD.pack(len(body)) + body)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


def write_frame(fd: int, obj: object) -> None:
    write_body(fd, json.dumps(obj).encode())


class FrameBuffer:
    """Frames out of a byte stream read in arbitrary chunks (for readers that never block)."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, chunk):
        """Add ``chunk``; return the bodies of the frames now complete."""
        self.buf += chunk
        bodies = []
        while len(self.buf) >= 4:
            (size,) = HEAD.unpack_from(self.buf)
            if len(self.buf) < 4 + size:
                break
            bodies.append(bytes(self.buf[4 : 4 + size]))
            del self.buf[: 4 + size]
        return bodies
