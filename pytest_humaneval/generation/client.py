"""Requests to an OpenAI-compatible server: bounded concurrency, bounded retries, one record per answer.

Retry policy: 429 and 5xx are retried at most ``MAX_ATTEMPTS`` times in all, after exponential
backoff with full jitter (so 164 failures do not come back at the same instant) or the server's
``Retry-After``; those retries across the whole run are capped by a budget. A sample that still
fails becomes a ``generation_error`` record and the run goes on.

Connection errors (refused, reset, closed mid-answer) go through :mod:`.resilience`: a liveness
check of the server decides. While it answers, the request is retried after a backoff (at most
``CONNECTION_ATTEMPTS`` times for one request) and fewer requests are kept in flight for a while
(AIMD); while it does not, nothing is sent until it answers again; after ``--humaneval-server-grace``
seconds unreachable, the run stops with one message. A 502, 503 or 504 while nothing has answered since
the request was sent is an outage of what stands behind the endpoint (SGLang's router answers 503 "no
available workers" when every server behind it is down, though its own /health says 200): it is retried
without counting against the request's attempts, and the same grace period bounds it. The run also stops
when the server refuses every request (401, 404, 422). The answers that arrived are already cached, so
the next run resumes.

Every request states ``chat_template_kwargs.enable_thinking``. ``top_k`` and ``min_p`` are not in
the OpenAI API; servers that refuse them (e.g. ``transformers serve`` answers 422, OpenAI 400) get
the request again without them, once for the whole run, unless the user asked for them explicitly.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from ..errors import HumanEvalError, clip
from ..options import Settings
from .progress import Progress
from .resilience import Liveness, ServerGoneError, Window

MAX_ATTEMPTS = 4
#: Connection errors one request may meet while the server answers its liveness check (errors while
#: it is unreachable do not count: the grace period bounds those).
CONNECTION_ATTEMPTS = 8
#: Answers that say nothing behind the endpoint answers (a gateway or router with no live server).
UNAVAILABLE = (502, 503, 504)
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 30.0
RETRY_AFTER_MAX_S = 60.0
#: Sampling fields outside the OpenAI API, dropped when a server refuses them.
OPTIONAL_FIELDS = ("top_k", "min_p")
#: Body fields the plugin owns; --humaneval-extra-body may not set them.
RESERVED_FIELDS = ("model", "messages", "stream", "n")


class ModeDefaults(TypedDict):
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    max_tokens: int


#: Qwen3's advice per mode (model card): thinking and non-thinking.
DEFAULTS: dict[bool, ModeDefaults] = {
    True: {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0, "max_tokens": 32768},
    False: {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "min_p": 0.0, "max_tokens": 4096},
}


@dataclass(frozen=True)
class Sampling:
    """What every request sends besides the messages (``seed`` is the base seed: sample i gets seed + i)."""

    temperature: float
    top_p: float
    top_k: int | None
    min_p: float | None
    max_tokens: int
    seed: int | None
    think: bool
    extra_body: dict[str, Any] = field(default_factory=dict)
    #: Optional fields the user asked for: never dropped silently.
    explicit: frozenset[str] = frozenset()

    def as_dict(self) -> dict[str, Any]:
        """The parameters as they go into cache keys and the report."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }


def sampling_from(settings: Settings) -> Sampling:
    """Defaults for the mode, overridden by the options and by ``--humaneval-extra-body``."""
    defaults = DEFAULTS[settings.think]
    extra = parse_extra_body(settings.extra_body, settings.think)
    explicit = {"top_k"} if settings.top_k is not None else set()
    explicit |= {name for name in OPTIONAL_FIELDS if name in extra}
    if settings.max_tokens is not None and settings.max_tokens < 1:
        raise HumanEvalError("--humaneval-max-tokens must be at least 1")
    if settings.concurrency < 1:
        raise HumanEvalError("--humaneval-concurrency must be at least 1")
    return Sampling(
        temperature=defaults["temperature"] if settings.temperature is None else settings.temperature,
        top_p=defaults["top_p"] if settings.top_p is None else settings.top_p,
        top_k=defaults["top_k"] if settings.top_k is None else settings.top_k,
        min_p=defaults["min_p"],
        max_tokens=defaults["max_tokens"] if settings.max_tokens is None else settings.max_tokens,
        seed=settings.seed,
        think=settings.think,
        extra_body=extra,
        explicit=frozenset(explicit),
    )


