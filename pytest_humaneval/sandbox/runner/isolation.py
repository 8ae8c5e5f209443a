"""Isolation: the runner's own (once), and each program's (in its process, before any of its code runs).

The runner isolates itself as far as the OS allows: network, IPC, UTS, mount and PID namespaces; a read-only
file system with the home directories and service sockets hidden and ``/sys`` read-only; a user namespace of
its own, mapped (when pytest runs as root) to a block of unprivileged uids: the runner's, the judge's and one
per program slot; one cgroup per slot (``cgroups``). Then, for each program, its process (``enter_program``):

- a mount namespace of its own with fresh, size-limited tmpfs on ``/tmp`` (its work directory, ``HOME`` and
  ``TMPDIR``), ``/var/tmp`` and ``/dev/shm``, and a ``/proc`` of its PID namespace, where no other process
  is in sight: nothing it writes outlives it, and no host socket under ``/tmp`` or ``/run`` is reachable;
- its own PID and IPC namespaces, and its slot's network namespace (no interface but a down loopback);
- its slot's uid (as root) or a user namespace of its own (as an ordinary user), so its process limit is
  its own; its slot's cgroup (memory and process count of the whole tree);
- rlimits, no capabilities, no new privileges.

Stdlib only; every call that the OS refuses is reported in ``info``, never fatal unless said.
"""

import ctypes
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
SIGCHLD = 17
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 32, 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
MNT_DETACH = 2
#: In the runner's user namespace (root): 0 the runner, 1 the judge, 2 + k program slot k.
JUDGE_UID = 1
FIRST_SLOT_UID = 2
#: A program's work directory, home and TMPDIR where it has a scratch of its own.
PROGRAM_SCRATCH = "/tmp"
#: Each program's scratch file systems (/tmp, /var/tmp, /dev/shm), MB each; the slot's cgroup counts them.
SCRATCH_MB = 256

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


#: The libc functions a program's process calls, looked up once in its zygote (a lookup in the child is a
#: dlsym and a new ctypes object: page faults on every program).
CHILD_LIBC = ("mount", "umount2", "prctl", "setns", "unshare")


def resolve_libc():
    lib = libc()
    for fn in CHILD_LIBC if lib else ():
        getattr(lib, fn, None)


def trim_heap():
    """Give the C heap's free pages back to the kernel (malloc_trim(3)); nothing where there is none."""
    lib = libc()
    f = getattr(lib, "malloc_trim", None) if lib else None
    if f is not None:
        f(0)


def call_libc(fn, *args):
    """Call a libc function; True on success, False if missing or it failed."""
    lib = libc()
    f = getattr(lib, fn, None) if lib else None
    if f is None:
        return False
    return f(*args) == 0


def unshare(flags):
    return call_libc("unshare", ctypes.c_int(flags))


def setns(fd, flags):
    return call_libc("setns", ctypes.c_int(fd), ctypes.c_int(flags))


def prctl(option, value):
    z = ctypes.c_ulong(0)
    return call_libc("prctl", ctypes.c_int(option), ctypes.c_ulong(value), z, z, z)


