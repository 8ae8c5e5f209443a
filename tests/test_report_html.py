"""The HTML report without a browser: every run writes it (where, atomically, with what), it references
nothing outside itself, the sections other analyses add render when their keys exist, outputs and
completions reach the controller under xdist, generation's latency and tokens reach the JSON report,
and pytest-html's report carries each program's completion and reason."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

import pytest
from openai_stub import StubConfig, stub_server
from plugin_support import problems, report, run, write_jsonl

from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.reporting.html.highlight import highlight
from pytest_humaneval.reporting.html.page import render_html
from pytest_humaneval.reporting.schema import Report
from pytest_humaneval.run_state import output_from_section, program_section

DEBUG = load_dataset("humaneval-4")
HUMANEVAL = load_dataset("humaneval")


class _References(HTMLParser):
    """Everything in a page that a browser would fetch or navigate to, and every script and style."""

    FETCHING = frozenset(
        {"src", "href", "xlink:href", "srcset", "action", "formaction", "data", "poster", "background"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()
        self.inline: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in self.FETCHING and value is not None:
                self.urls.append((tag, name, value))
            if name == "style" and value:
                self.inline.append(value)
        self._in = tag if tag in ("style", "script") else None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def assert_self_contained(page: str) -> _References:
    refs = _References()
    refs.feed(page)
    outside = [u for u in refs.urls if not u[2].startswith(("#", "data:"))]
    assert not outside, f"references outside the page: {outside[:5]}"
    assert not refs.tags & {"link", "iframe", "object", "embed", "img", "base", "audio", "video", "source"}
    for text in refs.inline:  # styles and scripts
        assert not re.search(r"url\(\s*['\"]?(?!#|data:)", text), text[:200]
        assert "@import" not in text
        assert not re.search(r"\b(fetch|XMLHttpRequest|importScripts|WebSocket|EventSource)\b\s*\(?", text)
        assert not re.search(r"\bimport\s*\(", text)
    return refs


def mixed_completions(path: Path) -> Path:
    """HumanEval/0..3: a failure that prints, a plain failure, a pass that prints, a pass."""
    return write_jsonl(
        path,
        [
            {"task_id": "HumanEval/0", "completion": "    print('zero says hi')\n    return False\n"},
            {
                "task_id": "HumanEval/1",
                "completion": "    return ['--- program output ---', '</noscript><script>x()</script>']\n",
            },
            {
                "task_id": "HumanEval/2",
                "completion": "    print('two <b>prints</b>')\n    return number % 1.0\n",
            },
            {
                "task_id": "HumanEval/3",
                "completion": next(p for p in problems() if p["task_id"] == "HumanEval/3")[
                    "canonical_solution"
                ],
            },
        ],
    )


def row(page: str, task_id: str) -> str:
    """The HTML of a program's row (its <details> element)."""
    start = page.index(f'<details class="prog" data-task="{task_id}"')
    end = page.find('<details class="prog"', start + 1)
    return page[start : end if end > 0 else page.index('<section id="problems">', start)]


# -- every run writes it ----------------------------------------------------------------------------


def test_every_run_writes_the_report_next_to_the_json(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--humaneval-debug", "--humaneval-completions=canonical")
    result.assert_outcomes(passed=4)
    page = (pytester.path / "report.html").read_text()  # report.json's path with .html
    result.stdout.fnmatch_lines([f"HTML report: {pytester.path / 'report.html'} (0.* MB, *.* s)"])
    data = report(pytester)
    assert f"{data['pass_at_k']['1']:.4f}" in page and "4/4" in page
    for problem in DEBUG:
        assert f'data-task="{problem.task_id}"' in page and f'id="prompt-{problem.task_id}"' in page
    assert_self_contained(page)
    assert not list(pytester.path.glob(".report.html.*"))  # written atomically: no temp file left

    default = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--humaneval-debug", "--humaneval-completions=canonical"
    )
    default.assert_outcomes(passed=4)
    assert (pytester.path / ".humaneval" / "report.html").is_file()


def test_path_from_the_option_and_the_ini_key(pytester: pytest.Pytester) -> None:
    run(pytester, "--humaneval-debug", "--humaneval-completions=canonical", "--humaneval-html=out/run.html")
    assert "HumanEval report" in (pytester.path / "out" / "run.html").read_text()
    pytester.makeini("[pytest]\nhumaneval_html = from-ini/page.html\n")
    run(pytester, "--humaneval-debug", "--humaneval-completions=canonical")
    assert (pytester.path / "from-ini" / "page.html").is_file()


