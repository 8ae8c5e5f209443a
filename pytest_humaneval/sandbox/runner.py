"""The inside half of the sandbox: a pre-forked runner that executes one program per child.

Stdlib only and self-contained (no package imports): the subprocess sandbox runs this file with
the host's Python, the docker sandbox sends its source into a container (``python3 -c``).

It starts once, imports what programs commonly need, isolates itself as far as the OS allows
(network, mount and PID namespaces, read-only file system, a pids cgroup, an unprivileged uid),
then forks one child per program. A child execs the program and reports a verdict only after
``check()`` returns; the parent enforces the time limit and kills every process the program
started. Protocol: frames on stdin/stdout, each a 4-byte big-endian length then a JSON object.
"""

import builtins
import ctypes
import ctypes.util
import json
import linecache
import os
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
OUTPUT_CAP = 16 * 1024
PRELOAD = (
    "math",
    "re",
    "string",
    "collections",
    "itertools",
    "functools",
    "heapq",
    "bisect",
    "typing",
    "hashlib",
    "random",
    "statistics",
    "fractions",
    "decimal",
    "copy",
    "operator",
    "datetime",
    "json",
)

_libc = None


def libc():
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        _libc = ctypes.CDLL(name, use_errno=True) if name else False
    return _libc


def call_libc(fn, *args):
    """Call a libc function; return True on success, False if missing or it failed."""
    lib = libc()
    f = getattr(lib, fn, None) if lib else None
    if f is None:
        return False
    return f(*args) == 0


def unshare(flags):
    return call_libc("unshare", ctypes.c_int(flags))


def prctl(option, value):
    return call_libc(
        "prctl",
        ctypes.c_int(option),
        ctypes.c_ulong(value),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
    )


def mount(source, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    return call_libc("mount", enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


# ----------------------------------------------------------------------------------- protocol


def read_frame(fd):
    head = read_exact(fd, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">I", head)
    body = read_exact(fd, size)
    return None if body is None else json.loads(body)


def read_exact(fd, n):
    chunks = []
    while n:
        b = os.read(fd, min(n, 1 << 20))
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def write_frame(fd, obj):
    data = json.dumps(obj).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(fd, data) :]


# ---------------------------------------------------------------------------------- isolation


def mountpoints():
    out = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                mp = line.split()[4]
                out.append(mp.encode().decode("unicode_escape"))
    except OSError:
        pass
    return out


def statvfs_flags(path):
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return 0
    keep = MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME
    return f & keep


def read_only_root(workbase):
    """In a private mount namespace: tmpfs on the work dir, everything else read-only."""
    if not mount(None, "/", None, MS_REC | MS_PRIVATE):
        return False
    if not mount("tmpfs", workbase, "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=1777"):
        return False
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
    root_ok = False
    for mp in sorted(set(mountpoints()), key=len):
        if mp in (workbase, "/dev/shm") or mp.startswith(("/proc", "/sys", "/dev/pts")):
            continue
        ok = mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | statvfs_flags(mp))
        if mp == "/":
            root_ok = ok
    return root_ok


def enter_pid_namespace(fs_private):
    """Become PID 1 of a fresh PID namespace: every process a program starts lives and dies in it.

    The original process stays outside only to wait and mirror our exit. With a private mount
    namespace, /proc is remounted so programs see (and can signal) nothing outside.
    """
    if not unshare(CLONE_NEWPID):
        return False
    pid = os.fork()
    if pid:
        os.closerange(3, 1 << 16)
        signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
        _, status = os.waitpid(pid, 0)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if fs_private:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    return True


def probe_uid(uid):
    """Can a child running as ``uid`` still import the stdlib and site-packages?"""
    paths = [os.path.dirname(os.__file__)] + [p for p in sys.path if p.endswith("-packages")]
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with open(os.__file__, "rb") as fh:
                fh.read(1)
            for p in paths:
                if os.path.exists(p) or p.startswith(os.path.dirname(os.__file__)):
                    os.listdir(p)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def join_pids_cgroup(limit):
    """Put this runner and all its children in a pids cgroup (root only; v2 or v1)."""
    name = f"pytest-humaneval-{os.getpid()}"
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/pids"):
        if not os.path.exists(os.path.join(base, "cgroup.procs")):
            continue
        if base != "/sys/fs/cgroup/pids":
            try:
                with open(os.path.join(base, "cgroup.controllers")) as fh:
                    if "pids" not in fh.read().split():
                        continue
            except OSError:
                continue
        path = os.path.join(base, name)
        try:
            os.mkdir(path)
            with open(os.path.join(path, "pids.max"), "w") as fh:
                fh.write(str(limit))
            with open(os.path.join(path, "cgroup.procs"), "w") as fh:
                fh.write(str(os.getpid()))
            return path
        except OSError:
            try:
                os.rmdir(path)
            except OSError:
                pass
    return None


