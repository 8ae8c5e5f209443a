"""The sandbox kinds ``--humaneval-sandbox`` names: a registry of factories, each importing its module only
when asked for (the docker SDK is not imported by a run that does not use it). A kind registers a factory
``(limits, preload, **options) -> Sandbox``; ``options`` are what the run passes (``concurrency``, and the
docker sandbox's ``image`` and ``run_id``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import Limits, PooledSandbox, Sandbox

Factory = Callable[..., Sandbox]

SANDBOXES: dict[str, Factory] = {}


def register_sandbox(kind: str) -> Callable[[Factory], Factory]:
    """Register ``factory`` as the sandbox named ``kind``."""

    def register(factory: Factory) -> Factory:
        SANDBOXES[kind] = factory
        return factory

    return register


@register_sandbox("subprocess")
def _subprocess(limits: Limits, preload: tuple[str, ...], **options: Any) -> Sandbox:
    """One pre-forked runner in namespaces of its own, on this machine."""
    from .subprocess_sandbox import SubprocessSandbox

    return SubprocessSandbox(limits, preload=preload, **options)


@register_sandbox("docker")
def _docker(limits: Limits, preload: tuple[str, ...], **options: Any) -> Sandbox:
    """Warm hardened containers: one per program in flight."""
    from .docker_sandbox import DockerSandbox

    size = int(options.pop("concurrency", 1))
    if size > 1:
        return PooledSandbox(lambda: DockerSandbox(limits, preload=preload, **options), size)
    return DockerSandbox(limits, preload=preload, **options)


#: The built-in kinds, in the order the option lists them.
KINDS = tuple(SANDBOXES)


def make_sandbox(kind: str, limits: Limits, preload: tuple[str, ...] = (), **options: Any) -> Sandbox:
    """Build the sandbox named by ``--humaneval-sandbox`` (not started)."""
    try:
        factory = SANDBOXES[kind]
    except KeyError:
        raise ValueError(f"unknown sandbox {kind!r}; choose one of {', '.join(SANDBOXES)}") from None
    return factory(limits, preload, **options)
