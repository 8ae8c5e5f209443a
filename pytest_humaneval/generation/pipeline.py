"""Generation, once per session on the controller (once per mode under ``--think=both``): from the dataset
to a completions file.

:func:`.kinds.backend_for` picks where the answers come from: the ``pytest_humaneval_generate`` hook, else
``--humaneval-backend``: a server (``--humaneval-endpoint``, or one started by :mod:`.server`) or
``transformers`` in this process (:mod:`.local`). All three are driven the same way here. A model's answers
go through the cache first: a run whose every sample is cached contacts no server, starts none and loads no
model.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..datasets.dataset import Dataset
from ..errors import HumanEvalError
from ..fixtures import ENDPOINT_KEY, NO_ENDPOINT_KEY, Endpoint
from ..options import Settings
from .backend import Backend, say
from .cache import REUSABLE, CompletionCache, RunSpec, write_resolved
from .client import Answer, Fatal, Request
from .kinds import backend_for
from .prompts import build_messages, load_template, messages_digest

#: What the report records about generation (set once generation is done).
GENERATION_KEY = pytest.StashKey[dict[str, Any]]()


def generate_completions(config: pytest.Config, settings: Settings, dataset: Dataset, samples: int) -> Path:
    """Produce ``samples`` completions per problem and return the completions file workers read."""
    started = time.monotonic()
    backend = backend_for(config, settings, dataset, samples)
    try:
        return _generate(config, settings, dataset, samples, backend, started)
    finally:  # for the humaneval_endpoint fixture: the server answers came from, or why there is none
        endpoint = backend.endpoint()
        if isinstance(endpoint, Endpoint):
            config.stash[ENDPOINT_KEY] = endpoint
        else:
            config.stash[NO_ENDPOINT_KEY] = endpoint


@dataclass
class _Plan:
    """What one generation asks for and where its answers go."""

    requests: list[Request]
    #: The completion cache of a model's answers; None for the hook's, which are not cached.
    cache: CompletionCache | None
    #: The completions file workers read.
    resolved: Path
    #: What the report records about the requests (sampling, prompt template).
    facts: dict[str, Any]


def _plan(
    config: pytest.Config, settings: Settings, dataset: Dataset, samples: int, backend: Backend
) -> _Plan:
    sampling = backend.sampling
    if sampling is None:  # the hook: given the problems, not prompts; asked every run, nothing cached
        requests = [Request(p.task_id, i, f"{p.task_id}:{i}", []) for p in dataset for i in range(samples)]
        name = f"hook{'-think' if settings.think else ''}.{dataset.name}.jsonl"  # one per mode (--think=both)
        return _Plan(requests, None, settings.output / "completions" / name, {})
    template = load_template(settings.prompt_template, dataset.prompt_template)
    spec = RunSpec(
        model=settings.model,
        think=settings.think,
        sampling=sampling.as_dict(),
        extra_body=sampling.extra_body,
        model_path=str(settings.model_path) if settings.model_path and not settings.endpoint else None,
        backend=backend.cache_key(),
    )
    requests = []
    for problem in dataset:
        messages = build_messages(config, problem, settings.think, template)
        digest = messages_digest(messages)
        for index in range(samples):
            key = spec.key(problem.digest, digest, index)
            requests.append(Request(problem.task_id, index, key, messages))
    cache = CompletionCache.for_spec(settings.output, spec)
    facts = {
        "sampling": sampling.as_dict(),
        "extra_body": sampling.extra_body,
        "prompt_template": str(settings.prompt_template) if settings.prompt_template else "default",
    }
    return _Plan(requests, cache, cache.path.with_name(f"{spec.stem}.{dataset.name}.jsonl"), facts)


def _generate(
    config: pytest.Config,
    settings: Settings,
    dataset: Dataset,
    samples: int,
    backend: Backend,
    started: float,
) -> Path:
    plan = _plan(config, settings, dataset, samples, backend)
    cache = plan.cache
    found = cache.load() if cache is not None else {}
    missing = [r for r in plan.requests if r.key not in found]
    errors: dict[str, dict[str, Any]] = {}
    meta: dict[str, Any] = {
        "model": backend.model,
        "source": backend.source,
        "think": settings.think,
        **plan.facts,
        "samples_per_problem": samples,
    }
    if cache is not None:
        meta.update(cache=str(cache.path), cached=len(plan.requests) - len(missing), requested=len(missing))
    meta.update(backend.describe())

    wall = 0.0
    if missing:
        if cache is not None:
            cache.open()  # an unwritable output directory fails here, before a server starts or a model loads

        def on_answer(request: Request, answer: Answer) -> None:
            record = backend.record(dataset.problems[request.task_id], request, answer)
            if cache is not None:
                cache.append(record)  # now: a failure later loses only the answers in flight
            (found if record["status"] in REUSABLE else errors)[request.key] = record

        try:
            with backend:  # start() (a server's start-up, a model's load) is not generation time
                generating = time.monotonic()
                meta.update(backend.generate(missing, on_answer))
                wall = time.monotonic() - generating
        except Fatal as e:
            if cache is None:
                raise
            done = sum(r.key in found or r.key in errors for r in missing)  # this run's, not the cache hits
            raise HumanEvalError(
                f"{e}. The {done} answers that arrived are cached in {cache.path}; fix the cause and "
                "rerun to generate the rest"
            ) from None
        finally:
            if cache is not None:
                cache.close()

    records = [found.get(r.key) or errors[r.key] for r in plan.requests]
    resolved = write_resolved(plan.resolved, records)
    if cache is not None and missing:  # the pace of this run's requests; start-up is kept apart everywhere
        meta["generation_wall_s"] = round(wall, 3)
        if backend.startup_s is not None:
            meta["startup_s"] = round(float(backend.startup_s), 3)
        new = [errors.get(r.key) or found[r.key] for r in missing]
        new_tokens = sum(int((rec.get("usage") or {}).get("completion_tokens") or 0) for rec in new)
        meta["tokens_per_s"] = round(new_tokens / max(meta["generation_wall_s"], 1e-9), 1)
    totals = _totals(records)
    if cache is not None:
        meta.update(totals)
    meta["completions"] = str(resolved)
    meta["wall_s"] = round(time.monotonic() - started, 3)
    meta.update(totals)  # the hook's report has always listed them last (a no-op for the others)
    config.stash[GENERATION_KEY] = meta
    if cache is not None:
        generated = (
            f"{len(missing)} generated in {meta['generation_wall_s']:.1f} s ({meta['tokens_per_s']:,.0f} "
            f"tok/s, {meta['statuses'].get('generation_error', 0)} generation errors)"
            if missing
            else "nothing to generate"
        )
        skipped = f"; {cache.skipped_lines} unreadable cache line(s) skipped" if cache.skipped_lines else ""
        say(
            config,
            f"humaneval: {len(records)} samples of {settings.model}: {meta['cached']} from the cache, "
            f"{generated}{skipped}; cache {cache.path}",
        )
    return resolved


def _totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    usage: Counter[str] = Counter()
    for rec in records:
        for k in ("prompt_tokens", "completion_tokens"):
            usage[k] += int((rec.get("usage") or {}).get(k) or 0)
    statuses = Counter(rec["status"] for rec in records)
    return {"statuses": dict(sorted(statuses.items())), "usage": dict(usage)}
