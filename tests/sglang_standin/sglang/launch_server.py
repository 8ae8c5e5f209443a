"""Stand-in for ``python -m sglang.launch_server``: the same flags and HTTP surface, answers without a model.

It behaves like SGLang where the lifecycle depends on it: ``/health`` answers 503 while "warming up"
(``STANDIN_WARMUP`` seconds, default 2) and 200 after; ``/health`` needs no API key, ``/v1/*`` does when
``--api-key`` is given; a child "scheduler" process shares its process group. ``STANDIN_FAIL=1`` makes it
die during start-up after printing an error, as SGLang does when the model does not fit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sglang.launch_server", allow_abbrev=False)
    parser.add_argument("--model-path", "--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=30000)
    parser.add_argument("--tp-size", "--tensor-parallel-size", type=int, default=1)
    parser.add_argument("--reasoning-parser")
    parser.add_argument("--served-model-name")
    parser.add_argument("--api-key")
    parser.add_argument("--dp-size", "--dp", type=int, default=1)
    parser.add_argument("--max-total-tokens", type=int)
    parser.add_argument("--sleep-on-idle", action="store_true")
    return parser.parse_args(argv)


def say(line: str) -> None:
    print(f"[standin] {line}", flush=True)


def answer(body: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """A small valid chat completion: a fenced block defining the function the prompt names."""
    prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user")
    names = re.findall(r"def\s+(\w+)\s*\(", prompt)
    name = names[-1] if names else "solution"
    content = f"Here is the function:\n\n```python\ndef {name}(*args, **kwargs):\n    return None\n```\n"
    thinking = bool((body.get("chat_template_kwargs") or {}).get("enable_thinking"))
    reasoning = f"The user wants {name}. A stand-in cannot think, so it returns None." if thinking else None
    if reasoning and not args.reasoning_parser:
        content, reasoning = f"<think>\n{reasoning}\n</think>\n\n{content}", None
    prompt_tokens, completion_tokens = len(prompt.split()), len(content.split())
    return {
        "id": f"chatcmpl-standin-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": args.served_model_name or args.model_path,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "reasoning_content": reasoning},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def make_handler(args: argparse.Namespace, ready_at: float) -> type[BaseHTTPRequestHandler]:
    served = args.served_model_name or args.model_path

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *items: Any) -> None:
            say(f"{self.address_string()} - {format % items}")

        def send_json(self, code: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def authorized(self) -> bool:
            if args.api_key and self.headers.get("Authorization") != f"Bearer {args.api_key}":
                self.send_json(401, {"error": "Unauthorized"})
                return False
            return True

        def do_GET(self) -> None:
            if self.path.startswith("/health"):
                if time.monotonic() < ready_at:
                    self.send_json(503, {"error": "warming up"})
                else:
                    self.send_json(200, {})
            elif self.path == "/v1/models":
                if self.authorized():
                    model = {"id": served, "object": "model", "owned_by": "sglang", "root": args.model_path}
                    self.send_json(200, {"object": "list", "data": [model]})
            else:
                self.send_json(404, {"error": f"no route {self.path}"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if self.path != "/v1/chat/completions":
                self.send_json(404, {"error": f"no route {self.path}"})
            elif self.authorized():
                self.send_json(200, answer(body, args))

    return Handler


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    say(f"server_args={vars(args)}")
    if os.environ.get("STANDIN_FAIL"):
        time.sleep(0.5)
        print("RuntimeError: stand-in start-up failure (STANDIN_FAIL is set)", file=sys.stderr, flush=True)
        return 1
    # SGLang runs its scheduler in child processes: stopping the server must take them down too.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    say(f"scheduler pid {child.pid}")
    warmup = float(os.environ.get("STANDIN_WARMUP", "2"))
    server = ThreadingHTTPServer((args.host, args.port), make_handler(args, time.monotonic() + warmup))
    say(f"listening on {args.host}:{args.port}, warm-up {warmup:g} s, model {args.model_path}")
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        child.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
