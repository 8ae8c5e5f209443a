"""Controller side: the HTML report, one self-contained page per run, written at the end of the run.

It holds the run's summary (pass@k with its interval, statuses, wall times, the gates and their verdict),
its provenance, plots (pygal, inline SVG), the baseline's changes, the sections other analyses add to
the JSON report (``modes``, ``efficiency``, ``diagnosis_counts``) when they are there, and every program:
its verdict, completion (highlighted by Pygments), reasoning and output. Styles and script are inlined;
the page fetches nothing, and reads without JavaScript (which adds filtering, search and sorting).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ...datasets.dataset import Dataset
from ...files import write_atomically
from ...safe_text import printable
from ...verdict import STATUSES, Result
from ..report import per_task
from ..schema import Efficiency, Report, ResultRow
from . import charts
from .highlight import css as code_css
from .highlight import highlight
from .programs import Key, Program, ProgramOutputs

TEMPLATES = Path(__file__).parent / "templates"
#: Characters of reasoning a report holds in all; each program gets its share, between these bounds
#: (a thinking run of 16,400 samples would otherwise put hundreds of MB in one page).
REASONING_BUDGET = 8_000_000
REASONING_PER_PROGRAM = (2_000, 64_000)


@functools.lru_cache(maxsize=1)
def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        trim_blocks=False,
        lstrip_blocks=False,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template("report.html.j2")


def write_html_report(
    path: Path,
    report: Report,
    dataset: Dataset,
    programs: dict[Key, Program],
    outputs: ProgramOutputs,
    gates: Sequence[tuple[str, bool]],
    unreadable: str | None,
    source: str,
) -> tuple[bool, str]:
    """Render the run's report and write it atomically (a reader never sees half a page). Returns whether
    it was written and the terminal's line about it: its path, size and time, or why it could not be
    written (a full disk, an unwritable path), rather than fail the run at its very end.

    ``source`` is where the completions came from ('canonical' or the file), ``unreadable`` why that
    file could not be read back.
    """
    started = time.perf_counter()
    notes = [f"completions not shown: {unreadable}"] if unreadable else []
    completions = None if source == "canonical" else source
    page = render_html(report, dataset, programs, outputs, gates, notes, completions_path=completions)
    # What programs and models wrote, inert: lone surrogates and control characters shown as escapes.
    page = printable(page)
    try:
        write_atomically(path, page)
    except OSError as e:
        return False, f"HTML report not written: {path}: {e.strerror or e}; check --humaneval-html"
    size = len(page.encode()) / 1e6
    return True, f"HTML report: {path} ({size:.1f} MB, {time.perf_counter() - started:.1f} s)"


def render_html(
    report: Report,
    dataset: Dataset,
    programs: dict[Key, Program] | None = None,
    outputs: ProgramOutputs | None = None,
    gates: Sequence[tuple[str, bool]] = (),
    notes: Sequence[str] = (),
    *,
    completions_path: str | None = None,
) -> str:
    """The page for ``report`` (the JSON report)."""
    programs = programs or {}
    results = report["results"]
    status_counts = dict(report.get("status_counts") or {})
    context = {
        "plugin_version": report.get("plugin_version", ""),
        "model": report.get("model") or "?",
        "dataset": report.get("dataset") or "?",
        "created": report.get("created"),
        "problems": report.get("problems", 0),
        "samples": report.get("samples_per_problem", 0),
        "total": report.get("total", len(results)),
        "passed": report.get("passed", 0),
        "pass_at_k": list((report.get("pass_at_k") or {}).items()),
        "ci95": report.get("pass_at_1_ci95"),
        "walls": _walls(report),
        "verdict": _verdict(gates, report),
        "gates": list(gates),
        "notes": list(notes),
        "charts": _charts(report, results),
        "status_counts": _ordered(status_counts),
        "baseline": report.get("baseline"),
        "modes": _modes(report.get("modes")),
        "efficiency": _efficiency(report.get("efficiency")),
        "diagnosis_counts": sorted((report.get("diagnosis_counts") or {}).items(), key=lambda kv: -kv[1]),
        "provenance": report.get("provenance") or {},
        "mode_names": sorted({r["mode"] for r in results if r.get("mode")}),
        "rows": _rows(results, dataset, programs, outputs, completions_path),
        "prompts": [
            {"task_id": p.task_id, "entry_point": p.entry_point, "html": highlight(p.prompt)} for p in dataset
        ],
        "css": (TEMPLATES / "report.css").read_text(encoding="utf-8") + _status_css(),
        "code_css": code_css(".code"),
        "js": (TEMPLATES / "report.js").read_text(encoding="utf-8"),
    }
    return str(_template().render(**context))


def _status_css() -> str:
    """Each status's colour (the plots' own) on its badges: ``.st-STATUS`` and a row's status cell."""
    return "".join(
        f'.st-{s}, details[data-status="{s}"] > summary > :nth-child(3) '
        f"{{ background: {colour};{' color: #222;' if s in charts.DARK_TEXT else ''} }}\n"
        for s, colour in charts.STATUS_COLOURS.items()
    )


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    known = [(s, counts[s]) for s in STATUSES if counts.get(s)]
    return known + [(s, n) for s, n in counts.items() if s not in STATUSES and n]


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min"


