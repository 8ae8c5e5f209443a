"""The generation backends ``--humaneval-backend`` names: a registry of factories, each importing its
module only when asked for (a run against an endpoint does not import transformers), as the sandbox kinds
do; and :func:`backend_for`, which picks the backend of one generation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ..datasets.dataset import Dataset
from ..errors import HumanEvalError
from ..options import Settings
from .backend import Backend, HookBackend

Factory = Callable[[pytest.Config, Settings], Backend]

#: The backends ``--humaneval-backend`` names: factories importing their module when asked for.
BACKENDS: dict[str, Factory] = {}


def register_backend(name: str) -> Callable[[Factory], Factory]:
    """Register ``factory`` as the backend ``--humaneval-backend=name`` chooses."""

    def register(factory: Factory) -> Factory:
        BACKENDS[name] = factory
        return factory

    return register


@register_backend("server")
def _server(config: pytest.Config, settings: Settings) -> Backend:
    """An OpenAI-compatible server: ``--humaneval-endpoint``, or SGLang started for the session."""
    from .server_backend import ServerBackend

    return ServerBackend(config, settings)


@register_backend("transformers")
def _transformers(config: pytest.Config, settings: Settings) -> Backend:
    """The model in this process."""
    from .local import TransformersBackend

    return TransformersBackend(config, settings)


def backend_for(config: pytest.Config, settings: Settings, dataset: Dataset, samples: int) -> Backend:
    """The backend of this generation: the ``pytest_humaneval_generate`` hook when it answers, else the one
    ``--humaneval-backend`` names. Option errors surface here, before the cache is read."""
    answers = config.hook.pytest_humaneval_generate(
        config=config, problems=list(dataset), samples=samples, think=settings.think
    )
    if answers is not None:
        return HookBackend(config, settings, dataset, answers)
    try:
        factory = BACKENDS[settings.backend]
    except KeyError:
        raise HumanEvalError(
            f"--humaneval-backend={settings.backend}: choose one of {', '.join(BACKENDS)}"
        ) from None
    return factory(config, settings)
