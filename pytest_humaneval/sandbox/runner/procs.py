"""Processes, as /proc and signals show them: used by the runner and by the host."""

import os
import signal
import time


def kill_group(pid):
    """SIGKILL a process and its process group, whichever of them still exists."""
    for target in (-pid, pid):
        try:
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass


def terminate_group(pgid, grace):
    # type: (int, float) -> None
    """SIGTERM to the whole group ``pgid`` (a server's helper processes too), SIGKILL if any of it lingers
    ``grace`` seconds later; returns once the group is gone (or 5 s after the SIGKILL)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if group_gone(pgid):
                return
            time.sleep(0.1)


def group_gone(pgid):
    # type: (int) -> bool
    """No process of group ``pgid`` is left but zombies (which wait only for init to reap them)."""
    try:
        os.waitpid(pgid, os.WNOHANG)  # the leader may be our child: reap it, or it lingers as a zombie
    except ChildProcessError:
        pass
    if os.path.exists("/proc/self/stat"):
        for entry in os.scandir("/proc"):
            fields = stat_fields(entry.name) if entry.name.isdigit() else None
            if fields and fields[2] == str(pgid) and fields[0] != "Z":
                return False
        return True
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def read_text(path):
    # type: (str) -> str
    """A small /proc or /sys file, in one read (no file object: the supervisor reads several per program)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 1 << 16).decode()
    finally:
        os.close(fd)


def stat_fields(pid):
    # type: (int | str) -> list[str] | None
    """The fields of /proc/PID/stat after the command name (field 3 onwards), or None."""
    try:
        return read_text(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid):
    # type: (int | str) -> str
    """When ``pid`` started (clock ticks since boot), to tell it from a later process with its pid."""
    fields = stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else ""


def children(pid):
    """PIDs whose parent is ``pid`` (from /proc; empty where there is none)."""
    me = str(pid)
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            fields = stat_fields(entry)
            if fields and fields[1] == me:
                found.append(int(entry))
    return found


def schedstat(pid):
    """(seconds on a CPU, seconds runnable but waiting for one) of ``pid``'s main thread, or None."""
    try:
        ran, waited = read_text(f"/proc/{pid}/schedstat").split()[:2]
        return int(ran) / 1e9, int(waited) / 1e9
    except (OSError, ValueError):
        return None


def tree(pid):
    """``pid`` and all its descendants, from /proc/PID/task/*/children (empty if it is gone)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                todo.extend(int(c) for c in read_text(f"/proc/{p}/task/{tid}/children").split())
            except (OSError, ValueError):
                pass
    return found


def tree_usage(pid):
    """(CPU seconds, resident bytes) of ``pid``'s process tree: the CPU of its living processes and of the
    descendants they have reaped (a spinner that exits still counts), the memory of the living."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
    cpu, rss = 0.0, 0
    for p in tree(pid):
        fields = stat_fields(p)
        if fields and len(fields) > 22:
            cpu += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
            rss += int(fields[21]) * page
    return cpu, rss


def describe_exit(status):
    """Why a process ended, from its wait status: ``killed by SIGSEGV`` or ``exited (status 3)``."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        why = {"SIGXCPU": " (CPU time limit)", "SIGKILL": " (killed, e.g. out of memory or by itself)"}
        return f"killed by {name}{why.get(name, '')}"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    return f"exited (status {code})"