def map_root_in_user_namespace():
    uid, gid = os.getuid(), os.getgid()
    if not unshare(CLONE_NEWUSER):
        return False
    try:
        with open("/proc/self/setgroups", "w") as fh:
            fh.write("deny")
        with open("/proc/self/uid_map", "w") as fh:
            fh.write(f"0 {uid} 1")
        with open("/proc/self/gid_map", "w") as fh:
            fh.write(f"0 {gid} 1")
    except OSError:
        return False
    return True


def isolate(opts, workbase):
    """Isolate the runner itself; report what held. Children inherit all of it."""
    info = {"platform": sys.platform, "python": sys.version.split()[0]}
    linux = sys.platform.startswith("linux")
    info["subreaper"] = bool(linux and prctl(PR_SET_CHILD_SUBREAPER, 1))
    if linux and opts.get("parent_pid"):
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != opts["parent_pid"]:
            os._exit(1)
    root = os.geteuid() == 0
    wanted = opts.get("isolate", True)
    cgroup = linux and root and wanted and opts.get("pids") and join_pids_cgroup(opts["pids"])
    info["pids_cgroup"] = cgroup or None
    userns = False
    if linux and not root and wanted:
        userns = map_root_in_user_namespace()
    info["user_namespace"] = userns
    can_ns = linux and wanted and (root or userns)
    info["network"] = bool(can_ns and unshare(CLONE_NEWNET | CLONE_NEWIPC))
    info["read_only_fs"] = bool(can_ns and unshare(CLONE_NEWNS) and read_only_root(workbase))
    info["pid_namespace"] = bool(can_ns and enter_pid_namespace(info["read_only_fs"]))
    uid = opts.get("uid")
    info["uid"] = uid if (root and wanted and uid is not None and probe_uid(uid)) else None
    return info


# ------------------------------------------------------------------------------ in the child


def first_frame(tb, filename):
    """The innermost traceback entry in ``filename`` (``<solution>`` or ``<test>``)."""
    found = None
    for fr in traceback.extract_tb(tb):
        if fr.filename == filename:
            found = fr
    return found


def where(tb):
    """Where an exception came from: the innermost line of the solution, else of the test."""
    for name in ("<solution>", "<test>"):
        fr = first_frame(tb, name)
        if fr is not None:
            return f" ({name.strip('<>')} line {fr.lineno}: {(fr.line or '').strip()})"
    return ""


def clip(text, n=300):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 3] + "..."


_TEST_CODE = {}


def compile_test(test):
    """Compile a problem's test once per runner, not once per sample (HumanEval+ tests reach 500 KB)."""
    code = _TEST_CODE.get(test)
    if code is None:
        if len(_TEST_CODE) > 512:
            _TEST_CODE.clear()
        code = _TEST_CODE[test] = compile(test, "<test>", "exec")
    linecache.cache["<test>"] = (len(test), None, test.splitlines(True), "<test>")
    return code


def run_program(job):
    """Execute solution, then test, then ``check(entry_point)``; return the verdict dict."""
    solution, test, entry = job["solution"], job["test"], job["entry_point"]
    linecache.cache["<solution>"] = (len(solution), None, solution.splitlines(True), "<solution>")
    if "test_code" not in job:
        job["test_code"] = compile_test(test)
    try:
        code = compile(solution, "<solution>", "exec")
    except (SyntaxError, ValueError) as e:
        line = getattr(e, "lineno", None)
        text = (getattr(e, "text", None) or "").strip()
        reason = "{}: {}".format(type(e).__name__, getattr(e, "msg", e))
        if line:
            reason += f" (line {line}: {text})"
        return {"status": "syntax_error", "reason": clip(reason), "exc_type": type(e).__name__}
    g = {"__name__": "__humaneval__", "__builtins__": builtins}
    stage = "solution"
    try:
        exec(code, g)
        stage = "test"
        exec(job["test_code"], g)
        if entry not in g:
            return {
                "status": "error",
                "exc_type": "NameError",
                "reason": f"NameError: the solution does not define {entry!r}",
            }
        if "check" not in g:
            return {"status": "error", "exc_type": "NameError", "reason": "the test does not define check()"}
        stage = "check"
        g["check"](g[entry])
    except AssertionError as e:
        tb = e.__traceback__
        fr = first_frame(tb, "<test>")
        msg = str(e)
        reason = "AssertionError" + (": " + msg if msg else "")
        if fr is not None and stage == "check" and first_frame(tb, "<solution>") is None:
            reason = f"assert failed at test line {fr.lineno}: {(fr.line or '').strip()}"
            if msg:
                reason += " -- " + msg
            return {"status": "failed", "reason": clip(reason), "exc_type": "AssertionError"}
        return {"status": "error", "reason": clip(reason + where(tb)), "exc_type": "AssertionError"}
    except BaseException as e:
        name = type(e).__name__
        msg = clip(e, 200) if not isinstance(e, SystemExit) else f"exit code {e.code!r}"
        reason = "{}{}{}".format(name, ": " + msg if msg else "", where(e.__traceback__))
        if stage == "solution":
            reason += " [while defining the solution]"
        return {"status": "error", "reason": clip(reason), "exc_type": name}
    return {"status": "passed", "reason": ""}


