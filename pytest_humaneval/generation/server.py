"""The model server that generation talks to: SGLang in a Docker container (default) or a local process.

One job: hand the generation pipeline a healthy OpenAI-compatible base URL, and make sure the server is
gone afterwards - at ``stop()``, on Ctrl-C or SIGTERM, on errors and at interpreter exit - unless
``--humaneval-keep-server`` asks to leave it running for the next run to reuse.

Every server gets a random API key: the port is published on 127.0.0.1 only, but on a shared GPU machine
other local users (or a stale client) could otherwise send requests to it. SGLang leaves ``/health`` open,
so the readiness wait needs no key.
"""

from __future__ import annotations

import logging

from ..errors import HumanEvalError
from ..options import Settings
from .server_docker import _DockerServer
from .server_lifecycle import Notify, ServerHandle, _Server, _track
from .server_process import _ProcessServer

log = logging.getLogger(__name__)


def start_server(settings: Settings, notify: Notify | None = None) -> ServerHandle:
    """Start (or reuse) the server ``settings`` describe and block until ``/health`` answers 200.

    ``notify`` gets one-line progress messages (pulling, reusing, waiting); default: this module's logger.
    On any failure, Ctrl-C included, whatever was started is removed before the exception propagates.
    """
    note = notify or log.info
    server: _Server
    if settings.server == "process":
        server = _ProcessServer(settings, note)
    else:
        server = _DockerServer(settings, note)
    _track(server)
    try:
        handle = server.start()
    except BaseException:
        try:
            server.close(keep=False)
        except HumanEvalError as e:  # the start-up failure is the news; still say what was left behind
            note(str(e))
        raise
    handle._server = server
    return handle
