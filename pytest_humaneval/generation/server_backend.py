"""The server backend (``--humaneval-backend=server``): answers from an OpenAI-compatible server through
:mod:`.client`, either the user's (``--humaneval-endpoint``) or SGLang that :mod:`.server` starts.

A started server belongs to the session, not to one generation: a second ``--think`` mode reuses it, the
user's tests call it through the ``humaneval_endpoint`` fixture, and :func:`stop_server` stops it at the end
(on every way out), unless ``--humaneval-keep-server`` leaves it for the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import Iterator
from typing import Any

import pytest

from ..errors import HumanEvalError
from ..fixtures import Endpoint
from ..options import Settings
from ..reporting.provenance import public_url
from .backend import ModelBackend, OnAnswer, say, terminal
from .client import Generator, Request, check_endpoint, make_client, openai_module
from .progress import Progress
from .server_lifecycle import ServerHandle

#: The server this session started (stopped at the end unless --humaneval-keep-server).
SERVER_KEY = pytest.StashKey[ServerHandle]()

CACHED = "every completion came from the cache, so no server was started"


class ServerBackend(ModelBackend):
    """An OpenAI-compatible endpoint: the one given, or SGLang started by :meth:`start` (or earlier this
    session)."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        super().__init__(config, settings)
        self.source = "endpoint" if settings.endpoint else settings.server
        self._endpoint = _given(settings) if settings.endpoint else None
        self._handle: ServerHandle | None = None

    def describe(self) -> dict[str, Any]:
        if self._endpoint is not None:
            return {"endpoint": public_url(self._endpoint.base_url), **self.model_facts()}
        facts = self.model_facts()
        if self.settings.server == "docker":
            facts["image"] = self.settings.image
        return facts

    def start(self) -> None:
        openai_module()  # before a server starts: a missing package fails now, and its import (about 0.4 s)
        # is start-up, not generation time
        if self.settings.endpoint:
            return
        handle = self.config.stash.get(SERVER_KEY, None)  # --think=both: the second mode, same server
        if handle is None:
            from .server import start_server

            handle = start_server(self.settings, notify=lambda line: say(self.config, f"humaneval: {line}"))
            self.config.stash[SERVER_KEY] = handle
        self._handle = handle
        self._endpoint = Endpoint(
            base_url=handle.base_url, model=handle.model, api_key=handle.api_key or "EMPTY"
        )

    @property
    def startup_s(self) -> float | None:
        return (self._handle.startup_s or None) if self._handle is not None else None

    def generate(self, requests: list[Request], on_answer: OnAnswer) -> dict[str, Any]:
        endpoint = self._endpoint
        if endpoint is None:
            raise RuntimeError("ServerBackend.generate() before start()")
        facts: dict[str, Any] = {"endpoint": public_url(endpoint.base_url)}
        handle = self._handle
        if handle is not None:
            facts["server"] = {
                "startup_s": handle.startup_s,
                "reused": handle.reused,
                "reasoning_parser": handle.reasoning_parser,
                "args": handle.args,
            }
        connection: dict[str, Any] = {}
        facts["connection"] = connection
        with (
            terminal(self.config) as out,
            Progress(len(requests), file=out) as progress,
            _old_heap_frozen(),
        ):
            coroutine = self._run(endpoint, requests, on_answer, progress, connection)
            facts["dropped_params"] = asyncio.run(coroutine)
        return facts

    async def _run(
        self,
        endpoint: Endpoint,
        requests: list[Request],
        on_answer: OnAnswer,
        progress: Progress,
        stats: dict[str, Any],
    ) -> list[str]:
        """Generate ``requests``; return the optional fields the server refused. ``stats`` receives what the
        connection met (:meth:`Generator.stats`), also when the run stops."""
        s = self.settings
        client = make_client(endpoint.base_url, endpoint.api_key, s.request_timeout)
        try:
            await check_endpoint(client, endpoint.base_url, endpoint.model)
            generator = Generator(
                client,
                base_url=endpoint.base_url,
                model=endpoint.model,
                sampling=self.sampling,
                concurrency=s.concurrency,
                timeout=s.request_timeout,
                grace=s.server_grace,
                notify=progress.note,
            )
            try:
                await generator.run(requests, on_answer, progress)
            finally:
                stats.update(generator.stats())
            return generator.dropped
        finally:
            await client.close()

    def endpoint(self) -> Endpoint | str:
        return self._endpoint or CACHED


def _given(settings: Settings) -> Endpoint:
    """``--humaneval-endpoint``, its model and its API key."""
    assert settings.endpoint
    return Endpoint(
        base_url=settings.endpoint.rstrip("/"),
        model=settings.model,
        api_key=settings.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
    )


@contextlib.contextmanager
def _old_heap_frozen() -> Iterator[None]:
    """``gc.freeze()`` while the requests run: the client allocates fast enough to trigger full
    collections, each a walk over everything pytest and the plugins hold (about 70 ms of a 2 s run
    against SGLang on the CPU); frozen, a collection sees only what generation allocates."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def stop_server(config: pytest.Config, settings: Settings) -> None:
    """Stop the server this session started (on every exit path), unless it is to be kept."""
    handle = config.stash.get(SERVER_KEY, None)
    if handle is None:
        return
    del config.stash[SERVER_KEY]
    try:
        handle.stop()  # under --humaneval-keep-server this leaves it running for the next run
    except HumanEvalError as e:  # at the very end: say it, rather than a traceback from unconfigure
        say(config, f"humaneval: {e}")
        return
    if settings.keep_server:
        say(config, f"humaneval: server left running at {handle.base_url} (--humaneval-keep-server)")
