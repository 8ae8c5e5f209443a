"""How close generation gets to the latency floor: 164 requests against a server that takes 1 s each.

    python benchmarks/bench_generation.py [--latency=1.0] [--samples=1] [--concurrency=256] [--no-plugin]

Starts ``tests/openai_stub.py`` (an OpenAI-compatible server on 127.0.0.1, a fixed latency per chat
completion, usage of 100 completion tokens, answers with each problem's reference solution) in a
process of its own, then measures two things:

1. The generation pipeline in this process: prompts from the default template, ``Generator`` (the
   client with its concurrency bound and retries), extraction and an append to the cache file for
   every answer - timed from the first request to the last answer. Overhead = wall - latency; per
   request = the client-side latency minus the server's sleep.
2. The plugin end to end: ``pytest --humaneval --humaneval-endpoint=... -n 2`` (generate, evaluate,
   report) in a fresh directory, then the same again (every completion from the cache).

The deployment scripts this project replaces sent the requests one by one: 164 x 1 s = 164 s here
(58.5 s on a GPU, 18.3 s with a process pool).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STUB = ROOT / "tests" / "openai_stub.py"

sys.path.insert(0, str(ROOT))

from pytest_humaneval.dataset import load_dataset  # noqa: E402
from pytest_humaneval.generation.cache import CompletionCache, RunSpec  # noqa: E402
from pytest_humaneval.generation.client import (  # noqa: E402
    Answer,
    Generator,
    Request,
    check_endpoint,
    make_client,
    sampling_from,
)
from pytest_humaneval.generation.extract import extract  # noqa: E402
from pytest_humaneval.generation.progress import Progress  # noqa: E402
from pytest_humaneval.generation.prompts import DEFAULT_TEMPLATE, messages_digest, render  # noqa: E402
from pytest_humaneval.options import OPTIONS, Settings  # noqa: E402


def start_stub(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(STUB), f"--latency={latency}", "--canonical"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def settings(output: Path, concurrency: int) -> Settings:
    values: dict[str, Any] = {opt.name: opt.default for opt in OPTIONS}
    values.update(output=output, model="stub-model", concurrency=concurrency)
    return Settings(**values)


async def pipeline(url: str, samples: int, concurrency: int, work: Path) -> dict[str, Any]:
    dataset = load_dataset("humaneval")
    s = settings(work, concurrency)
    sampling = sampling_from(s)
    spec = RunSpec(model=s.model, think=False, sampling=sampling.as_dict())
    requests = []
    for p in dataset:
        messages = [{"role": "user", "content": render(DEFAULT_TEMPLATE, p)}]
        digest = messages_digest(messages)
        requests += [Request(p.task_id, i, spec.key(p.digest, digest, i), messages) for i in range(samples)]
    cache = CompletionCache.for_spec(work, spec)
    answers: list[Answer] = []
    statuses: dict[str, int] = {}

    def on_answer(request: Request, answer: Answer) -> None:
        result = extract(
            dataset.problems[request.task_id], answer.content, finish_reason=answer.finish_reason
        )
        cache.append({"task_id": request.task_id, "sample": request.sample, "key": request.key,
                      "completion": result.completion, "status": result.status, "raw": answer.content,
                      "usage": answer.usage, "latency_s": answer.latency_s})  # fmt: skip
        answers.append(answer)
        statuses[result.status] = statuses.get(result.status, 0) + 1

    t0 = time.perf_counter()
    client = make_client(url, "EMPTY", s.request_timeout)
    await check_endpoint(client, url, s.model)
    setup = time.perf_counter() - t0
    gen = Generator(
        client, base_url=url, model=s.model, sampling=sampling, concurrency=concurrency, timeout=60
    )
    with open(os.devnull, "w") as sink, Progress(len(requests), file=sink) as progress:
        t1 = time.perf_counter()
        await gen.run(requests, on_answer, progress)
        wall = time.perf_counter() - t1
    await client.close()
    cache.close()
    tokens = sum(int(a.usage.get("completion_tokens", 0)) for a in answers)
    return {
        "requests": len(requests),
        "setup_s": setup,
        "wall_s": wall,
        "latencies": [a.latency_s for a in answers],
        "tokens_per_s": tokens / wall,
        "statuses": statuses,
        "errors": sum(a.error is not None for a in answers),
        "cache_lines": len(cache.path.read_text().splitlines()),
    }


def plugin_run(url: str, work: Path, samples: int) -> tuple[float, dict[str, Any]]:
    cmd = [sys.executable, "-m", "pytest", "--humaneval", f"--humaneval-endpoint={url}",
           "--humaneval-model=stub-model", f"--humaneval-samples={samples}", "-n", "2", "-q",
           "-p", "no:cacheprovider", "-p", "no:randomly"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"pytest failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, json.loads((work / ".humaneval" / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--no-plugin", action="store_true", help="skip the end-to-end pytest runs")
    args = parser.parse_args()

    stub, url = start_stub(args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
            r = asyncio.run(pipeline(url, args.samples, args.concurrency, Path(tmp)))
            over_ms = [(lat - args.latency) * 1000 for lat in r["latencies"]]
            floor = args.latency * -(-r["requests"] // args.concurrency)
            print(f"server: {url}, {args.latency:g} s per request; concurrency {args.concurrency}")
            print(
                f"pipeline: {r['requests']} requests in {r['wall_s']:.3f} s (floor {floor:g} s, overhead "
                f"{r['wall_s'] - floor:.3f} s); client set-up + /v1/models {r['setup_s']:.3f} s"
            )
            print(
                f"  per request over the server's sleep: median {statistics.median(over_ms):.1f} ms, "
                f"max {max(over_ms):.1f} ms; {r['tokens_per_s']:,.0f} completion tok/s"
            )
            print(f"  statuses {r['statuses']}; errors {r['errors']}; cache lines {r['cache_lines']}")
            if not args.no_plugin:
                for label in ("plugin, first run", "plugin, rerun (cache)"):
                    wall, report = plugin_run(url, Path(tmp), args.samples)
                    g = report["generation"]
                    gen = f"{g['generation_wall_s']:.2f} s" if "generation_wall_s" in g else "none"
                    print(
                        f"{label}: pytest wall {wall:.2f} s; generation {gen} ({g['requested']} requested, "
                        f"{g['cached']} cached); pass@1 {report['pass_at_k']['1']:.4f} "
                        f"({report['passed']}/{report['total']})"
                    )
    finally:
        stub.kill()
        stub.wait()


if __name__ == "__main__":
    main()