def set_limit(res, value):
    try:
        resource.setrlimit(res, (value, value))
    except (ValueError, OSError):
        pass


def set_inherited_limits(limits):
    """Limits every program gets, set once on the runner so each fork inherits them."""
    if limits.get("memory_mb"):
        set_limit(resource.RLIMIT_AS, int(limits["memory_mb"]) << 20)
    if limits.get("file_mb"):
        set_limit(resource.RLIMIT_FSIZE, int(limits["file_mb"]) << 20)
    if limits.get("open_files"):
        set_limit(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    if limits.get("processes") and hasattr(resource, "RLIMIT_NPROC"):
        set_limit(resource.RLIMIT_NPROC, int(limits["processes"]))
    set_limit(resource.RLIMIT_CORE, 0)


def child_main(job, state, workdir, fds):
    """In the forked child: become the program's process, run it, report, exit at once."""
    res_w, out_w, err_w = fds
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.dup2(res_w, 3)
    os.closerange(4, 1 << 16)
    os.chdir(workdir)
    os.environ["HOME"] = os.environ["TMPDIR"] = workdir
    tempfile.tempdir = workdir
    # sys.stdin/stdout/stderr were made once in the runner on fds 0-2, which now lead to the pipes.
    set_limit(resource.RLIMIT_CPU, int(job["timeout"]) + 2)
    if state["uid"] is not None:
        os.setgroups([])
        os.setgid(state["uid"])
        os.setuid(state["uid"])
    nonce = job["nonce"]
    try:
        verdict = run_program(job)
    except BaseException as e:  # a failure of run_program itself, e.g. MemoryError while reporting
        verdict = {
            "status": "error",
            "reason": clip(f"{type(e).__name__}: {e}"),
            "exc_type": type(e).__name__,
        }
    verdict["nonce"] = nonce
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    try:
        os.write(3, (json.dumps(verdict) + "\n").encode())
    finally:
        os._exit(0)


# ------------------------------------------------------------------------------ in the runner


class Runner:
    def __init__(self, state):
        self.state = state
        self.has_pidfd = hasattr(os, "pidfd_open")

    def spawn(self, job, workdir, fds):
        """Fork the program's process (its own session, dies with the runner)."""
        pid = os.fork()
        if pid:
            return pid
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            child_main(job, self.state, workdir, fds)
        except BaseException:
            os._exit(70)
        os._exit(70)

    def run(self, job):
        try:
            job["test_code"] = compile_test(job["test"])
        except (SyntaxError, ValueError) as e:
            return {
                "status": "error",
                "exc_type": type(e).__name__,
                "duration_s": 0.0,
                "stdout": "",
                "stderr": "",
                "output_dropped": 0,
                "reason": clip(f"the dataset's test does not compile: {e}"),
            }
        base = self.state["workbase"]
        workdir = tempfile.mkdtemp(dir=base, prefix="p")
        uid = self.state["uid"]
        if uid is not None:
            os.chown(workdir, uid, uid)
        res_r, res_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        start = time.monotonic()
        pid = self.spawn(job, workdir, (res_w, out_w, err_w))
        for fd in (res_w, out_w, err_w):
            os.close(fd)
        bufs = {res_r: bytearray(), out_r: bytearray(), err_r: bytearray()}
        dropped = {out_r: 0, err_r: 0}
        open_fds = set(bufs)
        for fd in open_fds:
            os.set_blocking(fd, False)
        pidfd = None
        if self.has_pidfd:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                pidfd = None
        deadline = start + float(job["timeout"])
        status, timed_out = None, False

        def drain(fd):
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    return True
                except OSError:
                    chunk = b""
                if not chunk:
                    return False
                buf = bufs[fd]
                room = (1 << 20 if fd == res_r else OUTPUT_CAP) - len(buf)
                if room > 0:
                    buf += chunk[:room]
                if fd in dropped and len(chunk) > room:
                    dropped[fd] += len(chunk) - max(room, 0)

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            watch = list(open_fds) + ([pidfd] if pidfd is not None else [])
            wait = remaining if pidfd is not None else min(remaining, 0.002)
            ready, _, _ = select.select(watch, [], [], wait)
            for fd in ready:
                if fd in open_fds and not drain(fd):
                    open_fds.discard(fd)
            if pidfd is None or pidfd in ready or not open_fds:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = st
                    break
        duration = time.monotonic() - start
        if status is None:
            self.kill_tree(pid)
            _, status = os.waitpid(pid, 0)
        else:
            self.kill_tree(pid)
        for fd in list(open_fds):
            drain(fd)
        for fd in list(bufs) + ([pidfd] if pidfd is not None else []):
            os.close(fd)
        self.reap_orphans()
        shutil.rmtree(workdir, ignore_errors=True)
        verdict = self.verdict(bytes(bufs[res_r]), job, status, timed_out, duration)
        verdict["duration_s"] = round(duration, 4)
        verdict["stdout"] = bufs[out_r].decode("utf-8", "replace")
        verdict["stderr"] = bufs[err_r].decode("utf-8", "replace")
        verdict["output_dropped"] = dropped[out_r] + dropped[err_r]
        return verdict

    @staticmethod
    def verdict(raw, job, status, timed_out, duration):
        for line in raw.decode("utf-8", "replace").splitlines():
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict) and v.get("nonce") == job["nonce"] and "status" in v:
                v.pop("nonce")
                return v
        if timed_out:
            return {"status": "timeout", "reason": "timed out after {:.1f} s".format(float(job["timeout"]))}
        code = None
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) > 128:
            sig = os.WEXITSTATUS(status) - 128
        else:
            sig = None
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        if sig is not None:
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            why = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed, e.g. out of memory or by itself)"}
            return {"status": "crashed", "reason": "killed by {}{}".format(name, why.get(name, ""))}
        return {
            "status": "crashed",
            "reason": f"the program exited (status {code}) before check() returned",
        }

    def kill_tree(self, pid):
        """Kill the program and everything it started, whichever way it left."""
        for target in (-pid, pid):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass

    def reap_orphans(self):
        """As a subreaper, orphans of a program are our children: kill and reap them all."""
        for _ in range(1000):
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                continue
            for other in self.children():
                for target in (-other, other):
                    try:
                        os.kill(target, signal.SIGKILL)
                    except OSError:
                        pass
            time.sleep(0.001)

    @staticmethod
    def children():
        me = str(os.getpid())
        found = []
        for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me:
                found.append(int(entry))
        return found


