"""``--humaneval-backend=transformers``: the tiny random Qwen3 generated in the pytest process, on CPU.

Its answers are noise; what is asserted is the whole path: the chat template's ``enable_thinking``,
the batched generation and what each sample records, the cache (reuse, resume, reproducibility with
a seed), xdist, the report, and the errors a user can hit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from plugin_support import RECORD_FIELDS, usage_error

from pytest_humaneval.generation.cache import RunSpec
from pytest_humaneval.generation.launch import generation_threads
from pytest_humaneval.generation.local import split_reasoning

TASKS = [f"HumanEval/{i}" for i in range(4)]


def run(pytester: pytest.Pytester, model: Path | str, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--humaneval-debug",
        "--humaneval-backend=transformers",
        f"--humaneval-model-path={model}",
        *args,
    )


def cache(pytester: pytest.Pytester, think: bool = False, output: str = ".humaneval") -> tuple[Path, list]:
    files = sorted((pytester.path / output / "completions").glob("*.cache.jsonl"))
    (path,) = [f for f in files if ("-think-" in f.name) == think]
    return path, [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def report(pytester: pytest.Pytester, output: str = ".humaneval") -> dict[str, Any]:
    return json.loads((pytester.path / output / "report.json").read_text())


@pytest.mark.slow
def test_generate_cache_report_and_rerun(
    pytester: pytest.Pytester, tiny_qwen3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # threads: the plugin's choice, from the cores
    threads = generation_threads()
    first = run(pytester, tiny_qwen3, "--humaneval-max-tokens=16", "--humaneval-seed=3")
    first.assert_outcomes(failed=4)  # random weights solve nothing
    first.stdout.fnmatch_lines(
        [
            f"humaneval: loading {tiny_qwen3} with transformers on cpu (dtype auto, {threads} threads)",
            "humaneval: 4 samples of *: 0 from the cache, 4 generated in *",
            "humaneval: model * via transformers (cpu, dtype float32), think off, temperature=0.7 top_p=0.8 "
            "top_k=20 min_p=0.0 max_tokens=16 seed=3, 1 sample(s)/problem",
        ]
    )

    path, records = cache(pytester)
    assert len(records) == 4 and all(set(r) == RECORD_FIELDS for r in records)
    assert sorted(r["task_id"] for r in records) == TASKS
    for r in records:
        usage = r["usage"]
        assert r["status"] in ("ok", "truncated", "no_code") and r["attempts"] == 1
        assert r["raw"] is not None and r["latency_s"] > 0
        assert usage["prompt_tokens"] > 50 and 0 < usage["completion_tokens"] <= 16
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert r["finish_reason"] in ("stop", "length")
        if r["finish_reason"] == "length":  # the limit was hit without an end token
            assert usage["completion_tokens"] == 16

    data = report(pytester)
    gen = data["generation"]
    assert data["total"] == 4 and gen["source"] == "transformers" and gen["think"] is False
    assert gen["requested"] == 4 and gen["cached"] == 0 and gen["model_path"] == str(tiny_qwen3)
    assert gen["sampling"] == {
        "temperature": 0.7,
        "top_p": 0.8,
        "top_k": 20,
        "min_p": 0.0,
        "max_tokens": 16,
        "seed": 3,
    }
    backend = gen["backend"]
    assert backend["name"] == "transformers" and backend["device"] == "cpu" and backend["dtype"] == "float32"
    assert backend["batch_size"] == 8 and backend["final_batch_size"] == 8 and backend["transformers"]
    assert backend["threads"] == threads
    assert gen["startup_s"] == round(backend["load_s"], 3) and gen["generation_wall_s"] <= gen["wall_s"]
    assert gen["cache"] == str(path) and Path(gen["completions"]).is_file()
    assert gen["usage"]["completion_tokens"] == sum(r["usage"]["completion_tokens"] for r in records)
    assert gen["tokens_per_s"] > 0

    again = run(pytester, tiny_qwen3, "--humaneval-max-tokens=16", "--humaneval-seed=3")
    again.stdout.fnmatch_lines(["humaneval: 4 samples of *: 4 from the cache, nothing to generate*"])
    assert "loading" not in again.stdout.str()  # no model loaded when every answer is cached
    assert len(cache(pytester)[1]) == 4
    assert report(pytester)["generation"]["cached"] == 4

    # The same seed in a fresh output directory draws the same answers.
    run(pytester, tiny_qwen3, "--humaneval-max-tokens=16", "--humaneval-seed=3", "--humaneval-output=again")
    _, repeated = cache(pytester, output="again")
    assert {r["key"]: r["raw"] for r in repeated} == {r["key"]: r["raw"] for r in records}


@pytest.mark.slow
def test_enable_thinking_reaches_the_chat_template(pytester: pytest.Pytester, tiny_qwen3: Path) -> None:
    """The tiny chat template pre-fills an empty think block (4 tokens) only for enable_thinking=false."""
    run(pytester, tiny_qwen3, "--humaneval-max-tokens=4")
    result = run(pytester, tiny_qwen3, "--humaneval-max-tokens=4", "--think")
    result.stdout.fnmatch_lines(
        ["humaneval: model * via transformers (*), think on, temperature=0.6 top_p=0.95 *"]
    )
    _, plain = cache(pytester, think=False)
    _, think = cache(pytester, think=True)
    prompt_tokens = {r["task_id"]: r["usage"]["prompt_tokens"] for r in plain}
    assert sorted(prompt_tokens) == TASKS == sorted(r["task_id"] for r in think)
    for r in think:
        assert prompt_tokens[r["task_id"]] == r["usage"]["prompt_tokens"] + 4
    gen = report(pytester)["generation"]
    assert gen["think"] is True and gen["sampling"]["temperature"] == 0.6


@pytest.mark.slow
def test_samples_with_xdist_and_resume(pytester: pytest.Pytester, tiny_qwen3: Path) -> None:
    args = ("--humaneval-samples=2", "--humaneval-max-tokens=8", "-n", "2")
    first = run(pytester, tiny_qwen3, *args)
    first.assert_outcomes(failed=8)
    first.stdout.fnmatch_lines(["humaneval: 8 samples of *: 0 from the cache, 8 generated in *"])
    path, records = cache(pytester)
    assert {(r["task_id"], r["sample"]) for r in records} == {(t, s) for t in TASKS for s in range(2)}
    assert len({r["key"] for r in records}) == 8

    # A crash lost two answers and left the last line half written: only those two are generated.
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:6]) + lines[6][: len(lines[6]) // 2])
    again = run(pytester, tiny_qwen3, *args)
    again.assert_outcomes(failed=8)
    again.stdout.fnmatch_lines(["humaneval: 8 samples of *: 6 from the cache, 2 generated in *"])
    _, records = cache(pytester)
    assert {(r["task_id"], r["sample"]) for r in records} == {(t, s) for t in TASKS for s in range(2)}
    assert len(report(pytester)["results"]) == 8


@pytest.mark.slow
def test_greedy_and_extra_body(pytester: pytest.Pytester, tiny_qwen3: Path) -> None:
    """Temperature 0 is greedy (the same answers without a seed); extra-body keys are generation parameters."""
    args = (
        "--humaneval-max-tokens=8",
        "--humaneval-temperature=0",
        '--humaneval-extra-body={"repetition_penalty": 1.3}',
    )
    run(pytester, tiny_qwen3, *args).assert_outcomes(failed=4)
    run(pytester, tiny_qwen3, *args, "--humaneval-output=again").assert_outcomes(failed=4)
    _, first = cache(pytester)
    _, second = cache(pytester, output="again")
    assert {r["key"]: r["raw"] for r in first} == {r["key"]: r["raw"] for r in second}
    assert report(pytester)["generation"]["extra_body"] == {"repetition_penalty": 1.3}

    bad = run(
        pytester, tiny_qwen3, "--humaneval-max-tokens=8", '--humaneval-extra-body={"presence_penalty": 1}'
    )
    usage_error(bad, "--humaneval-extra-body: presence_penalty is not a transformers generation parameter*")


@pytest.mark.slow
def test_a_directory_without_a_model(pytester: pytest.Pytester) -> None:
    empty = pytester.mkdir("empty")
    usage_error(
        run(pytester, empty), f"cannot load {empty} with transformers (*); check that --humaneval-model-path*"
    )


def test_missing_model_path(pytester: pytest.Pytester) -> None:
    missing = pytester.path / "nowhere"
    usage_error(
        run(pytester, missing), f"--humaneval-model-path={missing}: no such directory. Give the directory*"
    )


def test_bad_dtype(pytester: pytest.Pytester, tmp_path: Path) -> None:
    usage_error(
        run(pytester, tmp_path, "--humaneval-dtype=fp8"),
        "--humaneval-dtype='fp8': choose one of auto, bfloat16, float16, float32",
    )


def test_endpoint_and_transformers_exclude_each_other(pytester: pytest.Pytester, tmp_path: Path) -> None:
    usage_error(
        run(pytester, tmp_path, "--humaneval-endpoint=http://127.0.0.1:9/v1"),
        "--humaneval-endpoint and --humaneval-backend=transformers exclude each other*",
    )


@pytest.mark.parametrize(
    ("text", "answer", "thinking"),
    [
        ("def f(): pass", "def f(): pass", None),
        ("<think>\nplan\n</think>\n\n```python\nx = 1\n```", "```python\nx = 1\n```", "plan"),
        ("plan without the opening tag</think>\ncode", "code", "plan without the opening tag"),
        ("<think>\nnever finished", "", "never finished"),
        ("\n\n<think></think>answer", "answer", ""),
    ],
)
def test_split_reasoning(text: str, answer: str, thinking: str | None) -> None:
    """As SGLang's qwen3 reasoning parser: thinking before </think>, an unclosed <think> leaves no answer."""
    assert split_reasoning(text) == (answer, thinking)


