"""The HTML report in a real browser (Debian's headless Chromium through chromedriver): what a person sees
equals the JSON report, every program is in the table, filtering, search and sorting work, nothing is
fetched from anywhere, and the page reads without JavaScript. Screenshots are kept in ``.artifacts/``
(``HUMANEVAL_TEST_ARTIFACTS``); with ``HUMANEVAL_UPDATE_SCREENSHOT=1`` the top of the page also
replaces the README's ``docs/report.png`` (and an open row, ``docs/report-row.png``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import ARTIFACTS, REPO_ROOT, chromium, full_page_screenshot, require_browser
from openai_stub import StubConfig, stub_server

from pytest_humaneval.datasets.registry import load_dataset
from pytest_humaneval.reporting.html.charts import STATUS_COLOURS

pytestmark = pytest.mark.slow

HUMANEVAL = {p.task_id: p for p in load_dataset("humaneval")}
SAMPLES = 3


def _reply(body: dict[str, Any]) -> Any:
    """A model of some quality: mostly right, sometimes wrong, printing, raising, or cut by max_tokens
    (by task number and seed), with latency and length varying like a real server's."""
    text = body["messages"][-1]["content"]
    seed = body.get("seed") or 0
    for p in HUMANEVAL.values():
        if p.prompt in text:
            n = int(p.task_id.split("/")[1])
            time.sleep(0.002 * ((n * 7 + seed) % 10))
            if (n + seed) % 11 == 0:
                return ("", "Let me think about " + p.entry_point + " step by step. " * 40, "length")
            reasoning = f"The function {p.entry_point} needs care with edge cases."
            code = p.canonical_solution
            if (n + seed) % 7 == 0:
                code = "    return None\n"
            elif (n + seed) % 13 == 0:
                code = f"    print('looking at', {p.entry_point!r})\n    raise ValueError('nope')\n"
            return (f"```python\n{p.prompt}{code}```", reasoning, "stop")
    return "I do not know this problem."


def _tokens(body: dict[str, Any]) -> int:
    return 60 + (len(body["messages"][-1]["content"]) * 7 + (body.get("seed") or 0) * 37) % 900


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """One generated run (the stub server as the model): 164 problems x 3 samples, gated on pass@1."""
    require_browser()
    where = tmp_path_factory.mktemp("report-run")
    config = StubConfig(reply=_reply, completion_tokens=_tokens)
    with stub_server(config) as stub:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                "--humaneval",
                f"--humaneval-endpoint={stub.base_url}",
                "--humaneval-model=stub-model",
                f"--humaneval-samples={SAMPLES}",
                "--humaneval-seed=1",
                "--humaneval-min-pass=0.5",
                "--tb=no",
                "-q",
            ],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((where / ".humaneval" / "report.json").read_text())
    yield where / ".humaneval" / "report.html", report


