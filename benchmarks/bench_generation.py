"""What the plugin's generation costs over a bare request loop, against a stub or the real SGLang server.

    python benchmarks/bench_generation.py                                 # the stub: 1 s per request
    python benchmarks/bench_generation.py --server=sglang [--sglang-python=VENV/bin/python]
        [--max-tokens=32] [--rounds=3] [--samples=1] [--concurrency=256] [--no-plugin]

``--server=stub`` starts ``tests/openai_stub.py`` (a fixed latency per chat completion, 100 completion
tokens, each problem's reference solution). ``--server=sglang`` starts the real SGLang (CPU engine) the
way the plugin does, ``--humaneval-server=process --humaneval-gpus=none``, serving the tiny random Qwen3 of
``tests/tiny_model.py``; every answer is exactly ``--max-tokens`` long (``ignore_eos``), so each round asks
the server for the same work. It prints the server's start-up time.

Then, for the 164 HumanEval prompts x ``--samples``, alternating ``--rounds`` times:

1. bare: an asyncio loop over the same requests with the same client (``make_client``, the same request
   bodies, the same concurrency bound) and nothing else;
2. pipeline: the plugin's generation in this process - ``Generator`` (concurrency bound, retries,
   progress), extraction and a cache append for every answer.

Overhead = pipeline wall / bare wall - 1 (median of the rounds), and per request the median client-side
latency of each and the client process's CPU time per request (what the pipeline's own work costs,
steadier than wall time when other jobs share the machine). Last (unless ``--no-plugin``),
``--plugin-rounds`` runs of ``pytest --humaneval --humaneval-endpoint=URL -n 2`` end to end, each in a
fresh directory right after a bare round in a fresh process (a plain script's one-time costs: first
connections and the client's first responses): the generation wall time its report records against it.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SGLANG_PYTHON = (
    Path.home() / ".cache" / "pytest-humaneval" / "sglang-0.5.23-cpu-r1" / "bin" / "python"
)

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from openai_stub import spawn_stub  # noqa: E402
from server_support import default_settings  # noqa: E402

from pytest_humaneval.datasets.dataset import data_dir  # noqa: E402
from pytest_humaneval.datasets.registry import load_dataset  # noqa: E402
from pytest_humaneval.generation.cache import CompletionCache, RunSpec  # noqa: E402
from pytest_humaneval.generation.client import (  # noqa: E402
    Answer,
    Generator,
    Request,
    Sampling,
    check_endpoint,
    make_client,
    sampling_from,
)
from pytest_humaneval.generation.extract import extract  # noqa: E402
from pytest_humaneval.generation.progress import Progress  # noqa: E402
from pytest_humaneval.generation.prompts import DEFAULT_TEMPLATE, messages_digest, render  # noqa: E402
from pytest_humaneval.generation.records import answer_record  # noqa: E402


@dataclass
class Server:
    url: str
    model: str
    api_key: str
    startup_s: float | None
    stop: Callable[[], None]
    extra_body: dict[str, Any]


def start_stub(latency: float) -> Server:
    proc, url = spawn_stub(f"--latency={latency}", "--canonical")

    def stop() -> None:
        proc.kill()
        proc.wait()

    return Server(url, "stub-model", "EMPTY", None, stop, {})


def start_sglang(python: Path, work: Path, max_tokens: int) -> Server:
    from tiny_model import build_tiny_qwen3
    from tiny_server import free_port

    from pytest_humaneval.generation.server import start_server

    model = build_tiny_qwen3(work / "tiny-qwen3", max_position_embeddings=40960)
    s = default_settings(
        work / "server",
        server="process",
        sglang_python=python,
        gpus="none",
        model="tiny-qwen3",
        model_path=model,
        port=free_port(),
        startup_timeout=900.0,
    )
    handle = start_server(s, notify=lambda line: print(f"  {line}", flush=True))
    return Server(handle.base_url, handle.model, handle.api_key or "EMPTY", handle.startup_s, handle.stop,
                  {"ignore_eos": True})  # fmt: skip


def build_requests(samples: int, spec: RunSpec, problems: int = 164) -> list[Request]:
    requests = []
    for p in list(load_dataset("humaneval"))[:problems]:
        messages = [{"role": "user", "content": render(DEFAULT_TEMPLATE, p)}]
        digest = messages_digest(messages)
        requests += [Request(p.task_id, i, spec.key(p.digest, digest, i), messages) for i in range(samples)]
    return requests


def workload(
    server: Server, work: Path, args: argparse.Namespace, max_tokens: int | None, problems: int
) -> tuple[Sampling, list[Request]]:
    """The sampling and the requests of every round (in this process and in :func:`cold_bare`'s)."""
    s = default_settings(work, model=server.model, concurrency=args.concurrency, max_tokens=max_tokens)
    sampling = replace(sampling_from(s), extra_body=server.extra_body)
    spec = RunSpec(model=server.model, think=False, sampling=sampling.as_dict())
    return sampling, build_requests(args.samples, spec, problems)


async def bare(
    server: Server, sampling: Sampling, requests: list[Request], concurrency: int
) -> dict[str, Any]:
    """The floor: the same client and request bodies in a plain semaphore-bounded loop."""
    client = make_client(server.url, server.api_key, 600)
    bodies = Generator(client, base_url=server.url, model=server.model, sampling=sampling,
                       concurrency=concurrency, timeout=600)  # fmt: skip
    semaphore = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    tokens = 0

    async def one(request: Request) -> None:
        nonlocal tokens
        async with semaphore:
            started = time.perf_counter()
            response = await client.chat.completions.create(**bodies.body(request))
            latencies.append(time.perf_counter() - started)
            tokens += response.usage.completion_tokens

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(r) for r in requests))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await client.close()
    return {"wall_s": wall, "cpu_s": cpu, "latencies": latencies, "tokens": tokens}


