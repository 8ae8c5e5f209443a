"""Generation, once per session on the controller: from the dataset to a completions file.

Order of sources: the ``pytest_humaneval_generate`` hook (the user's own model, no server), else
``--humaneval-backend``: a server (``--humaneval-endpoint``, or one started by :mod:`.server`) or
``transformers`` in this process (:mod:`.local`). Both backends go through the cache first: a run
whose every sample is cached contacts no server, starts none and loads no model.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from ..dataset import Dataset, Problem
from ..errors import HumanEvalError
from ..fixtures import ENDPOINT_KEY, NO_ENDPOINT_KEY, Endpoint
from ..options import Settings
from ..provenance import public_url
from .cache import REUSABLE, CompletionCache, RunSpec, write_resolved
from .client import (
    Answer,
    Fatal,
    Generator,
    Request,
    check_endpoint,
    make_client,
    openai_module,
    sampling_from,
)
from .extract import Extraction, extract
from .launch import reasoning_parser
from .progress import Progress
from .prompts import build_messages, load_template, messages_digest

#: What the report records about generation (set once generation is done).
GENERATION_KEY = pytest.StashKey[dict[str, Any]]()
#: The server this session started (stopped at the end unless --humaneval-keep-server).
SERVER_KEY = pytest.StashKey[Any]()


def generate_completions(config: pytest.Config, settings: Settings, dataset: Dataset, samples: int) -> Path:
    """Produce ``samples`` completions per problem and return the completions file workers read."""
    started = time.monotonic()
    answers = config.hook.pytest_humaneval_generate(
        config=config, problems=list(dataset), samples=samples, think=settings.think
    )
    if answers is not None:
        config.stash[NO_ENDPOINT_KEY] = "pytest_humaneval_generate produced the answers: no server ran"
        return _from_hook(config, settings, dataset, samples, answers, started)
    return _from_model(config, settings, dataset, samples, started)


def stop_server(config: pytest.Config, settings: Settings) -> None:
    """Stop the server this session started (on every exit path), unless it is to be kept."""
    handle = config.stash.get(SERVER_KEY, None)
    if handle is None:
        return
    del config.stash[SERVER_KEY]
    try:
        handle.stop()  # under --humaneval-keep-server this leaves it running for the next run
    except HumanEvalError as e:  # at the very end: say it, rather than a traceback from unconfigure
        _say(config, f"humaneval: {e}")
        return
    if settings.keep_server:
        _say(config, f"humaneval: server left running at {handle.base_url} (--humaneval-keep-server)")


# -- from a server or a local model --------------------------------------------------------------------


def _from_model(
    config: pytest.Config, settings: Settings, dataset: Dataset, samples: int, started: float
) -> Path:
    local = settings.backend == "transformers"
    if local:
        from .local import backend_key, check_options

        check_options(settings)
    sampling = sampling_from(settings)
    think_unknown = settings.think and reasoning_parser(settings) is None
    if think_unknown:
        _say(
            config,
            f"humaneval: --think, but {settings.model} has no known thinking mode (no reasoning parser "
            "by its name or config): it is sampled with the thinking settings "
            f"(temperature {sampling.temperature:g}, top_p {sampling.top_p:g}), cached and reported as "
            "thinking. Leave --think out for this model, or name its parser with "
            "--humaneval-reasoning-parser=NAME if it does think",
        )
    template = load_template(settings.prompt_template, dataset.prompt_template)
    spec = RunSpec(
        model=settings.model,
        think=settings.think,
        sampling=sampling.as_dict(),
        extra_body=sampling.extra_body,
        model_path=str(settings.model_path) if settings.model_path and not settings.endpoint else None,
        backend=backend_key(settings) if local else None,
    )
    requests: list[Request] = []
    for problem in dataset:
        messages = build_messages(config, problem, settings.think, template)
        digest = messages_digest(messages)
        for index in range(samples):
            key = spec.key(problem.digest, digest, index)
            requests.append(Request(problem.task_id, index, key, messages))

    cache = CompletionCache.for_spec(settings.output, spec)
    found = cache.load()
    missing = [r for r in requests if r.key not in found]
    errors: dict[str, dict[str, Any]] = {}
    meta: dict[str, Any] = {
        "model": settings.model,
        "source": _source(settings),
        "think": settings.think,
        "sampling": sampling.as_dict(),
        "extra_body": sampling.extra_body,
        "prompt_template": str(settings.prompt_template) if settings.prompt_template else "default",
        "samples_per_problem": samples,
        "cache": str(cache.path),
        "cached": len(requests) - len(missing),
        "requested": len(missing),
    }
    if local:
        meta["backend"] = spec.backend
        config.stash[NO_ENDPOINT_KEY] = "the transformers backend generated in this process: no server ran"
    elif settings.endpoint:
        meta["endpoint"] = public_url(_endpoint_from_options(config, settings).base_url)
    elif not missing:
        config.stash[NO_ENDPOINT_KEY] = "every completion came from the cache, so no server was started"

    if think_unknown:
        meta["think_unknown"] = True
    if settings.model_path and not settings.endpoint:
        meta["model_path"] = str(settings.model_path)
    if settings.backend == "server" and not settings.endpoint and settings.server == "docker":
        meta["image"] = settings.image

    if missing:
        cache.open()  # an unwritable output directory fails here, before a server starts or a model loads

        def on_answer(request: Request, answer: Answer) -> None:
            record = make_record(config, dataset.problems[request.task_id], request, answer)
            cache.append(record)
            (found if record["status"] in REUSABLE else errors)[request.key] = record

        try:
            if local:
                used, wall = _generate_locally(config, settings, sampling, missing, on_answer)
                meta["backend"] = {**meta["backend"], **used}
            else:
                openai_module()  # before a server starts: a missing package fails now, and its import
                # (about 0.4 s) is start-up, not generation time
                endpoint = _open_endpoint(config, settings)
                meta["endpoint"] = public_url(endpoint.base_url)
                handle = config.stash.get(SERVER_KEY, None)
                if handle is not None:
                    meta["server"] = {
                        "startup_s": handle.startup_s,
                        "reused": handle.reused,
                        "reasoning_parser": handle.reasoning_parser,
                        "args": handle.args,
                    }
                gen_started = time.monotonic()
                connection: dict[str, Any] = {}
                meta["connection"] = connection
                with (
                    _terminal(config) as out,
                    Progress(len(missing), file=out) as progress,
                    _old_heap_frozen(),
                ):
                    coroutine = _generate(
                        settings, endpoint, sampling, missing, on_answer, progress, connection
                    )
                    meta["dropped_params"] = asyncio.run(coroutine)
                wall = time.monotonic() - gen_started
        except Fatal as e:
            done = sum(r.key in found or r.key in errors for r in missing)  # this run's, not the cache hits
            raise HumanEvalError(
                f"{e}. The {done} answers that arrived are cached in {cache.path}; fix the cause and "
                "rerun to generate the rest"
            ) from None
        finally:
            cache.close()
        meta["generation_wall_s"] = round(wall, 3)
        # Start-up (a server's, or loading the model here) is not generation: kept apart everywhere.
        startup = (meta.get("server") or {}).get("startup_s") or (meta.get("backend") or {}).get("load_s")
        if startup is not None:
            meta["startup_s"] = round(float(startup), 3)

    records = [found.get(r.key) or errors[r.key] for r in requests]
    resolved = write_resolved(cache.path.with_name(f"{spec.stem}.{dataset.name}.jsonl"), records)
    new = [errors.get(r.key) or found[r.key] for r in missing]
    new_tokens = sum(int((rec.get("usage") or {}).get("completion_tokens") or 0) for rec in new)
    if missing:
        meta["tokens_per_s"] = round(new_tokens / max(meta["generation_wall_s"], 1e-9), 1)
    meta.update(_totals(records))
    meta["completions"] = str(resolved)
    meta["wall_s"] = round(time.monotonic() - started, 3)
    config.stash[GENERATION_KEY] = meta
    generated = (
        f"{len(missing)} generated in {meta['generation_wall_s']:.1f} s ({meta['tokens_per_s']:,.0f} tok/s, "
        f"{meta['statuses'].get('generation_error', 0)} generation errors)"
        if missing
        else "nothing to generate"
    )
    skipped = f"; {cache.skipped_lines} unreadable cache line(s) skipped" if cache.skipped_lines else ""
    _say(
        config,
        f"humaneval: {len(records)} samples of {settings.model}: {meta['cached']} from the cache, "
        f"{generated}{skipped}; cache {cache.path}",
    )
    return resolved


@contextlib.contextmanager
def _old_heap_frozen() -> Iterator[None]:
    """``gc.freeze()`` while the requests run: the client allocates fast enough to trigger full
    collections, each a walk over everything pytest and the plugins hold (about 70 ms of a 2 s run
    against SGLang on the CPU); frozen, a collection sees only what generation allocates."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _source(settings: Settings) -> str:
    """Where answers come from: ``transformers``, ``endpoint``, or the server kind (docker, process)."""
    if settings.backend == "transformers":
        return "transformers"
    return "endpoint" if settings.endpoint else settings.server


