"""Where answers come from: one interface, :class:`Backend`, for the three ways completions are generated, and
:func:`.kinds.backend_for`, which picks one per generation (per mode under ``--think=both``).

- ``hook``: a plugin's or a ``conftest.py``'s ``pytest_humaneval_generate`` answered (:class:`HookBackend`);
- ``transformers``: the model runs in this process (:class:`.local.TransformersBackend`);
- ``server``: an OpenAI-compatible server, the user's (``--humaneval-endpoint``) or SGLang started for the
  session (:class:`.server_backend.ServerBackend`).

The pipeline drives each the same way::

    backend = backend_for(config, settings, dataset, samples)
    meta.update(backend.describe())          # what the report, the header and the provenance say
    if missing:                              # a run the cache answers starts nothing
        with backend:                        # start() ... close()
            meta.update(backend.generate(missing, on_answer))
    backend.endpoint()                       # for the humaneval_endpoint fixture, or why there is none

``on_answer`` receives each answer as soon as it arrives and the pipeline caches it at once, so a failure
loses only the answers in flight. The model backends (:class:`ModelBackend`) answer chat prompts, and their
answers are keyed by model, prompt and sampling and cached. The hook is given the problems instead and is
asked every run - asking it is how it is chosen, since it returns ``None`` to leave the answers to
``--humaneval-backend`` - and nothing of it is cached: no key describes the user's code.
"""

from __future__ import annotations

import contextlib
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar

import pytest

from ..datasets.dataset import Dataset, Problem
from ..errors import HumanEvalError
from ..fixtures import Endpoint
from ..options import Settings
from .client import Answer, Request, Sampling, sampling_from
from .extract import Extraction
from .launch import reasoning_parser
from .records import base_record, extract_answer, make_record

#: Called with each answer as soon as it arrives.
OnAnswer = Callable[[Request, Answer], None]

_B = TypeVar("_B", bound="Backend")


class Backend(ABC):
    """A source of answers: what it is (:meth:`describe`), :meth:`start`, :meth:`generate`, :meth:`close`."""

    #: ``generation.source`` in the report: hook, transformers, endpoint, docker or process.
    source: str = ""
    #: What every request is sampled with. None for a backend given the problems rather than prompts (the
    #: hook): its requests carry no messages, and its answers are neither keyed nor cached.
    sampling: Sampling | None = None

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        #: ``generation.model`` in the report.
        self.model = settings.model

    def cache_key(self) -> dict[str, Any] | None:
        """What shapes an answer besides the model, its prompt and the sampling: part of every cache key.
        None (a server) keeps the keys, and so the caches already written, as they were."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """What the report records about where the answers come from, known before any is generated (the
        header and the provenance print it from there)."""

    def start(self) -> None:  # noqa: B027 (optional: the hook starts nothing)
        """Get ready to answer: reach or start a server, load a model. Called only when something is to be
        generated; its time is start-up (:attr:`startup_s`), not generation."""

    @abstractmethod
    def generate(self, requests: list[Request], on_answer: OnAnswer) -> dict[str, Any]:
        """Answer every request, handing each answer to ``on_answer`` as soon as it arrives; return what the
        report records about the run. Raises :class:`~.client.Fatal` when the run must stop (the answers
        handed over until then are kept)."""

    def close(self) -> None:  # noqa: B027 (optional: a server outlives generation)
        """Free what :meth:`start` took; safe to repeat. A server the session started outlives it (the user's
        tests call it, a second ``--think`` mode reuses it): :func:`.server_backend.stop_server` stops it."""

    @property
    def startup_s(self) -> float | None:
        """Seconds :meth:`start` took (a server's start-up, a model's load); None when nothing started."""
        return None

    @abstractmethod
    def endpoint(self) -> Endpoint | str:
        """The server the ``humaneval_endpoint`` fixture hands the user's tests, or why there is none."""

    def record(self, problem: Problem, request: Request, answer: Answer) -> dict[str, Any]:
        """The completions-file (and cache) line of ``answer``, its code taken out."""
        return make_record(self.config, problem, request, answer)

    def __enter__(self: _B) -> _B:
        try:
            self.start()
        except BaseException:  # a start that fails frees what it took
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ModelBackend(Backend):
    """A model answering chat prompts, sampled as the options say: the transformers and the server backend."""

    sampling: Sampling

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        super().__init__(config, settings)
        self.sampling = sampling = sampling_from(settings)
        self.think_unknown = settings.think and reasoning_parser(settings) is None
        if self.think_unknown:
            say(
                config,
                f"humaneval: --think, but {settings.model} has no known thinking mode (no reasoning parser "
                "by its name or config): it is sampled with the thinking settings "
                f"(temperature {sampling.temperature:g}, top_p {sampling.top_p:g}), cached and reported as "
                "thinking. Leave --think out for this model, or name its parser with "
                "--humaneval-reasoning-parser=NAME if it does think",
            )

    def model_facts(self) -> dict[str, Any]:
        """What the report records about the model whichever backend runs it (part of :meth:`describe`)."""
        facts: dict[str, Any] = {}
        if self.think_unknown:
            facts["think_unknown"] = True
        if self.settings.model_path and not self.settings.endpoint:
            facts["model_path"] = str(self.settings.model_path)
        return facts


