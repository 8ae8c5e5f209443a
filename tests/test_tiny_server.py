"""End-to-end: a tiny random Qwen3 behind a real `transformers serve`, called with the real OpenAI client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from tiny_model import build_tiny_qwen3
from tiny_server import ServerInfo, serve_tiny_model

pytestmark = pytest.mark.slow

MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Complete the function:\ndef add(a: int, b: int) -> int:\n"}
]


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    root = tmp_path_factory.mktemp("tiny-qwen3")
    model_dir = build_tiny_qwen3(root / "model")
    with serve_tiny_model(model_dir, log_path=root / "serve.log") as server:
        yield server
    assert server.process.poll() is not None, "the server outlived its context manager"


@pytest.fixture(scope="module")
def client(tiny_server: ServerInfo) -> openai.OpenAI:
    return openai.OpenAI(base_url=tiny_server.base_url, api_key="unused", max_retries=0, timeout=60)


def _complete(
    client: openai.OpenAI, model: str, enable_thinking: bool, max_tokens: int = 16, **kwargs: Any
) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model=model,
        messages=MESSAGES,
        max_tokens=max_tokens,
        extra_body={"chat_template_kwargs": {"enable_thinking": enable_thinking}},
        **kwargs,
    )


@pytest.mark.parametrize("enable_thinking", [False, True])
def test_chat_completion(client: openai.OpenAI, tiny_server: ServerInfo, enable_thinking: bool) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=tiny_server.model,
        messages=MESSAGES,
        max_tokens=16,
        temperature=0,
        extra_body={"chat_template_kwargs": {"enable_thinking": enable_thinking}},
    )
    assert raw.status_code == 200
    completion = raw.parse()
    assert completion.choices, completion
    choice = completion.choices[0]
    assert choice.finish_reason in {"stop", "length"}
    assert isinstance(choice.message.content, str)
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= 16
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_enable_thinking_reaches_the_chat_template(client: openai.OpenAI, tiny_server: ServerInfo) -> None:
    """Thinking off pre-fills `<think>`, `\\n\\n`, `</think>`, `\\n\\n`: 4 more prompt tokens."""
    off = _complete(client, tiny_server.model, enable_thinking=False, temperature=0)
    on = _complete(client, tiny_server.model, enable_thinking=True, temperature=0)
    assert off.usage is not None and on.usage is not None
    assert off.usage.prompt_tokens == on.usage.prompt_tokens + 4


def test_max_tokens_and_seed(client: openai.OpenAI, tiny_server: ServerInfo) -> None:
    one = _complete(client, tiny_server.model, enable_thinking=False, temperature=0, max_tokens=1)
    assert one.usage is not None and one.usage.completion_tokens == 1
    assert one.choices[0].finish_reason == "length"
    first, second = (
        _complete(client, tiny_server.model, enable_thinking=False, temperature=1.0, seed=11)
        for _ in range(2)
    )
    assert first.choices[0].message.content == second.choices[0].message.content


def test_other_model_name_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        _complete(client, "some-other-model", enable_thinking=False)


def test_models_endpoint_lists_the_model(client: openai.OpenAI, tiny_server: ServerInfo) -> None:
    assert [m.id for m in client.models.list()] == [tiny_server.model]