async def pipeline(
    server: Server, sampling: Sampling, requests: list[Request], concurrency: int, work: Path
) -> dict[str, Any]:
    """The plugin's generation: Generator, extraction and a cache append for every answer."""
    dataset = load_dataset("humaneval")
    spec = RunSpec(
        model=server.model, think=False, sampling=sampling.as_dict(), extra_body=sampling.extra_body
    )
    cache = CompletionCache.for_spec(work, spec)
    cache.open()
    answers: list[Answer] = []

    def on_answer(request: Request, answer: Answer) -> None:  # make_record, less its (empty) hook call
        problem = dataset.problems[request.task_id]
        result = extract(
            problem,
            answer.content,
            reasoning_content=answer.reasoning_content,
            finish_reason=answer.finish_reason,
        )
        cache.append(answer_record(request, answer, result))
        answers.append(answer)

    client = make_client(server.url, server.api_key, 600)
    await check_endpoint(client, server.url, server.model)
    gen = Generator(client, base_url=server.url, model=server.model, sampling=sampling,
                    concurrency=concurrency, timeout=600)  # fmt: skip
    with open(os.devnull, "w") as sink, Progress(len(requests), file=sink) as progress:
        t0, cpu0 = time.perf_counter(), time.process_time()
        await gen.run(requests, on_answer, progress)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await client.close()
    cache.close()
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "latencies": [a.latency_s for a in answers],
        "tokens": sum(int(a.usage.get("completion_tokens", 0)) for a in answers),
        "errors": sum(a.error is not None for a in answers),
    }


def first_problems(count: int, work: Path) -> Path:
    """A dataset file holding the first ``count`` HumanEval problems."""
    with gzip.open(data_dir("datasets") / "HumanEval.jsonl.gz", "rt") as source:
        lines = [line for line in source if line.strip()][:count]
    path = work / f"HumanEval_{count}.jsonl"
    path.write_text("".join(lines))
    return path


