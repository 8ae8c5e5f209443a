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
        "Errno",  # read-only (EROFS), or out of an unprivileged uid's reach first (EACCES)
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


#: Prelude of the privileged cases: ``denied(rc)`` raises the errno of a failed libc call, so the
#: verdict is an error naming it; a call that succeeds lets the program go on to ``return x * 2``
#: (a pass, which the tests refuse).
LIBC = (
    "    import ctypes, os\n"
    "    libc = ctypes.CDLL(None, use_errno=True)\n"
    "    def denied(rc):\n"
    "        if rc != 0:\n"
    "            e = ctypes.get_errno()\n"
    "            raise OSError(e, os.strerror(e))\n"
)
#: Every other process a program can see in /proc. In a PID namespace and /proc of its own there is none:
#: no target at all is the strongest refusal (a PermissionError naming it, as a refused call would).
OTHERS = (
    "    me = os.readlink('/proc/self')\n    others = [p for p in os.listdir('/proc') if p.isdigit() and p != me]\n"
    "    if not others:\n        raise PermissionError(13, 'no other process in sight')\n"
)

#: "Programs running with the runner's privileges": each tries to leave the sandbox or change the host
#: through a privilege the runner has; each must fail (an error verdict), change nothing on the host,
#: and leave the run going. Host-side checks: ``host_state`` before and after.
PRIVILEGED_CASES = [
    Case(
        "remounts_read_only_mount",
        LIBC
        + "    denied(libc.mount(None, b'/', None, 32 | 4096, None))  # MS_REMOUNT | MS_BIND: read-write\n"
        "    open(OUTSIDE, 'w').write('pwned')\n    return x * 2\n",
        "error",
        "Errno",
        needs_namespaces=True,
    ),
    Case(
        "mounts_over_a_path",
        LIBC + "    denied(libc.mount(b'tmpfs', os.path.dirname(OUTSIDE).encode(), b'tmpfs', 0, None))\n"
        "    open(OUTSIDE, 'w').write('pwned')\n    return x * 2\n",
        "error",
        "Errno",
        needs_namespaces=True,
    ),
    Case(
        "makes_a_device_node",
        "    import os, stat\n    os.mknod('null', stat.S_IFCHR | 0o666, os.makedev(1, 3))\n    return x * 2\n",
        "error",
        "Errno",
        needs_namespaces=True,
    ),
    Case(
        "renames_the_host",
        # Any rename that succeeds, through /proc or the system call, is a pass (which the tests refuse);
        # /proc/sys on a read-only mount refuses the write whatever the program holds.
        LIBC + "    for name in ('hostname', 'domainname'):\n        try:\n"
        "            with open('/proc/sys/kernel/' + name, 'w') as fh:\n                fh.write('pwned')\n"
        "            return x * 2\n        except OSError:\n            pass\n"
        "        if getattr(libc, 'set' + name)(b'pwned', 5) == 0:\n            return x * 2\n"
        "    denied(libc.sethostname(b'pwned', 5))\n    return x * 2\n",
        "error",
        "Errno",
        needs_namespaces=True,
    ),
    Case(
        "reads_another_process_environment",
        LIBC + OTHERS + "    for p in others:\n        try:\n"
        "            if open('/proc/%s/environ' % p, 'rb').read():\n                return x * 2\n"
        "        except OSError:\n            pass\n    raise PermissionError('no environment readable')\n",
        "error",
        "PermissionError",
        needs_namespaces=True,
    ),
    Case(
        "ptraces_the_runner",
        LIBC + OTHERS + "    for p in others:\n        try:\n"
        "            open('/proc/%s/mem' % p, 'rb').close()\n            return x * 2\n"
        "        except OSError:\n            pass\n"
        "        if libc.ptrace(16, int(p), None, None) == 0:  # PTRACE_ATTACH\n            return x * 2\n"
        "    denied(libc.ptrace(16, os.getppid() or 1, None, None))\n    return x * 2\n",
        "error",
        "Errno",
        needs_namespaces=True,
    ),
    Case(
        "setns_back_out",
        LIBC
        + OTHERS
        + "    for p in others + ['1']:\n        for ns in ('mnt', 'net', 'uts', 'pid', 'user'):\n"
        "            try:\n                fd = os.open('/proc/%s/ns/%s' % (p, ns), os.O_RDONLY)\n"
        "            except OSError:\n                continue\n"
        "            if libc.setns(fd, 0) == 0:\n                return x * 2\n"
        "    raise PermissionError('no namespace to enter')\n",
        "error",
        "PermissionError",
        needs_namespaces=True,
    ),
    Case(
        "unshares_its_own_namespaces",
        LIBC + "    for flag in (0x10000000, 0x00020000, 0x04000000, 0x40000000):  # user, mount, UTS, net\n"
        "        if libc.unshare(flag) == 0:\n            return x * 2\n"
        "    denied(libc.unshare(0x10000000 | 0x00020000))\n    return x * 2\n",
        "error",
        "Errno",
        needs_namespaces=True,
    ),
    *(c for c in CASES if c.name == "kills_everything"),
]