def parse_extra_body(text: str | None, think: bool) -> dict[str, Any]:
    """``--humaneval-extra-body``: a JSON object; it may not contradict ``--think`` or set owned fields."""
    if not text:
        return {}
    flag = "--humaneval-extra-body"
    try:
        body = json.loads(text)
    except ValueError as e:
        raise HumanEvalError(
            f"{flag}: {text!r} is not valid JSON ({e}); give an object such as '{{\"min_p\": 0.05}}'"
        ) from None
    if not isinstance(body, dict):
        raise HumanEvalError(f"{flag}: {text!r}: give a JSON object ({{...}}), not a {type(body).__name__}")
    owned = [k for k in RESERVED_FIELDS if k in body]
    if owned:
        raise HumanEvalError(f"{flag}: {', '.join(owned)} cannot be overridden; remove it from the JSON")
    kwargs = body.get("chat_template_kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise HumanEvalError(f"{flag}: chat_template_kwargs must be a JSON object")
    if kwargs and "enable_thinking" in kwargs and kwargs["enable_thinking"] is not think:
        raise HumanEvalError(
            f"{flag} sets enable_thinking={json.dumps(kwargs['enable_thinking'])} but --think is "
            f"{'on' if think else 'off'}; use --think (or leave it out) instead"
        )
    return body


@dataclass
class Request:
    """One sample to generate."""

    task_id: str
    sample: int
    key: str
    messages: list[dict[str, str]]


@dataclass
class Answer:
    """What the server said (or why it said nothing) for one request."""

    content: str | None = None
    reasoning_content: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    latency_s: float = 0.0
    attempts: int = 0
    error: str | None = None


class Fatal(Exception):
    """The whole run must stop (the message says why and what to do)."""


class ServerGone(Fatal):
    """The server stopped answering."""


def openai_module(purpose: str = "generation") -> Any:
    """The ``openai`` package, imported on first use (about 0.4 s, which a run needing no request skips)."""
    try:
        import openai
    except ImportError:
        raise HumanEvalError(
            f"{purpose} needs the openai package: pip install 'pytest-humaneval[generate]'"
        ) from None
    return openai


def make_client(base_url: str, api_key: str, timeout: float) -> Any:
    """An ``AsyncOpenAI`` client without its own retries (this module retries, with a budget)."""
    openai = openai_module()
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout, max_retries=0)


async def check_endpoint(client: Any, base_url: str, model: str) -> list[str]:
    """Check that the server answers and serves ``model``; return the served model names."""
    openai = openai_module()
    try:
        served = [m.id for m in (await client.models.list()).data]
    except openai.AuthenticationError:
        raise HumanEvalError(
            f"{base_url} refused the API key (401): give the right one with --humaneval-api-key "
            "or OPENAI_API_KEY"
        ) from None
    except openai.APIConnectionError as e:
        raise HumanEvalError(
            f"cannot reach the model server at {base_url} ({_cause(e)}): is it running, and is the URL "
            "right? (--humaneval-endpoint takes the base URL ending in /v1)"
        ) from None
    except openai.NotFoundError:
        raise HumanEvalError(
            f"{base_url}/models answered 404: this is not an OpenAI-compatible base URL; "
            "give the URL ending in /v1 (e.g. http://localhost:30000/v1)"
        ) from None
    except openai.APIStatusError as e:
        raise HumanEvalError(
            f"{base_url}/models answered {e.status_code}: {clip(e.message)}; check the server"
        ) from None
    if model not in served:
        listed = ", ".join(served) or "(none)"
        raise HumanEvalError(
            f"model {model!r} is not served at {base_url}; it serves: {listed}. "
            "Give one of them with --humaneval-model"
        )
    return served