def _walls(report: Report) -> list[dict[str, str]]:
    gen = report.get("generation") or {}
    wall = report.get("wall_s")
    out = []
    if gen.get("startup_s") is not None:
        server = gen.get("server") or {}
        what = "server start-up" if server else "model load"
        out.append(
            {
                "label": what,
                "value": _seconds(gen["startup_s"]),
                "note": "a running server, reused" if server.get("reused") else "not part of generation",
            }
        )
    if gen.get("wall_s") is not None:
        note = f"{gen.get('cached', 0)} cached, {gen.get('requested', 0)} requested"
        if gen.get("tokens_per_s"):
            note += f", {gen['tokens_per_s']:,.0f} tok/s"
        generation = gen.get("generation_wall_s") or 0.0
        out.append({"label": "generation wall", "value": _seconds(generation), "note": note})
    if wall is not None:
        evaluation = wall - (gen.get("wall_s") or 0.0)
        out.append(
            {"label": "evaluation wall", "value": _seconds(evaluation), "note": f"run {_seconds(wall)}"}
        )
    return out


def _verdict(gates: Sequence[tuple[str, bool]], report: Report) -> dict[str, str]:
    if not gates:
        failing = report.get("total", 0) - report.get("passed", 0)
        return {
            "text": "no gate",
            "css": "none",
            "note": f"exit status follows the {failing} failing program(s)",
        }
    ok = all(passed for _, passed in gates)
    return {
        "text": "PASSED" if ok else "FAILED",
        "css": "ok" if ok else "bad",
        "note": f"{len(gates)} gate(s)",
    }


def _charts(report: Report, results: list[ResultRow]) -> list[dict[str, str]]:
    out = [{"id": "status", "svg": charts.status_chart(report.get("status_counts") or {}), "caption": ""}]
    tasks = per_task(Result(r["task_id"], r["sample"], r["status"]) for r in results)
    ks, values = charts.pass_at_k_curve(tasks)
    if ks:
        caption = (
            "" if len(ks) > 1 else "one sample per problem: pass@1 only (--humaneval-samples=N for the curve)"
        )
        out.append({"id": "pass-at-k", "svg": charts.pass_at_k_chart(ks, values), "caption": caption})
    ran = [(r["duration_s"], r["status"]) for r in results if r.get("duration_s")]
    if ran:
        out.append(
            {"id": "durations", "svg": charts.duration_chart(ran), "caption": f"{len(ran)} programs that ran"}
        )
    generated = [
        r for r in results if r.get("latency_s") is not None or r.get("completion_tokens") is not None
    ]
    if generated:

        def truncated(r: ResultRow) -> bool:
            return r.get("finish_reason") == "length" or r["status"] == "truncated"

        latency = [(r["latency_s"], truncated(r)) for r in generated if r.get("latency_s") is not None]
        tokens = [
            (r["completion_tokens"], truncated(r))
            for r in generated
            if r.get("completion_tokens") is not None
        ]
        unusable = sum(r["status"] == "truncated" for r in generated)
        if latency:
            svg = charts.distribution_chart(latency, "request latency", "seconds")
            out.append({"id": "latency", "svg": svg, "caption": _spread(latency, "s", unusable)})
        if tokens:
            svg = charts.distribution_chart(tokens, "completion tokens", "tokens")
            out.append({"id": "tokens", "svg": svg, "caption": _spread(tokens, "tokens", unusable)})
    diagnosis = report.get("diagnosis_counts")
    if diagnosis:
        out.append(
            {
                "id": "diagnosis",
                "svg": charts.bars_chart(
                    dict(sorted(diagnosis.items(), key=lambda kv: -kv[1])), "failures by diagnosis"
                ),
                "caption": "",
            }
        )
    return out


def _spread(samples: Sequence[tuple[float, bool]], unit: str, unusable: int) -> str:
    """Median, p90, max, and how many answers hit max_tokens: of those, ``unusable`` gave no code to run
    (status ``truncated``); the others were cut but their code was extracted and run."""
    values = sorted(v for v, _ in samples)
    cut = sum(t for _, t in samples)

    def q(p: float) -> float:
        return values[min(len(values) - 1, math.ceil(p * len(values)) - 1)]

    return (
        f"median {q(0.5):,.4g} {unit}, p90 {q(0.9):,.4g} {unit}, max {values[-1]:,.4g} {unit}; "
        f"{cut} of {len(values)} hit max_tokens: {unusable} without usable code (status truncated), "
        f"{cut - unusable} cut after their code, which ran"
    )


