"""A small OpenAI-compatible HTTP server on 127.0.0.1 for behaviour a real model server cannot be made
to show on demand: a fixed latency (the benchmark), 429/5xx answers (retries), an API key (401), a
small listen backlog (connection resets under load), a process to kill and restart on the same port.

It is a real server over real sockets (stdlib ``ThreadingHTTPServer``, HTTP/1.1 keep-alive), so the
client under test runs unchanged. It records every request body it receives, and with ``log`` set
appends one JSON line per chat request answered to that file (flushed at once, so the count
survives a SIGKILL): what a test counts server-side across restarts.
"""

from __future__ import annotations

import functools
import hashlib
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

#: An answer: content, or (content, reasoning_content, finish_reason).
Reply = str | tuple[str | None, str | None, str]


@dataclass
class StubConfig:
    model: str = "stub-model"
    latency_s: float = 0.0
    api_key: str | None = None  # when set, requests without "Authorization: Bearer <key>" get 401
    reply: Callable[[dict[str, Any]], Reply] = lambda body: "```python\ndef f():\n    return 1\n```"
    #: Status codes answered to the first chat requests, in order (then 200s); e.g. [503, 429].
    failures: list[int] = field(default_factory=list)
    retry_after: str | None = None  # Retry-After header sent with the failures
    #: Body fields answered with 422 "Unexpected fields", as ``transformers serve`` does.
    reject_fields: frozenset[str] = frozenset()
    completion_tokens: int | Callable[[dict[str, Any]], int] = 100  # or per request body
    #: The listen backlog: Python's http.server default is 5; the stub's own default takes a whole run.
    backlog: int = 1024
    port: int = 0  # 0: a free port
    log: Path | None = None  # append {"task_id", "seed", "digest"} per chat completion answered
    #: Reset (RST) the connections of the first N chat requests instead of answering them.
    reset_connections: int = 0
    health: bool = True  # False: /health answers 404, as on servers that have none


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        key = self.server.config.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._send(401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
        return False

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health" and self.server.config.health:
            self._send(200, {"status": "ok"})
        elif self.path.rstrip("/") == "/v1/models":
            if self._authorized():
                model = {"id": self.server.config.model, "object": "model", "created": 0, "owned_by": "stub"}
                self._send(200, {"object": "list", "data": [model]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        if not self._authorized():
            return
        stub = self.server
        config = stub.config
        with stub.lock:
            stub.requests.append(body)
            failure = config.failures.pop(0) if config.failures else None
            reset = failure is None and config.reset_connections > 0
            config.reset_connections -= reset
        if reset:  # the request was read; the client sees "connection reset by peer" instead of an answer
            stub.resets.add(self.connection)
            self.close_connection = True
            return
        if failure is not None:
            headers = {"Retry-After": config.retry_after} if config.retry_after else {}
            self._send(failure, {"error": {"message": f"stub failure {failure}"}}, headers)
            return
        rejected = sorted(config.reject_fields & set(body))
        if rejected:
            self._send(422, {"detail": f"Unexpected fields in the request: {set(rejected)}"})
            return
        if body.get("model") != config.model:
            self._send(404, {"error": {"message": f"model {body.get('model')!r} not found"}})
            return
        time.sleep(config.latency_s)
        reply = config.reply(body)
        content, reasoning, finish = (reply, None, "stop") if isinstance(reply, str) else reply
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        prompt_tokens = sum(len(m.get("content", "").split()) for m in body.get("messages", []))
        tokens = config.completion_tokens
        completion_tokens = tokens(body) if callable(tokens) else tokens
        self._send(
            200,
            {
                "id": f"stub-{len(stub.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": config.model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )
        if stub.log is not None:
            stub.log_answer(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer (a killed test run) is not an error of the stub."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)

    def __init__(self, config: StubConfig) -> None:
        self.request_queue_size = config.backlog  # read by server_activate's listen()
        super().__init__(("127.0.0.1", config.port), _Handler)
        self.config = config
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.resets: set[Any] = set()
        self.log = open(config.log, "a", encoding="utf-8") if config.log else None

    def shutdown_request(self, request: Any) -> None:
        if request in self.resets:  # close at once with linger 0: RST, no FIN
            self.resets.discard(request)
            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def log_answer(self, body: dict[str, Any]) -> None:
        """One line per answer sent: the problem (when it is a HumanEval prompt), the seed, the prompt's
        digest. Written after the answer, so a line is an answer that left the server."""
        text = body["messages"][-1]["content"] if body.get("messages") else ""
        line = {
            "task_id": _task_id(text),
            "seed": body.get("seed"),
            "digest": hashlib.sha256(text.encode()).hexdigest()[:16],
        }
        assert self.log is not None  # called only where the config names a log
        with self.lock:
            self.log.write(json.dumps(line) + "\n")
            self.log.flush()

    def server_close(self) -> None:
        super().server_close()
        if self.log is not None:
            self.log.close()


@dataclass
class Stub:
    base_url: str
    config: StubConfig
    requests: list[dict[str, Any]]

    @property
    def chat_requests(self) -> int:
        return len(self.requests)


@contextmanager
def stub_server(config: StubConfig | None = None) -> Iterator[Stub]:
    """Serve ``config`` on a free port of 127.0.0.1 for the ``with`` block."""
    server = _Server(config or StubConfig())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Stub(f"http://127.0.0.1:{server.server_address[1]}/v1", server.config, server.requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@functools.cache
def _problems(dataset: str) -> list[Any]:
    from pytest_humaneval.datasets.registry import load_dataset

    return list(load_dataset(dataset))


def _task_id(text: str) -> str | None:
    """The HumanEval task whose prompt ``text`` holds, if any."""
    return next((p.task_id for p in _problems("humaneval") if p.prompt in text), None)


def canonical_reply(dataset: str = "humaneval") -> Callable[[dict[str, Any]], Reply]:
    """Answer each HumanEval prompt with its reference solution in a fenced block, as a good model would."""
    problems = _problems(dataset)

    def reply(body: dict[str, Any]) -> Reply:
        text = body["messages"][-1]["content"]
        for p in problems:
            if p.prompt in text:
                return f"Here is the function:\n\n```python\n{p.prompt}{p.canonical_solution}```\n"
        return "I do not know this problem."

    return reply


def spawn_stub(*args: str) -> tuple[subprocess.Popen[str], str]:
    """This server in a process of its own (a server a test can kill and start again): the process, and
    the base URL it printed once its socket listens. ``args`` are :func:`main`'s."""
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url:
        proc.wait()
        raise RuntimeError(f"openai_stub.py {' '.join(args)} exited with {proc.returncode} before listening")
    return proc, url


def main() -> None:
    """``python openai_stub.py [--latency S] [--canonical] [--port P] [--backlog N] [--log FILE]``: serve
    until killed; print the base URL first (once the socket listens)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per chat completion")
    parser.add_argument("--canonical", action="store_true", help="answer HumanEval prompts correctly")
    parser.add_argument("--completion-tokens", type=int, default=100)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--backlog", type=int, default=1024, help="listen backlog (http.server's is 5)")
    parser.add_argument("--log", type=Path, help="append a JSON line per chat completion answered")
    parser.add_argument("--reset", type=int, default=0, help="reset the first N chat requests")
    args = parser.parse_args()
    config = StubConfig(
        latency_s=args.latency,
        completion_tokens=args.completion_tokens,
        backlog=args.backlog,
        port=args.port,
        log=args.log,
        reset_connections=args.reset,
    )
    if args.canonical:
        config.reply = canonical_reply()
    with stub_server(config) as stub:
        print(stub.base_url, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