def plugin_run(
    server: Server, work: Path, samples: int, max_tokens: int | None, problems: int
) -> tuple[float, dict[str, Any]]:
    cmd = [sys.executable, "-m", "pytest", "--humaneval", f"--humaneval-endpoint={server.url}",
           f"--humaneval-dataset={first_problems(problems, work)}",
           f"--humaneval-model={server.model}", f"--humaneval-samples={samples}", "-n", "2", "-q",
           "-p", "no:cacheprovider", "-p", "no:randomly"]  # fmt: skip
    if max_tokens is not None:
        cmd.append(f"--humaneval-max-tokens={max_tokens}")
    if server.extra_body:
        cmd.append(f"--humaneval-extra-body={json.dumps(server.extra_body)}")
    env = {**os.environ, "OPENAI_API_KEY": server.api_key}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"pytest failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, json.loads((work / ".humaneval" / "report.json").read_text())


def cold_bare(server: Server, args: argparse.Namespace, max_tokens: int | None, problems: int) -> float:
    """One bare round in a fresh process, as a plain script would run it: the same one-time costs as the
    plugin's run (first connections, the client's first responses), with openai imported before the clock."""
    cmd = [sys.executable, __file__, f"--cold-bare={server.url}", f"--cold-model={server.model}",
           f"--cold-extra-body={json.dumps(server.extra_body)}", f"--problems={problems}",
           f"--samples={args.samples}", f"--concurrency={args.concurrency}"]  # fmt: skip
    if max_tokens is not None:
        cmd.append(f"--cold-max-tokens={max_tokens}")
    env = {**os.environ, "OPENAI_API_KEY": server.api_key}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return float(json.loads(proc.stdout.splitlines()[-1])["wall_s"])