def test_local_answers_have_their_own_cache_key() -> None:
    """The backend and dtype shape an answer; server keys (and their existing caches) stay unchanged."""
    sampling = {"temperature": 0.7, "top_p": 0.8, "max_tokens": 64, "seed": None}
    server = RunSpec(model="m", think=False, sampling=sampling)
    assert "backend" not in server.as_dict()
    keys = {
        RunSpec(model="m", think=False, sampling=sampling, backend=b).key("problem", "messages", 0)
        for b in (
            None,
            {"name": "transformers", "dtype": "auto"},
            {"name": "transformers", "dtype": "float32"},
        )
    }
    assert len(keys) == 3


@pytest.mark.slow
def test_progress_counts_whole_batches_without_a_terminal(
    pytester: pytest.Pytester, tiny_qwen3: Path
) -> None:
    """20 answers in batches of 8: every line counts whole batches, none in flight between them (a batch's
    first answer was printed as '1/20 done, 7 in flight', with the rest of the batch already done)."""
    result = run(
        pytester, tiny_qwen3, "--humaneval-max-tokens=8", "--humaneval-samples=5", "--humaneval-seed=1"
    )
    counts = [
        line.split("generating ", 1)[1].split(" tok/s")[0]
        for line in result.stdout.lines
        if line.startswith("humaneval: generating ")
    ]
    done = [int(c.split("/")[0]) for c in counts]
    assert all(n in (0, 8, 16, 20) for n in done), counts  # whole batches, also mid-batch (0 ended so far)
    assert [c.split(" tok/s")[0] for c in counts if ", 0 in flight" in c][-1].startswith("20/20 done"), counts
