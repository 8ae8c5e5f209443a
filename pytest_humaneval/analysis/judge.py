"""``--humaneval-judge-endpoint``: an LLM judge says why each failing program failed.

Controller side, after every item has run: for each diagnosed failure the judge gets the problem, the
reference solution, the failing code and the failure reason, and answers in a fixed JSON shape
(``SCHEMA``; sent as ``response_format`` with a JSON schema, dropped for the rest of the run where the
server refuses it): ``category`` (one of ``CATEGORIES``), ``explanation`` (one sentence), ``similarity``
(0-1). They go into the result's ``diagnosis`` as ``category``, ``explanation`` and
``judge_similarity``; an answer that does not fit is recorded as ``judge_error`` and the run goes on.

Answers are cached like completions (:class:`~pytest_humaneval.generation.cache.CompletionCache`,
appended as each arrives under ``OUTPUT/judge/``), keyed by the judge model and the exact messages: the
same question is never asked twice, and an unusable answer is kept too (asking again would only repeat
it). Requests that fail (connection, 5xx after retries) are not cached and are asked again next run.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..datasets.dataset import Problem
from ..errors import HumanEvalError, clip
from ..generation.client import openai_module
from ..reporting.schema import Judge, JudgeAsking
from ..verdict import Result

CATEGORIES = (
    "misread_spec",
    "edge_case",
    "off_by_one",
    "wrong_algorithm",
    "wrong_output_format",
    "incomplete",
    "runtime_error",
    "other",
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "explanation": {"type": "string"},
        "similarity": {"type": "number", "minimum": 0, "maximum": 1},
    },
    "required": ["category", "explanation", "similarity"],
    "additionalProperties": False,
}
#: Bump when the messages or the schema change: earlier answers are then not reused.
PROMPT_VERSION = 1
CONCURRENCY = 16
MAX_ATTEMPTS = 3

SYSTEM = (
    "You review failing solutions to Python programming problems. Compare the failing code with the "
    "reference solution and the failure, and answer with one JSON object and nothing else: "
    '{"category": one of ' + ", ".join(CATEGORIES) + ', "explanation": one sentence saying what the '
    'code gets wrong, "similarity": a number from 0 (unrelated) to 1 (the same approach as the reference)}.'
)


@dataclass(frozen=True)
class JudgeConfig:
    endpoint: str
    model: str
    api_key: str
    output: Path
    timeout: float = 600.0
    max_tokens: int = 1024


def judge_config(
    endpoint: str, model: str, api_key: str | None, output: str | Path, max_tokens: int = 1024
) -> JudgeConfig:
    """The judge's settings as the plugin and the API take them: the base URL without a trailing slash,
    the API key given, else ``OPENAI_API_KEY``, else ``EMPTY`` (a local server takes any)."""
    return JudgeConfig(
        endpoint=endpoint.rstrip("/"),
        model=model,
        api_key=api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY",
        output=Path(output),
        max_tokens=max_tokens,
    )


def messages(problem: Problem, completion: str, status: str, reason: str) -> list[dict[str, str]]:
    user = (
        f"## Problem ({problem.task_id})\n```python\n{problem.prompt}```\n\n"
        "## Reference solution (continues the problem's code)\n"
        f"```python\n{problem.canonical_solution}```\n\n"
        "## Failing code (continues the problem's code, or is a whole program)\n"
        f"```python\n{completion}\n```\n\n"
        f"## Failure\n{status}: {reason}\n\n"
        "Answer with the JSON object only."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def parse_answer(content: str | None) -> dict[str, Any]:
    """The judge's answer as ``{"category", "explanation", "judge_similarity"}``; ValueError says why
    it cannot be used."""
    text = (content or "").strip()
    if not text:
        raise ValueError("empty answer")
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text)
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the answer")
    try:
        data = json.loads(text[start : end + 1])
    except ValueError as e:
        raise ValueError(f"not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    category, explanation, sim = data.get("category"), data.get("explanation"), data.get("similarity")
    if category not in CATEGORIES:
        raise ValueError(f"category {clip(repr(category), 60)} is not one of {', '.join(CATEGORIES)}")
    if not isinstance(explanation, str) or not explanation.strip():
        raise ValueError("no explanation")
    if isinstance(sim, bool) or not isinstance(sim, (int, float)) or not 0 <= sim <= 1:
        raise ValueError(f"similarity {clip(repr(sim), 60)} is not a number from 0 to 1")
    return {"category": category, "explanation": clip(explanation.strip(), 500), "judge_similarity": sim}


def judge_failures(
    config: JudgeConfig,
    problems: dict[str, Problem],
    results: Sequence[Result],
) -> Judge | None:
    """Ask the judge about each failure among ``results`` that has an offline ``diagnosis`` (and its
    ``completion``) and is not already answered in the cache; fill in their ``diagnosis``. Returns what
    the report records about the judge, or None when no failure was diagnosed."""
    from ..generation.cache import CompletionCache, _digest

    failures = [r for r in results if r.diagnosis is not None]
    if not failures:
        return None
    cache = CompletionCache(config.output / "judge" / f"{_stem(config.model)}.cache.jsonl")
    found = cache.load()
    jobs = []
    for r in failures:
        problem = problems[r.task_id]
        msgs = messages(problem, r.completion, r.status, r.reason)
        key = _digest([PROMPT_VERSION, config.model, config.max_tokens, msgs, SCHEMA], 24)
        jobs.append((r, key, msgs))
    missing = [(key, msgs) for _, key, msgs in jobs if key not in found]
    asking: JudgeAsking = {}
    failed: dict[str, str] = {}
    if missing:
        cache.open()
        started = time.monotonic()

        def on_answer(key: str, record: dict[str, Any]) -> None:
            if record["status"] == "ok":
                cache.append(record)
                found[key] = record
            else:
                failed[key] = record["reason"]

        try:
            asking["response_format"] = asyncio.run(_ask_all(config, missing, on_answer))
        finally:
            cache.close()
        asking["wall_s"] = round(time.monotonic() - started, 3)
    for r, key, _ in jobs:
        diagnosis = r.diagnosis if r.diagnosis is not None else {}
        if key in found:
            try:
                diagnosis.update(parse_answer(found[key].get("content")))
            except ValueError as e:
                diagnosis["judge_error"] = f"unusable judge answer: {e}"
        else:
            diagnosis["judge_error"] = f"judge request failed: {failed.get(key, 'no answer')}"
        r.diagnosis = diagnosis
    return {
        "endpoint": config.endpoint,
        "model": config.model,
        "cache": str(cache.path),
        "cached": len(jobs) - len(missing),
        "asked": len(missing),
        **asking,
        "unusable": sum(1 for r, _, _ in jobs if "judge_error" in (r.diagnosis or {})),
    }


def _stem(model: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", model.rstrip("/").split("/")[-1]).strip("_.")
    return name[:60] or "judge"


async def _ask_all(
    config: JudgeConfig,
    missing: Sequence[tuple[str, list[dict[str, str]]]],
    on_answer: Callable[[str, dict[str, Any]], None],
) -> bool:
    """Ask every question, at most ``CONCURRENCY`` at once; True if ``response_format`` was kept."""
    openai = openai_module("the judge")
    client = openai.AsyncOpenAI(
        base_url=config.endpoint, api_key=config.api_key or "EMPTY", timeout=config.timeout, max_retries=0
    )
    state = {"response_format": True}
    semaphore = asyncio.Semaphore(CONCURRENCY)

    async def one(key: str, msgs: list[dict[str, str]]) -> None:
        async with semaphore:
            on_answer(key, {"key": key, **await _ask(openai, client, config, msgs, state)})

    try:
        await asyncio.gather(*(one(key, msgs) for key, msgs in missing))
    finally:
        await client.close()
    return state["response_format"]


async def _ask(
    openai: Any, client: Any, config: JudgeConfig, msgs: list[dict[str, str]], state: dict[str, bool]
) -> dict[str, Any]:
    """One question -> a cache record: ``status`` ok with the answer's ``content``, or error with why."""
    attempt = 0
    while True:
        attempt += 1
        kwargs: dict[str, Any] = {
            "model": config.model,
            "messages": msgs,
            "temperature": 0.0,
            "max_tokens": config.max_tokens,
        }
        with_format = state["response_format"]
        if with_format:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "diagnosis", "schema": SCHEMA, "strict": True},
            }
        started = time.monotonic()
        try:
            response = await client.chat.completions.create(**kwargs)
        except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
            if with_format:  # the server does not take response_format: instructions alone from now on
                state["response_format"] = False
                attempt -= 1
                continue
            return {"status": "error", "reason": f"{e.status_code}: {clip(e.message)}"}
        except openai.AuthenticationError:
            return {
                "status": "error",
                "reason": "401: the judge refused the API key (--humaneval-judge-api-key)",
            }
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as e:
            if attempt >= MAX_ATTEMPTS:
                return {"status": "error", "reason": f"{clip(str(e))} (after {attempt} attempts)"}
            await asyncio.sleep(0.5 * 2**attempt)
            continue
        except openai.OpenAIError as e:
            return {"status": "error", "reason": clip(str(e))}
        choices = getattr(response, "choices", None) or []
        content = choices[0].message.content if choices else None
        return {
            "status": "ok",
            "content": content,
            "finish_reason": choices[0].finish_reason if choices else None,
            "response_format": with_format,
            "model": config.model,
            "latency_s": round(time.monotonic() - started, 3),
        }


