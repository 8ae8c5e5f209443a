"""Statistics of the report: the interval of a pass rate (:func:`wilson_interval`), and paired comparisons
of two runs over the same problems: thinking against not, or a run against its baseline (pure functions
over ``{task_id: passed}`` maps, the first sample of each problem)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (robust near 0 and 1, unlike the normal one)."""
    if total == 0:
        return (0.0, 0.0)
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar test: the problems only one side solved are ``b`` and ``c``; under the
    null hypothesis each is a fair coin flip, so p = 2 * P(Binomial(b + c, 1/2) <= min(b, c)), at most 1."""
    n = b + c
    if n == 0:
        return 1.0
    tail: float = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n  # int / int: exact at any n
    return min(1.0, 2 * tail)


class Paired(TypedDict):
    """:func:`paired`'s result."""

    compared: int
    only_first: int
    only_second: int
    delta: float
    delta_ci95: list[float]
    mcnemar_p: float


def paired(first: Mapping[str, bool], second: Mapping[str, bool]) -> Paired:
    """Compare two runs on the problems both have: the difference of their pass rates (first minus
    second) with a 95% interval for paired proportions (Wald, on the per-problem differences), and the
    exact McNemar p-value."""
    common = sorted(set(first) & set(second))
    n = len(common)
    b = sum(1 for t in common if first[t] and not second[t])
    c = sum(1 for t in common if second[t] and not first[t])
    if n == 0:
        return {
            "compared": 0,
            "only_first": 0,
            "only_second": 0,
            "delta": 0.0,
            "delta_ci95": [0.0, 0.0],
            "mcnemar_p": 1.0,
        }
    delta = (b - c) / n
    # variance of the mean of per-problem differences d in {-1, 0, 1}
    var = ((b + c) / n - delta * delta) / n
    half = 1.96 * math.sqrt(max(var, 0.0))
    return {
        "compared": n,
        "only_first": b,
        "only_second": c,
        "delta": round(delta, 6),
        "delta_ci95": [round(max(-1.0, delta - half), 6), round(min(1.0, delta + half), 6)],
        "mcnemar_p": round(mcnemar_exact(b, c), 6),
    }


def first_samples(results: Iterable[Mapping[str, Any]]) -> dict[str, bool]:
    """``{task_id: passed}`` for the first sample (index 0) of each problem in a report's results."""
    return {r["task_id"]: bool(r["passed"]) for r in results if r.get("sample", 0) == 0}
