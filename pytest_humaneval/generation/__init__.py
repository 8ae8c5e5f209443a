"""Step 2 of the data path, on the controller only: from the dataset to a completions file.

:mod:`.pipeline` runs it (the ``pytest_humaneval_generate`` hook, the cache, a server or a local model);
:mod:`.client` sends the requests, :mod:`.extract` takes the code out of each answer, :mod:`.cache`
keeps every answer as it arrives, :mod:`.server` and :mod:`.launch` start SGLang, :mod:`.local` runs
``transformers`` in this process.
"""

from __future__ import annotations

from .pipeline import GENERATION_KEY, SERVER_KEY, generate_completions, stop_server

__all__ = ["GENERATION_KEY", "SERVER_KEY", "generate_completions", "stop_server"]