def _modes(modes: dict[str, Any] | None) -> dict[str, Any] | None:
    """``modes`` (think against no-think) as table rows: one column per mode, one row per metric."""
    if not modes:
        return None
    columns = [(name, m) for name, m in modes.items() if name != "comparison" and isinstance(m, dict)]
    rows: list[tuple[str, list[str]]] = []
    ks = sorted({k for _, m in columns for k in m.get("pass_at_k") or {}}, key=int)
    for k in ks:
        rows.append((f"pass@{k}", [_num((m.get("pass_at_k") or {}).get(k)) for _, m in columns]))
    rows.append(("passed", [f"{m.get('passed', '?')}/{m.get('total', '?')}" for _, m in columns]))
    statuses = [s for s in STATUSES if any((m.get("status_counts") or {}).get(s) for _, m in columns)]
    for s in statuses:
        rows.append((s, [str((m.get("status_counts") or {}).get(s, 0)) for _, m in columns]))
    tokens = [m.get("tokens") or {} for _, m in columns]
    for stat in sorted({k for t in tokens for k in t}):
        rows.append((f"completion tokens, {stat}", [_num(t.get(stat), 0) for t in tokens]))
    if any("truncated_rate" in m for _, m in columns):
        rows.append(("truncated", [_pct(m.get("truncated_rate")) for _, m in columns]))
    if any("generation_wall_s" in m for _, m in columns):
        rows.append(("generation wall", [_wall(m.get("generation_wall_s")) for _, m in columns]))
    return {"columns": columns, "rows": rows, "comparison": modes.get("comparison")}


def _num(v: Any, digits: int = 4) -> str:
    return f"{v:,.{digits}f}" if isinstance(v, (int, float)) else "–"


def _pct(v: Any) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, (int, float)) else "–"


def _wall(v: Any) -> str:
    return _seconds(v) if isinstance(v, (int, float)) else "–"


def _efficiency(eff: Efficiency | None) -> dict[str, Any] | None:
    if not eff:
        return None
    problems = eff.get("problems")
    return {
        "geomean_ratio": eff.get("geomean_ratio"),
        "problems": len(problems) if isinstance(problems, (list, dict)) else problems,
        "slower_2x": list(eff.get("slower_2x") or []),
        "faster_2x": list(eff.get("faster_2x") or []),
    }


def reasoning_limit(programs_with_reasoning: int) -> int:
    """Characters of reasoning shown per program: the budget shared, within bounds."""
    low, high = REASONING_PER_PROGRAM
    return max(low, min(high, REASONING_BUDGET // max(1, programs_with_reasoning)))


def _clip(text: str, limit: int, where: str) -> str:
    """``text`` with its middle left out beyond ``limit`` characters."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return (
        f"{text[:half]}\n\n[… {len(text) - 2 * half:,} characters left out here; {where} …]\n\n{text[-half:]}"
    )


def _rows(
    results: list[ResultRow],
    dataset: Dataset,
    programs: dict[Key, Program],
    outputs: ProgramOutputs | None,
    completions_path: str | None,
) -> Iterable[dict[str, Any]]:
    limit = reasoning_limit(sum(1 for p in programs.values() if p.reasoning))
    where = f"the whole text is in {completions_path}" if completions_path else "see the completions file"
    multi = any(r["sample"] for r in results)
    for r in results:
        key = (r["task_id"], r["sample"], r.get("mode"))
        problem = dataset.problems.get(r["task_id"])
        program = programs.get(key)
        completion = program.completion if program else None
        facts = []
        if r.get("exc_type"):
            facts.append(r["exc_type"])
        if r.get("known_defect"):
            facts.append(f"known dataset defect: {r['known_defect']}")
        if r.get("latency_s") is not None:
            facts.append(f"latency {r['latency_s']:.2f} s")
        if r.get("completion_tokens") is not None:
            facts.append(f"{r['completion_tokens']:,} completion tokens")
        if r.get("finish_reason"):
            facts.append(f"finish reason {r['finish_reason']}")
        if r.get("efficiency_ratio") is not None:
            ci = r.get("efficiency_ci95")
            ci_text = f" (95% CI {ci[0]:.2f}–{ci[1]:.2f})" if isinstance(ci, list) and len(ci) == 2 else ""
            facts.append(f"{r['efficiency_ratio']:.2f}× the canonical solution's time{ci_text}")
        reasoning = program.reasoning if program else ""
        yield {
            "task_id": r["task_id"],
            "label": f"s{r['sample']}" if multi else str(r["sample"]),
            "mode": r.get("mode"),
            "entry_point": problem.entry_point if problem else "",
            "status": r["status"],
            "duration_s": r.get("duration_s", 0.0),
            "reason": r.get("reason", ""),
            "facts": facts,
            "completion": None if completion is None else highlight(completion),
            "full_program": bool(program and program.full_program),
            "reasoning": _clip(reasoning, limit, where),
            "reasoning_chars": f"{len(reasoning):,}",
            "output": outputs.output(key, completion or "") if outputs else "",
            "diagnosis": r.get("diagnosis"),
        }
