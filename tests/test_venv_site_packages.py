"""Programs see exactly the packages of the Python that runs pytest: in plain and ``--system-site-packages``
venvs (made by ``venv`` and by uv), and with the Debian system Python itself. The runner starts as
``python -I -S``; in a venv its own ``site`` would name the base interpreter's site-packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from venv_support import REPO, SYSTEM_PYTHON, make_venv, site_packages, unavailable, uv_venv

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="venv layouts tested on Linux"),
]

#: Run by the interpreter under test: which of the modules named on the command line a sandboxed program
#: can import, and which the interpreter itself can.
PROBE = """
import importlib.util, json, sys
from pytest_humaneval.sandbox import Job, Limits
from pytest_humaneval.sandbox.subprocess_sandbox import SubprocessSandbox

names = sys.argv[1:]
body = "import importlib.util, json\\nprint(json.dumps({m: importlib.util.find_spec(m) is not None for m in %r}))\\n"
sandbox = SubprocessSandbox(Limits())
try:
    verdict = sandbox.run(Job("def f(x):\\n    return x\\n" + body % names, "def check(c):\\n    pass\\n", "f", 30))
finally:
    sandbox.close()
assert verdict["status"] == "passed", verdict
print(json.dumps({"program": json.loads(verdict["stdout"]), "host": {m: importlib.util.find_spec(m) is not None for m in names}}))
"""


def seen(interpreter: Path, *modules: str) -> tuple[dict[str, bool], dict[str, bool]]:
    """(what a program run by the sandbox of ``interpreter`` can import, what ``interpreter`` can)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(REPO)  # the plugin's source, for the host side; programs never see PYTHONPATH
    proc = subprocess.run(
        [str(interpreter), "-c", PROBE, *modules], capture_output=True, text=True, env=env, cwd="/"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["program"], out["host"]


@pytest.fixture
def marker() -> str:
    return f"only_in_this_venv_{uuid.uuid4().hex[:8]}"


def with_marker(interpreter: Path, marker: str) -> Path:
    (site_packages(interpreter) / f"{marker}.py").write_text("")
    return interpreter


@pytest.mark.parametrize("maker", ["venv", "uv"])
@pytest.mark.parametrize("system_site", [False, True], ids=["plain", "system-site-packages"])
def test_programs_see_the_venvs_packages(
    maker: str, system_site: bool, marker: str, open_tmp: Callable[[str], Path]
) -> None:
    """A package installed only in the venv is there; one only in the base interpreter (pytest, which
    runs these tests) is there exactly when the venv includes the system site-packages."""
    root = open_tmp("humaneval-venv-")
    options = ("--system-site-packages",) if system_site else ()
    python = (
        make_venv(sys.executable, root / "v", *options) if maker == "venv" else uv_venv(root / "v", *options)
    )
    program, host = seen(with_marker(python, marker), marker, "pytest", "json")
    assert host[marker] and host["json"]
    if not system_site:
        assert not host["pytest"]
    elif sys.prefix == sys.base_prefix:  # tests run by a base interpreter: pytest is in its site-packages
        assert host["pytest"]
    assert program == host


def test_programs_see_the_system_pythons_packages() -> None:
    """The Debian system Python, no venv: its dist-packages (numpy from python3-numpy, which ``.ci/run``
    installs), as it sees them itself."""
    if not SYSTEM_PYTHON.exists():
        unavailable(f"no {SYSTEM_PYTHON}")
    program, host = seen(SYSTEM_PYTHON, "numpy", "pytest", "json")
    if not host["numpy"]:
        unavailable("python3-numpy is not installed for the system Python (apt-get install python3-numpy)")
    assert program == host


def test_humaneval_plus_canonical_passes_in_a_debian_venv(
    debian_venv: Path, readable_plugin_tree: Path, open_tmp: Callable[[str], Path]
) -> None:
    """The report that found the bug: numpy installed in the venv only, every HumanEval+ canonical solution
    but the dataset's known defect passes (it was 0 of 164: ``import numpy`` failed in every test)."""
    run_dir = open_tmp("humaneval-plus-run-")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(readable_plugin_tree)
    cmd = [str(debian_venv), "-m", "pytest", "-p", "pytest_humaneval.plugin", "-p", "no:cacheprovider"]
    cmd += ["--humaneval", "--humaneval-dataset=humaneval-plus", "--humaneval-completions=canonical"]
    cmd += ["--humaneval-report=report.json", "-q", "-n", "2"]
    proc = subprocess.run(cmd, cwd=run_dir, env=env, capture_output=True, text=True)
    report = json.loads((run_dir / "report.json").read_text())
    failing = sorted(r["task_id"] for r in report["results"] if not r["passed"])
    assert failing == ["HumanEval/32"], proc.stdout[-3000:]
    assert report["passed"] == report["total"] - 1 == 163
    assert proc.returncode == 0, proc.stdout[-3000:]
