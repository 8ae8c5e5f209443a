"""Step 4 of the data path: run one program in isolation and bring back the raw verdict.

``runner.py`` is the inside half (forks one child per program). The host halves start it
either as a local process (:mod:`.subprocess_sandbox`) or in warm containers
(:mod:`.docker_sandbox`).
"""

from __future__ import annotations

from .base import Job, Limits, PooledSandbox, Sandbox, describe_isolation

KINDS = ("subprocess", "docker")


def make_sandbox(kind: str, limits: Limits, preload: tuple[str, ...] = (), **options: object) -> Sandbox:
    """Build the sandbox named by ``--humaneval-sandbox``."""
    if kind == "subprocess":
        from .subprocess_sandbox import SubprocessSandbox

        return SubprocessSandbox(limits, preload=preload, **options)  # type: ignore[arg-type]
    if kind == "docker":
        from .docker_sandbox import DockerSandbox

        size = int(options.pop("concurrency", 1))  # type: ignore[call-overload]
        if size > 1:  # one warm container per program in flight
            return PooledSandbox(lambda: DockerSandbox(limits, preload=preload, **options), size)  # type: ignore[arg-type]
        return DockerSandbox(limits, preload=preload, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown sandbox {kind!r}; choose one of {', '.join(KINDS)}")


__all__ = ["KINDS", "Job", "Limits", "Sandbox", "describe_isolation", "make_sandbox"]
