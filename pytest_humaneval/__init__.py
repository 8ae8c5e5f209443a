"""pytest-humaneval: benchmark code LLMs on HumanEval as a pytest plugin."""

from __future__ import annotations

try:
    from importlib.metadata import version as _version

    __version__ = _version("pytest-humaneval")
except Exception:  # not installed (running from a checkout)
    __version__ = "0.0.0+local"