class Generator:
    """Sends the requests of one run to one server, at most ``concurrency`` at a time."""

    def __init__(
        self,
        client: Any,
        *,
        base_url: str,
        model: str,
        sampling: Sampling,
        concurrency: int,
        timeout: float,
        grace: float = 30.0,
        notify: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.openai = openai_module()
        self.client = client
        self.base_url = base_url
        self.model = model
        self.sampling = sampling
        self.concurrency = concurrency
        self.timeout = timeout
        self.dropped: list[str] = []  # optional fields this server refused
        self.retries = 0  # after 429/5xx
        self.retry_budget = 0
        self.connection_errors = 0
        self.window = Window(concurrency)
        api_key = getattr(client, "api_key", None) or "EMPTY"
        self.liveness = Liveness(base_url, api_key, grace, notify)
        self.grace = grace
        self.notify = notify
        self._gone: Fatal | None = None
        self.answered_at = 0.0  # when the server last gave an answer (monotonic)
        self.unavailable_since: float | None = None  # the first 502/503/504 of an outage
        self.unavailable_outages = 0

    def stats(self) -> dict[str, Any]:
        """What the run met on the way (for the report): connection errors, the window, outages."""
        return {
            "connection_errors": self.connection_errors,
            "retries": self.retries,
            "window_min": self.window.smallest,
            "window_cuts": self.window.cuts,
            "probes": self.liveness.probes,
            "outages": self.liveness.outages,
            "outage_s": round(self.liveness.outage_s, 3),
        }

    def body(self, request: Request) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for ``request``."""
        s = self.sampling
        extra: dict[str, Any] = {"chat_template_kwargs": {"enable_thinking": s.think}}
        for name in OPTIONAL_FIELDS:
            value = getattr(s, name)
            if value is not None and name not in self.dropped:
                extra[name] = value
        for k, v in s.extra_body.items():
            if k == "chat_template_kwargs":
                extra[k] = {**extra[k], **v}
            elif k not in self.dropped:
                extra[k] = v
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "extra_body": extra,
        }
        if s.seed is not None:
            kwargs["seed"] = s.seed + request.sample
        return kwargs

    async def run(
        self,
        requests: Sequence[Request],
        on_answer: Callable[[Request, Answer], None],
        progress: Progress,
    ) -> None:
        """Answer every request, calling ``on_answer`` as each arrives; raise ``Fatal`` to stop the run."""
        self.retry_budget = 10 + len(requests) // 10

        async def one(request: Request) -> None:
            if self._gone is not None:
                return
            sent = False

            def on_sent() -> None:
                nonlocal sent
                sent = True
                progress.sent()

            try:
                answer = await self.request(request, on_sent)
            except BaseException:
                if sent:  # in flight (or waiting to be sent again) when the run stopped
                    progress.abandoned()
                raise
            on_answer(request, answer)
            progress.finished(
                int(answer.usage.get("completion_tokens") or 0), answer.error is not None, answer.latency_s
            )

        tasks = [asyncio.ensure_future(one(r)) for r in requests]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.liveness.close()
        if self._gone is not None:
            raise self._gone

    async def request(self, request: Request, on_sent: Callable[[], None] = lambda: None) -> Answer:
        """One sample, with retries; raises ``Fatal`` for errors no other request would escape.

        ``on_sent`` is called when it is first sent (it counts as in flight from then until it returns)."""
        attempt = 0
        refused = 0  # 429/5xx answers
        lost = 0  # connection errors while the server answered its liveness check
        while True:
            async with self.window.slot():
                try:
                    await self.liveness.ready()  # nothing is sent while the server is unreachable
                except ServerGoneError as e:
                    raise self._server_gone(e) from None
                sent_at = time.monotonic()
                attempt += 1
                if attempt == 1:
                    on_sent()
                outcome = await self._attempt(request, attempt)
            if isinstance(outcome, Answer):
                if outcome.error is None:
                    self.liveness.heard()
                    self.window.answered()
                    self.answered_at = time.monotonic()
                    self._available()
                return outcome
            if outcome is None:  # the server's limitation (a dropped field), not this request's failure
                attempt -= 1
                continue
            error, reason = outcome
            if isinstance(error, self.openai.APIConnectionError):
                self.connection_errors += 1
                self.window.congested(sent_at)
                try:
                    outage = await self.liveness.check(since=time.monotonic())
                except ServerGoneError as e:
                    raise self._server_gone(e) from None
                lost += not outage
                if lost >= CONNECTION_ATTEMPTS:
                    return Answer(
                        attempts=attempt,
                        error=f"connection lost {lost} times while the server answered ({reason})",
                    )
                await asyncio.sleep(self._backoff(max(1, lost), None))
                continue
            status = getattr(error, "status_code", None)
            if status in (429, 503):
                self.window.congested(sent_at)  # "too busy": fewer in flight for a while
            if status in UNAVAILABLE and self.answered_at < sent_at:
                await self._unavailable(sent_at, f"{status}: {reason}", attempt, error)
                self.retries += 1
                continue
            refused += 1
            if refused >= MAX_ATTEMPTS or self.retries >= self.retry_budget:
                return Answer(attempts=attempt, error=f"{reason} (after {attempt} attempts)")
            self.retries += 1
            await asyncio.sleep(self._backoff(refused, error))

    async def _unavailable(self, sent_at: float, reason: str, attempt: int, error: Any) -> None:
        """Nothing answered since ``sent_at`` and the endpoint says nothing behind it answers: wait (a
        backoff) within the grace period from the outage's first such answer; past it, the run stops."""
        now = time.monotonic()
        if self.unavailable_since is None:
            self.unavailable_since = sent_at
            self.unavailable_outages += 1
            self.notify(
                f"humaneval: the server at {self.base_url} answers {reason}: nothing behind it answers; "
                f"waiting up to {self.grace:g} s for it (--humaneval-server-grace)"
            )
        left = self.unavailable_since + self.grace - now
        if left <= 0:
            raise self._server_gone(
                ServerGoneError(
                    f"the model server at {self.base_url} stopped answering: it answered {reason} to every "
                    f"request for the grace period of {self.grace:g} s (--humaneval-server-grace)"
                )
            )
        await asyncio.sleep(min(left, self._backoff(attempt, error)))

    def _available(self) -> None:
        if self.unavailable_since is not None:
            waited = time.monotonic() - self.unavailable_since
            self.unavailable_since = None
            self.notify(f"humaneval: the server at {self.base_url} answers again after {waited:.1f} s")

    def _server_gone(self, error: ServerGoneError) -> Fatal:
        if self._gone is None:
            self._gone = ServerGone(str(error))
        return self._gone

    async def _attempt(self, request: Request, attempt: int) -> Answer | tuple[Exception, str] | None:
        """Send ``request`` once: its answer (or the error that ends it), a retryable error with its
        description, or None when a refused optional field was dropped (send it again at once)."""
        openai = self.openai
        kwargs = self.body(request)
        started = time.monotonic()
        try:
            response = await self.client.chat.completions.create(**kwargs)
        except openai.APITimeoutError:
            return Answer(
                attempts=attempt,
                latency_s=time.monotonic() - started,
                error=f"no answer within {self.timeout:g} s; raise --humaneval-request-timeout",
            )
        except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
            refused = self._refused_optional(e, kwargs)
            if refused:
                self._drop(refused, e)
                return None
            if isinstance(e, openai.UnprocessableEntityError):
                raise Fatal(
                    f"the server at {self.base_url} refused the request (422: {clip(e.message)}); "
                    "check --humaneval-extra-body and the sampling options"
                ) from None
            return Answer(attempts=attempt, error=f"400 from the server: {clip(e.message)}")
        except openai.AuthenticationError:
            raise Fatal(
                f"{self.base_url} refused the API key (401): give the right one with "
                "--humaneval-api-key or OPENAI_API_KEY"
            ) from None
        except openai.NotFoundError as e:
            raise Fatal(
                f"{self.base_url} answered 404 to a chat completion ({clip(e.message)}); check "
                "--humaneval-endpoint (base URL ending in /v1) and --humaneval-model"
            ) from None
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as e:
            return e, _describe(e)
        except openai.APIStatusError as e:
            return Answer(attempts=attempt, error=f"{e.status_code} from the server: {clip(e.message)}")
        except openai.OpenAIError as e:  # e.g. an answer that is not a chat completion
            return Answer(attempts=attempt, error=f"unusable answer: {clip(str(e))}")
        return self._answer(response, attempt, time.monotonic() - started)

    def _answer(self, response: Any, attempts: int, latency: float) -> Answer:
        choices = getattr(response, "choices", None) or []
        if not choices:
            return Answer(attempts=attempts, latency_s=latency, error="the server returned no choices")
        choice = choices[0]
        message = choice.message
        reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
        usage = response.usage.model_dump(exclude_none=True) if getattr(response, "usage", None) else {}
        return Answer(
            content=message.content,
            reasoning_content=reasoning if isinstance(reasoning, str) else None,
            finish_reason=choice.finish_reason,
            usage=usage,
            latency_s=latency,
            attempts=attempts,
        )

    def _refused_optional(self, error: Any, kwargs: dict[str, Any]) -> list[str]:
        """The optional fields this 400/422 is about (named in the message), if this request sent any.

        Requests in flight when another one dropped a field get the same answer: they retry too.
        """
        sent = [n for n in OPTIONAL_FIELDS if n in kwargs["extra_body"]]
        text = f"{error.message} {getattr(error, 'body', '')}"
        return [n for n in sent if n in text]

    def _drop(self, names: list[str], error: Any) -> None:
        explicit = [n for n in names if n in self.sampling.explicit]
        if explicit:
            raise Fatal(
                f"the server at {self.base_url} does not accept {', '.join(explicit)} "
                f"({error.status_code}: {clip(error.message)}); remove it from the options "
                "(--humaneval-top-k, --humaneval-extra-body)"
            )
        for n in names:
            if n not in self.dropped:
                self.dropped.append(n)

    def _backoff(self, attempt: int, error: Any) -> float:
        retry_after = _retry_after(error)
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_MAX_S)
        return random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))


def _retry_after(error: Any) -> float | None:
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _describe(error: Any) -> str:
    status = getattr(error, "status_code", None)
    if status is not None:
        return f"{status}: {clip(getattr(error, 'message', str(error)))}"
    return _cause(error)


def _cause(error: BaseException) -> str:
    """The innermost cause of a connection error (e.g. 'Connection refused'), not the wrapper's text."""
    inner: BaseException = error
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner) or type(inner).__name__
    return clip(text if inner is error else f"{error}: {text}")
