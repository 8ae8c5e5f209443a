"""One cgroup per program slot: its memory and process count bound the program's whole process tree.

Made by the runner while it is still the host's root (before it enters its user namespace), under the root of
each hierarchy: cgroup v2 (``/sys/fs/cgroup`` with the memory and pids controllers), else v1's ``memory`` and
``pids`` hierarchies. For each slot the runner keeps its ``cgroup.procs`` open; a program's process writes
``0`` to it (itself) before anything of the program runs, then closes it: the kernel checks the opener's
credentials, so a process that has already dropped root can still join, and never another cgroup.

Without root (or without the controllers) there are none: the host's side says so, and the runner bounds a
program's tree by polling its memory instead.
"""

import os

from . import procs

V2 = "/sys/fs/cgroup"
V1 = {"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}


def _write(path, text):
    with open(path, "w") as fh:
        fh.write(text)


def _controllers(path):
    try:
        with open(os.path.join(path, "cgroup.controllers")) as fh:
            return set(fh.read().split())
    except OSError:
        return set()


class SlotCgroups:
    """The slots' cgroups: ``procs[slot]`` are the open ``cgroup.procs`` files a program joins through."""

    def __init__(self, name, slots, memory_mb, pids):
        self.dirs = []  # every directory made, parents first (removed in reverse)
        self.procs = []
        self.oom_files = []  # per slot: the file whose ``oom_kill`` line counts the OOM kills
        self.version = None
        made = self._v2(name, slots, memory_mb, pids) or self._v1(name, slots, memory_mb, pids)
        if not made:
            self.remove()

    @property
    def path(self):
        return self.dirs[0] if self.dirs else None

    def _mkdir(self, path):
        os.mkdir(path)
        self.dirs.append(path)
        return path

    def _v2(self, name, slots, memory_mb, pids):
        if not {"memory", "pids"} <= _controllers(V2):
            return False
        try:
            top = self._mkdir(os.path.join(V2, name))
            _write(os.path.join(top, "cgroup.subtree_control"), "+memory +pids")
            for k in range(slots):
                d = self._mkdir(os.path.join(top, f"slot{k}"))
                _write(os.path.join(d, "memory.max"), str(memory_mb << 20))
                if os.path.exists(os.path.join(d, "memory.swap.max")):
                    _write(os.path.join(d, "memory.swap.max"), "0")
                _write(os.path.join(d, "pids.max"), str(pids))
                self.procs.append([os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)])
                self.oom_files.append(os.path.join(d, "memory.events"))
        except OSError:
            self._close()
            return False
        self.version = 2
        return True

    def _v1(self, name, slots, memory_mb, pids):
        if not all(os.path.exists(os.path.join(p, "cgroup.procs")) for p in V1.values()):
            return False
        try:
            tops = {c: self._mkdir(os.path.join(p, name)) for c, p in V1.items()}
            for k in range(slots):
                mem = self._mkdir(os.path.join(tops["memory"], f"slot{k}"))
                pid = self._mkdir(os.path.join(tops["pids"], f"slot{k}"))
                _write(os.path.join(mem, "memory.limit_in_bytes"), str(memory_mb << 20))
                if os.path.exists(os.path.join(mem, "memory.memsw.limit_in_bytes")):
                    _write(os.path.join(mem, "memory.memsw.limit_in_bytes"), str(memory_mb << 20))
                _write(os.path.join(pid, "pids.max"), str(pids))
                self.procs.append(
                    [os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC) for d in (mem, pid)]
                )
                self.oom_files.append(os.path.join(mem, "memory.oom_control"))
        except OSError:
            self._close()
            return False
        self.version = 1
        return True

    def _close(self):
        for fds in self.procs:
            for fd in fds:
                os.close(fd)
        self.procs = []

    def oom_kills(self, slot):
        """How many processes the kernel has killed for memory in ``slot`` so far (None if unknown)."""
        try:
            for line in procs.read_text(self.oom_files[slot]).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, IndexError, ValueError):
            pass
        return None

    def remove(self):
        """Remove every cgroup made (the host does it too, for a runner that was killed)."""
        self._close()
        remove_tree(self.dirs)
        self.dirs = []


def remove_tree(dirs):
    # type: (list[str]) -> None
    for d in reversed(dirs):
        try:
            os.rmdir(d)
        except OSError:
            pass


def owned_by(pid):
    # type: (int) -> list[str]
    """The cgroup directories a runner with ``pid`` makes (for the host to remove after it)."""
    name = f"pytest-humaneval-{pid}"
    found = []
    for top in [os.path.join(V2, name)] + [os.path.join(p, name) for p in V1.values()]:
        if os.path.isdir(top):
            found.append(top)
            found += sorted(
                os.path.join(top, d) for d in os.listdir(top) if os.path.isdir(os.path.join(top, d))
            )
    return found