#: A program that reads secrets by absolute path (SECRET_FILE: a mode-0600 canary in the invoking user's
#: home; /etc/shadow) and prints them, then fails: a failing program's output goes into the terminal, the
#: JSON report and the JUnit file, where the secrets must not be (``denied PATH`` must).
SECRETS_CASE = Case(
    "prints_secret_files",
    "    for path in (SECRET_FILE, '/etc/shadow', '/etc/gshadow'):\n        try:\n"
    "            print(open(path).read())\n        except OSError as e:\n            print('denied', path, e.errno)\n"
    "    return x\n",
    "failed",
    "assert",
)


def body_for(
    case: Case, port: int, outside: Path, mark: str = LEFTOVER_MARK, secret: Path | None = None
) -> str:
    return (
        case.body.replace("PORT", str(port))
        .replace("OUTSIDE", repr(str(outside)))
        .replace("SECRET_FILE", repr(str(secret or "/nonexistent")))
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
    path: Path,
    cases: list[Case],
    port: int,
    outside: Path,
    mark: str = LEFTOVER_MARK,
    secret: Path | None = None,
) -> Path:
    with path.open("w") as fh:
        for case in cases:
            body = body_for(case, port, outside, mark, secret)
            fh.write(json.dumps({"task_id": f"Hostile/{case.name}", "completion": body}))
            fh.write("\n")
    return path


def host_state() -> dict[str, object]:
    """What a hostile program must not change on the host: names, mounts (of this process's namespace)."""
    import socket

    return {
        "hostname": socket.gethostname(),
        "domainname": Path("/proc/sys/kernel/domainname").read_text(),
        "mounts": sorted(line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()),
    }


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


# ------------------------------------------------------------------------------- forgeries
#
# A wrong program plus a few ordinary lines that try to make the harness report it passed. Each is a whole
# program (EvalPlus's ``solution``) for a problem of any dataset: ENTRY is the entry point's name, WRONG a
# wrong answer. Every one must come back not passed, and not as a harness failure either (a sandbox_error
# would leave it out of pass@k's denominator: another way to raise the score).

WRONG_FUNCTION = "def ENTRY(*args, **kwargs):\n    return WRONG\n"

#: Writes a passing verdict, in every form a harness might read, to every descriptor the program holds.
_WRITE_PASSED = (
    "def _forge_everywhere():\n"
    "    import json, os, gc\n"
    "    nonces = set()\n"
    "    for o in gc.get_objects():\n"
    "        if isinstance(o, dict):\n"
    "            try:\n"
    "                n = o.get('nonce')\n"
    "            except Exception:\n"
    "                continue\n"
    "            if isinstance(n, str):\n"
    "                nonces.add(n)\n"
    "    lines = [json.dumps({'nonce': n, 'status': 'passed', 'reason': ''}) for n in nonces or ['x']]\n"
    "    data = ('\\n'.join(lines) + '\\n').encode()\n"
    "    for fd in range(0, 64):\n"
    "        try:\n"
    "            os.write(fd, data)\n"
    "        except OSError:\n"
    "            pass\n"
)


@dataclass(frozen=True)
class Forgery:
    name: str
    program: str
    #: The datasets it is meant for (None: all); numpy_allclose only means something on the plus ones.
    datasets: tuple[str, ...] | None = None


