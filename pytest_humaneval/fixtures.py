"""Fixtures for a user's own tests: the model server that this session generated with.

The controller records the endpoint when it generates; xdist workers receive it through
``workerinput``, so no test ever starts a second server.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import pytest


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server: ``base_url`` ends in ``/v1``; ``model`` is the name for requests."""

    base_url: str
    model: str
    api_key: str = "EMPTY"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


#: Set on the controller once the endpoint is known (a started server or --humaneval-endpoint).
ENDPOINT_KEY = pytest.StashKey[Endpoint]()
#: Why there is no endpoint this session (shown as the skip reason).
NO_ENDPOINT_KEY = pytest.StashKey[str]()

WORKERINPUT = "humaneval_endpoint"


def endpoint_for_workers(config: pytest.Config) -> dict[str, Any]:
    """What the controller hands to each xdist worker."""
    endpoint = config.stash.get(ENDPOINT_KEY, None)
    return {
        "endpoint": endpoint.as_dict() if endpoint else None,
        "why_not": config.stash.get(NO_ENDPOINT_KEY, NO_SERVER),
    }


NO_SERVER = (
    "no model server in this session: run with --humaneval (or --humaneval-debug) and without "
    "--humaneval-completions"
)


@pytest.fixture(scope="session")
def humaneval_endpoint(request: pytest.FixtureRequest) -> Endpoint:
    """The base URL, model name and API key of the server this session generated with.

    Skips the test when there is none (``--humaneval-completions``, a generation hook, every
    completion already cached, or no ``--humaneval`` at all).
    """
    config = request.config
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        given = workerinput.get(WORKERINPUT) or {}
        if given.get("endpoint"):
            return Endpoint(**given["endpoint"])
        pytest.skip(given.get("why_not") or NO_SERVER)
    endpoint = config.stash.get(ENDPOINT_KEY, None)
    if endpoint is None:
        pytest.skip(config.stash.get(NO_ENDPOINT_KEY, NO_SERVER))
    return endpoint
