"""Blocks of unprivileged uids, one per runner (or docker container pool), so that every program running at
once on this machine has a uid of its own: none can signal, trace or use up the process limit of another.

When pytest runs as root, each sandbox takes a block of ``BLOCK`` uids from a range no account uses (default
1,660,000,000 up; ``PYTEST_HUMANEVAL_UID_BASE`` moves it): its runner, its judge and one uid per program slot.
A block is held by an exclusive ``flock`` on its lock file for as long as the sandbox lives, across every
pytest process on the machine (xdist workers, parallel runs); a killed process's lock goes with it.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

BASE_ENV = "PYTEST_HUMANEVAL_UID_BASE"
DEFAULT_BASE = 1_660_000_000
#: uids per block: the most program slots a sandbox may have, plus its runner and judge.
BLOCK = 4096
BLOCKS = 256


def base() -> int:
    try:
        return int(os.environ.get(BASE_ENV, DEFAULT_BASE))
    except ValueError:
        return DEFAULT_BASE


class UidBlock:
    """A block of uids held until :meth:`release` (or this process's end)."""

    def __init__(self, first: int, fd: int) -> None:
        self.first = first
        self._fd: int | None = fd

    @classmethod
    def acquire(cls) -> UidBlock:
        folder = Path(tempfile.gettempdir()) / "pytest-humaneval-uids"
        folder.mkdir(mode=0o700, exist_ok=True)
        for k in range(BLOCKS):
            fd = os.open(folder / f"block-{k}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            return cls(base() + k * BLOCK, fd)
        raise RuntimeError(f"all {BLOCKS} uid blocks are in use on this machine")

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