FORGERIES = [
    Forgery(
        "json_dumps_patched",
        WRONG_FUNCTION + "import json\n_dumps = json.dumps\n"
        "def _forged(obj, *a, **k):\n"
        "    if isinstance(obj, dict) and 'status' in obj:\n"
        "        obj = dict(obj, status='passed', reason='')\n"
        "    return _dumps(obj, *a, **k)\n"
        "json.dumps = _forged\n",
    ),
    Forgery(
        "exec_disabled_and_own_check",
        WRONG_FUNCTION + "def check(candidate):\n    pass\n"
        "import builtins\nbuiltins.exec = lambda *a, **k: None\n",
    ),
    Forgery(
        "os_write_rewritten",
        WRONG_FUNCTION + "import os\n_write = os.write\n"
        "def _forged(fd, data):\n"
        "    for bad in (b'\"failed\"', b'\"error\"', b'\"crashed\"', b'\"timeout\"'):\n"
        "        data = bytes(data).replace(bad, b'\"passed\"')\n"
        "    return _write(fd, data)\n"
        "os.write = _forged\n",
    ),
    Forgery(
        "frame_walk_writes_verdict",
        "def ENTRY(*args, **kwargs):\n"
        "    import sys, os\n"
        "    f = sys._getframe()\n"
        "    while f is not None:\n"
        "        for v in list(f.f_locals.values()):\n"
        "            if isinstance(v, dict) and 'nonce' in v:\n"
        "                import json\n"
        "                line = json.dumps({'nonce': v['nonce'], 'status': 'passed', 'reason': ''}) + '\\n'\n"
        "                for fd in range(3, 64):\n"
        "                    try:\n"
        "                        os.write(fd, line.encode())\n"
        "                    except OSError:\n"
        "                        pass\n"
        "        f = f.f_back\n"
        "    os._exit(0)\n",
    ),
    Forgery(
        "numpy_allclose_patched",
        WRONG_FUNCTION + "import numpy\nnumpy.allclose = lambda *a, **k: True\n"
        "numpy.isclose = lambda *a, **k: True\n",
        datasets=("humaneval-plus", "mbpp-plus"),
    ),
    Forgery(
        "math_isclose_patched",
        WRONG_FUNCTION + "import math\nmath.isclose = lambda *a, **k: True\n",
    ),
    Forgery(
        "always_equal_object",
        "class _Equal:\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
        "    def __lt__(self, other):\n        return True\n"
        "    def __gt__(self, other):\n        return True\n"
        "    def __sub__(self, other):\n        return 0\n"
        "    def __rsub__(self, other):\n        return 0\n"
        "    def __abs__(self):\n        return 0\n"
        "    def __bool__(self):\n        return True\n"
        "    def __float__(self):\n        return 0.0\n"
        "    def __len__(self):\n        return 0\n"
        "    def __iter__(self):\n        return iter(())\n"
        "    def __hash__(self):\n        return 0\n"
        "def ENTRY(*args, **kwargs):\n    return _Equal()\n",
    ),
    Forgery(
        "equal_subclass_of_int",
        "class _Int(int):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
        "    __hash__ = int.__hash__\n"
        "class _Float(float):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n"
        "    def __sub__(self, other):\n        return 0.0\n"
        "    __hash__ = float.__hash__\n"
        "def ENTRY(*args, **kwargs):\n    return _Float(-12345.5)\n",
    ),
    Forgery(
        "generator_for_a_list",
        "def ENTRY(*args, **kwargs):\n    return (x for x in ())\n",
    ),
    Forgery("builtins_abs_patched", WRONG_FUNCTION + "import builtins\nbuiltins.abs = lambda x: 0\n"),
    Forgery(
        "builtins_patched_wholesale",
        WRONG_FUNCTION + "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.len = lambda x: 0\n"
        "builtins.isinstance = lambda *a: True\nbuiltins.type = lambda *a: float\n",
    ),
    Forgery(
        "gc_walk_rewrites_check",
        WRONG_FUNCTION + "import gc, types\n"
        "def _noop(*a, **k):\n    return None\n"
        "for _o in gc.get_objects():\n"
        "    if isinstance(_o, types.FunctionType) and _o.__name__ in ('check', 'assertion', 'run_program'):\n"
        "        try:\n            _o.__code__ = _noop.__code__\n        except Exception:\n            pass\n",
    ),
    Forgery(
        "sys_modules_swapped",
        WRONG_FUNCTION + "import sys, types\n"
        "_fake = types.ModuleType('json')\n"
        '_fake.dumps = lambda *a, **k: \'{"status": "passed", "reason": ""}\'\n'
        "_fake.loads = lambda *a, **k: {'status': 'passed', 'reason': ''}\n"
        "for _name in ('json', 'pickle', 'numpy', 'math'):\n"
        "    sys.modules[_name] = _fake\n",
    ),
    Forgery(
        "thread_outlives_the_call",
        WRONG_FUNCTION + _WRITE_PASSED + "import threading, time, os\n"
        "def _later():\n"
        "    for _ in range(40):\n"
        "        time.sleep(0.005)\n"
        "        _forge_everywhere()\n"
        "    os._exit(0)\n"
        "threading.Thread(target=_later, daemon=True).start()\n",
    ),
    Forgery(
        "atexit_handler",
        WRONG_FUNCTION + _WRITE_PASSED + "import atexit\natexit.register(_forge_everywhere)\n",
    ),
    Forgery(
        "signal_handlers",
        WRONG_FUNCTION + _WRITE_PASSED + "import signal, os\n"
        "def _on_signal(*a):\n    _forge_everywhere()\n    os._exit(0)\n"
        "for _sig in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):\n"
        "    signal.signal(_sig, _on_signal)\n"
        "signal.setitimer(signal.ITIMER_REAL, 0.01)\n",
    ),
    Forgery(
        "ctypes_writes_own_memory",
        WRONG_FUNCTION + "import ctypes, gc, types\n"
        "# every float the test could compare against becomes the wrong answer, in place\n"
        "def _set(x):\n"
        "    if type(x) is float:\n"
        "        ctypes.c_double.from_address(id(x) + 16).value = WRONG\n"
        "    elif type(x) in (list, tuple):\n"
        "        for y in x:\n"
        "            _set(y)\n"
        "for _o in gc.get_objects():\n"
        "    if isinstance(_o, (list, tuple)):\n"
        "        _set(_o)\n"
        "    elif isinstance(_o, types.FunctionType):\n"
        "        _set(_o.__code__.co_consts)\n",
    ),
    Forgery(
        "writes_forged_channel_frames",
        "def ENTRY(*args, **kwargs):\n"
        "    import os, struct, json, pickle\n"
        '    evil = b"cbuiltins\\neval\\n(S\'__import__(\\"os\\").system(\\"true\\")\'\\ntR."\n'
        "    for body in (b'R' + evil, b'd' + json.dumps({'ok': True}).encode(), b'x',\n"
        "                 b'R' + pickle.dumps((True, None, 0.0))):\n"
        "        for fd in range(3, 16):\n"
        "            try:\n"
        "                os.write(fd, struct.pack('>I', len(body)) + body)\n"
        "            except OSError:\n"
        "                pass\n"
        "    return WRONG\n",
    ),
    Forgery(
        "malformed_verdicts",
        "def ENTRY(*args, **kwargs):\n"
        "    import os, json, gc\n"
        "    for fd in range(3, 64):\n"
        "        for v in ({'status': 'passed', 'reason': 123}, {'status': 'passed'}, ['passed'], 'passed'):\n"
        "            try:\n"
        "                os.write(fd, (json.dumps(v) + '\\n').encode())\n"
        "            except OSError:\n"
        "                pass\n"
        "    return WRONG\n",
    ),
    Forgery(
        "reads_the_answer_key",
        "def ENTRY(*args, **kwargs):\n"
        "    import glob, gzip, json, sys, os\n"
        "    tops = [p for p in sys.path if p] + [os.getcwd(), *PLACES]\n"
        "    found = [f for t in tops for d in ('*', '*/*', '*/*/*') for f in glob.glob(f'{t}/{d}.jsonl*')]\n"
        "    for path in found:\n"
        "        if 'HumanEval' not in path and 'Mbpp' not in path:\n"
        "            continue\n"
        "        try:\n"
        "            rows = gzip.open(path, 'rt') if path.endswith('.gz') else open(path)\n"
        "            for line in rows:\n"
        "                row = json.loads(line)\n"
        "                if row.get('entry_point') == 'ENTRY':\n"
        "                    g = {}\n"
        "                    exec(row['prompt'] + row['canonical_solution'], g)\n"
        "                    return g['ENTRY'](*args, **kwargs)\n"
        "        except Exception:\n"
        "            continue\n"
        "    return WRONG\n",
    ),
    Forgery(
        "kills_everything_it_can_see",
        "def ENTRY(*args, **kwargs):\n"
        "    import os, signal\n"
        "    for pid in range(2, 4096):\n"
        "        try:\n"
        "            os.kill(pid, signal.SIGKILL)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return WRONG\n",
    ),
    Forgery(
        "raises_harness_errors",
        "def ENTRY(*args, **kwargs):\n"
        "    import sys, os\n"
        "    sys.stderr.write('SandboxError: could not start the program\\n')\n"
        "    raise OSError(11, 'Resource temporarily unavailable: could not start the program')\n",
    ),
]