def _generate_locally(
    config: pytest.Config, settings: Settings, sampling: Any, requests: list[Request], on_answer: Any
) -> tuple[dict[str, Any], float]:
    """The transformers backend: what the report records about it, and the seconds spent generating."""
    from .local import run_local

    with _terminal(config) as out:
        return run_local(settings, sampling, requests, on_answer, out)


async def _generate(
    settings: Settings,
    endpoint: Endpoint,
    sampling: Any,
    requests: list[Request],
    on_answer: Any,
    progress: Progress,
    stats: dict[str, Any],
) -> list[str]:
    """Generate ``requests``; return the optional fields the server refused. ``stats`` receives what the
    connection met (:meth:`Generator.stats`), also when the run stops."""
    client = make_client(endpoint.base_url, endpoint.api_key, settings.request_timeout)
    try:
        await check_endpoint(client, endpoint.base_url, endpoint.model)
        generator = Generator(
            client,
            base_url=endpoint.base_url,
            model=endpoint.model,
            sampling=sampling,
            concurrency=settings.concurrency,
            timeout=settings.request_timeout,
            grace=settings.server_grace,
            notify=progress.note,
        )
        try:
            await generator.run(requests, on_answer, progress)
        finally:
            stats.update(generator.stats())
        return generator.dropped
    finally:
        await client.close()


