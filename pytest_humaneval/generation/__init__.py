"""Step 2 of the data path, on the controller only: from the dataset to a completions file.

:mod:`.pipeline` runs it: :mod:`.backend` picks where the answers come from (the ``pytest_humaneval_generate``
hook, a server or a local model, each behind one interface), :mod:`.cache` keeps every answer as it
arrives and :mod:`.records` takes the code out of each (:mod:`.extract`). :mod:`.server_backend` sends the
requests through :mod:`.client` to a server, which :mod:`.server` and :mod:`.launch` start when it is
SGLang; :mod:`.local` runs ``transformers`` in this process.
"""

from __future__ import annotations

from .pipeline import GENERATION_KEY, generate_completions
from .server_backend import SERVER_KEY, stop_server

__all__ = ["GENERATION_KEY", "SERVER_KEY", "generate_completions", "stop_server"]
