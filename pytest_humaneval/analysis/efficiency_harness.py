"""The inside half of ``--humaneval-efficiency``: appended to a problem's test and run in the sandbox.

Stdlib only and self-contained, like the runner: :mod:`.efficiency` appends this file's source (with
``_HE_PARAMS`` filled in) after the problem's test, so the runner's usual ``check(entry_point)`` call
runs :func:`_he_efficiency_check` instead, in the same process that has just defined the candidate. It
defines the canonical solution beside it (its own globals), then times the problem's ``check()`` on
each, interleaved (the order alternates each round), as CPU time of this process. A measurement repeats
``check()`` until the slower of the two takes about ``target_s`` of CPU, so even microsecond tests give
a stable number. Rounds go on until the median ratio's 95% interval is within ``rel_width`` of it, at
least ``min_runs`` and at most ``max_runs`` rounds, and no longer than ``budget_s`` past the minimum.
The raw times are printed on the last line of stdout, after ``MARKER``; program output during the
timing goes nowhere, so it cannot crowd that line out of the capped output.

The host (:mod:`.efficiency`) imports the statistics below from here, so both sides compute the same.
"""

import math

MARKER = "\x1ehumaneval-efficiency "
# replaced by the host: canonical, entry_point, min_runs, max_runs, target_s, ...
_HE_PARAMS = {}  # type: dict[str, object]


def _he_binomial_cdf(k, n):
    """P(X <= k) for X ~ Binomial(n, 1/2)."""
    return sum(math.comb(n, i) for i in range(k + 1)) / 2**n


def _he_median_ci(values):
    # type: (list[float]) -> tuple[float, tuple[float, float]]
    """The median of ``values`` and a distribution-free 95% interval for it (order statistics: the
    narrowest symmetric pair of ranks that covers the median with probability >= 0.95; the whole
    range below six values, which covers it with 1 - 2**(1-n))."""
    xs = sorted(values)
    n = len(xs)
    mid = n // 2
    median = xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2
    low = 0  # ranks low and n-1-low (from 0) cover the median with probability 1 - 2 * cdf(low)
    while low + 1 < n - 2 - low and 1 - 2 * _he_binomial_cdf(low + 1, n) >= 0.95:
        low += 1
    return median, (xs[low], xs[n - 1 - low])


def _he_efficiency_check(candidate, _check=None, _params=_HE_PARAMS):
    import os
    import sys
    import time

    _check = _check or _he_original_check
    clock = time.thread_time  # precise; the process clock ticks at HZ once RLIMIT_CPU is set
    namespace = {}
    exec(compile(_params["canonical"], "<canonical>", "exec"), namespace)
    reference = namespace[_params["entry_point"]]
    saved = sys.stdout, sys.stderr
    sink = open(os.devnull, "w")
    sys.stdout = sys.stderr = sink
    out = {"metric": "cpu_time", "candidate": [], "reference": []}
    try:

        def once(fn, loops):
            start = clock()
            for _ in range(loops):
                _check(fn)
            return clock() - start

        once(candidate, 1)  # warm-up: first calls fill caches and import what they need
        try:
            once(reference, 1)
        except BaseException as e:
            out["error"] = f"the canonical solution fails its check(): {type(e).__name__}: {e}"[:300]
            return
        slower = max(once(candidate, 1), once(reference, 1), 1e-7)
        loops = max(1, min(1_000_000, math.ceil(_params["target_s"] / slower)))
        out["loops"] = loops
        started = time.monotonic()
        spent_after_min = None
        for round_ in range(_params["max_runs"]):
            pair = (candidate, reference) if round_ % 2 == 0 else (reference, candidate)
            for fn in pair:
                t = once(fn, loops)
                out["candidate" if fn is candidate else "reference"].append(t / loops)
            n = round_ + 1
            if n < _params["min_runs"]:
                continue
            if spent_after_min is None:
                spent_after_min = time.monotonic()
            cand, ref = out["candidate"], out["reference"]
            ratios = [cand[i] / max(ref[i], 1e-12) for i in range(n)]
            median, (lo, hi) = _he_median_ci(ratios)
            if median > 0 and (hi - lo) / median <= _params["rel_width"]:
                break
            if time.monotonic() - spent_after_min > _params["budget_s"]:
                break
        out["wall_s"] = round(time.monotonic() - started, 4)
    finally:
        sys.stdout, sys.stderr = saved
        sink.close()
        for stream in saved:
            try:
                stream.flush()
            except BaseException:
                pass
        import json

        os.write(1, ("\n" + MARKER + json.dumps(out) + "\n").encode())


try:
    # the problem's test defined it just above (mypy sees this file alone, where check comes below)
    _he_original_check = check  # type: ignore[has-type,used-before-def]
except NameError:
    pass
else:
    check = _he_efficiency_check