class HookBackend(Backend):
    """The answers ``pytest_humaneval_generate`` returned (``{task_id: [answer_text, ...]}``), each handed
    over with its code taken out as a server's would be."""

    source = "hook"

    def __init__(self, config: pytest.Config, settings: Settings, dataset: Dataset, answers: Any) -> None:
        super().__init__(config, settings)
        self.model = "pytest_humaneval_generate"
        self.answers = _checked_answers(answers, dataset)

    def describe(self) -> dict[str, Any]:
        return {}

    def generate(self, requests: list[Request], on_answer: OnAnswer) -> dict[str, Any]:
        for request in requests:
            texts = self.answers.get(request.task_id) or []
            # No content: the hook gave fewer answers than samples (record() says so).
            on_answer(request, Answer(texts[request.sample]) if request.sample < len(texts) else Answer())
        return {}

    def endpoint(self) -> str:
        return "pytest_humaneval_generate produced the answers: no server ran"

    def record(self, problem: Problem, request: Request, answer: Answer) -> dict[str, Any]:
        """The answer's text and its code: no usage, latency or key (the hook gives none; nothing caches)."""
        if answer.content is None:
            result = Extraction("", "no_code", "pytest_humaneval_generate returned no answer for it")
        else:
            result = extract_answer(self.config, problem, answer.content)
        return base_record(request, result, answer.content)


def _checked_answers(answers: Any, dataset: Dataset) -> dict[str, list[str]]:
    if not isinstance(answers, dict):
        raise HumanEvalError(
            f"pytest_humaneval_generate returned {type(answers).__name__}: return "
            "{task_id: [answer_text, ...]} (or None to use a server)"
        )
    unknown = [t for t in answers if t not in dataset.problems]
    if unknown:
        raise HumanEvalError(
            f"pytest_humaneval_generate returned answers for {', '.join(map(repr, unknown[:3]))}, which "
            f"are not in dataset {dataset.name}; return answers for its task ids"
        )
    for problem in dataset:
        texts = answers.get(problem.task_id) or []
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise HumanEvalError(
                f"pytest_humaneval_generate: the answers for {problem.task_id} must be a list of str"
            )
    return answers


# -- the terminal ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def terminal(config: pytest.Config) -> Iterator[IO[str]]:
    """The real stdout, even while pytest captures output (generation runs inside sessionstart)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield sys.stdout
        return
    with capman.global_and_fixture_disabled():
        yield sys.stdout


def say(config: pytest.Config, line: str) -> None:
    with terminal(config) as out:
        print(line, file=out, flush=True)
