"""--think=both: both modes generated (each cached as one run is), evaluated as items of their own, and
compared in the report (paired statistics on the problems)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from openai_stub import StubConfig, stub_server
from plugin_support import problems, report, run, usage_error

from pytest_humaneval.analysis.modes import compare
from pytest_humaneval.analysis.stats import mcnemar_exact

CANONICAL = {p["task_id"]: p for p in problems()[:4]}
#: Thinking solves all four problems; not thinking gets HumanEval/1 and HumanEval/3 wrong.
WRONG_WITHOUT_THINKING = {"HumanEval/1", "HumanEval/3"}

HOOK = """
import json

CANONICAL = json.loads({canonical!r})


def pytest_humaneval_generate(config, problems, samples, think):
    answers = {{}}
    for p in problems:
        good = think or p.task_id not in {wrong!r}
        code = p.prompt + CANONICAL[p.task_id] if good else "def " + p.entry_point + "(*args):\\n    return None\\n"
        answers[p.task_id] = ["```python\\n" + code + "```"] * samples
    return answers
"""


def hook_conftest(pytester: pytest.Pytester) -> None:
    canonical = json.dumps({t: p["canonical_solution"] for t, p in CANONICAL.items()})
    pytester.makeconftest(HOOK.format(canonical=canonical, wrong=sorted(WRONG_WITHOUT_THINKING)))


def test_exact_mcnemar_and_the_paired_difference() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(9, 1) == pytest.approx(2 * 11 / 1024)
    assert mcnemar_exact(3, 3) == 1.0
    rows = lambda passed: [  # noqa: E731
        {"task_id": f"T/{i}", "sample": 0, "passed": p} for i, p in enumerate(passed)
    ]
    c = compare(rows([1, 1, 1, 1, 0, 0]), rows([1, 1, 0, 0, 0, 1]))  # type: ignore[arg-type]  # partial rows
    assert c["pass_at_1_delta"] == pytest.approx(1 / 6, abs=1e-6)
    assert c["only_first_passed"] == 2 and c["only_second_passed"] == 1
    assert c["mcnemar_p"] == 1.0
    low, high = c["delta_ci95"]
    assert low < 1 / 6 < high
    # McNemar pairs first samples: a problem whose first sample one side did not run is not counted
    c = compare(  # partial rows: the keys compare() reads
        [{"task_id": "T/0", "sample": 1, "passed": False}],  # type: ignore[typeddict-item]
        [{"task_id": "T/0", "sample": 0, "passed": True}],  # type: ignore[typeddict-item]
    )
    assert c["only_first_passed"] == c["only_second_passed"] == 0


def test_both_modes_in_one_run_items_report_junit_and_terminal(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook_conftest(pytester)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "summary.md"))
    result = run(pytester, "--humaneval-debug", "--think=both", "-n", "2", "--junitxml=junit.xml", "-rA")
    result.assert_outcomes(passed=6, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*PASSED humaneval-4::HumanEval/1[[]think[]]*",
            "*FAILED humaneval-4::HumanEval/1[[]no-think[]]*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "mode       pass@1        95% CI    passed   tokens med/p90 truncated",
            "think      1.0000   0.510-1.000       4/4              n/a      0.0%",
            "no-think   0.5000   0.150-0.850       2/4              n/a      0.0%",
            "think - no-think: pass@1 +0.5000 (95% CI *), McNemar p = 0.5 on first samples (not significant at 0.05)",
        ]
    )
    data = report(pytester)
    modes = data["modes"]
    assert set(modes) == {"think", "no-think", "comparison"}
    for mode in ("think", "no-think"):
        assert set(modes[mode]) >= {
            "pass_at_k",
            "passed",
            "total",
            "status_counts",
            "tokens",
            "truncated_rate",
            "generation_wall_s",
        }
    assert modes["think"]["pass_at_k"] == {"1": 1.0} and modes["no-think"]["passed"] == 2
    assert modes["no-think"]["status_counts"] == {"passed": 2, "failed": 2}
    assert modes["comparison"]["pass_at_1_delta"] == 0.5 and modes["comparison"]["mcnemar_p"] == 0.5
    assert {(r["task_id"], r["mode"]) for r in data["results"] if not r["passed"]} == {
        ("HumanEval/1", "no-think"),
        ("HumanEval/3", "no-think"),
    }
    root = ET.parse(pytester.path / "junit.xml").getroot()
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["humaneval_think_pass@1"] == "1.000000" and props["humaneval_no-think_pass@1"] == "0.500000"
    assert props["humaneval_think_mcnemar_p"] == "0.5"
    summary = (pytester.path / "summary.md").read_text()
    assert "| think | 1.0000 | 4/4 | n/a | 0.0% |" in summary and "| no-think | 0.5000 | 2/4 |" in summary
    assert "think - no-think: pass@1 +0.5000" in summary
    names = {c.get("name") for c in root.iter("testcase")}
    assert {"HumanEval/0[think]", "HumanEval/0[no-think]"} <= names
    # The HTML report shows each mode's own answer (its completions file), not one mode's for both.
    page = (pytester.path / "report.html").read_text()
    rows: dict[str, str] = {}
    for chunk in page.split('<details class="prog" ')[1:]:
        if 'data-task="HumanEval/1"' in chunk:
            rows[chunk.split('data-mode="')[1].split('"')[0]] = chunk
    assert set(rows) == {"think", "no-think"}
    assert "current_depth" in rows["think"] and "current_depth" not in rows["no-think"]


#: Counts, per pytest process, the opening of each JSONL file the plugin reads (written as the process ends).
OPEN_COUNTER = """

