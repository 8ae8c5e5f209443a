"""The forgery family (``hostile.FORGERIES``): wrong programs that try to make the harness report them passed
(patching json, exec, os.write, numpy.allclose, math.isclose or builtins; walking frames or the garbage
collector; threads, atexit and signal handlers that outlive the call; ctypes writes into their own memory;
always-equal objects; forged channel frames; the answer key on disk). Through the plugin, on each of the
four datasets, in both sandboxes, in one process and under ``-n 2``: every one comes back not passed, none as
a harness failure (which pass@k would leave out), and every one keeps its row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile import FORGERY_TARGETS, REFERENCE_TARGET, write_forgeries

pytestmark = pytest.mark.slow

DATASETS = list(FORGERY_TARGETS)
WORKERS = pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "n2"])


def run_forgeries(
    pytester: pytest.Pytester, dataset: str, *args: str, target: tuple[str, str, str] | None = None
) -> None:
    names = write_forgeries(pytester.path / "forged.jsonl", dataset, target)
    task_id, entry, _ = target or FORGERY_TARGETS[dataset]
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "--humaneval",
        f"--humaneval-dataset={dataset}",
        f"--humaneval-completions={pytester.path / 'forged.jsonl'}",
        "--humaneval-report=report.json",
        "-k",
        entry,
        *args,
    )
    report = json.loads(Path(pytester.path / "report.json").read_text())
    rows = {names[r["sample"]]: r for r in report["results"] if r["task_id"] == task_id}
    assert sorted(rows) == sorted(names.values()), "a forgery lost its row"
    forged = {name: (r["status"], r["reason"]) for name, r in rows.items() if r["passed"]}
    assert not forged, f"forgeries reported passed: {forged}"
    harness = {name: r["reason"] for name, r in rows.items() if r["status"] == "sandbox_error"}
    assert not harness, f"forgeries charged to the harness (left out of pass@k): {harness}"
    assert report["pass_at_k"]["1"] == 0.0
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@WORKERS
@pytest.mark.parametrize("dataset", DATASETS)
def test_no_forgery_passes_in_the_subprocess_sandbox(
    pytester: pytest.Pytester, dataset: str, workers: tuple[str, ...]
) -> None:
    run_forgeries(pytester, dataset, *workers)


@pytest.mark.docker
@WORKERS
@pytest.mark.parametrize("dataset", DATASETS)
def test_no_forgery_passes_in_the_docker_sandbox(
    pytester: pytest.Pytester, dataset: str, workers: tuple[str, ...], image: str
) -> None:
    run_forgeries(
        pytester, dataset, "--humaneval-sandbox=docker", f"--humaneval-sandbox-image={image}", *workers
    )


@WORKERS
def test_no_forgery_passes_where_the_judge_skips_the_reference(
    pytester: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    """HumanEval/100: its test calls the reference on every input, a call the judge skips where the answer
    matches the reference's shipped digest (tests/test_reference_digests.py)."""
    run_forgeries(pytester, "humaneval-plus", *workers, target=REFERENCE_TARGET)


@pytest.mark.docker
def test_no_forgery_passes_where_the_judge_skips_the_reference_in_docker(
    pytester: pytest.Pytester, image: str
) -> None:
    run_forgeries(
        pytester,
        "humaneval-plus",
        "--humaneval-sandbox=docker",
        f"--humaneval-sandbox-image={image}",
        target=REFERENCE_TARGET,
    )