def make_record(config: pytest.Config, problem: Problem, request: Request, answer: Answer) -> dict[str, Any]:
    """The cache record of one answer (also a valid completions-file line)."""
    if answer.error is not None:
        result = Extraction("", "generation_error", answer.error)
    else:
        result = extract_answer(
            config, problem, answer.content, answer.reasoning_content, answer.finish_reason
        )
    return answer_record(request, answer, result)


def answer_record(request: Request, answer: Answer, result: Extraction) -> dict[str, Any]:
    """The record of ``answer``, its code as ``result`` extracted it: a cache and completions-file line."""
    return {
        "task_id": request.task_id,
        "sample": request.sample,
        "completion": result.completion,
        "status": result.status,
        "reason": result.reason,
        "raw": answer.content,
        "reasoning_content": answer.reasoning_content,
        "finish_reason": answer.finish_reason,
        "usage": answer.usage,
        "latency_s": round(answer.latency_s, 3),
        "attempts": answer.attempts,
        "key": request.key,
    }


def extract_answer(
    config: pytest.Config,
    problem: Problem,
    content: str | None,
    reasoning_content: str | None = None,
    finish_reason: str | None = None,
) -> Extraction:
    """``pytest_humaneval_extract_code`` when a plugin implements it, else the built-in extraction."""
    code = config.hook.pytest_humaneval_extract_code(config=config, problem=problem, answer=content or "")
    if code is None:
        return extract(problem, content, reasoning_content=reasoning_content, finish_reason=finish_reason)
    if not isinstance(code, str):
        raise HumanEvalError(
            f"pytest_humaneval_extract_code returned {type(code).__name__} for {problem.task_id}: "
            "return the code as a str, or None for the built-in extraction"
        )
    if code.strip():
        return Extraction(code)
    if finish_reason == "length":
        return Extraction("", "truncated", "the answer was cut by max_tokens; raise --humaneval-max-tokens")
    return Extraction("", "no_code", "pytest_humaneval_extract_code found no code in the answer")