def check_judge(config: JudgeConfig, *, api: bool = False) -> None:
    """Before any program runs: the judge answers and serves its model (else one clear message naming
    the plugin's options, or ``evaluate()``'s arguments with ``api``)."""
    openai = openai_module("the judge")
    client = openai.OpenAI(
        base_url=config.endpoint, api_key=config.api_key or "EMPTY", timeout=30, max_retries=0
    )
    if api:
        flag, key, model = (
            f"judge_endpoint={config.endpoint!r}",
            "judge_api_key=",
            f"judge_model={config.model!r}",
        )
    else:
        flag = f"--humaneval-judge-endpoint={config.endpoint}"
        key, model = "--humaneval-judge-api-key", f"--humaneval-judge-model={config.model}"
    try:
        served = [m.id for m in client.models.list().data]
    except openai.AuthenticationError:
        raise HumanEvalError(f"{flag} refused the API key (401): give it with {key}") from None
    except openai.APIConnectionError as e:
        raise HumanEvalError(
            f"{flag}: cannot reach the judge ({clip(str(e.__cause__ or e))}); is it running?"
        ) from None
    except openai.APIStatusError as e:
        raise HumanEvalError(
            f"{flag}: /models answered {e.status_code}; give the base URL ending in /v1"
        ) from None
    finally:
        client.close()
    if config.model not in served:
        raise HumanEvalError(
            f"{model} is not served at {config.endpoint}; it serves: {', '.join(served) or '(none)'}"
        )
