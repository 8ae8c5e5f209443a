"""The HTML report's plots, drawn by pygal as SVG and inlined: no script, font or file is fetched.

pygal's SVG normally loads its tooltip script from a CDN; ``js=[]`` leaves it out, so each chart is
plain SVG with its own scoped style, and readable with JavaScript off.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence

import pygal
from pygal.style import Style

from ...verdict import STATUSES
from ..report import pass_at_k

STATUS_COLOURS = {
    "passed": "#2e7d32",
    "failed": "#c62828",
    "error": "#ef6c00",
    "timeout": "#6a1b9a",
    "crashed": "#5d4037",
    "syntax_error": "#ad1457",
    "no_code": "#757575",
    "truncated": "#f9a825",
    "generation_error": "#37474f",
}
OTHER_COLOUR = "#546e7a"
#: Statuses whose colour is light: a badge writes them in dark text.
DARK_TEXT = frozenset({"truncated"})
#: Duration bins (seconds): programs run from a millisecond to their time limit.
DURATION_EDGES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
BINS = 20


def _style(colours: Sequence[str]) -> Style:
    return Style(
        background="transparent",
        plot_background="transparent",
        font_family="system-ui, sans-serif",
        label_font_size=11,
        major_label_font_size=11,
        value_font_size=11,
        legend_font_size=12,
        title_font_size=14,
        colors=tuple(colours),
    )


def _config(colours: Sequence[str], **kwargs: object) -> dict[str, object]:
    return {
        "style": _style(colours),
        "js": [],  # no tooltip script from the network
        "disable_xml_declaration": True,
        "explicit_size": False,
        "width": 560,
        "height": 300,
        "margin": 8,
        **kwargs,
    }


def _svg(chart: pygal.graph.graph.Graph) -> str:
    return str(chart.render(is_unicode=True))


def _count_ticks(top: int) -> list[int]:
    """Whole-number ticks from 0 to past ``top`` (pygal would label counts 0.2, 0.4, ...)."""
    step = next(m * 10**d for d in range(12) for m in (1, 2, 5) if top <= 8 * m * 10**d)
    return list(range(0, top + step, step)) if top else [0, 1]


def status_chart(status_counts: dict[str, int]) -> str:
    statuses = [s for s in STATUSES if status_counts.get(s)]
    statuses += [s for s in status_counts if s not in STATUSES and status_counts[s]]
    return bars_chart({s: status_counts[s] for s in statuses}, "programs by status", STATUS_COLOURS)


def bars_chart(counts: dict[str, int], title: str, colours: dict[str, str] | None = None) -> str:
    """A horizontal bar per category, in the given order, its count printed on it."""
    chart = pygal.HorizontalBar(
        **_config(
            [OTHER_COLOUR],
            title=title,
            show_legend=False,
            print_values=True,
            height=60 + 32 * len(counts),
            y_labels=_count_ticks(max(counts.values(), default=0)),
        )
    )
    chart.x_labels = list(counts)
    chart.add(title, [{"value": n, "color": (colours or {}).get(k, OTHER_COLOUR)} for k, n in counts.items()])
    return _svg(chart)


def pass_at_k_curve(per_task: dict[str, tuple[int, int]]) -> tuple[list[int], list[float]]:
    """pass@k for k = 1, 2, 3, 5, 10, 20, 50, ... up to the smallest n of the tasks, and n itself."""
    if not per_task:
        return [], []
    n_min = min(n for n, _ in per_task.values())
    steps = {m * 10**d for d in range(7) for m in (1, 2, 3, 5)}
    ks = sorted({k for k in steps if k <= n_min} | {n_min})
    values = [sum(pass_at_k(n, c, k) for n, c in per_task.values()) / len(per_task) for k in ks]
    return ks, values


def pass_at_k_chart(ks: list[int], values: list[float]) -> str:
    chart = pygal.Line(
        **_config(
            [STATUS_COLOURS["passed"]],
            title="pass@k over k",
            show_legend=False,
            print_values=True,
            value_formatter=lambda v: f"{v:.3f}",
            range=(0, 1),
            x_title="k (samples per problem)",
            dots_size=4,
        )
    )
    chart.x_labels = [str(k) for k in ks]
    chart.add("pass@k", values)
    return _svg(chart)


def _duration_label(lo: float, hi: float) -> str:
    def fmt(s: float) -> str:
        return f"{s * 1000:g} ms" if s < 1 else f"{s:g} s"

    return f"< {fmt(hi)}" if lo == 0 else f"≥ {fmt(lo)}" if math.isinf(hi) else f"{fmt(lo)}–{fmt(hi)}"


def duration_chart(durations: Sequence[tuple[float, str]]) -> str:
    """Programs by duration (log bins, from the first one used), stacked by passed / failed / timeout."""
    edges = [*DURATION_EDGES, math.inf]
    series = {name: [0] * (len(edges) - 1) for name in ("passed", "failed", "timeout")}
    for d, status in durations:
        i = min(len(edges) - 2, max(0, bisect.bisect_right(edges, d) - 1))
        series[status if status in ("passed", "timeout") else "failed"][i] += 1
    totals = [sum(col) for col in zip(*series.values(), strict=True)]
    used = [i for i, n in enumerate(totals) if n]
    first, last = (used[0], used[-1]) if used else (0, 0)
    chart = pygal.StackedBar(
        **_config(
            [STATUS_COLOURS[name] for name in series],
            title="program durations",
            x_title="seconds",
            x_label_rotation=30,
            y_labels=_count_ticks(max(totals)),
        )
    )
    chart.x_labels = [_duration_label(edges[i], edges[i + 1]) for i in range(first, last + 1)]
    for name, counts in series.items():
        chart.add(name, counts[first : last + 1])
    return _svg(chart)


def _bins(values: Sequence[float], count: int = BINS) -> list[float]:
    """``count`` equal bins from 0 to a round number above the largest value."""
    top = max(values, default=0.0) or 1.0
    step = 10 ** math.floor(math.log10(top / count))
    for mult in (1, 2, 2.5, 5, 10):
        if step * mult * count >= top:
            step *= mult
            break
    return [step * i for i in range(count + 1)]


def distribution_chart(samples: Sequence[tuple[float, bool]], title: str, unit: str) -> str:
    """A histogram of ``(value, truncated)`` with truncated samples as their own, marked series."""
    edges = _bins([v for v, _ in samples])
    complete, cut = [0] * (len(edges) - 1), [0] * (len(edges) - 1)
    width = edges[1] - edges[0]
    for v, truncated in samples:
        i = min(len(edges) - 2, int(v // width))
        (cut if truncated else complete)[i] += 1

    def fmt(x: float) -> str:
        return f"{x:,.0f}" if width >= 1 else f"{x:g}"

    chart = pygal.StackedBar(
        **_config(
            [STATUS_COLOURS["passed"], STATUS_COLOURS["truncated"]],
            title=title,
            x_title=unit,
            x_label_rotation=30,
            show_minor_x_labels=False,
        )
    )
    chart.x_labels = [f"{fmt(lo)}–{fmt(hi)}" for lo, hi in itertools.pairwise(edges)]
    chart.x_labels_major = chart.x_labels[::2]
    chart.y_labels = _count_ticks(max((a + b for a, b in zip(complete, cut, strict=True)), default=0))
    chart.add("complete", complete)
    chart.add(f"hit max_tokens ({sum(cut)})", cut)
    return _svg(chart)
