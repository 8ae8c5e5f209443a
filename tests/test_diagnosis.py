"""--humaneval-diagnose: similarity of failing code to the reference, and the LLM judge end to end
against real OpenAI-compatible servers (a stub that answers valid JSON, and the tiny model's noise)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from openai_stub import StubConfig, stub_server
from plugin_support import problems, report, run, usage_error, write_jsonl
from tiny_server import ServerInfo

from pytest_humaneval.analysis.diagnosis import normalized_tokens, similarity
from pytest_humaneval.analysis.judge import CATEGORIES, parse_answer
from pytest_humaneval.api import evaluate
from pytest_humaneval.errors import HumanEvalError

CANONICAL = {p["task_id"]: p["canonical_solution"] for p in problems()}
#: HumanEval/3 (below_zero), its canonical solution with every name changed and the layout redone.
RENAMED_3 = """
    running_total = 0   # start at zero

    for amount in operations:
        running_total += amount

        if running_total < 0:
            return True
    return False
"""


def test_similarity_of_known_pairs() -> None:
    reference = CANONICAL["HumanEval/3"]
    assert similarity(reference, reference) == 1.0
    assert similarity(RENAMED_3, reference) >= 0.95  # names, comments and blank lines do not count
    assert similarity("    return False\n", reference) < 0.4  # a stub of the right shape
    unrelated = [similarity(CANONICAL[t], reference) for t in ("HumanEval/0", "HumanEval/2", "HumanEval/10")]
    assert max(unrelated) < 0.5, unrelated  # HumanEval/0 shares the loop-and-early-return shape: 0.44
    # an off-by-one mutant is close, but not the same
    assert 0.85 < similarity(reference.replace("< 0", "<= 0"), reference) < 1.0


def test_normalisation_keeps_structure_and_apis_not_names() -> None:
    code = '    """Docstring."""\n    return sorted(set(s.lower()))  # comment\n'
    expected = "INDENT return sorted ( set ( <id0> . lower ( ) ) ) NEWLINE DEDENT"
    assert normalized_tokens(code) == expected.split()
    assert similarity("def f(:\n    'unterminated", "x") < 0.5  # does not tokenize: words and marks


def test_judge_answers_are_validated() -> None:
    good = {"category": "off_by_one", "explanation": "Uses <= where < is meant.", "similarity": 0.9}
    assert parse_answer(json.dumps(good)) == {
        "category": "off_by_one",
        "explanation": "Uses <= where < is meant.",
        "judge_similarity": 0.9,
    }
    assert parse_answer("```json\n" + json.dumps(good) + "\n```")["category"] == "off_by_one"
    for bad, why in [
        ("", "empty answer"),
        ("I think it is fine", "no JSON object"),
        (json.dumps({**good, "category": "typo"}), "is not one of"),
        (json.dumps({**good, "similarity": 1.5}), "not a number from 0 to 1"),
        (json.dumps({**good, "explanation": ""}), "no explanation"),
        ("{not json}", "not valid JSON"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_answer(bad)


def test_api_diagnoses_failures_offline() -> None:
    rows = [
        {"task_id": "HumanEval/0", "completion": CANONICAL["HumanEval/0"]},
        {"task_id": "HumanEval/1", "completion": ""},
        {"task_id": "HumanEval/3", "completion": RENAMED_3.replace("< 0", "< -1")},
    ]
    data = evaluate(rows, dataset="humaneval-4", diagnose=True)
    by_task = {r["task_id"]: r for r in data["results"]}
    assert "diagnosis" not in by_task["HumanEval/0"]  # passed
    assert by_task["HumanEval/3"]["status"] == "failed"
    assert by_task["HumanEval/3"]["diagnosis"]["similarity"] > 0.85
    assert "diagnosis" not in by_task["HumanEval/1"]  # no_code: nothing to compare
    assert data["diagnosis_counts"] == {"not_judged": 1}


def judge_reply(body: dict[str, Any]) -> str:
    """A judge that answers in the schema: off_by_one for code with '<= 0', else wrong_algorithm."""
    code = body["messages"][-1]["content"].split("## Failing code")[1]
    category = "off_by_one" if "<= 0" in code else "wrong_algorithm"
    return json.dumps({"category": category, "explanation": f"It is {category}.", "similarity": 0.5})


def failing_completions(pytester: pytest.Pytester) -> Path:
    rows = [
        {"task_id": "HumanEval/0", "completion": CANONICAL["HumanEval/0"]},
        {"task_id": "HumanEval/1", "completion": "    return None\n"},
        {"task_id": "HumanEval/2", "completion": CANONICAL["HumanEval/2"]},
        {"task_id": "HumanEval/3", "completion": CANONICAL["HumanEval/3"].replace("< 0", "<= 0")},
    ]
    return write_jsonl(pytester.path / "failing.jsonl", rows)


def test_api_asks_the_judge_and_caches_its_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``evaluate(judge_endpoint=...)``: the same judge as the plugin's, its key from OPENAI_API_KEY."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    rows = [
        {"task_id": "HumanEval/0", "completion": CANONICAL["HumanEval/0"]},
        {"task_id": "HumanEval/3", "completion": CANONICAL["HumanEval/3"].replace("< 0", "<= 0")},
    ]
    with stub_server(StubConfig(model="judge", reply=judge_reply, api_key="sk-test")) as stub:
        ask: dict[str, Any] = {
            "judge_endpoint": stub.base_url + "/",
            "judge_model": "judge",
            "output": tmp_path,
        }
        data = evaluate(rows, dataset="humaneval-4", **ask)
        assert len(stub.requests) == 1
        d3 = next(r for r in data["results"] if r["task_id"] == "HumanEval/3")["diagnosis"]
        assert d3["category"] == "off_by_one" and d3["similarity"] > 0.85
        assert data["judge"]["endpoint"] == stub.base_url and data["judge"]["asked"] == 1
        assert data["judge"]["cache"].startswith(str(tmp_path / "judge"))
        again = evaluate(rows, dataset="humaneval-4", **ask)
        assert len(stub.requests) == 1 and again["judge"]["cached"] == 1
        assert again["diagnosis_counts"] == data["diagnosis_counts"] == {"off_by_one": 1}
    with pytest.raises(HumanEvalError, match="needs judge_model="):
        evaluate(rows, dataset="humaneval-4", judge_endpoint=stub.base_url)


def test_api_checks_the_judge_before_any_program_runs(tmp_path: Path) -> None:
    """An unreachable judge, or one that does not serve the model, is one error naming evaluate()'s
    arguments, raised before the programs run (not a run whose every answer comes back unusable)."""
    rows = [{"task_id": "HumanEval/3", "completion": CANONICAL["HumanEval/3"].replace("< 0", "<= 0")}]
    down: dict[str, Any] = {
        "judge_endpoint": "http://127.0.0.1:9/v1",
        "judge_model": "judge",
        "output": tmp_path,
    }
    with pytest.raises(
        HumanEvalError, match=r"judge_endpoint='http://127.0.0.1:9/v1': cannot reach the judge"
    ):
        evaluate(rows, dataset="humaneval-4", **down)
    with stub_server(StubConfig(model="judge", reply=judge_reply)) as stub:
        with pytest.raises(
            HumanEvalError, match=r"judge_model='other' is not served at .*; it serves: judge"
        ):
            evaluate(rows, dataset="humaneval-4", judge_endpoint=stub.base_url, judge_model="other")
        assert stub.requests == []  # no question was asked
    assert not (tmp_path / "judge").exists()


@pytest.mark.parametrize("schema_support", [True, False], ids=["response_format", "instructions-only"])
def test_judge_end_to_end_with_a_server_answering_json(
    pytester: pytest.Pytester, schema_support: bool
) -> None:
    path = failing_completions(pytester)
    pytester.makeconftest(  # what reaches the controller: verdicts, not completions
        "def pytest_runtest_logreport(report):\n"
        "    assert 'completion' not in getattr(report, 'humaneval', {})\n"
    )
    reject = frozenset() if schema_support else frozenset({"response_format"})
    with stub_server(StubConfig(model="judge", reply=judge_reply, reject_fields=reject)) as stub:
        args = [
            "--humaneval-debug",
            f"--humaneval-completions={path}",
            f"--humaneval-judge-endpoint={stub.base_url}",
            "--humaneval-judge-model=judge",
            "--junitxml=junit.xml",
            "-n",
            "2",
        ]
        result = run(pytester, *args)
        result.assert_outcomes(passed=2, failed=2)
        result.stdout.fnmatch_lines(
            [
                "diagnosis of 2 failures: *off_by_one 1*; mean similarity to the canonical *",
                "judge judge at http://127.0.0.1:*/v1: 0 answers from the cache, 2 asked, 0 unusable; cache *",
            ]
        )
        data = report(pytester)
        # a server without response_format refuses it (422) once per request in flight, then gets none
        answered = [b for b in stub.requests if ("response_format" in b) is schema_support]
        assert len(answered) == 2
        assert data["judge"]["response_format"] is schema_support
        assert data["diagnosis_counts"] == {"wrong_algorithm": 1, "off_by_one": 1}
        d3 = next(r for r in data["results"] if r["task_id"] == "HumanEval/3")["diagnosis"]
        assert d3["category"] == "off_by_one" and d3["explanation"] == "It is off_by_one."
        assert d3["judge_similarity"] == 0.5 and d3["similarity"] > 0.85
        root = ET.parse(pytester.path / "junit.xml").getroot()
        props = {p.get("name"): p.get("value") for p in root.iter("property")}
        assert props["humaneval_diagnosis_off_by_one"] == "1"

        asked = len(stub.requests)
        again = run(pytester, *args)  # every answer from the cache: the judge is not asked again
        again.stdout.fnmatch_lines(["judge judge at *: 2 answers from the cache, 0 asked, 0 unusable; *"])
        assert len(stub.requests) == asked
        assert report(pytester)["diagnosis_counts"] == data["diagnosis_counts"]
    if schema_support:
        sent = answered[0]["response_format"]
        assert sent["type"] == "json_schema"
        assert sent["json_schema"]["schema"]["properties"]["category"]["enum"] == list(CATEGORIES)


def test_an_unreachable_judge_is_a_usage_error_before_any_item(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        "--humaneval-debug",
        "--humaneval-completions=canonical",
        "--humaneval-judge-endpoint=http://127.0.0.1:9/v1",
        "--humaneval-judge-model=judge",
    )
    usage_error(result, "--humaneval-judge-endpoint=http://127.0.0.1:9/v1: cannot reach the judge*")
    result = run(pytester, "--humaneval-debug", "--humaneval-judge-endpoint=http://127.0.0.1:9/v1")
    usage_error(result, "*--humaneval-judge-endpoint needs --humaneval-judge-model=NAME*")


@pytest.mark.slow
def test_judge_noise_from_a_real_model_is_recorded_as_unusable(
    pytester: pytest.Pytester, tiny_endpoint: ServerInfo
) -> None:
    """The tiny random Qwen3 behind ``transformers serve`` answers noise: every failure gets a
    ``judge_error``, the run still reports, and a rerun asks nothing again."""

    def answered() -> int:
        return len(
            re.findall(r'"POST /v1/chat/completions HTTP/1.1" 200', tiny_endpoint.log_path.read_text())
        )

    path = failing_completions(pytester)
    args = [
        "--humaneval-debug",
        f"--humaneval-completions={path}",
        f"--humaneval-judge-endpoint={tiny_endpoint.base_url}",
        f"--humaneval-judge-model={tiny_endpoint.model}",
        "--humaneval-judge-max-tokens=24",
    ]
    before = answered()
    result = run(pytester, *args)
    result.assert_outcomes(passed=2, failed=2)
    assert answered() - before == 2
    data = report(pytester)
    assert data["diagnosis_counts"] == {"unusable": 2}
    for r in data["results"]:
        if not r["passed"]:
            assert r["diagnosis"]["judge_error"].startswith("unusable judge answer: ")
            assert "category" not in r["diagnosis"] and r["diagnosis"]["similarity"] is not None
    cache = next((pytester.path / ".humaneval" / "judge").glob("*.cache.jsonl"))
    assert len(cache.read_text().splitlines()) == 2  # saved as they arrived, unusable ones too
    run(pytester, *args)
    assert answered() - before == 2
