"""The run's provenance in the JSON report and the pytest header, and the 95% CI for pass@1.

Runs go through the real plugin (pytester subprocesses): canonical answers, a completions file, the
generation hook, and an OpenAI-compatible endpoint (the stub server over real sockets) whose URL and
key must not leak into the report.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import pytest
from openai_stub import StubConfig, canonical_reply, stub_server
from server_support import default_settings

import pytest_humaneval
from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.generation.client import sampling_from
from pytest_humaneval.reporting.provenance import build_provenance, header_lines, public_url

VERSION_LINE = (
    f"humaneval: pytest-humaneval {pytest_humaneval.__version__}, Python {platform.python_version()} on *"
)


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--humaneval-report=report.json", *args)
    return result, json.loads((pytester.path / "report.json").read_text())


def test_canonical_run(pytester: pytest.Pytester) -> None:
    result, report = run(pytester, "--humaneval-debug", "--humaneval-completions=canonical")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "humaneval: dataset humaneval-4 (4 problems, sha *), completions canonical, timeout 3 s/program",
            "humaneval: subprocess sandbox:*",
            VERSION_LINE,
            "*humaneval*",
            "pass@1: 1.0000  (95% CI for pass@1 0.510-1.000)",
        ]
    )
    assert "via" not in result.stdout.str()  # no generation line without generation
    prov = report["provenance"]
    assert prov["plugin_version"] == pytest_humaneval.__version__ == report["plugin_version"]
    assert prov["python"] == platform.python_version() and prov["platform"] == platform.platform()
    dataset = load_dataset("humaneval-4")
    assert prov["dataset"] == {
        "name": "humaneval-4",
        "path": str(dataset.path),
        "sha": dataset.digest,
        "problems": 4,
    }
    assert prov["dataset"]["sha"] == report["dataset_sha"]
    assert prov["completions"] == {"source": "canonical"} and prov["model"] == "canonical"
    assert "generation" not in prov
    assert prov["evaluation"] == {
        "sandbox": {"kind": "subprocess", "isolation": report["sandbox"]},
        "timeout_s": 3.0,
        "memory_mb": 2048,
    }
    # The Wilson interval for 4/4: in the report as in the summary line.
    low, high = report["pass_at_1_ci95"]
    assert round(low, 3) == 0.510 and high == 1.0


def test_completions_file_is_named_with_its_hash(pytester: pytest.Pytester) -> None:
    rows = [{"task_id": p.task_id, "completion": p.canonical_solution} for p in load_dataset("humaneval-4")]
    rows[0]["completion"] = "    return None\n"
    path = pytester.path / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result, report = run(pytester, "--humaneval-debug", f"--humaneval-completions={path}")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([f"humaneval: dataset humaneval-4 *completions {path}*", VERSION_LINE])
    assert report["provenance"]["completions"] == {
        "source": "file",
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    assert report["provenance"]["model"] is None
    result.stdout.fnmatch_lines(["pass@1: 0.7500  (95% CI for pass@1 0.301-0.954)"])


def test_hook_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_humaneval_generate(config, problems, samples, think):
            return {p.task_id: ["```python\\n" + p.prompt + p.canonical_solution + "```"] for p in problems}
        """
    )
    result, report = run(pytester, "--humaneval-debug", "--think")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            VERSION_LINE,
            "humaneval: model pytest_humaneval_generate via the pytest_humaneval_generate hook, think on, "
            "1 sample(s)/problem",
        ]
    )
    prov = report["provenance"]
    assert prov["generation"] == {
        "source": "hook",
        "model": "pytest_humaneval_generate",
        "think": True,
        "samples_per_problem": 1,
    }
    completions = prov["completions"]
    assert completions["source"] == "generated" and completions["path"] == report["generation"]["completions"]
    assert completions["sha256"] == hashlib.sha256(Path(completions["path"]).read_bytes()).hexdigest()


def test_endpoint_run_records_sampling_but_no_secrets(pytester: pytest.Pytester) -> None:
    config = StubConfig(reply=canonical_reply("humaneval-4"), reject_fields=frozenset({"min_p"}))
    with stub_server(config) as stub:
        port = stub.base_url.split(":")[-1].split("/")[0]
        url = f"http://someone:s3cret-in-url@127.0.0.1:{port}/v1"
        result, report = run(
            pytester,
            "--humaneval-debug",
            f"--humaneval-endpoint={url}",
            "--humaneval-model=stub-model",
            "--humaneval-api-key=s3cret-key",
            "--humaneval-seed=5",
            "--humaneval-samples=2",
            "--humaneval-max-tokens=512",
            "--humaneval-request-timeout=60",
        )
    result.assert_outcomes(passed=8)
    public = f"http://127.0.0.1:{port}/v1"
    result.stdout.fnmatch_lines(
        [
            VERSION_LINE,
            f"humaneval: model stub-model via endpoint {public}, think off, temperature=0.7 top_p=0.8 top_k=20 "
            "min_p=0.0 max_tokens=512 seed=5 (the server refused min_p), 2 sample(s)/problem",
        ]
    )
    gen = report["provenance"]["generation"]
    assert gen == {
        "source": "endpoint",
        "model": "stub-model",
        "endpoint": public,
        "think": False,
        "sampling": {
            "temperature": 0.7,
            "top_p": 0.8,
            "top_k": 20,
            "min_p": 0.0,
            "max_tokens": 512,
            "seed": 5,
        },
        "dropped_params": ["min_p"],
        "prompt_template": "default",
        "samples_per_problem": 2,
        "request_timeout_s": 60.0,
    }
    assert report["generation"]["endpoint"] == public
    everything = json.dumps(report) + result.stdout.str()
    assert "s3cret" not in everything and "someone" not in everything


def test_docker_server_and_sandbox_images(tmp_path: Path) -> None:
    """What the generation section records for an SGLang container (as ``ServerBackend`` has it) reaches both."""
    s = default_settings(tmp_path, sandbox="docker", completions=None, think=True)
    generation = {
        "model": "Qwen/Qwen3-0.6B",
        "source": "docker",
        "image": s.image,
        "think": s.think,
        "sampling": sampling_from(s).as_dict(),
        "extra_body": {},
        "dropped_params": [],
        "samples_per_problem": 1,
        "cache": "c.jsonl",
        "cached": 164,
    }
    prov = build_provenance(
        s, load_dataset("humaneval-4"), generation, timeout_s=3.0, isolation="docker sandbox"
    )
    assert prov["generation"]["image"] == "lmsysorg/sglang:v0.5.19-cu129"
    assert "cache" not in prov["generation"] and "extra_body" not in prov["generation"]
    assert prov["evaluation"]["sandbox"] == {
        "kind": "docker",
        "isolation": "docker sandbox",
        "image": "pytest-humaneval-sandbox:latest",
    }
    (_, line) = header_lines(generation)
    assert line == (
        "humaneval: model Qwen/Qwen3-0.6B via SGLang in Docker (lmsysorg/sglang:v0.5.19-cu129), think on, "
        "temperature=0.6 top_p=0.95 top_k=20 min_p=0.0 max_tokens=32768, 1 sample(s)/problem"
    )


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("http://127.0.0.1:30000/v1", "http://127.0.0.1:30000/v1"),
        ("https://user:key@api.example.com/v1?api-key=x#frag", "https://api.example.com/v1"),
        ("http://:token@[::1]:8000/v1", "http://[::1]:8000/v1"),
    ],
)
def test_public_url_drops_credentials(url: str, public: str) -> None:
    assert public_url(url) == public
