"""Never lose a completion: an append-only JSONL cache keyed by everything that determines an answer.

One file per run configuration (model, think mode, sampling parameters, extra body):
``OUTPUT/completions/<model>-<config hash>.cache.jsonl``. Each line is one sample, appended with a
single ``os.write`` under a file lock (``flock``) as soon as its answer arrives, so a crash loses at most the
requests in flight, and two pytest runs sharing the file never interleave lines. Each record's
``key`` adds the problem's hash, the exact messages and the sample index to the configuration, so a
changed problem or prompt template misses the cache while everything else is reused.

The cache may hold other problems, failed attempts and a half-written last line, so workers do not
read it: :func:`write_resolved` writes the samples of this run, one per (task, sample), to
``OUTPUT/completions/<model>-<config hash>.<dataset>.jsonl`` in the completions-file format (which
can be passed back with ``--humaneval-completions``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HumanEvalError
from ..files import write_atomically
from ..safe_text import json_line

#: Bump when the record format or the meaning of a key changes: old caches are then not reused.
CACHE_VERSION = 1

#: Records with these statuses are answers; a ``generation_error`` is retried on the next run.
REUSABLE = ("ok", "truncated", "no_code")

LOCK_TIMEOUT_S = 60.0
LOCK_POLL_S = 0.01


def _digest(obj: Any, size: int = 16) -> str:
    data = json_line(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()[:size]


@dataclass(frozen=True)
class RunSpec:
    """What determines an answer besides the problem, its messages and the sample index."""

    model: str
    think: bool
    sampling: dict[str, Any]  # temperature, top_p, top_k, min_p, max_tokens, seed (None = not sent)
    extra_body: dict[str, Any] = field(default_factory=dict)
    model_path: str | None = None
    #: An in-process backend and what else shapes its answers (e.g. dtype); None for servers, whose
    #: keys (and existing caches) stay as they were.
    backend: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {
            "v": CACHE_VERSION,
            "model": self.model,
            "model_path": self.model_path,
            "think": self.think,
            "sampling": self.sampling,
            "extra_body": self.extra_body,
        }
        if self.backend is not None:
            data["backend"] = self.backend
        return data

    @functools.cached_property
    def digest(self) -> str:  # once: key() needs it for every (problem, sample)
        return _digest(self.as_dict(), 12)

    def key(self, problem_digest: str, messages_digest: str, sample: int) -> str:
        """The cache key of one sample."""
        return _digest([self.digest, problem_digest, messages_digest, sample], 24)

    @property
    def stem(self) -> str:
        """File name stem: readable model name, then the configuration hash."""
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", self.model.rstrip("/").split("/")[-1]).strip("_.")
        return f"{name[:60] or 'model'}-{'think-' if self.think else ''}{self.digest}"


class CompletionCache:
    """The append-only cache file of one run configuration."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped_lines = 0
        self._fd: int | None = None

    @classmethod
    def for_spec(cls, output: Path, spec: RunSpec) -> CompletionCache:
        return cls(output / "completions" / f"{spec.stem}.cache.jsonl")

    def load(self) -> dict[str, dict[str, Any]]:
        """``{key: record}``: the last reusable record of each key; unreadable lines are skipped."""
        found: dict[str, dict[str, Any]] = {}
        self.skipped_lines = 0
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return found
        except OSError as e:
            raise HumanEvalError(
                f"{self.path}: cannot read the completion cache ({e.strerror or e}); check --humaneval-output"
            ) from None
        with fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:  # a line cut by a crash mid-write
                    self.skipped_lines += 1
                    continue
                if not isinstance(record, dict) or not isinstance(record.get("key"), str):
                    self.skipped_lines += 1
                    continue
                if record.get("status") in REUSABLE:
                    found[record["key"]] = record
        return found

    def append(self, record: dict[str, Any]) -> None:
        """Write one record now: a single ``os.write`` of the whole line, under the file lock."""
        data = (json_line(record) + "\n").encode()
        fd = self._open()
        with self._locked(fd):
            size = os.fstat(fd).st_size  # a line left without its newline by a crash: end it first
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

    def open(self) -> None:
        """Create the file now, so an unwritable output directory fails before any request is sent."""
        self._open()

    @contextlib.contextmanager
    def _locked(self, fd: int) -> Iterator[None]:
        """``flock`` on the open file itself: a few microseconds per record, where a separate lock file
        (opened, locked, closed for every record) cost hundreds - on the event loop, per answer."""
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise HumanEvalError(
                        f"{self.path} stayed locked for {LOCK_TIMEOUT_S:g} s: another pytest run is "
                        "writing this cache; wait for it, or give this run its own --humaneval-output"
                    ) from None
                time.sleep(LOCK_POLL_S)
                continue
            except OSError:  # a file system without flock (some network and FUSE mounts): write unlocked,
                yield  # each line is still one write
                return
            break
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _open(self) -> int:
        """The file, opened for appending once per run."""
        if self._fd is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError as e:
                raise HumanEvalError(
                    f"{self.path}: cannot write the completion cache ({e.strerror or e}); "
                    "check --humaneval-output"
                ) from None
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def write_resolved(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    """Write this run's samples as a completions file, atomically (workers never see half of it)."""
    write_atomically(path, "".join(json_line(record) + "\n" for record in records))
    return path
