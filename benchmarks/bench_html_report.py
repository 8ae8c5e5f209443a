"""The HTML report of a large run, in a real browser: its size, the time to write it, to open it, and to
filter, search and sort its table.

    python benchmarks/bench_html_report.py [--inputs=samples_164x100] [--repeat=3] [-n N]

Makes the inputs (``make_samples.py``), runs ``pytest --humaneval --humaneval-completions=FILE`` on them
(16,400 programs by default; the run writes ``report.html`` as every run does), then opens the page in
Debian's headless Chromium (``chromium`` + ``chromedriver``, through Selenium) ``--repeat`` times and
prints the medians:

- open: from navigation start to the load event (the page parsed, styled, laid out, its script run),
  and to the first contentful paint;
- filter: choosing ``failed`` in the status filter until the next frame is painted;
- search: typing a task id in the search box, likewise (the table is filtered once typing pauses for
  150 ms; the pause is counted); sort: sorting by duration, likewise.

Each is given as wall time and as the CPU time the browser's processes spent on it: on a shared, loaded
machine the wall time mostly measures the wait for a core; the CPU time is what the page costs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

#: Runs ``action`` (JavaScript, with ``document`` ready) and answers the milliseconds until the frame
#: after it has been painted (two animation frames: the first runs before that frame's paint).
TIMED = """
const done = arguments[arguments.length - 1];
const t0 = performance.now();
%s
document.body.offsetHeight;  // style and layout now
requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
"""
#: The same for an action that filters the table: until the table says how many rows it shows (the
#: search box filters once typing pauses for 150 ms; that pause is counted) and the frame after is painted.
FILTERED = """
const done = arguments[arguments.length - 1];
const t0 = performance.now();
new MutationObserver((_, observer) => {
  observer.disconnect();
  document.body.offsetHeight;
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
}).observe(document.getElementById("programs"), {attributes: true, attributeFilter: ["data-shown"]});
%s
"""
ACTIONS = {
    "filter to failed": "const s = document.getElementById('status-filter'); s.value = 'failed';"
    " s.dispatchEvent(new Event('change'));",
    "back to all": "const s = document.getElementById('status-filter'); s.value = 'all';"
    " s.dispatchEvent(new Event('change'));",
    "search a task id": "const q = document.getElementById('search'); q.value = 'HumanEval/129';"
    " q.dispatchEvent(new Event('input'));",
    "clear the search": "const q = document.getElementById('search'); q.value = '';"
    " q.dispatchEvent(new Event('input'));",
    "sort by duration": "document.getElementById('sort-duration').click();",
}


def run_plugin(samples: Path, where: Path, workers: int) -> tuple[float, str]:
    """Run the plugin on ``samples``; its wall time and the terminal's line about the HTML report."""
    args = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", "--humaneval"]
    args += [f"--humaneval-completions={samples}", "--tb=no", "-q"]
    if workers > 1:
        args += ["-n", str(workers)]
    started = time.perf_counter()
    done = subprocess.run(args, cwd=where, capture_output=True, text=True)
    wall = time.perf_counter() - started
    line = next((x for x in done.stdout.splitlines() if x.startswith("HTML report")), "")
    if not line:
        raise SystemExit(f"the run wrote no HTML report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return wall, line


def browser_cpu(browser: Any) -> dict[int, float]:
    """CPU seconds (user + system) so far of each process of the browser (chromedriver's children)."""
    import psutil

    out = {}
    for p in psutil.Process(browser.service.process.pid).children(recursive=True):
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        out[p.pid] = t.user + t.system
    return out


def cpu_since(browser: Any, before: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in browser_cpu(browser).items()) * 1000


def measure(page: Path, repeat: int) -> dict[str, list[tuple[float, float]]]:
    """(wall ms, CPU ms) of each step, ``repeat`` times."""
    from browser_support import chromium

    times: dict[str, list[tuple[float, float]]] = {"open (load event)": [], "first contentful paint": []}
    times.update({name: [] for name in ACTIONS})
    with chromium(height=1000) as browser:
        browser.set_script_timeout(300)
        browser.set_page_load_timeout(300)
        for _ in range(repeat):
            browser.get("about:blank")
            before = browser_cpu(browser)
            browser.get(page.as_uri())
            cpu = cpu_since(browser, before)
            nav: dict[str, Any] = browser.execute_script(
                "return performance.getEntriesByType('navigation')[0].toJSON()"
            )
            times["open (load event)"].append((nav["loadEventEnd"], cpu))
            fcp = browser.execute_script(
                "const e = performance.getEntriesByName('first-contentful-paint')[0]; return e && e.startTime"
            )
            times["first contentful paint"].append((fcp or float("nan"), float("nan")))
            total = browser.execute_script("return document.querySelectorAll('details.prog').length")
            for name, action in ACTIONS.items():
                before = browser_cpu(browser)
                script = TIMED if name.startswith("sort") else FILTERED
                wall = browser.execute_async_script(script % action)
                times[name].append((wall, cpu_since(browser, before)))
            shown = browser.execute_script("return document.getElementById('shown').textContent")
        print(f"  rows in the page: {total:,}; after the last action: {shown}")
    return times


def show(times: dict[str, list[tuple[float, float]]], repeat: int) -> None:
    print(f"  median of {repeat}:{'wall':>22}{'browser CPU':>14}")
    for name, values in times.items():
        wall = statistics.median(w for w, _ in values) / 1000
        cpu = statistics.median(c for _, c in values) / 1000
        print(f"  {name:26} {wall:8.2f} s {cpu:10.2f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", default="samples_164x100", help="a file made by make_samples.py")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("-n", type=int, default=1, help="pytest-xdist workers for the run")
    parser.add_argument("--keep", type=Path, help="copy the report here")
    parser.add_argument("--page", type=Path, help="measure this report.html instead of making a run")
    args = parser.parse_args(argv)
    if args.page:
        print(f"{args.page}: {args.page.stat().st_size / 1e6:.1f} MB")
        show(measure(args.page, args.repeat), args.repeat)
        return
    with tempfile.TemporaryDirectory(prefix="bench-html-") as tmp:
        where = Path(tmp)
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "make_samples.py"), str(where / "inputs")],
            check=True,
            capture_output=True,
        )
        samples = where / "inputs" / f"{args.inputs}.jsonl"
        wall, line = run_plugin(samples, where, args.n)
        page = where / ".humaneval" / "report.html"
        report = json.loads((where / ".humaneval" / "report.json").read_text())
        print(f"{args.inputs}: {report['total']:,} programs, {report['total'] - report['passed']:,} failing")
        print(f"  run wall {wall:.1f} s (-n {args.n}); {line}")
        print(f"  page size {page.stat().st_size / 1e6:.1f} MB")
        show(measure(page, args.repeat), args.repeat)
        if args.keep:
            args.keep.write_bytes(page.read_bytes())


if __name__ == "__main__":
    main()
