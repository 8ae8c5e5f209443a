"""Python API for notebooks and scripts: the plugin's own code, callable without pytest.

from pytest_humaneval.api import evaluate
report = evaluate("samples.jsonl", dataset="humaneval")
report["pass_at_k"]  # {"1": 0.42, ...}
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import __version__
from .completions import canonical, parse_completions, pick, read_completions, samples_per_problem
from .dataset import Dataset, load_dataset
from .evaluation import judge, preload_for
from .report import pass_at_k, pass_at_ks, summarize
from .sandbox import Limits, Sandbox, describe_isolation, make_sandbox
from .verdict import Result

__all__ = ["evaluate", "load_dataset", "pass_at_k", "pass_at_ks", "read_completions"]


def evaluate(
    completions: str | Path | Iterable[dict[str, Any]],
    dataset: str | Dataset = "humaneval",
    *,
    sandbox: str = "subprocess",
    timeout: float | None = None,
    memory_mb: int = 2048,
    workers: int | None = None,
) -> dict[str, Any]:
    """Evaluate completions and return the same report the plugin writes as JSON.

    ``completions`` is a completions file, ``"canonical"``, or an iterable of dicts with ``task_id``
    and ``completion``. ``workers`` sandboxes run side by side (default: one per CPU core).
    """
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset)
    if completions == "canonical":
        samples = canonical(ds)
    elif isinstance(completions, (str, Path)):
        samples = read_completions(Path(completions), ds)
    else:
        samples = parse_completions(enumerate(completions, 1), "completions", ds)
    n = samples_per_problem(samples)
    limit = timeout if timeout is not None else (20.0 if "plus" in ds.name else 3.0)
    jobs = [(p, i) for p in ds for i in range(n)]
    local = threading.local()
    opened: list[Sandbox] = []
    lock = threading.Lock()

    def run(job: tuple[Any, int]) -> Result:
        problem, index = job
        if not hasattr(local, "sandbox"):
            local.sandbox = make_sandbox(sandbox, Limits(memory_mb=memory_mb), preload=preload_for(ds))
            with lock:
                opened.append(local.sandbox)
        return judge(ds, problem, pick(samples, problem.task_id, index), local.sandbox, limit)

    start = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            results = list(pool.map(run, jobs))
        isolation = opened[0].start() if opened else {}
    finally:
        for sb in opened:
            sb.close()
    return summarize(
        results,
        dataset=ds.name,
        dataset_path=str(ds.path),
        dataset_sha=ds.digest,
        model="canonical" if completions == "canonical" else str(completions)[:200],
        samples_per_problem=n,
        sandbox=describe_isolation(sandbox, isolation)[0],
        timeout_s=limit,
        wall_s=round(time.monotonic() - start, 3),
        plugin_version=__version__,
    )