def keep_screenshot(browser: Any, name: str, readme: str | None = None) -> None:
    """Save what the browser shows in the artifacts; with HUMANEVAL_UPDATE_SCREENSHOT=1 also as the
    README's ``docs/<readme>``."""
    path = ARTIFACTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(path))
    if readme and os.environ.get("HUMANEVAL_UPDATE_SCREENSHOT") == "1":
        (REPO_ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(path, REPO_ROOT / "docs" / readme)


def _visible(browser: Any) -> list[dict[str, str]]:
    """The program rows a person can see (not hidden by a filter), top to bottom."""
    return browser.execute_script(
        """return Array.from(document.querySelectorAll('#programs details.prog'))
             .filter(r => r.offsetParent !== null)
             .sort((a, b) => a.offsetTop - b.offsetTop)
             .map(r => ({task: r.querySelector('summary > span').textContent, status: r.dataset.status,
                         dur: r.dataset.dur}));"""
    )


def test_what_a_person_sees_matches_the_json_report(run: tuple[Path, dict[str, Any]]) -> None:
    html, report = run
    from selenium.webdriver.common.by import By

    with chromium() as browser:
        browser.get(html.as_uri())
        assert browser.title == f"HumanEval: {report['model']} on {report['dataset']}"
        for k, v in report["pass_at_k"].items():
            card = browser.find_element(By.ID, f"pass-at-{k}")
            assert card.is_displayed() and f"{v:.4f}" in card.text
        lo, hi = report["pass_at_1_ci95"]
        assert browser.find_element(By.ID, "ci95").text == f"95% CI {lo:.3f}–{hi:.3f}"
        assert browser.find_element(By.ID, "passed").text == f"{report['passed']}/{report['total']}"
        verdict = "PASSED" if report["pass_at_k"]["1"] >= 0.5 else "FAILED"
        assert browser.find_element(By.ID, "verdict").text == verdict
        shown = {
            row.find_element(By.CSS_SELECTOR, "td:first-child").text: int(
                row.find_element(By.CSS_SELECTOR, "td.num").text
            )
            for row in browser.find_elements(By.CSS_SELECTOR, "#status-counts tr:not(:first-child)")
        }
        assert shown == report["status_counts"]
        # Each status has the plots' colour, on its badge and on its programs' status cells.
        for status in shown:
            rgb = tuple(int(STATUS_COLOURS[status][i : i + 2], 16) for i in (1, 3, 5))
            backgrounds = browser.execute_script(
                """const s = arguments[0], bg = e => getComputedStyle(e).backgroundColor;
                   return [bg(document.querySelector('#status-counts .st-' + s)),
                           bg(document.querySelector(`details.prog[data-status="${s}"] > summary > :nth-child(3)`))];""",
                status,
            )
            assert backgrounds == [f"rgb{rgb}"] * 2, status
        for chart in ("status", "pass-at-k", "durations", "latency", "tokens"):
            svg = browser.find_element(By.CSS_SELECTOR, f"#chart-{chart} svg")
            assert svg.is_displayed() and svg.size["height"] > 100, chart
        assert "truncated" in browser.find_element(By.ID, "chart-tokens").text
        rows = _visible(browser)
        assert len(rows) == report["total"] == len(HUMANEVAL) * SAMPLES
        assert {r["task"] for r in rows} == set(HUMANEVAL)
        assert Counter(r["status"] for r in rows) == Counter(report["status_counts"])
        assert browser.find_element(By.ID, "shown").text == f"showing {len(rows):,} of {len(rows):,} programs"
        # Nothing was fetched: the page, and no other resource.
        assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
        browser.set_window_size(1280, 1500)
        keep_screenshot(browser, "report-top.png", readme="report.png")
        full_page_screenshot(browser, ARTIFACTS / "report-full.png")


def test_filter_search_sort_and_open_a_program(run: tuple[Path, dict[str, Any]]) -> None:
    html, report = run
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    failed = [r for r in report["results"] if r["status"] == "failed"]
    assert failed and report["passed"]
    with chromium() as browser:
        browser.get(html.as_uri())
        Select(browser.find_element(By.ID, "status-filter")).select_by_value("failed")
        rows = _visible(browser)
        assert len(rows) == len(failed) and {r["status"] for r in rows} == {"failed"}
        passing = browser.find_elements(By.CSS_SELECTOR, 'details.prog[data-status="passed"]')
        assert passing and not any(p.is_displayed() for p in passing[:20])
        assert browser.current_url.endswith("#status=failed")  # the view can be linked

        Select(browser.find_element(By.ID, "status-filter")).select_by_value("not-passed")
        assert len(_visible(browser)) == report["total"] - report["passed"]

        Select(browser.find_element(By.ID, "status-filter")).select_by_value("all")
        search = browser.find_element(By.ID, "search")
        search.send_keys("has_close_elem")  # an entry point
        assert {r["task"] for r in _visible(browser)} == {"HumanEval/0"}
        search.clear()
        search.send_keys("HumanEval/16")  # a task id (and HumanEval/160..163)
        assert {r["task"] for r in _visible(browser)} == {
            "HumanEval/16",
            *(f"HumanEval/16{i}" for i in range(4)),
        }
        search.clear()
        browser.execute_script("arguments[0].dispatchEvent(new Event('input'))", search)

        browser.find_element(By.ID, "sort-duration").click()
        durations = [float(r["dur"]) for r in _visible(browser)]
        assert len(durations) == report["total"] and durations == sorted(durations, reverse=True)
        browser.find_element(By.ID, "sort-duration").click()
        durations = [float(r["dur"]) for r in _visible(browser)]
        assert durations == sorted(durations)

        # A failing program opens to its reason, prompt, highlighted completion, reasoning and output.
        raising = next(r for r in report["results"] if r.get("exc_type") == "ValueError")
        browser.get(html.as_uri() + f"#status=error&q={raising['task_id']}")
        browser.refresh()
        row = next(
            e
            for e in browser.find_elements(By.CSS_SELECTOR, "details.prog")
            if e.is_displayed() and e.get_attribute("data-task") == raising["task_id"]
        )
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
        row.find_element(By.TAG_NAME, "summary").click()
        assert raising["reason"] in row.find_element(By.TAG_NAME, "summary").text
        body = row.find_element(By.CLASS_NAME, "body")
        code = body.find_element(By.CSS_SELECTOR, "pre.completion")
        assert "raise ValueError('nope')" in code.text and code.find_elements(By.CSS_SELECTOR, "span.k")
        assert "looking at" in body.text  # the program's output
        prompt_fold = body.find_element(By.CSS_SELECTOR, "details.fold.prompt")
        prompt_fold.find_element(By.TAG_NAME, "summary").click()
        entry = HUMANEVAL[raising["task_id"]].entry_point
        assert f"def {entry}" in prompt_fold.text  # the problem's prompt, shown in the row
        reasoning = body.find_elements(By.CSS_SELECTOR, "details.fold")[1]
        assert reasoning.get_attribute("open") is None  # folded
        reasoning.find_element(By.TAG_NAME, "summary").click()
        assert "edge cases" in reasoning.text
        keep_screenshot(browser, "report-open-row.png", readme="report-row.png")


def test_readable_without_javascript(run: tuple[Path, dict[str, Any]]) -> None:
    html, report = run
    from selenium.webdriver.common.by import By

    with chromium(javascript=False) as browser:
        browser.get(html.as_uri())
        assert "no-js" in browser.find_element(By.TAG_NAME, "html").get_attribute("class")
        assert not browser.find_element(By.CLASS_NAME, "controls").is_displayed()
        assert len(_visible(browser)) == report["total"]
        assert browser.find_element(By.ID, "passed").text == f"{report['passed']}/{report['total']}"
        first = browser.find_element(By.CSS_SELECTOR, "details.prog")
        first.find_element(By.TAG_NAME, "summary").click()  # <details> opens without script
        assert "def " in first.find_element(By.CSS_SELECTOR, "pre.completion").text
        link = first.find_element(By.CSS_SELECTOR, ".facts a")
        assert link.get_attribute("href").endswith("#problem-HumanEval/0")
        keep_screenshot(browser, "report-no-js.png")
