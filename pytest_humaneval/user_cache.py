"""Where things made once per machine live: ``$XDG_CACHE_HOME`` (``~/.cache``), as pip and Hugging Face do."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """The user's cache directory (``$XDG_CACHE_HOME``, else ``~/.cache``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()


def cache_dir(*parts: str) -> Path:
    """pytest-humaneval's own place in it: ``cache_home()/pytest-humaneval/PARTS``."""
    return cache_home().joinpath("pytest-humaneval", *parts)
