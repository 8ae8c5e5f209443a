"""``--think=both``: the report's ``modes`` section, thinking against not thinking in one run.

Controller side, from the report's result entries (each carries its ``mode``) and what generation
recorded per mode (completion tokens per answer, generation wall time). ``comparison`` is think minus
no-think: the difference of pass@1 with a 95% interval over problems (paired), and the exact McNemar
test on the first sample of each problem.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ..reporting.schema import ResultRow
from ..verdict import STATUSES
from .stats import first_samples, paired, wilson_interval


def summarize_modes(
    results: Sequence[ResultRow],
    pass_at_k: Mapping[str, dict[str, float]],
    generation: Mapping[str, Mapping[str, Any]],
    modes: Sequence[str] = ("think", "no-think"),
) -> dict[str, Any]:
    """``{"think": {...}, "no-think": {...}, "comparison": {...}}`` from the report's result entries.
    ``pass_at_k[mode]`` is the mode's pass@k (the report's own estimator); ``generation[mode]`` may hold
    ``tokens`` (a list), ``generation_wall_s`` and ``sampling``."""
    by_mode: dict[str, list[ResultRow]] = defaultdict(list)
    for r in results:
        by_mode[r.get("mode") or ""].append(r)
    out: dict[str, Any] = {}
    for mode in modes:
        rows = by_mode.get(mode, [])
        counts = Counter(r["status"] for r in rows)
        tokens = sorted(generation.get(mode, {}).get("tokens") or [])
        out[mode] = {
            "pass_at_k": pass_at_k.get(mode, {}),
            "passed": sum(bool(r["passed"]) for r in rows),
            "total": len(rows),
            "status_counts": {s: counts[s] for s in STATUSES if counts[s]},
            "tokens": {
                "median": statistics.median(tokens) if tokens else None,
                "p90": tokens[min(len(tokens) - 1, math.ceil(0.9 * len(tokens)) - 1)] if tokens else None,
            },
            "truncated_rate": round(counts["truncated"] / len(rows), 6) if rows else 0.0,
            "generation_wall_s": generation.get(mode, {}).get("generation_wall_s"),
        }
        if generation.get(mode, {}).get("sampling"):
            out[mode]["sampling"] = generation[mode]["sampling"]
    first, second = modes
    out["comparison"] = compare(by_mode.get(first, []), by_mode.get(second, []))
    out["comparison"]["modes"] = [first, second]
    return out


def compare(first: Sequence[ResultRow], second: Sequence[ResultRow]) -> dict[str, Any]:
    """First minus second: pass@1 difference with a paired 95% interval over the problems both have
    (per problem, the difference of the fractions of samples passed), and the exact McNemar p-value on
    the first sample of each problem."""
    rate_a, rate_b = _rates(first), _rates(second)
    common = sorted(set(rate_a) & set(rate_b))
    diffs = [rate_a[t] - rate_b[t] for t in common]
    n = len(diffs)
    delta = sum(diffs) / n if n else 0.0
    half = 1.96 * statistics.stdev(diffs) / math.sqrt(n) if n > 1 else 0.0
    test = paired(first_samples(first), first_samples(second))
    return {
        "pass_at_1_delta": round(delta, 6),
        "delta_ci95": [round(max(-1.0, delta - half), 6), round(min(1.0, delta + half), 6)],
        "mcnemar_p": test["mcnemar_p"],
        "problems": n,
        "only_first_passed": test["only_first"],
        "only_second_passed": test["only_second"],
    }


def _rates(rows: Sequence[ResultRow]) -> dict[str, float]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        counts[r["task_id"]][0] += 1
        counts[r["task_id"]][1] += bool(r["passed"])
    return {t: c / n for t, (n, c) in counts.items()}


def _rows(modes: Mapping[str, Any]) -> list[tuple[str, float, str, str, float]]:
    """Per mode: name, pass@1, passed/total, tokens median/p90 (or n/a), truncated %."""
    rows = []
    for name in (m for m in modes if m != "comparison"):
        m, tok = modes[name], modes[name]["tokens"]
        tokens = f"{tok['median']:,.0f}/{tok['p90']:,.0f}" if tok["median"] is not None else "n/a"
        passed = f"{m['passed']}/{m['total']}"
        rows.append((name, m["pass_at_k"].get("1", 0.0), passed, tokens, 100 * m["truncated_rate"]))
    return rows


def _difference(c: Mapping[str, Any]) -> str:
    first, second = c["modes"]
    return (
        f"{first} - {second}: pass@1 {c['pass_at_1_delta']:+.4f} (95% CI {c['delta_ci95'][0]:+.4f} to "
        f"{c['delta_ci95'][1]:+.4f}), McNemar p = {c['mcnemar_p']:.3g} on first samples"
    )


def format_modes(modes: Mapping[str, Any]) -> list[str]:
    """The terminal table the original scripts kept by hand: mode, pass@1 with its CI, tokens,
    truncated; then the difference with its p-value."""
    header = ("mode", "pass@1", "95% CI", "passed", "tokens med/p90", "truncated")
    lines = ["{:<9} {:>7} {:>13} {:>9} {:>16} {:>9}".format(*header)]
    for name, pass1, passed, tokens, truncated in _rows(modes):
        m = modes[name]
        lo, hi = wilson_interval(m["passed"], m["total"])
        ci = f"{lo:.3f}-{hi:.3f}"
        lines.append(f"{name:<9} {pass1:>7.4f} {ci:>13} {passed:>9} {tokens:>16} {truncated:>8.1f}%")
    c = modes["comparison"]
    verdict = "significant" if c["mcnemar_p"] < 0.05 else "not significant"
    lines.append(f"{_difference(c)} ({verdict} at 0.05)")
    return lines


def markdown_modes(modes: Mapping[str, Any]) -> list[str]:
    """The same table for the GitHub step summary."""
    lines = ["", "| mode | pass@1 | passed | tokens median / p90 | truncated |", "| --- " * 5 + "|"]
    for name, pass1, passed, tokens, truncated in _rows(modes):
        lines.append(f"| {name} | {pass1:.4f} | {passed} | {tokens} | {truncated:.1f}% |")
    return [*lines, "", _difference(modes["comparison"])]