#: Per dataset: a problem with float answers (abs, math.isclose and numpy.allclose all in play), and a
#: wrong answer of the right type.
FORGERY_TARGETS = {
    "humaneval": ("HumanEval/2", "truncate_number", "0.25"),
    "humaneval-plus": ("HumanEval/2", "truncate_number", "0.25"),
    "mbpp": ("Mbpp/139", "circle_circumference", "1.0"),
    "mbpp-plus": ("Mbpp/139", "circle_circumference", "1.0"),
}


#: A HumanEval+ problem whose test calls the reference (``ref_func``) on every input, which the judge skips
#: where an answer matches the reference's shipped digest: the family runs against it as well.
REFERENCE_TARGET = ("HumanEval/100", "make_a_pile", "[args[0] + 2 * i + 1 for i in range(args[0])]")


def forgeries_for(dataset: str) -> list[Forgery]:
    return [f for f in FORGERIES if f.datasets is None or dataset in f.datasets]


#: Where a program may look for the dataset: where pytest runs, and the plugin's own folders.
ANSWER_KEY_PLACES = [str(Path.cwd()), str(Path(__file__).resolve().parents[1])]


def forged_program(forgery: Forgery, entry: str, wrong: str) -> str:
    places = [*ANSWER_KEY_PLACES, str(Path(__file__).resolve().parents[1] / "pytest_humaneval")]
    return forgery.program.replace("ENTRY", entry).replace("WRONG", wrong).replace("PLACES", repr(places))