def run_cold_bare(args: argparse.Namespace) -> None:
    """The child of :func:`cold_bare`: print one bare round's wall time as JSON."""
    server = Server(args.cold_bare, args.cold_model, os.environ.get("OPENAI_API_KEY", "EMPTY"), None,
                    lambda: None, json.loads(args.cold_extra_body))  # fmt: skip
    sampling, requests = workload(  # the bare loop writes nothing under its output directory
        server, Path(tempfile.gettempdir()), args, args.cold_max_tokens, args.problems
    )
    make_client(server.url, server.api_key, 600)  # imports openai, before the clock
    result = asyncio.run(bare(server, sampling, requests, args.concurrency))
    print(json.dumps({"wall_s": result["wall_s"]}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", choices=("stub", "sglang"), default="stub")
    parser.add_argument("--latency", type=float, default=1.0, help="the stub's seconds per request")
    parser.add_argument("--sglang-python", type=Path, default=Path(
        os.environ.get("PYTEST_HUMANEVAL_SGLANG_PYTHON") or DEFAULT_SGLANG_PYTHON))  # fmt: skip
    parser.add_argument("--max-tokens", type=int, default=16, help="answer length for --server=sglang")
    parser.add_argument(
        "--problems", type=int, help="the first N problems (default: all 164 with the stub, 32 with SGLang)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--no-plugin", action="store_true", help="skip the end-to-end pytest runs")
    parser.add_argument(
        "--plugin-rounds", type=int, default=3, help="end-to-end pytest runs, each after a bare round"
    )
    parser.add_argument("--cold-bare", help=argparse.SUPPRESS)  # the child of cold_bare(): its URL
    parser.add_argument("--cold-model", help=argparse.SUPPRESS)
    parser.add_argument("--cold-extra-body", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--cold-max-tokens", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_bare:
        run_cold_bare(args)
        return

    with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
        work = Path(tmp)
        if args.server == "sglang":
            print(f"starting the real SGLang (CPU engine, tiny Qwen3) with {args.sglang_python}", flush=True)
            server = start_sglang(args.sglang_python, work, args.max_tokens)
            max_tokens: int | None = args.max_tokens
        else:
            server = start_stub(args.latency)
            max_tokens = None
        try:
            problems = args.problems or (164 if args.server == "stub" else 32)
            sampling, requests = workload(server, work, args, max_tokens, problems)
            what = (
                f"{args.latency:g} s per request"
                if args.server == "stub"
                else f"{args.max_tokens} tokens each"
            )
            print(f"server: {args.server} at {server.url}; {len(requests)} requests, {what}, "
                  f"concurrency {args.concurrency}")  # fmt: skip
            if server.startup_s is not None:
                print(f"server start-up: {server.startup_s:.1f} s (until GET /health answered 200)")
            asyncio.run(bare(server, sampling, requests[:8], args.concurrency))  # warm-up, not counted
            rounds: dict[str, list[dict[str, Any]]] = {"bare": [], "pipeline": []}
            for index in range(args.rounds):  # alternate which goes first: no side gets a warmer server
                order = ("bare", "pipeline") if index % 2 == 0 else ("pipeline", "bare")
                for label in order:
                    if label == "bare":
                        result = asyncio.run(bare(server, sampling, requests, args.concurrency))
                    else:
                        run = pipeline(server, sampling, requests, args.concurrency, work / f"round-{index}")
                        result = asyncio.run(run)
                    rounds[label].append(result)
                b, p = rounds["bare"][-1], rounds["pipeline"][-1]
                print(f"  round {index + 1}: bare {b['wall_s']:.3f} s, pipeline {p['wall_s']:.3f} s")
            medians = {}
            for label, results in rounds.items():
                walls = [r["wall_s"] for r in results]
                wall = statistics.median(walls)
                latency = statistics.median(statistics.median(r["latencies"]) for r in results)
                tokens = statistics.median(r["tokens"] for r in results)
                medians[label] = wall
                print(f"{label:>8}: wall {wall:.3f} s median of {args.rounds} (min {min(walls):.3f}, max "
                      f"{max(walls):.3f}), per request median {latency * 1000:.1f} ms, "
                      f"{tokens / wall:,.0f} completion tok/s")  # fmt: skip
            cpu = {label: statistics.median(r["cpu_s"] for r in results) / len(requests) * 1000
                   for label, results in rounds.items()}  # fmt: skip
            own = cpu["pipeline"] - cpu["bare"]
            print(f"client CPU per request (this process, user + system; medians): bare {cpu['bare']:.2f} "
                  f"ms, pipeline {cpu['pipeline']:.2f} ms, {own:+.2f} ms for its own work")  # fmt: skip
            best = min(r["wall_s"] for r in rounds["pipeline"]) / min(r["wall_s"] for r in rounds["bare"]) - 1
            errors = sum(r["errors"] for r in rounds["pipeline"])
            overhead = medians["pipeline"] / medians["bare"] - 1
            print(f"pipeline overhead over the bare loop: {overhead * 100:+.1f} % of wall time (medians; "
                  f"{best * 100:+.1f} % best against best), "
                  f"{(medians['pipeline'] - medians['bare']) * 1000 / len(requests):+.2f} ms per request; "
                  f"generation errors {errors}")  # fmt: skip
            if not args.no_plugin:  # each run next to a bare round in a fresh process, as a script runs
                walls, gens, bares = [], [], []
                for index in range(args.plugin_rounds):
                    bares.append(cold_bare(server, args, max_tokens, problems))
                    plugin_dir = work / f"plugin-{index}"
                    plugin_dir.mkdir()
                    wall, report = plugin_run(server, plugin_dir, args.samples, max_tokens, problems)
                    walls.append(wall)
                    gens.append(report["generation"]["generation_wall_s"])
                    print(
                        f"  plugin run {index + 1}: bare (fresh process) {bares[-1]:.3f} s, "
                        f"pytest wall {wall:.2f} s, generation {gens[-1]:.3f} s "
                        f"for {report['generation']['requested']} requests"
                    )
                gen, floor = statistics.median(gens), statistics.median(bares)
                print(f"plugin end to end (pytest --humaneval-endpoint, -n 2; medians of {len(gens)}): "
                      f"wall {statistics.median(walls):.2f} s, generation {gen:.3f} s against {floor:.3f} s "
                      f"for the bare loop in a fresh process ({gen / floor - 1:+.1%}; best against best "
                      f"{min(gens) / min(bares) - 1:+.1%})")  # fmt: skip
        finally:
            server.stop()


if __name__ == "__main__":
    main()
