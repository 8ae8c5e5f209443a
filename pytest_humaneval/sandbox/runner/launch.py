"""How the host starts the runner: a tiny bootstrap for ``python -c``, then this package's sources as the
first frame on the runner's stdin (the same for a local process and a container, which has no copy of the
plugin)."""

import functools
import json
from pathlib import Path

from .framing import HEAD

PACKAGE = "runner"
MODULES = (
    "framing",
    "procs",
    "reasons",
    "crossing",
    "channel",
    "program",
    "judge",
    "isolation",
    "cgroups",
    "supervisor",
)

#: Reads the sources frame from stdin, serves ``runner.*`` from it, runs the supervisor. A runner that
#: crashes (SIGSEGV, SIGABRT) leaves its stack in the runner log; programs and judges do not inherit that.
BOOT = r"""
import faulthandler, json, os, sys, importlib.machinery as m
faulthandler.enable()
def _r(n):
    b = b""
    while len(b) < n:
        c = os.read(0, n - len(b))
        if not c:
            raise SystemExit("pytest-humaneval runner: no sources on stdin")
        b += c
    return b
_s = json.loads(_r(int.from_bytes(_r(4), "big")))
class _Sources:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in _s:
            return m.ModuleSpec(name, cls, is_package=name == "runner", origin="<%s>" % name)
    @staticmethod
    def create_module(spec):
        return None
    @staticmethod
    def exec_module(module):
        exec(compile(_s[module.__name__], "<%s>" % module.__name__, "exec"), module.__dict__)
sys.meta_path.insert(0, _Sources)
from runner.supervisor import main
main()
"""


@functools.cache
def sources_body() -> bytes:
    """The runner package's modules, as the bootstrap reads them (a frame's body): read from disk once per
    process, not at every runner or container start."""
    here = Path(__file__).parent
    sources = {PACKAGE: (here / "__init__.py").read_text()}
    for name in MODULES:
        sources[f"{PACKAGE}.{name}"] = (here / f"{name}.py").read_text()
    return json.dumps(sources).encode()


def sources_frame() -> bytes:
    """The sources as one frame (head and body)."""
    body = sources_body()
    return HEAD.pack(len(body)) + body
