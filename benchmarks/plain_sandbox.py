"""A pytest plugin for measuring only: the subprocess sandbox without its per-program isolation.

    python -m pytest --humaneval -p plain_sandbox ...   (with benchmarks/ on PYTHONPATH)

Each program then gets no mount, PID or IPC namespace, scratch or cgroup of its own (the runner's own
namespaces, read-only file system and the judge's separate process stay). ``run.py --tools=ours-plain``
runs the plugin so, beside ``ours``, to split the 1,640 mix's wall into what the per-program isolation
costs and what the rest of the sandbox costs; ``bench_runner_cpu.py --split`` imports it for the same split of
the runner's CPU. Never for judging models: programs can see each other.
"""

from __future__ import annotations

from typing import Any

from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox

SubprocessSandbox.own_scratch = False
_init = SubprocessSandbox.__init__


def _without_cgroups(self: SubprocessSandbox, *args: Any, **kwargs: Any) -> None:
    kwargs["cgroups"] = False
    _init(self, *args, **kwargs)


SubprocessSandbox.__init__ = _without_cgroups  # type: ignore[method-assign]
