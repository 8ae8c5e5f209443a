"""One answer as a record: the line the completion cache and the completions file hold, its code taken out
by ``pytest_humaneval_extract_code`` or the built-in extraction (:mod:`.extract`)."""

from __future__ import annotations

from typing import Any

import pytest

from ..datasets.dataset import Problem
from ..errors import HumanEvalError
from .client import Answer, Request
from .extract import Extraction, extract


def make_record(config: pytest.Config, problem: Problem, request: Request, answer: Answer) -> dict[str, Any]:
    """The cache record of one answer (also a valid completions-file line)."""
    if answer.error is not None:
        result = Extraction("", "generation_error", answer.error)
    else:
        result = extract_answer(
            config, problem, answer.content, answer.reasoning_content, answer.finish_reason
        )
    return answer_record(request, answer, result)


def base_record(request: Request, result: Extraction, raw: str | None) -> dict[str, Any]:
    """The fields every completions-file line has: which sample, its code, its status, the raw answer."""
    return {
        "task_id": request.task_id,
        "sample": request.sample,
        "completion": result.completion,
        "status": result.status,
        "reason": result.reason,
        "raw": raw,
    }


def answer_record(request: Request, answer: Answer, result: Extraction) -> dict[str, Any]:
    """The record of ``answer``, its code as ``result`` extracted it: a cache and completions-file line."""
    return {
        **base_record(request, result, answer.content),
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