def _totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    usage: Counter[str] = Counter()
    for rec in records:
        for k in ("prompt_tokens", "completion_tokens"):
            usage[k] += int((rec.get("usage") or {}).get(k) or 0)
    statuses = Counter(rec["status"] for rec in records)
    return {"statuses": dict(sorted(statuses.items())), "usage": dict(usage)}


# -- endpoints ----------------------------------------------------------------------------------------


def _endpoint_from_options(config: pytest.Config, settings: Settings) -> Endpoint:
    assert settings.endpoint
    endpoint = Endpoint(
        base_url=settings.endpoint.rstrip("/"),
        model=settings.model,
        api_key=settings.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
    )
    config.stash[ENDPOINT_KEY] = endpoint
    return endpoint


def _open_endpoint(config: pytest.Config, settings: Settings) -> Endpoint:
    """The given endpoint, or a server started now (stopped by :func:`stop_server`)."""
    if settings.endpoint:
        return _endpoint_from_options(config, settings)
    if config.stash.get(SERVER_KEY, None) is not None:  # --think=both: the second mode, same server
        return config.stash[ENDPOINT_KEY]
    from .server import start_server

    handle = start_server(settings, notify=lambda line: _say(config, f"humaneval: {line}"))
    config.stash[SERVER_KEY] = handle
    endpoint = Endpoint(base_url=handle.base_url, model=handle.model, api_key=handle.api_key or "EMPTY")
    config.stash[ENDPOINT_KEY] = endpoint
    return endpoint


# -- from the pytest_humaneval_generate hook ----------------------------------------------------------


def _from_hook(
    config: pytest.Config,
    settings: Settings,
    dataset: Dataset,
    samples: int,
    answers: Any,
    started: float,
) -> Path:
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
    records = []
    for problem in dataset:
        texts = answers.get(problem.task_id) or []
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise HumanEvalError(
                f"pytest_humaneval_generate: the answers for {problem.task_id} must be a list of str"
            )
        for index in range(samples):
            if index < len(texts):
                result = extract_answer(config, problem, texts[index])
            else:
                result = Extraction("", "no_code", "pytest_humaneval_generate returned no answer for it")
            records.append(
                {
                    "task_id": problem.task_id,
                    "sample": index,
                    "completion": result.completion,
                    "status": result.status,
                    "reason": result.reason,
                    "raw": texts[index] if index < len(texts) else None,
                }
            )
    name = f"hook{'-think' if settings.think else ''}.{dataset.name}.jsonl"  # one per mode (--think=both)
    path = write_resolved(settings.output / "completions" / name, records)
    config.stash[GENERATION_KEY] = {
        "model": "pytest_humaneval_generate",
        "source": "hook",
        "think": settings.think,
        "samples_per_problem": samples,
        "completions": str(path),
        "wall_s": round(time.monotonic() - started, 3),
        **_totals(records),
    }
    return path


# -- terminal -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _terminal(config: pytest.Config) -> Iterator[IO[str]]:
    """The real stdout, even while pytest captures output (generation runs inside sessionstart)."""
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is None:
        yield sys.stdout
        return
    with capman.global_and_fixture_disabled():
        yield sys.stdout


def _say(config: pytest.Config, line: str) -> None:
    with _terminal(config) as out:
        print(line, file=out, flush=True)
