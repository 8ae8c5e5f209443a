"""End to end against a real model server: the tiny random Qwen3 behind ``transformers serve`` on CPU.

Its answers are noise; what is asserted is the whole path: the requests and their flags, the cache
(every field, reuse, resume), the completions handed to the workers and the report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from plugin_support import RECORD_FIELDS
from tiny_server import ServerInfo

pytestmark = pytest.mark.slow


def answered(server: ServerInfo) -> int:
    """Chat completions the server has answered with 200 so far (from its access log)."""
    return len(re.findall(r'"POST /v1/chat/completions HTTP/1.1" 200', server.log_path.read_text()))


def run(pytester: pytest.Pytester, server: ServerInfo, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--humaneval-debug",
        f"--humaneval-endpoint={server.base_url}",
        f"--humaneval-model={server.model}",
        "--humaneval-max-tokens=32",
        *args,
    )


def cache(pytester: pytest.Pytester, think: bool = False) -> tuple[Path, list[dict[str, Any]]]:
    files = sorted((pytester.path / ".humaneval" / "completions").glob("*.cache.jsonl"))
    (path,) = [f for f in files if ("-think-" in f.name) == think]
    return path, [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / ".humaneval" / "report.json").read_text())


def test_generate_cache_report_and_rerun(pytester: pytest.Pytester, tiny_endpoint: ServerInfo) -> None:
    before = answered(tiny_endpoint)
    first = run(pytester, tiny_endpoint, "--humaneval-seed=3")
    assert answered(tiny_endpoint) - before == 4  # one request per problem
    first.assert_outcomes(failed=4)  # random weights solve nothing
    first.stdout.fnmatch_lines(["humaneval: 4 samples of *: 0 from the cache, 4 generated in *"])

    path, records = cache(pytester)
    assert len(records) == 4 and all(set(r) == RECORD_FIELDS for r in records)
    assert sorted(r["task_id"] for r in records) == [f"HumanEval/{i}" for i in range(4)]
    for r in records:
        assert r["status"] in ("ok", "truncated", "no_code") and r["finish_reason"] in ("stop", "length")
        assert r["raw"] is not None and 0 < r["usage"]["completion_tokens"] <= 32 and r["latency_s"] > 0

    data = report(pytester)
    gen = data["generation"]
    assert data["model"] == tiny_endpoint.model and data["total"] == 4
    assert gen["source"] == "endpoint" and gen["think"] is False and gen["requested"] == 4
    assert gen["sampling"] == {
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "min_p": 0.0,
        "max_tokens": 32,
        "seed": 3,
    }
    # transformers serve refuses top_k/min_p (422): dropped once, said in the report
    assert sorted(gen["dropped_params"]) == ["min_p", "top_k"]
    assert gen["cache"] == str(path) and Path(gen["completions"]).is_file()
    assert gen["usage"]["completion_tokens"] == sum(r["usage"]["completion_tokens"] for r in records)

    before = answered(tiny_endpoint)
    again = run(pytester, tiny_endpoint, "--humaneval-seed=3")
    assert answered(tiny_endpoint) == before  # every completion from the cache
    again.stdout.fnmatch_lines(["humaneval: 4 samples of *: 4 from the cache, nothing to generate*"])
    assert report(pytester)["generation"]["cached"] == 4
    assert [r["status"] for r in report(pytester)["results"]] == [r["status"] for r in data["results"]]


def test_enable_thinking_is_sent_both_ways(pytester: pytest.Pytester, tiny_endpoint: ServerInfo) -> None:
    """The tiny chat template pre-fills an empty think block only for an explicit enable_thinking=false."""
    run(pytester, tiny_endpoint, "--humaneval-max-tokens=4")
    run(pytester, tiny_endpoint, "--humaneval-max-tokens=4", "--think")
    _, plain = cache(pytester, think=False)
    _, think = cache(pytester, think=True)
    prompt_tokens = {r["task_id"]: r["usage"]["prompt_tokens"] for r in plain}
    assert len(plain) == len(think) == 4 and sorted(r["task_id"] for r in think) == sorted(prompt_tokens)
    for r in think:
        assert prompt_tokens[r["task_id"]] == r["usage"]["prompt_tokens"] + 4
    assert report(pytester)["generation"]["think"] is True


def test_partial_cache_resumes(pytester: pytest.Pytester, tiny_endpoint: ServerInfo) -> None:
    """A cache cut short by a crash (two answers lost, the last line half written) is completed."""
    run(pytester, tiny_endpoint, "--humaneval-samples=2", "--humaneval-max-tokens=8")
    path, records = cache(pytester)
    assert len(records) == 8
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:6]) + lines[6][: len(lines[6]) // 2])

    before = answered(tiny_endpoint)
    result = run(pytester, tiny_endpoint, "--humaneval-samples=2", "--humaneval-max-tokens=8", "-n", "2")
    assert answered(tiny_endpoint) - before == 2
    result.stdout.fnmatch_lines(["humaneval: 8 samples of *: 6 from the cache, 2 generated in *"])
    result.assert_outcomes(failed=8)
    _, records = cache(pytester)
    complete = {(r["task_id"], r["sample"]) for r in records}
    assert complete == {(f"HumanEval/{t}", s) for t in range(4) for s in range(2)}
    assert len(report(pytester)["results"]) == 8
