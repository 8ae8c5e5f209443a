"""Step 4 of the data path: run one program in isolation and bring back the raw verdict.

``runner/`` is the inside half (forks one child per program). The host halves start it either as a local
process (:mod:`.subprocess_sandbox`) or in warm containers (:mod:`.docker_sandbox`); :mod:`.kinds` names
them.
"""

from __future__ import annotations

from .base import Isolation, Job, Limits, PooledSandbox, Sandbox, describe_isolation
from .kinds import KINDS, make_sandbox, register_sandbox

__all__ = [
    "KINDS",
    "Isolation",
    "Job",
    "Limits",
    "PooledSandbox",
    "Sandbox",
    "describe_isolation",
    "make_sandbox",
    "register_sandbox",
]