import collections
import pytest_humaneval.datasets.dataset

OPENED = collections.Counter()
_open_text = pytest_humaneval.datasets.dataset.open_text


def _counting_open_text(path):
    OPENED[str(path)] += 1
    return _open_text(path)


pytest_humaneval.datasets.dataset.open_text = _counting_open_text


def pytest_unconfigure(config):
    who = getattr(config, "workerinput", {}).get("workerid", "controller")
    with open(FOLDER + "/opened-" + who + ".json", "w") as fh:
        json.dump(OPENED, fh)
"""


def test_each_modes_completions_file_is_read_once_per_process(pytester: pytest.Pytester) -> None:
    """The controller reads each mode's completions file twice: before the workers start, to hand them the
    completions (``workerinput``: a worker may be another machine), and once at the end (token counts,
    generation fields and the HTML page from one read); the workers read none."""
    hook_conftest(pytester)
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + OPEN_COUNTER.replace("FOLDER", repr(str(pytester.path))))
    run(pytester, "--humaneval-debug", "--think=both", "-n", "2").assert_outcomes(passed=6, failed=2)
    opened = {f.stem.split("-", 1)[1]: json.loads(f.read_text()) for f in pytester.path.glob("opened-*.json")}
    assert set(opened) == {"controller", "gw0", "gw1"}
    folder = pytester.path / ".humaneval" / "completions"
    completions = [str(f) for f in folder.glob("*.jsonl") if not f.name.endswith(".cache.jsonl")]
    assert len(completions) == 2, completions
    assert all(opened["controller"].get(path) == 2 for path in completions), opened["controller"]
    for who in ("gw0", "gw1"):
        assert not set(completions) & set(opened[who]), (who, opened[who])
        assert all(n == 1 for n in opened[who].values()), (who, opened[who])  # the dataset, once


def test_mode_names_collection_and_selection(pytester: pytest.Pytester) -> None:
    hook_conftest(pytester)
    result = run(
        pytester, "--humaneval-debug", "--think=both", "--humaneval-samples=2", "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(
        [
            "humaneval-4::HumanEval/0[[]think-s0[]]",
            "humaneval-4::HumanEval/0[[]think-s1[]]",
            "humaneval-4::HumanEval/0[[]no-think-s0[]]",
            "humaneval-4::HumanEval/0[[]no-think-s1[]]",
            "humaneval-4::HumanEval/1[[]think-s0[]]",
        ]
    )
    selected = run(pytester, "--humaneval-debug", "--think=both", "-k", "no-think", "-n", "2")
    selected.assert_outcomes(passed=2, failed=2)
    assert {r["mode"] for r in report(pytester)["results"]} == {"no-think"}
    selected = run(pytester, "--humaneval-debug", "--think=both", "-k", "think and not no-think")
    selected.assert_outcomes(passed=4)


def test_think_both_with_a_completions_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--humaneval-debug", "--think=both", "--humaneval-completions=canonical")
    usage_error(result, "--think=both generates both modes: it cannot be used with --humaneval-completions*")
    result = run(pytester, "--humaneval-debug", "--think=sometimes")
    usage_error(result, "*--think='sometimes': give on, off or both*")


def thinking_reply(body: dict[str, Any]) -> tuple[str, str | None, str]:
    """A server that answers right when thinking and wrong for HumanEval/1 and /3 when not."""
    think = body["extra_body"]["chat_template_kwargs"]["enable_thinking"] if "extra_body" in body else None
    think = body.get("chat_template_kwargs", {}).get("enable_thinking", think)
    text = body["messages"][-1]["content"]
    for task_id, p in CANONICAL.items():
        if p["prompt"] in text:
            good = think or task_id not in WRONG_WITHOUT_THINKING
            code = p["prompt"] + (p["canonical_solution"] if good else "    return None\n")
            return f"```python\n{code}```", "I thought." if think else None, "stop"
    return "no idea", None, "stop"


def test_both_modes_from_a_server_are_cached_per_mode(pytester: pytest.Pytester) -> None:
    with stub_server(StubConfig(model="m", reply=thinking_reply, completion_tokens=50)) as stub:
        args = [
            "--humaneval-debug",
            "--think=both",
            f"--humaneval-endpoint={stub.base_url}",
            "--humaneval-model=m",
        ]
        run(pytester, *args).assert_outcomes(passed=6, failed=2)
        flags = sorted(b["chat_template_kwargs"]["enable_thinking"] for b in stub.requests)
        assert flags == [False] * 4 + [True] * 4
        modes = report(pytester)["modes"]
        assert modes["think"]["tokens"] == {"median": 50, "p90": 50}
        assert modes["think"]["sampling"]["temperature"] == 0.6  # each mode's own sampling defaults
        assert modes["no-think"]["sampling"]["temperature"] == 0.7
        assert modes["no-think"]["generation_wall_s"] > 0
        caches = sorted(p.name for p in (pytester.path / ".humaneval" / "completions").glob("*.cache.jsonl"))
        assert len(caches) == 2 and sum("-think-" in name for name in caches) == 1
        again = run(pytester, *args)
        again.assert_outcomes(passed=6, failed=2)
        assert len(stub.requests) == 8  # both modes came from their caches
        assert report(pytester)["modes"]["comparison"]["mcnemar_p"] == 0.5
