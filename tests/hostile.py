"""Hostile completions: what a model (or an attacker) may write, and the verdict each must get.

Every case completes the same tiny problem, ``def double(x):`` whose test checks ``double(2) == 4``;
a case that behaves and then returns ``x * 2`` must still pass. Shared by the direct sandbox tests
and by the plugin runs under xdist.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

PROMPT = 'def double(x):\n    """Return twice x."""\n'
TEST = "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == -6\n"

#: A marker in the command line of processes a program leaves behind, to find them on the host;
#: ``body_for`` makes it unique per use so tests running side by side don't see each other's.
LEFTOVER_MARK = "4242.4242"


@dataclass(frozen=True)
class Case:
    name: str
    body: str
    status: str
    reason_has: str = ""
    #: Unsafe without namespaces when run as root (could reach the host); skipped in fallback mode.
    needs_namespaces: bool = False


def spawn_sleeper(detach: str) -> str:
    """Code that leaves a ``sleep`` behind: setsid'ed and double-forked, ignoring SIGTERM."""
    return (
        "    import os, signal\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "        if os.fork() == 0:\n"
        f"            os.execvp('sleep', ['sleep', '{LEFTOVER_MARK}'])\n"
        "        os._exit(0)\n" + detach
    )


CASES = [
    Case("exit_zero", "    exit(0)\n", "error", "SystemExit"),
    Case("os_exit_zero", "    import os\n    os._exit(0)\n", "crashed", "before check() returned"),
    Case("prints_passed", "    print('PASSED'); print('1 passed')\n    return x\n", "failed", "assert"),
    Case("exit_in_check_module", "    return x * 2\nimport sys\nsys.exit(0)\n", "error", "SystemExit"),
    Case("infinite_loop", "    while True:\n        pass\n", "timeout", "timed out"),
    Case(
        "ignores_sigterm",
        "    import signal\n    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n    while True:\n        pass\n",
        "timeout",
    ),
    Case("leaves_daemon_then_passes", spawn_sleeper("    return x * 2\n"), "passed"),
    Case("leaves_daemon_then_hangs", spawn_sleeper("    while True:\n        pass\n"), "timeout"),
    Case("memory_hog", "    b = bytearray(16 << 30)\n    return x * 2\n", "error", "MemoryError"),
    Case(
        "huge_file",
        "    with open('big', 'wb') as f:\n        f.write(b'x' * (64 << 20))\n    return x * 2\n",
        "error",
        "File too large",
    ),
    Case(
        "too_many_files",
        "    fs = [open('f%d' % i, 'w') for i in range(5000)]\n    return x * 2\n",
        "error",
        "Too many open files",
    ),
    Case(
        "fork_bomb",
        "    import os, time\n    for _ in range(400):\n        if os.fork() == 0:\n"
        "            time.sleep(60)\n            os._exit(0)\n    return x * 2\n",
        "error",
        "Resource temporarily unavailable",
        needs_namespaces=True,
    ),
    Case(
        "network",
        "    import socket\n    socket.create_connection(('127.0.0.1', PORT), timeout=2)\n    return x * 2\n",
        "error",
        "OSError",
        needs_namespaces=True,
    ),
    Case(
        "writes_outside",
        "    open(OUTSIDE, 'w').write('pwned')\n    return x * 2\n",
        "error",
        "Read-only file system",
        needs_namespaces=True,
    ),
    Case("writes_inside", "    open('scratch.txt', 'w').write('ok')\n    return x * 2\n", "passed"),
    Case(
        "reads_secrets",
        "    import os\n    assert 'HUMANEVAL_TEST_SECRET' not in os.environ, 'secret visible'\n    return x * 2\n",
        "passed",
    ),
    Case("reads_stdin", "    input()\n    return x * 2\n", "error", "EOFError"),
    Case(
        "floods_output", "    import sys\n    sys.stdout.write('y' * (8 << 20))\n    return x * 2\n", "passed"
    ),
    Case(
        "kills_parent",
        "    import os, signal\n    try:\n        os.kill(os.getppid(), signal.SIGKILL)\n"
        "    except OSError:\n        pass\n    return x * 2\n",
        "passed",
        needs_namespaces=True,
    ),
    Case(
        "kills_everything",
        "    import os, signal\n    os.kill(-1, signal.SIGKILL)\n    return x * 2\n",
        "error",
        "ProcessLookupError",  # in its own PID namespace there is nobody else to kill
        needs_namespaces=True,
    ),
    Case("segfault", "    import ctypes\n    ctypes.string_at(0)\n", "crashed", "SIGSEGV"),
    Case("keyboard_interrupt", "    raise KeyboardInterrupt\n", "error", "KeyboardInterrupt"),
    Case(
        "thread_left_running",
        "    import threading, time\n    threading.Thread(target=time.sleep, args=(30,)).start()\n    return x * 2\n",
        "passed",
    ),
    Case("syntax_error", "    return (x *\n", "syntax_error", "SyntaxError"),
    Case("recursion", "    return double(x)\n", "error", "RecursionError"),
    Case("correct", "    return x * 2\n", "passed"),
]


def body_for(case: Case, port: int, outside: Path, mark: str = LEFTOVER_MARK) -> str:
    return (
        case.body.replace("PORT", str(port))
        .replace("OUTSIDE", repr(str(outside)))
        .replace(LEFTOVER_MARK, mark)
    )


def unique_mark() -> str:
    """A sleep duration nobody else uses, to tell this test's leftovers from others'."""
    return f"4242.{uuid.uuid4().int % 10**9:09d}"


def write_dataset(path: Path, cases: list[Case]) -> Path:
    """One problem per case, so each case is its own pytest item named after it."""
    with path.open("w") as fh:
        for case in cases:
            fh.write(
                json.dumps(
                    {
                        "task_id": f"Hostile/{case.name}",
                        "prompt": PROMPT,
                        "test": TEST,
                        "entry_point": "double",
                        "canonical_solution": "    return x * 2\n",
                    }
                )
                + "\n"
            )
    return path


def write_completions(
    path: Path, cases: list[Case], port: int, outside: Path, mark: str = LEFTOVER_MARK
) -> Path:
    with path.open("w") as fh:
        for case in cases:
            fh.write(
                json.dumps(
                    {"task_id": f"Hostile/{case.name}", "completion": body_for(case, port, outside, mark)}
                )
            )
            fh.write("\n")
    return path


def leftovers(mark: str) -> list[int]:
    """PIDs of processes on the host that a hostile program (using ``mark``) left behind."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found