def write_forgeries(path: Path, dataset: str, target: tuple[str, str, str] | None = None) -> dict[int, str]:
    """A completions file (EvalPlus ``solution`` lines) with every forgery as one sample of the dataset's
    target problem (or ``target``); returns sample index -> forgery name."""
    task_id, entry, wrong = target or FORGERY_TARGETS[dataset]
    names = {}
    with path.open("w") as fh:
        for i, forgery in enumerate(forgeries_for(dataset)):
            fh.write(
                json.dumps({"task_id": task_id, "solution": forged_program(forgery, entry, wrong)}) + "\n"
            )
            names[i] = forgery.name
    return names


# ------------------------------------------------------------------------------- isolation
#
# Programs against the host and against each other. Each scenario is one or more programs for the "double"
# problem, run side by side (``together``) or one after another in the same sandbox; ``expect`` gives each
# program's allowed statuses. Placeholders: SOCKET (a host socket under /tmp anyone may connect to), TMUX (a
# host tmux server's socket), OUTSIDE (a host file a command run on the host would create), MARK (unique).


@dataclass(frozen=True)
class Scenario:
    name: str
    programs: tuple[str, ...]
    expect: tuple[tuple[str, ...], ...]
    reason_has: tuple[str, ...] = ()
    together: bool = False
    #: Meaningless where the program cannot see the host (the docker sandbox has no host sockets).
    host_only: bool = False