def warm_up():
    """Pay one-time costs (codec lookups, JSON encoder, compiler paths) once, not in every child."""
    job = {
        "solution": "def f(x):\n    return x\n",
        "test": "def check(c):\n    assert c(1) == 1\n",
        "entry_point": "f",
    }
    json.dumps(run_program(job))
    with open(os.devnull, "w", buffering=1, errors="backslashreplace") as fh:
        fh.write("x\n")
    import gc

    gc.collect()
    gc.freeze()


def main():
    # Move the protocol off fds 0/1 so children can never write into it by accident.
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init = read_frame(proto_in)
    if init is None:
        return
    workbase = init.get("workbase") or tempfile.mkdtemp(prefix="humaneval-")
    os.makedirs(workbase, exist_ok=True)
    for name in list(PRELOAD) + list(init.get("preload", [])):
        try:
            __import__(name)
        except Exception:
            pass
    isolation = isolate(init, workbase)
    state = {
        "workbase": workbase,
        "limits": init.get("limits", {}),
        "uid": isolation["uid"],
        "isolation": isolation,
    }
    runner = Runner(state)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
    warm_up()
    set_inherited_limits(state["limits"])
    write_frame(proto_out, {"ready": True, "isolation": isolation, "pid": os.getpid()})
    while True:
        job = read_frame(proto_in)
        if job is None or job.get("op") == "exit":
            break
        write_frame(proto_out, runner.run(job))


if __name__ == "__main__":
    main()
