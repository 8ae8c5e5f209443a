"""Generation: prompts, cache keys and resume, request bodies, retries and clear errors.

The client side runs unchanged against ``openai_stub`` (a real HTTP server on 127.0.0.1) where a
behaviour must be provoked: 429/5xx, a refused API key, a field the server rejects, a crash mid-run.
The end-to-end path against a real model server is in ``test_generation_tiny.py``.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from openai_stub import StubConfig, stub_server
from plugin_support import usage_error
from server_support import default_settings, run_generator

from pytest_humaneval.completions import read_completions
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.errors import HumanEvalError
from pytest_humaneval.generation.cache import CompletionCache, RunSpec, write_resolved
from pytest_humaneval.generation.client import (
    MAX_ATTEMPTS,
    Fatal,
    Generator,
    Request,
    ServerGone,
    parse_extra_body,
    sampling_from,
)
from pytest_humaneval.generation.prompts import DEFAULT_TEMPLATE, load_template, render

DEBUG = load_dataset("humaneval-4")
STRLEN_ANSWER = "```python\ndef strlen(string: str) -> int:\n    return len(string)\n```"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p", "no:randomly", "-p", "no:cacheprovider", "--humaneval-report=report.json", *args
    )


def stub_args(stub: Any, *args: str) -> list[str]:
    return [
        "--humaneval-debug",
        f"--humaneval-endpoint={stub.base_url}",
        "--humaneval-model=stub-model",
        *args,
    ]


def cache_records(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    (path,) = (pytester.path / ".humaneval" / "completions").glob("*.cache.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- prompts ----------------------------------------------------------------------------------------


def test_default_template_asks_for_the_whole_function_in_one_block() -> None:
    problem = DEBUG.problems["HumanEval/2"]
    text = render(DEFAULT_TEMPLATE, problem)
    assert problem.prompt in text and "`truncate_number`" in text and "```python" in text
    assert "{prompt}" not in text and "{entry_point}" not in text


def test_template_file(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("Solve {entry_point}; keep {braces} and {0}:\n{prompt}")
    problem = DEBUG.problems["HumanEval/2"]
    assert render(load_template(path), problem) == (
        f"Solve truncate_number; keep {{braces}} and {{0}}:\n{problem.prompt}"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        (b"no placeholder here", "has no {prompt} placeholder"),
        (b"\xff\xfe{prompt}", "not UTF-8"),
    ],
)
def test_template_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "t.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(HumanEvalError, match=message) as e:
        load_template(path)
    assert "--humaneval-prompt-template" in str(e.value)


# -- options that shape requests ----------------------------------------------------------------


def test_sampling_defaults_follow_qwen3_per_mode(tmp_path: Path) -> None:
    think = sampling_from(default_settings(tmp_path, think=True))
    plain = sampling_from(default_settings(tmp_path))
    assert think.as_dict() == {
        "temperature": 0.6,
        "top_p": 0.95,
        "top_k": 20,
        "min_p": 0.0,
        "max_tokens": 32768,
        "seed": None,
    }
    assert plain.as_dict() == {
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "min_p": 0.0,
        "max_tokens": 4096,
        "seed": None,
    }
    mine = sampling_from(
        default_settings(tmp_path, temperature=0.0, top_p=1.0, top_k=5, max_tokens=64, seed=7)
    )
    assert mine.as_dict() == {
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": 5,
        "min_p": 0.0,
        "max_tokens": 64,
        "seed": 7,
    }
    assert mine.explicit == {"top_k"}


@pytest.mark.parametrize(
    ("text", "think", "message"),
    [
        ("{min_p: 0.1}", False, "is not valid JSON"),
        ("[1, 2]", False, "give a JSON object"),
        ('{"model": "x"}', False, "model cannot be overridden"),
        ('{"chat_template_kwargs": {"enable_thinking": true}}', False, "use --think"),
        ('{"chat_template_kwargs": 3}', False, "must be a JSON object"),
    ],
)
def test_extra_body_errors(text: str, think: bool, message: str) -> None:
    with pytest.raises(HumanEvalError, match=message) as e:
        parse_extra_body(text, think)
    assert "--humaneval-extra-body" in str(e.value)


def test_bad_extra_body_is_one_usage_error(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        "--humaneval-debug",
        "--humaneval-endpoint=http://127.0.0.1:9/v1",
        "--humaneval-extra-body={oops",
    )
    usage_error(result, "--humaneval-extra-body: '{oops' is not valid JSON*")


# -- the cache --------------------------------------------------------------------------------------


def spec(**overrides: Any) -> RunSpec:
    values: dict[str, Any] = {
        "model": "m",
        "think": False,
        "sampling": {"temperature": 0.7, "top_p": 0.8, "max_tokens": 64, "seed": None},
        "extra_body": {},
    }
    values.update(overrides)
    return RunSpec(**values)


def test_cache_key_covers_everything_that_shapes_an_answer() -> None:
    base = spec().key("problem", "messages", 0)
    assert spec().key("problem", "messages", 0) == base  # stable across runs
    variants = [
        spec(model="other").key("problem", "messages", 0),
        spec(think=True).key("problem", "messages", 0),
        spec(sampling={"temperature": 0.6, "top_p": 0.8, "max_tokens": 64, "seed": None}).key(
            "problem", "messages", 0
        ),
        spec(sampling={"temperature": 0.7, "top_p": 0.8, "max_tokens": 65, "seed": None}).key(
            "problem", "messages", 0
        ),
        spec(sampling={"temperature": 0.7, "top_p": 0.8, "max_tokens": 64, "seed": 1}).key(
            "problem", "messages", 0
        ),
        spec(extra_body={"min_p": 0.1}).key("problem", "messages", 0),
        spec(model_path="/weights").key("problem", "messages", 0),
        spec().key("other problem", "messages", 0),
        spec().key("problem", "other template", 0),
        spec().key("problem", "messages", 1),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert spec(think=True).stem.startswith("m-think-") and spec().stem.startswith("m-")


def record(key: str, status: str = "ok", task_id: str = "HumanEval/0", sample: int = 0) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "sample": sample,
        "completion": "    return 1\n",
        "status": status,
        "key": key,
    }


def test_cache_tolerates_a_half_written_line(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.cache.jsonl")
    cache.append(record("a"))
    cache.append(record("b", status="generation_error"))  # not an answer: retried next time
    cache.close()
    with open(cache.path, "ab") as fh:
        fh.write(b'{"task_id": "HumanEval/1", "sample": 0, "compl')  # the crash
    found = CompletionCache(cache.path).load()
    assert set(found) == {"a"}
    again = CompletionCache(cache.path)
    again.append(record("c"))  # starts on a line of its own
    again.close()
    loaded = CompletionCache(cache.path)
    assert set(loaded.load()) == {"a", "c"} and loaded.skipped_lines == 1


def test_cache_last_answer_wins(tmp_path: Path) -> None:
    cache = CompletionCache(tmp_path / "c.cache.jsonl")
    cache.append(record("a") | {"completion": "first"})
    cache.append(record("a") | {"completion": "second"})
    cache.close()
    assert cache.load()["a"]["completion"] == "second"


APPENDER = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
from pytest_humaneval.generation.cache import CompletionCache
cache = CompletionCache(Path({path!r}))
for i in range(300):
    cache.append({{"key": f"{{sys.argv[1]}}-{{i}}", "status": "ok", "raw": sys.argv[1] * 20000}})
"""