#: Every place a program may write a file a later (or concurrent) one could read.
_PLANT_PLACES = (
    "['/tmp/MARK', '/var/tmp/MARK', '/dev/shm/MARK', 'MARK', '../MARK', os.path.expanduser('~/MARK')]"
)

ISOLATION = [
    Scenario(
        "host_socket_under_tmp",
        (
            "    import socket\n    s = socket.socket(socket.AF_UNIX)\n    s.connect(SOCKET)\n"
            "    s.sendall(b'pwned')\n    return x * 2\n",
        ),
        (("error",),),
        ("FileNotFoundError",),
        host_only=True,
    ),
    Scenario(
        "tmux_server_of_the_user",
        (
            "    import os, subprocess\n"
            "    if os.path.exists(TMUX):\n        return x * 2  # the host's server is in reach\n"
            "    r = subprocess.run(['tmux', '-S', TMUX, 'run-shell', 'touch ' + OUTSIDE],\n"
            "                       capture_output=True, timeout=10)\n"
            "    if r.returncode == 0:\n        return x * 2\n"
            "    raise PermissionError('tmux refused: %r' % r.stderr[-200:])\n",
        ),
        (("error",),),
        ("tmux refused",),
        host_only=True,
    ),
    Scenario(
        "plant_then_read",
        (
            "    import os, socket, time\n"
            "    for p in " + _PLANT_PLACES + ":\n"
            "        try:\n            open(p, 'w').write('planted')\n        except OSError:\n            pass\n"
            "    return x * 2\n",
            "    import os\n"
            "    for p in " + _PLANT_PLACES + ":\n"
            "        if os.path.exists(p):\n            return x * 2\n"
            "    raise LookupError('nothing planted in sight')\n",
        ),
        (("passed",), ("error",)),
        ("", "nothing planted"),
    ),
    Scenario(
        "plant_and_read_side_by_side",
        (
            "    import os, socket, time\n"
            "    for p in " + _PLANT_PLACES + ":\n"
            "        try:\n            open(p, 'w').write('planted')\n        except OSError:\n            pass\n"
            "    s = socket.socket(socket.AF_UNIX)\n    s.bind('\\0MARK')\n    s.listen(1)\n"
            "    time.sleep(1.5)\n    return x * 2\n",
            "    import os, socket, time\n    time.sleep(0.5)\n"
            "    for p in " + _PLANT_PLACES + ":\n"
            "        if os.path.exists(p):\n            return x * 2\n"
            "    try:\n        socket.socket(socket.AF_UNIX).connect('\\0MARK')\n        return x * 2\n"
            "    except OSError:\n        pass\n"
            "    raise LookupError('nothing planted in sight')\n",
        ),
        (("passed",), ("error",)),
        ("", "nothing planted"),
        together=True,
    ),
    Scenario(
        "fill_then_write",
        (
            "    import os\n"
            "    for d in ('/tmp', '/dev/shm', '.'):\n"
            "        for i in range(400):\n"
            "            try:\n"
            "                with open(os.path.join(d, 'fill%d' % i), 'wb') as f:\n"
            "                    f.write(b'x' * (8 << 20))\n"
            "            except OSError:\n"
            "                break\n"
            "    return x * 2\n",
            "    with open('/tmp/mine', 'wb') as f:\n        f.write(b'y' * (4 << 20))\n"
            "    with open('/dev/shm/mine', 'wb') as f:\n        f.write(b'y' * (4 << 20))\n"
            "    with open('mine', 'wb') as f:\n        f.write(b'y' * (4 << 20))\n    return x * 2\n",
        ),
        (("passed", "crashed", "error"), ("passed",)),
    ),
    Scenario(
        "memory_of_a_process_tree",
        (
            "    import os, time\n"
            "    r, w = os.pipe()\n    kids = []\n"
            "    for _ in range(4):\n"
            "        pid = os.fork()\n"
            "        if pid == 0:\n"
            "            b = bytearray(600 << 20)\n"
            "            for i in range(0, len(b), 4096):\n                b[i] = 1\n"
            "            os.write(w, b'1')\n            time.sleep(20)\n            os._exit(0)\n"
            "        kids.append(pid)\n"
            "    os.close(w)\n    held = 0\n    deadline = time.time() + 8\n"
            "    os.set_blocking(r, False)\n"
            "    while held < 4 and time.time() < deadline:\n"
            "        try:\n            held += len(os.read(r, 4))\n        except BlockingIOError:\n"
            "            time.sleep(0.05)\n"
            "    # Those that touched their memory and still hold it (asked of the kernel, not of /proc,\n"
            "    # which may show another PID namespace's numbers).\n"
            "    alive = sum(os.waitpid(pid, os.WNOHANG) == (0, 0) for pid in kids)\n"
            "    if min(held, alive) >= 3:\n        return x * 2\n"
            "    raise MemoryError('the tree held only %d x 600 MB' % held)\n",
        ),
        (("error", "crashed"),),
    ),
    Scenario(
        "neighbours_forks",
        (
            "    import os, time\n    kids = 0\n"
            "    for _ in range(80):\n"
            "        try:\n            pid = os.fork()\n        except OSError:\n            break\n"
            "        if pid == 0:\n            time.sleep(4)\n            os._exit(0)\n"
            "        kids += 1\n"
            "    time.sleep(3)\n    return x * 2\n",
            "    import subprocess, time\n    time.sleep(0.5)\n"
            "    for _ in range(10):\n        subprocess.run(['true'], check=True)\n    return x * 2\n",
        ),
        (("passed",), ("passed",)),
        together=True,
    ),
    Scenario(
        "kill_everyone",
        (
            "    import os, signal, time\n    time.sleep(0.5)\n"
            "    for pid in [-1] + list(range(2, 32768)):\n"
            "        try:\n            os.kill(pid, signal.SIGKILL)\n        except OSError:\n            pass\n"
            "    return x * 2\n",
            "    import time\n    time.sleep(2)\n    return x * 2\n",
        ),
        (("passed", "crashed"), ("passed",)),
        together=True,
    ),
    Scenario(
        "ptrace_a_neighbour",
        (
            # Its exec'd child is dumpable again (exec resets it): another uid or PID namespace keeps it apart.
            "    import subprocess, time\n    child = subprocess.Popen(['sleep', '5'])\n    time.sleep(2)\n"
            "    child.kill()\n    child.wait()\n    return x * 2\n",
            "    import ctypes, os, time\n    time.sleep(0.5)\n"
            "    libc = ctypes.CDLL(None, use_errno=True)\n    me = os.getpid()\n"
            "    seen = [int(p) for p in os.listdir('/proc') if p.isdigit()]\n"
            "    for pid in set(seen + list(range(1, 4096))) - {me}:\n"
            "        if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH\n"
            "            return x * 2\n"
            "    raise PermissionError('nothing to trace')\n",
        ),
        (("passed",), ("error",)),
        ("", "nothing to trace"),
        together=True,
    ),
    Scenario(
        "scratch_is_writable",
        (
            "    import os, tempfile\n"
            "    for p in ('/tmp/x', '/var/tmp/x', '/dev/shm/x', os.path.join(tempfile.gettempdir(), 'y'), 'z'):\n"
            "        open(p, 'w').write('ok')\n"
            "    return x * 2\n",
        ),
        (("passed",),),
    ),
    Scenario(
        "sys_is_read_only",
        (
            "    import os, glob\n"
            "    for p in glob.glob('/sys/kernel/mm/transparent_hugepage/*') + glob.glob('/sys/class/*/*/uevent'):\n"
            "        try:\n            open(p, 'w').write('x')\n            return x * 2\n"
            "        except OSError:\n            pass\n"
            "    raise PermissionError('read-only')\n",
        ),
        (("error",),),
        ("read-only",),
    ),
]


def scenario_programs(scenario: Scenario, socket_path: str, tmux: str, outside: str, mark: str) -> list[str]:
    return [
        PROMPT
        + body.replace("SOCKET", repr(socket_path))
        .replace("TMUX", repr(tmux))
        .replace("OUTSIDE", repr(outside))
        .replace("MARK", mark)
        for body in scenario.programs
    ]
