"""The Docker daemon, reached the same way by both of its users (the docker sandbox and the SGLang
server's container): the SDK imported only when needed, a client that has answered a ping, and one
message naming the cause and the fix when either fails."""

from __future__ import annotations

import os
from typing import Any

from .errors import HumanEvalError, describe

DAEMON_FIX = (
    "start the Docker daemon (dockerd, `sudo systemctl start docker`, or Docker Desktop), check DOCKER_HOST "
    "and that your user may use its socket (the docker group)"
)


def import_docker(user: str, extra: str, instead: str) -> Any:
    """The ``docker`` SDK module. ``user``: the option that needs it; ``extra``: the pytest-humaneval extra
    that installs it; ``instead``: how to do without Docker."""
    try:
        import docker
    except ImportError:
        raise HumanEvalError(
            f"{user} needs the docker Python package, which is not installed: pip install "
            f"'pytest-humaneval[{extra}]', or {instead}"
        ) from None
    return docker


def connect(user: str, extra: str, instead: str, timeout: int = 60) -> Any:
    """A ``docker.DockerClient`` that has answered a ping, or one clear error naming cause and fix."""
    docker = import_docker(user, extra, instead)
    where = os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as e:
        cause = describe(e, typed=True)
        raise HumanEvalError(
            f"cannot reach the Docker daemon at {where} ({cause}): {DAEMON_FIX}; or {instead}"
        ) from None
    return client