def test_two_processes_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "shared.cache.jsonl"
    code = APPENDER.format(root=str(Path(__file__).parents[1]), path=str(path))
    procs = [subprocess.Popen([sys.executable, "-c", code, name]) for name in ("x", "y")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    lines = path.read_bytes().splitlines()
    assert len(lines) == 600
    records = [json.loads(line) for line in lines]  # every line is whole
    assert {r["raw"][0] for r in records} == {"x", "y"}


def test_a_cache_held_locked_too_long_stops_with_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pytest_humaneval.generation.cache.LOCK_TIMEOUT_S", 0.2)
    path = tmp_path / "held.cache.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, stdin=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        cache = CompletionCache(path)
        with pytest.raises(HumanEvalError, match=r"stayed locked for 0\.2 s: another pytest run"):
            cache.append(record("a"))
    finally:
        holder.communicate(b"", timeout=30)  # lets it go
    cache.append(record("a"))  # once the other run let go, the record is written
    cache.close()
    assert set(cache.load()) == {"a"}


def test_a_file_system_without_flock_still_gets_every_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")  # as on an NFS mount without a lock daemon

    monkeypatch.setattr("pytest_humaneval.generation.cache.fcntl.flock", unsupported)
    cache = CompletionCache(tmp_path / "c.cache.jsonl")
    cache.append(record("a"))
    cache.append(record("b"))
    cache.close()
    assert set(cache.load()) == {"a", "b"}


HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_resolved_file_is_a_completions_file(tmp_path: Path) -> None:
    rows = [record(f"k{i}", task_id=f"HumanEval/{i}") | {"usage": {"completion_tokens": 3}} for i in range(4)]
    rows[1] |= {"status": "truncated", "completion": "", "reason": "cut"}
    path = write_resolved(tmp_path / "r.jsonl", rows)
    samples = read_completions(path, DEBUG)
    assert samples["HumanEval/1"][0].status == "truncated"
    assert samples["HumanEval/0"][0].completion == "    return 1\n"


# -- requests, retries, errors (client against the stub server) -------------------------------------


def generate(stub: Any, requests: list[Request], tmp_path: Path, **overrides: Any) -> tuple[Generator, dict]:
    sampling = sampling_from(default_settings(tmp_path, **overrides))
    gen, answers, _ = run_generator(
        stub.base_url, requests, sampling, api_key="key", concurrency=8, timeout=30
    )
    return gen, answers


def requests_for(n: int) -> list[Request]:
    return [Request("HumanEval/0", i, f"k{i}", [{"role": "user", "content": "hi"}]) for i in range(n)]


def test_request_bodies(tmp_path: Path) -> None:
    with stub_server() as stub:
        generate(
            stub, requests_for(3), tmp_path, think=True, seed=10, extra_body='{"repetition_penalty": 1.1}'
        )
    bodies = sorted(stub.requests, key=lambda b: b["seed"])
    assert [b["seed"] for b in bodies] == [10, 11, 12]  # seed + sample index
    for body in bodies:
        assert body["chat_template_kwargs"] == {"enable_thinking": True}
        assert (body["temperature"], body["top_p"], body["top_k"], body["min_p"]) == (0.6, 0.95, 20, 0.0)
        assert body["max_tokens"] == 32768 and body["repetition_penalty"] == 1.1
        assert body["model"] == "stub-model" and body["messages"] == [{"role": "user", "content": "hi"}]
    with stub_server() as stub:
        generate(stub, requests_for(1), tmp_path)
    (body,) = stub.requests
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and "seed" not in body
    assert body["max_tokens"] == 4096


def test_retries_on_429_and_5xx_then_succeeds(tmp_path: Path) -> None:
    config = StubConfig(failures=[503, 429, 500], retry_after="0", reply=lambda body: STRLEN_ANSWER)
    with stub_server(config) as stub:
        gen, answers = generate(stub, requests_for(1), tmp_path)
    (answer,) = answers.values()
    assert answer.error is None and answer.attempts == 4 and answer.content == STRLEN_ANSWER
    assert answer.usage["completion_tokens"] == 100 and gen.retries == 3


def test_persistent_5xx_is_a_per_sample_error_and_the_run_goes_on(tmp_path: Path) -> None:
    config = StubConfig(failures=[500] * MAX_ATTEMPTS, retry_after="0")
    with stub_server(config) as stub:
        _, answers = generate(stub, [*requests_for(1)], tmp_path)
        assert stub.chat_requests == MAX_ATTEMPTS  # capped: no retry storm
        _, more = generate(stub, requests_for(3), tmp_path)
    (failed,) = answers.values()
    assert (
        failed.error is not None
        and "500" in failed.error
        and f"after {MAX_ATTEMPTS} attempts" in failed.error
    )
    assert all(a.error is None for a in more.values())


def test_an_endpoint_with_nothing_behind_it_is_waited_for_then_stops_the_run(tmp_path: Path) -> None:
    sampling = sampling_from(default_settings(tmp_path))
    """SGLang's router answers 503 ("no available workers") when every server behind it is down, while its
    /health says 200: that is an outage, bounded by the grace period, not a failure of each sample (20 of
    24 samples were generation errors, and the run exited 1 as if the model failed)."""
    config = StubConfig(failures=[503] * 10_000, retry_after="0")
    with stub_server(config) as stub:
        started = time.monotonic()
        with pytest.raises(ServerGone, match=r"stopped answering: it answered 503: .* to every request for "
                           r"the grace period of 1 s \(--humaneval-server-grace\)"):  # fmt: skip
            run_generator(
                stub.base_url, requests_for(3), sampling, api_key="key", concurrency=8, timeout=30, grace=1.0
            )
        assert time.monotonic() - started < 10
    back = StubConfig(failures=[503] * 12, retry_after="0", reply=lambda body: STRLEN_ANSWER)
    with stub_server(back) as stub:
        gen, answers, _ = run_generator(
            stub.base_url, requests_for(3), sampling, api_key="key", concurrency=8, timeout=30
        )
    assert all(a.error is None for a in answers.values()), answers  # 12 refusals, none charged
    assert gen.unavailable_outages == 1


def test_rejected_top_k_min_p_are_dropped_once(tmp_path: Path) -> None:
    config = StubConfig(reject_fields=frozenset({"top_k", "min_p"}))
    with stub_server(config) as stub:
        gen, answers = generate(stub, requests_for(20), tmp_path)
    assert sorted(gen.dropped) == ["min_p", "top_k"]
    assert all(a.error is None for a in answers.values())
    accepted = [b for b in stub.requests if "top_k" not in b]
    assert len(accepted) == 20 and len(stub.requests) - 20 <= 8  # at most the first wave was refused


def test_rejected_explicit_top_k_stops_the_run(tmp_path: Path) -> None:
    with stub_server(StubConfig(reject_fields=frozenset({"top_k"}))) as stub:
        with pytest.raises(Fatal, match=r"does not accept top_k .*--humaneval-top-k"):
            generate(stub, requests_for(3), tmp_path, top_k=40)


# -- errors a user can hit, as one message ----------------------------------------------------------


def test_unreachable_endpoint(pytester: pytest.Pytester) -> None:
    from tiny_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    result = run(pytester, "--humaneval-debug", f"--humaneval-endpoint={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: cannot reach the model server at {url}*is it running*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.slow
def test_model_not_served_lists_what_is(pytester: pytest.Pytester) -> None:
    with stub_server() as stub:
        result = run(pytester, "--humaneval-debug", f"--humaneval-endpoint={stub.base_url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: model 'Qwen/Qwen3-0.6B' is not served at*; it serves: stub-model. Give one of them*"]
    )


@pytest.mark.slow
def test_wrong_api_key(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    with stub_server(StubConfig(api_key="right")) as stub:
        result = run(pytester, *stub_args(stub))
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            ["ERROR: *refused the API key (401)*--humaneval-api-key or OPENAI_API_KEY*"]
        )
        ok = run(pytester, *stub_args(stub, "--humaneval-api-key=right"))
    assert ok.ret == pytest.ExitCode.TESTS_FAILED  # the stub's answer solves none of the problems
    assert len(stub.requests) == 4


def test_unwritable_output_fails_before_any_request(pytester: pytest.Pytester) -> None:
    (pytester.path / "taken").write_text("a file, not a directory")
    with stub_server() as stub:
        result = run(pytester, *stub_args(stub, "--humaneval-output=taken"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: *taken/completions*: cannot * the completion cache (Not a directory); check --humaneval-output"
        ]
    )
    assert stub.requests == []


def test_missing_openai_fails_before_a_server_starts(pytester: pytest.Pytester) -> None:
    """Without the openai package the run stops with the install line before SGLang is even looked for."""
    pytester.makeconftest("import sys\nsys.modules['openai'] = None  # as if it were not installed\n")
    model = pytester.mkdir("model")
    (model / "config.json").write_text('{"architectures": ["Qwen3ForCausalLM"]}')
    marker = pytester.path / "sglang-python-ran"
    fake = pytester.path / "sglang-python"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    fake.chmod(0o755)
    result = run(
        pytester,
        "--humaneval-debug",
        "--humaneval-server=process",
        f"--humaneval-model-path={model}",
        f"--humaneval-sglang-python={fake}",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: generation needs the openai package: pip install*"])
    assert not marker.exists()


@pytest.mark.slow
def test_generation_time_leaves_out_the_client_import(pytester: pytest.Pytester) -> None:
    """``generation_wall_s`` is the requests' time: importing openai (slowed to 3 s here) is start-up."""
    pytester.makeconftest(
        """
        import importlib.abc, sys, time

        class SlowOpenai(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "openai":
                    time.sleep(3)
                return None  # the normal finders import it

        sys.meta_path.insert(0, SlowOpenai())
        """
    )
    with stub_server() as stub:
        result = run(pytester, *stub_args(stub))
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()  # the stub solves nothing
    generation = json.loads((pytester.path / "report.json").read_text())["generation"]
    assert generation["requested"] == 4
    assert generation["generation_wall_s"] < 3, generation
    assert generation["wall_s"] >= 3, generation


@pytest.mark.slow
def test_the_heap_before_generation_is_frozen_while_it_runs(pytester: pytest.Pytester) -> None:
    """Full collections during generation skip what pytest held before it; after it, nothing stays frozen."""
    pytester.makeconftest(
        """
        import gc, json

        seen = []

        def pytest_humaneval_extract_code(config, problem, answer):
            seen.append(gc.get_freeze_count())  # called for each answer, while the requests run

        def pytest_sessionfinish(session):
            with open("freeze.json", "w") as f:
                json.dump({"during": seen, "after": gc.get_freeze_count()}, f)
        """
    )
    with stub_server() as stub:
        run(pytester, *stub_args(stub))
    counts = json.loads((pytester.path / "freeze.json").read_text())
    assert len(counts["during"]) == 4 and min(counts["during"]) > 10_000, counts
    assert counts["after"] == 0


# -- the plugin around generation -------------------------------------------------------------------


@pytest.mark.slow
def test_messages_hook_and_extract_hook(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_humaneval_messages(config, problem, think):
            return [{"role": "system", "content": "be brief"}, {"role": "user", "content": problem.task_id}]

        def pytest_humaneval_extract_code(config, problem, answer):
            return "    return " + answer + "\\n" if problem.task_id == "HumanEval/2" else None
        """
    )
    config = StubConfig(reply=lambda body: "number % 1.0")
    with stub_server(config) as stub:
        result = run(pytester, *stub_args(stub))
    assert sorted(b["messages"][1]["content"] for b in stub.requests) == [f"HumanEval/{i}" for i in range(4)]
    assert all(b["messages"][0] == {"role": "system", "content": "be brief"} for b in stub.requests)
    result.assert_outcomes(passed=1, failed=3)  # HumanEval/2 passes through the user's extraction


def test_bad_messages_hook_is_one_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("def pytest_humaneval_messages(config, problem, think):\n    return 'hi'\n")
    with stub_server() as stub:
        result = run(pytester, *stub_args(stub))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest_humaneval_messages returned 'hi' for HumanEval/0*"])


def test_generate_hook_replaces_the_server(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_humaneval_generate(config, problems, samples, think):
            answers = {p.task_id: ["```python\\n" + p.prompt + p.canonical_solution + "```"] for p in problems}
            answers["HumanEval/3"] = ["<think>cut"]
            return answers
        """
    )
    result = run(pytester, "--humaneval-debug", "--humaneval-endpoint=http://127.0.0.1:9/v1")
    result.assert_outcomes(passed=3, failed=1)
    data = json.loads((pytester.path / "report.json").read_text())
    assert data["generation"]["source"] == "hook" and data["status_counts"]["truncated"] == 1


@pytest.mark.slow
def test_user_tests_get_the_endpoint_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mine="""
        import openai

        def test_endpoint(humaneval_endpoint):
            client = openai.OpenAI(base_url=humaneval_endpoint.base_url, api_key=humaneval_endpoint.api_key)
            assert [m.id for m in client.models.list()] == [humaneval_endpoint.model] == ["stub-model"]
        """
    )
    with stub_server() as stub:
        single = run(pytester, "test_mine.py", *stub_args(stub))
        workers = run(pytester, "test_mine.py", *stub_args(stub), "-n", "2")
    single.assert_outcomes(passed=1, failed=4)
    workers.assert_outcomes(passed=1, failed=4)
    skipped = run(pytester, "test_mine.py", "-rs", "--humaneval-debug", "--humaneval-completions=canonical")
    skipped.assert_outcomes(passed=4, skipped=1)
    skipped.stdout.fnmatch_lines(["*no model server in this session*"])


def test_progress_without_a_terminal(pytester: pytest.Pytester) -> None:
    with stub_server(StubConfig(reply=lambda body: STRLEN_ANSWER)) as stub:
        result = run(pytester, *stub_args(stub, "--humaneval-samples=5", "--humaneval-seed=1"))
    out = result.stdout.str()
    assert "\r" not in out and "\x1b[" not in out  # no live display in a log
    result.stdout.fnmatch_lines(
        [
            "humaneval: generating 20/20 done, 0 in flight, * tok/s, * s elapsed",
            "humaneval: 20 samples of stub-model: 0 from the cache, 20 generated in * s (* tok/s, "
            "0 generation errors); cache *",
        ]
    )
    assert 1 < out.count("humaneval: generating") <= 12


@pytest.mark.slow
def test_killed_run_resumes_where_it_stopped(pytester: pytest.Pytester) -> None:
    """SIGKILL mid-run (no clean-up at all): the next run requests only what never arrived."""
    config = StubConfig(latency_s=0.4)
    with stub_server(config) as stub:
        args = stub_args(stub, "--humaneval-concurrency=1", "--humaneval-samples=3")
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
            cwd=pytester.path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        cache_dir = pytester.path / ".humaneval" / "completions"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            files = list(cache_dir.glob("*.cache.jsonl"))
            if files and files[0].read_text().count("\n") >= 5:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        done = len(cache_records(pytester))
        assert 5 <= done < 12
        sent_before = len(stub.requests)
        config.latency_s = 0
        result = run(pytester, *args)
        resumed = len(stub.requests) - sent_before
    assert resumed == 12 - done
    result.stdout.fnmatch_lines(
        [f"humaneval: 12 samples of stub-model: {done} from the cache, {12 - done} generated*"]
    )
    result.assert_outcomes(failed=12)
    assert {(r["task_id"], r["sample"]) for r in cache_records(pytester)} == {
        (f"HumanEval/{t}", s) for t in range(4) for s in range(3)
    }


@pytest.mark.parametrize(("model", "warned"), [("stub-model", True), ("Qwen/Qwen3-8B", False)])
def test_think_on_a_model_without_a_thinking_mode_is_said_once(
    pytester: pytest.Pytester, model: str, warned: bool
) -> None:
    """--think on a model with no known thinking mode samples with the thinking settings into a separate
    cache and reports the run as thinking: the run says so, once, and the report records it."""
    with stub_server(StubConfig(model=model, reply=lambda body: STRLEN_ANSWER)) as stub:
        args = ["--humaneval-debug", f"--humaneval-endpoint={stub.base_url}", f"--humaneval-model={model}"]
        result = run(pytester, *args, "--think")
    out = result.stdout.str()
    line = f"humaneval: --think, but {model} has no known thinking mode"
    assert out.count(line) == (1 if warned else 0), out
    generation = json.loads((pytester.path / "report.json").read_text())["generation"]
    assert generation.get("think_unknown", False) is warned