def test_an_unwritable_path_is_one_line_and_the_run_stands(pytester: pytest.Pytester) -> None:
    (pytester.path / "taken").write_text("a file, not a directory")
    result = run(
        pytester, "--humaneval-debug", "--humaneval-completions=canonical", "--humaneval-html=taken/r.html"
    )
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*HTML report not written: *taken*check --humaneval-html*"])
    assert report(pytester)["passed"] == 4  # the JSON report is there


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_completions_and_outputs_reach_the_report(pytester: pytest.Pytester, workers: list[str]) -> None:
    """Reports stay small across xdist (no completion; a failure's output only in its section), and the
    page still shows every completion and every output, passing programs' included."""
    path = mixed_completions(pytester.path / "mixed.jsonl")
    result = run(pytester, "--humaneval-debug", f"--humaneval-completions={path}", *workers)
    result.assert_outcomes(passed=2, failed=2)
    page = (pytester.path / "report.html").read_text()
    zero, one, two = row(page, "HumanEval/0"), row(page, "HumanEval/1"), row(page, "HumanEval/2")
    assert "zero says hi" in zero and "assert" in zero  # a failure: output and reason
    assert "--- program output ---" in one and "<h4>program output</h4>" not in one  # it printed nothing
    assert "</noscript><script>x()" not in page and "&lt;/noscript&gt;&lt;script&gt;x()" in one
    assert html.escape("two <b>prints</b>") in two and "<b>prints</b>" not in two  # a pass that printed
    assert '<span class="k">return</span>' in two  # highlighted
    data = report(pytester)
    assert all("completion" not in r and "stdout" not in r for r in data["results"])


def test_generation_latency_tokens_and_truncation_reach_both_reports(pytester: pytest.Pytester) -> None:
    answers = {
        "has_close_elements": ("", "thinking " * 30, "length"),
        "separate_paren_groups": (
            "```python\ndef separate_paren_groups(s):\n    return []\n```",
            "short",
            "stop",
        ),
    }

    def reply(body: dict[str, Any]) -> Any:
        text = body["messages"][-1]["content"]
        name = next((n for n in answers if f"def {n}" in text), None)
        return answers[name] if name else "```python\ndef truncate_number(x):\n    return x % 1.0\n```"

    config = StubConfig(
        reply=reply, completion_tokens=lambda body: 40 + len(body["messages"][-1]["content"]) % 50
    )
    with stub_server(config) as stub:
        result = run(
            pytester,
            "--humaneval-debug",
            f"--humaneval-endpoint={stub.base_url}",
            "--humaneval-model=stub-model",
            "--think",
        )
    assert result.ret == 1
    data = report(pytester)
    records = {r["task_id"]: r for r in data["results"]}
    assert all(r["latency_s"] >= 0 and r["completion_tokens"] >= 40 for r in records.values())
    assert (
        records["HumanEval/0"]["finish_reason"] == "length"
        and records["HumanEval/0"]["status"] == "truncated"
    )
    page = (pytester.path / "report.html").read_text()
    assert 'id="chart-latency"' in page and 'id="chart-tokens"' in page and "hit max_tokens (1)" in page
    # The plots count answers cut by max_tokens; the status count, those of them left without code to run.
    assert "1 of 4 hit max_tokens: 1 without usable code (status truncated), 0 cut after their code" in page
    assert "thinking thinking" in row(page, "HumanEval/0")  # the reasoning, folded
    assert "generation wall" in page
    assert_self_contained(page)


def test_gates_and_baseline(pytester: pytest.Pytester) -> None:
    run(pytester, "--humaneval-debug", "--humaneval-completions=canonical")
    (pytester.path / "report.json").rename(pytester.path / "baseline.json")
    path = mixed_completions(pytester.path / "mixed.jsonl")
    result = run(
        pytester,
        "--humaneval-debug",
        f"--humaneval-completions={path}",
        "--humaneval-baseline=baseline.json",
        "--humaneval-min-pass=0.4",
    )
    assert result.ret == 1
    page = (pytester.path / "report.html").read_text()
    assert re.search(r'id="verdict" class="verdict bad">FAILED', page)
    assert "--humaneval-min-pass=0.4: pass@1 0.5000" in page
    failing = page[page.index('id="newly-failing"') : page.index('id="newly-passing"')]
    assert "newly failing (2)" in failing and "HumanEval/0" in failing and "HumanEval/1" in failing