def mount(source, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    return call_libc("mount", enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def umount(target):
    return call_libc("umount2", target.encode(), ctypes.c_int(MNT_DETACH))


def write_file(path, text):
    """Write a small file in one write(2) (no io objects: this runs in every program's process)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return os.write(fd, text.encode()) == len(text.encode())
    except OSError:
        return False
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- the file system


def mountpoints():
    out = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                out.append(line.split()[4].encode().decode("unicode_escape"))
    except OSError:
        pass
    return out


def statvfs_flags(path):
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return 0
    return f & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME | MS_RELATIME)


def read_only_root(workbase, hide, keep):
    """In a private mount namespace: the directories in ``hide`` behind empty tmpfs (with the ``keep``
    paths under them bound back), tmpfs on the work dir, a minimal /dev, everything else read-only (/sys
    included). Returns the hidden directories, or False."""
    if not mount(None, "/", None, MS_REC | MS_PRIVATE):
        return False
    hidden = hide_directories(hide, keep)
    if hidden is None or not minimal_dev():
        return False
    os.makedirs(workbase, exist_ok=True)  # inside a tmpfs now if it lies under a hidden directory
    if not mount("tmpfs", workbase, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=1777"):
        return False
    os.chdir(workbase)
    root_ok = False
    for mp in sorted(set(mountpoints()), key=len):
        if mp in (workbase, "/dev/shm") or mp.startswith(("/proc", "/dev/pts")):
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
    """A fresh /dev holding DEVICES (bound from the host's), the usual links, an empty shm and a devpts of
    its own (pseudo-terminals: ``pty.openpty``)."""
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


def hide_directories(hide, keep):
    """An empty read-only tmpfs over each directory in ``hide`` (home directories, service sockets, the
    package's own data) and over each closed directory above a ``keep`` path (the interpreter, its
    site-packages); each ``keep`` path under one of them is bound back. The hidden directories, or None."""
    keep = sorted({os.path.realpath(k) for k in keep if k and os.path.isdir(k)}, key=len)
    tops = {os.path.realpath(h) for h in hide if h and os.path.isdir(h)}
    if os.geteuid() == 0:  # unprivileged uids will run the programs: open the way to what they need
        tops |= {a for a in map(closed_ancestor, keep) if a}
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
    # What is to be hidden inside a path that was bound back (a dataset inside site-packages) goes now.
    for top in sorted(tops, key=len):
        if top not in hidden and any(under(top, k) for k in bound) and os.path.isdir(top):
            if not mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755"):
                return None
            hidden.append(top)
    return hidden


def keep_paths(extra=()):
    """What programs need to reach wherever it lives: the interpreter and its standard library, the
    prefixes, the site-packages directories on sys.path, and ``extra`` (the host's shared builds)."""
    paths = {os.path.dirname(os.__file__), sys.prefix, sys.exec_prefix, sys.base_prefix, *extra}
    paths |= {os.path.dirname(sys.executable), os.path.dirname(os.path.realpath(sys.executable))}
    paths |= {p for p in sys.path if p.endswith("-packages")}
    return sorted(p for p in paths if p)


# --------------------------------------------------------------------------------- processes


#: clone(2)'s number where its first argument is the flags (zeros elsewhere fit every layout).
SYS_CLONE = {"x86_64": 56, "aarch64": 220, "riscv64": 220, "ppc64le": 120}  # not s390x: (stack, flags)
_CLONE = []  # type: list[object]


def clone_call():
    """(syscall function, clone's number), made once: zygotes call it between forks, and every object
    made there costs copy-on-write faults. None where clone(2) is not known."""
    if not _CLONE:
        import platform

        number = SYS_CLONE.get(platform.machine())
        if number is None or not libc() or os.environ.get("PYTEST_HUMANEVAL_NO_CLONE") == "1":
            _CLONE.append(None)
        else:
            syscall = ctypes.PyDLL(None, use_errno=True).syscall  # keeps the GIL, as fork needs
            syscall.restype = ctypes.c_long
            syscall.argtypes = [ctypes.c_long] + [ctypes.c_ulong] * 5
            _CLONE.append((syscall, number))
    return _CLONE[0]


def fork_with(flags):
    """os.fork(), with the child in the new namespaces ``flags`` names: clone(2) between the same
    interpreter hooks os.fork calls. Raises OSError if the kernel refuses."""
    call = clone_call() if flags else None
    if call is None:
        if flags:
            raise OSError(95, "clone(2) is not available here")
        return os.fork()
    syscall, number = call
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = syscall(number, flags | SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"clone(2): {os.strerror(err)}")
    return pid


def enter_pid_namespace(fs_private):
    """Become PID 1 of a fresh PID namespace; the process outside exits at once. With a private mount
    namespace, /proc is remounted so the runner's processes see nothing outside."""
    if not unshare(CLONE_NEWPID):
        return False
    if os.fork():
        os._exit(0)
    if fs_private:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    return True


def probe_uid(uid):
    """Can a process running as ``uid`` still import the stdlib and site-packages? None if so, else the
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


def enter_user_namespace(uid_base, count):
    """Become root of a new user namespace whose uids and gids 0..count-1 are the host's uid_base..: a
    process in it has capabilities in it alone. A helper still in the host's namespace writes the maps."""
    os.setgroups([])
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    helper = os.fork()
    if helper == 0:
        try:
            os.close(go_w)
            os.close(done_r)
            if os.read(go_r, 1) == b"u":
                maps = (("uid_map", f"0 {uid_base} {count}"), ("gid_map", f"0 {uid_base} {count}"))
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
        raise SystemExit(f"could not map the sandbox's user namespace to uids {uid_base}+{count}")
    if entered:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    return entered


def map_own_user_namespace():
    """An ordinary user: become root of a new user namespace mapped to the user's own uid (the one mapping
    an unprivileged process may write)."""
    uid, gid = os.geteuid(), os.getegid()
    if not unshare(CLONE_NEWUSER):
        return False
    return (
        write_file("/proc/self/setgroups", "deny")
        and write_file("/proc/self/uid_map", f"0 {uid} 1")
        and write_file("/proc/self/gid_map", f"0 {gid} 1")
    )


#: capset(2)'s version 3 header and two empty data structs, made once so that a child pays one call.
_CAPSET = []  # type: list[object]


def lock_down(max_namespaces):
    """Once, in the runner: what no program may regain. No new privileges (no setuid binaries), an empty
    capability bounding set, not dumpable (no program reads the runner's /proc files or traces it), and,
    in its own user namespace, at most ``max_namespaces`` nested ones (the programs' own, none of theirs).
    Returns what held."""
    info = {"no_new_privs": prctl(PR_SET_NO_NEW_PRIVS, 1)}
    prctl(PR_SET_DUMPABLE, 0)
    if max_namespaces is not None:
        info["nested_namespaces"] = not write_file("/proc/sys/user/max_user_namespaces", str(max_namespaces))
    drop_bounding_set()
    lib = libc()
    if lib and getattr(lib, "capset", None) is not None:
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
        data = (ctypes.c_uint32 * 6)()
        _CAPSET.append((lib.capset, header, data))
    return info


def drop_bounding_set():
    try:
        with open("/proc/sys/kernel/cap_last_cap") as fh:
            last = int(fh.read())
    except (OSError, ValueError):
        last = 63
    for cap in range(last + 1):
        prctl(PR_CAPBSET_DROP, cap)


def drop_capabilities():
    """No effective, permitted or inheritable capability (with the bounding set empty and no_new_privs,
    nothing restores them). False if that failed; True without capset(2)."""
    if not _CAPSET:
        return True
    capset, header, data = _CAPSET[0]
    return capset(header, data) == 0


def holds_capabilities():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(("CapEff:", "CapPrm:")) and int(line.split()[1], 16):
                    return True
    except (OSError, ValueError):
        return os.geteuid() == 0
    return False


def set_limit(res, value):
    try:
        resource.setrlimit(res, (value, value))
    except (ValueError, OSError):
        pass


def raise_open_files(wanted):
    """The runner's own descriptor limit, as high as its hard limit allows (it holds a few per program)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if os.geteuid() == 0 and hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, wanted))
            hard = wanted
        except (ValueError, OSError):
            pass
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ------------------------------------------------------------------------------- per program


def new_netns_fds(count):
    """``count`` network namespaces made here and left (one per program slot: reused, since nothing in one
    outlives the processes that made it), as descriptors; [] if this process may not make them."""
    try:
        home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return []
    fds = []
    try:
        for _ in range(count):
            if not unshare(CLONE_NEWNET):
                break
            fds.append(os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC))
    finally:
        setns(home, CLONE_NEWNET)
        os.close(home)
    if len(fds) < count:
        for fd in fds:
            os.close(fd)
        return []
    return fds


def scratch(path, size_mb):
    return mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,mode=1777")


def enter_program(plan, slot, cgroup_fds, workdir=None):
    """In a program's process (fds 0-3 in place: /dev/null, output, errors, the channel): its own scratch,
    /proc, cgroup, uid, limits and no capability. Raises OSError naming what failed (a harness failure:
    the program has not run)."""
    for fd in cgroup_fds:
        os.write(fd, b"0")
        os.close(fd)
    # The OOM killer's first choice, with all it starts: never the runner or a judge beside it.
    write_file("/proc/self/oom_score_adj", "1000")
    if plan["own_userns"]:  # an ordinary user: a user namespace per program, so its process limit is its own
        # Its /proc files belong to the host's root while it is not dumpable (as everything the runner
        # forks): dumpable for as long as it writes its own maps, before any of the program runs.
        prctl(PR_SET_DUMPABLE, 1)
        if not (
            write_file("/proc/self/setgroups", "deny")
            and write_file("/proc/self/uid_map", "0 0 1")
            and write_file("/proc/self/gid_map", "0 0 1")
        ):
            raise OSError("could not map the program's user namespace")
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        write_file("/proc/sys/user/max_user_namespaces", "0")
        prctl(PR_SET_DUMPABLE, 0)
    if plan["own_mounts"]:
        umount(plan["workbase"])  # the runner's own work dir: no host path left in this mount table
        # What the interpreter needs under /tmp or /var/tmp (a venv made there) is bound back, read-only.
        kept = [(k, os.open(k, os.O_PATH | os.O_DIRECTORY)) for k in plan["scratch_keep"]]
        for path in ("/tmp", "/var/tmp", "/dev/shm"):
            if os.path.isdir(path) and not scratch(path, plan["scratch_mb"]):
                raise OSError(f"could not mount a scratch tmpfs on {path}")
        for path, fd in kept:
            os.makedirs(path, 0o755, exist_ok=True)
            if not mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC):
                raise OSError(f"could not bind {path} into the program's scratch")
            os.close(fd)
        if not mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY):
            raise OSError("could not mount the program's /proc")
        workdir = PROGRAM_SCRATCH
    else:
        os.mkdir(workdir, 0o700)
    uid = plan["slot_uid"](slot)
    if uid is not None:
        os.chown(workdir, uid, uid)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    os.chdir(workdir)
    limits = plan["limits"]
    if limits.get("memory_mb"):
        set_limit(resource.RLIMIT_AS, int(limits["memory_mb"]) << 20)
    if limits.get("file_mb"):
        set_limit(resource.RLIMIT_FSIZE, int(limits["file_mb"]) << 20)
    if limits.get("open_files"):
        set_limit(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    if limits.get("processes") and hasattr(resource, "RLIMIT_NPROC") and plan["nproc"]:
        set_limit(resource.RLIMIT_NPROC, int(limits["processes"]))
    set_limit(resource.RLIMIT_CORE, 0)
    if plan["own_userns"]:
        drop_bounding_set()
    if not drop_capabilities() or (uid is None and plan["own_mounts"] and holds_capabilities() and _CAPSET):
        raise OSError("could not drop the program's capabilities")
    return workdir


def enter_judge(plan):
    """In a judge's process: its uid (as root), limits, no capability."""
    uid = plan["judge_uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    limits = plan["limits"]
    memory = max(int(limits.get("memory_mb") or 0), 2048)
    set_limit(resource.RLIMIT_AS, memory << 20)
    set_limit(resource.RLIMIT_NOFILE, 64)
    set_limit(resource.RLIMIT_CORE, 0)
    prctl(PR_SET_DUMPABLE, 0)
    if not drop_capabilities():
        raise OSError("could not drop the judge's capabilities")
