"""CI gates: baseline comparison, GitHub step summary, the report hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plugin_support import canonical_completions, run


def completions(pytester: pytest.Pytester, name: str, broken: set[str]) -> Path:
    return canonical_completions(pytester.path / name, wrong=broken)


def test_baseline_names_regressions_and_gates(pytester: pytest.Pytester) -> None:
    good = completions(pytester, "good.jsonl", {"HumanEval/7"})
    assert (
        run(pytester, "--humaneval", f"--humaneval-completions={good}", "--humaneval-report=base.json").ret
        == 1
    )
    worse = completions(pytester, "worse.jsonl", {"HumanEval/1", "HumanEval/2", "HumanEval/3"})
    result = run(
        pytester, "--humaneval", f"--humaneval-completions={worse}", "--humaneval-baseline=base.json"
    )
    assert result.ret == 1
    out = result.stdout.str()
    assert (
        "baseline (pass@1 0.9939): 3 newly failing ['HumanEval/1', 'HumanEval/2', 'HumanEval/3'], "
        "1 newly passing ['HumanEval/7']"
    ) in out
    assert "gate --humaneval-baseline: 3 newly failing, tolerance 0 -> FAILED" in out
    data = json.loads((pytester.path / "report.json").read_text())
    assert data["baseline"]["newly_failing"] == ["HumanEval/1", "HumanEval/2", "HumanEval/3"]
    # the paired test: 1 problem only the new run solves, 3 only the baseline: p = 2 * P(Bin(4, 1/2) <= 1)
    assert data["baseline"]["mcnemar_p"] == 0.625
    assert data["baseline"]["pass_at_1_delta"] == pytest.approx(-2 / 164, abs=1e-6)
    assert (
        "baseline: pass@1 change -0.0122 on first samples, McNemar p = 0.625 (not significant at 0.05)" in out
    )
    result = run(
        pytester,
        "--humaneval",
        f"--humaneval-completions={worse}",
        "--humaneval-baseline=base.json",
        "--humaneval-baseline-tolerance=3",
    )
    assert result.ret == 0  # within tolerance: the gate, not the failing problems, decides
    result.stdout.fnmatch_lines(["gate --humaneval-baseline: 3 newly failing, tolerance 3 -> PASSED"])


def test_baseline_of_another_dataset_is_refused(pytester: pytest.Pytester) -> None:
    run(pytester, "--humaneval-debug", "--humaneval-completions=canonical", "--humaneval-report=base.json")
    result = run(
        pytester, "--humaneval", "--humaneval-completions=canonical", "--humaneval-baseline=base.json"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "was made on another dataset" in result.stderr.str()


def test_github_step_summary(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = pytester.path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run(pytester, "--humaneval-debug", "--humaneval-completions=canonical")
    text = summary.read_text()
    assert text.startswith("earlier step\n### HumanEval: canonical on humaneval-4")
    assert "| pass@1 | 1.0000 |" in text and "| passed | 4 |" in text


def test_report_hook_receives_the_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "import json\n"
        "def pytest_humaneval_report(config, report):\n"
        "    open('posted.json', 'w').write(json.dumps({'pass1': report['pass_at_k']['1'], 'n': report['total']}))\n"
    )
    run(pytester, "--humaneval-debug", "--humaneval-completions=canonical")
    assert json.loads((pytester.path / "posted.json").read_text()) == {"pass1": 1.0, "n": 4}