# -- pytest-html --------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_pytest_html_rows_carry_completion_and_reason(pytester: pytest.Pytester, workers: list[str]) -> None:
    pytest.importorskip("pytest_html")
    path = mixed_completions(pytester.path / "mixed.jsonl")
    run(pytester, "--humaneval-debug", f"--humaneval-completions={path}", "--html=ph.html", *workers)
    page = (pytester.path / "ph.html").read_text()
    found = re.search(r'data-jsonblob="([^"]*)"', page)
    assert found is not None
    blob = json.loads(html.unescape(found.group(1)))
    extras = {
        test_id.split("::")[-1]: "".join(e["content"] for t in runs for e in t["extras"])
        for test_id, runs in blob["tests"].items()
    }
    data = {r["task_id"]: r for r in report(pytester)["results"]}
    assert set(extras) == set(data)
    for task_id, r in data.items():
        assert html.escape(r["status"]) in extras[task_id]
        assert html.escape(r["reason"], quote=True) in extras[task_id]
    assert (
        html.escape("print('zero says hi')") in extras["HumanEval/0"]
        and "zero says hi\n" in extras["HumanEval/0"]
    )


def test_without_html_option_reports_carry_no_extras(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_runtest_logreport(report):
            if report.when == "call":
                assert not getattr(report, "extras", None), report.extras
        """
    )
    run(pytester, "--humaneval-debug", "--humaneval-completions=canonical").assert_outcomes(passed=4)


# -- sections other analyses add ------------------------------------------------------------------------


def _report(**extra: Any) -> Report:
    results = [
        {
            "task_id": "HumanEval/0",
            "sample": 0,
            "passed": True,
            "status": "passed",
            "reason": "",
            "duration_s": 0.02,
        },
        {
            "task_id": "HumanEval/1",
            "sample": 0,
            "passed": False,
            "status": "failed",
            "reason": "assert failed",
            "duration_s": 0.03,
        },
    ]
    return cast(  # a hand-made report: the keys the page reads
        Report,
        {
            "dataset": "humaneval-4",
            "model": "m",
            "plugin_version": "0",
            "samples_per_problem": 1,
            "problems": 2,
            "pass_at_k": {"1": 0.5},
            "pass_at_1_ci95": [0.09, 0.91],
            "passed": 1,
            "total": 2,
            "status_counts": {"passed": 1, "failed": 1},
            "results": results,
            **extra,
        },
    )


def test_sections_render_only_when_their_keys_exist() -> None:
    plain = render_html(_report(), DEBUG)
    for section in ('id="modes"', 'id="efficiency"', 'id="diagnosis"', 'id="baseline"', 'id="mode-filter"'):
        assert section not in plain

    modes = {
        "think": {
            "pass_at_k": {"1": 0.61},
            "passed": 100,
            "total": 164,
            "status_counts": {"passed": 100, "failed": 40, "truncated": 24},
            "tokens": {"median": 2100, "p90": 9800},
            "truncated_rate": 0.146,
            "generation_wall_s": 812.5,
        },
        "no-think": {
            "pass_at_k": {"1": 0.43},
            "passed": 70,
            "total": 164,
            "status_counts": {"passed": 70, "failed": 94},
            "tokens": {"median": 180, "p90": 420},
            "truncated_rate": 0.0,
            "generation_wall_s": 41.0,
        },
        "comparison": {"pass_at_1_delta": 0.18, "delta_ci95": [0.09, 0.27], "mcnemar_p": 0.0004},
    }
    results = _report()["results"]
    results[0].update({"mode": "think", "efficiency_ratio": 2.5, "efficiency_ci95": [2.1, 2.9]})
    results[1].update(
        {
            "mode": "no-think",
            "diagnosis": {"similarity": 0.82, "category": "off_by_one", "explanation": "stops one short"},
        }
    )
    page = render_html(
        _report(
            results=results,
            modes=modes,
            efficiency={"geomean_ratio": 1.37, "slower_2x": ["HumanEval/0"], "faster_2x": [], "problems": 1},
            diagnosis_counts={"off_by_one": 1, "edge_case": 3},
            baseline={
                "baseline_pass_at_1": 0.75,
                "newly_failing": ["HumanEval/1"],
                "newly_passing": [],
                "compared": 2,
                "mcnemar_p": 0.5,
            },
        ),
        DEBUG,
        gates=[("--humaneval-min-pass=0.4: pass@1 0.5000", True)],
    )
    assert_self_contained(page)
    table = page[page.index('id="modes"') : page.index("</section>", page.index('id="modes"'))]
    for text in (
        "think",
        "no-think",
        "0.6100",
        "0.4300",
        "100/164",
        "14.6%",
        "2,100",
        "9,800",
        "13.5 min",
        "41.0 s",
    ):
        assert text in table, text
    assert "pass_at_1_delta" in table and "0.0004" in table and "0.09, 0.27" in table
    eff = page[page.index('id="efficiency"') :]
    assert '<b id="geomean">1.37</b>' in eff and "more than 2× slower (1)" in eff
    assert "2.50× the canonical solution&#39;s time (95% CI 2.10–2.90)" in row(page, "HumanEval/0")
    diag = page[page.index('id="diagnosis"') :]
    assert diag.index("edge_case") < diag.index("off_by_one")  # most frequent first
    assert 'id="chart-diagnosis"' in page
    assert "stops one short" in row(page, "HumanEval/1")
    assert 'id="mode-filter"' in page and 'data-mode="no-think"' in page
    assert "McNemar p = 0.5" in page and "not significant" in page
    assert 'class="verdict ok">PASSED' in page


# -- pieces ---------------------------------------------------------------------------------------------


def test_highlighting_keeps_every_character() -> None:
    for problem in HUMANEVAL:
        for code in (problem.prompt, problem.canonical_solution):
            marked = highlight(code)
            assert html.unescape(re.sub(r"</?span[^>]*>", "", marked)) == code
    assert "&lt;script&gt;" in highlight("x = '<script>'")


@pytest.mark.parametrize(
    ("completion", "output"),
    [
        ("    return 1\n", ""),
        ("    print('\\n--- program output ---\\n')\n", "\n--- program output ---\nreal output"),
        ("", "--- completion ---\n"),
    ],
)
def test_output_is_read_back_exactly_from_the_section(completion: str, output: str) -> None:
    assert output_from_section(program_section(completion, output), completion) == output
    assert output_from_section("something else", completion) is None


def test_reasoning_is_clipped_to_the_report_budget() -> None:
    from pytest_humaneval.reporting.html.page import REASONING_BUDGET, reasoning_limit
    from pytest_humaneval.reporting.html.programs import Program

    long = "a" * 40_000 + "MIDDLE" + "b" * 40_000
    programs: dict[tuple[str, int, str | None], Program] = {
        ("HumanEval/0", 0, None): Program("    return 1\n", reasoning=long)
    }
    page = render_html(_report(), DEBUG, programs, completions_path="gen.jsonl")
    assert "MIDDLE" not in page and "characters left out here; the whole text is in gen.jsonl" in page
    assert "reasoning (80,006 characters)" in page
    assert "a" * 32_000 in page and "b" * 32_000 in page
    assert reasoning_limit(1) == 64_000  # a small run shows long reasoning whole
    assert reasoning_limit(16_400) == 2_000  # a pass@100 thinking run: head and tail of each
    assert reasoning_limit(1_000) * 1_000 <= REASONING_BUDGET


def test_pass_at_k_curve_matches_the_reports_estimator() -> None:
    from pytest_humaneval.reporting.html.charts import pass_at_k_curve
    from pytest_humaneval.reporting.report import pass_at_ks, per_task
    from pytest_humaneval.verdict import Result

    results = [
        Result(f"T/{t}", s, "passed" if (t * s) % 4 == 1 else "failed") for t in range(6) for s in range(12)
    ]
    ks, values = pass_at_k_curve(per_task(results))
    assert ks == [1, 2, 3, 5, 10, 12]
    expected = pass_at_ks(results, ks=ks)
    assert values == pytest.approx([expected[str(k)] for k in ks])
    assert values == sorted(values)  # more samples, never less likely to solve


def test_server_start_up_is_its_own_card_not_part_of_the_generation_wall() -> None:
    """A CPU run: 113 s of SGLang start-up and 908 s of generation. The card said 'generation wall 17.1 min'
    (both together) where the terminal said 908 s."""
    generation = {
        "wall_s": 1021.0,
        "generation_wall_s": 908.0,
        "startup_s": 113.0,
        "server": {"startup_s": 113.0, "reused": False},
        "requested": 164,
        "cached": 0,
        "tokens_per_s": 34.0,
    }
    page = render_html(_report(generation=generation, wall_s=1030.0), DEBUG)
    text = re.sub(r"<[^>]+>", " ", page)
    assert re.search(r"server start-up\s+113\.0 s", text), text
    assert re.search(r"generation wall\s+15\.1 min", text), text
    assert "17.0 min" not in text
