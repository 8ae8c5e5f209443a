"""pytest-humaneval: benchmark code LLMs on HumanEval as a pytest plugin."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata when first asked for: a repo's own pytest runs,
    which import this package through its entry point, need not pay for the lookup."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from importlib.metadata import version

        found = version("pytest-humaneval")
    except Exception:  # not installed (running from a checkout)
        found = "0.0.0+local"
    globals()["__version__"] = found
    return found
