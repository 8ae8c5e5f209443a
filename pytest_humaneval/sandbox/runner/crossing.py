"""Values crossing between the judge (the process that runs the dataset's test) and the program's process.

The judge decides the verdict; the program's process runs the model's code and answers the judge's calls.
What the program sends back is decoded by the judge into plain data only:

- numbers (bool, int, float, complex), str, bytes, bytearray, None, and lists, tuples, dicts, sets and
  frozensets of plain data; ``Decimal`` and ``Fraction``; numpy arrays and scalars of bool, number, bytes
  and str dtypes (rebuilt from their bytes);
- an instance of a subclass of a built-in type (``Counter``, ``OrderedDict``, a namedtuple, an ``IntEnum``)
  arrives as that built-in type, with its contents;
- anything else stays in the program's process: the judge holds a :class:`ProgramObject`, which it may
  call, iterate, index, measure, turn into ``str`` and read attributes of (each answer crossing the same
  way) but which compares equal to nothing but itself and takes part in no arithmetic or ordering. An
  object whose ``__eq__`` always says True, or a generator where a list was expected, never reaches a
  comparison the test makes.

The judge decodes with a pickle ``Unpickler`` whose ``find_class`` allows only the constructors below
(``_identity`` and friends, each checking its arguments): pickle's opcodes for plain types call no code, so
nothing the program sends can run in the judge. The program's process trusts the judge, so what the judge
sends is ordinary pickle; functions and iterators of the test's cross as callbacks into the judge.

Stdlib only: both processes are forks of the sandbox runner.
"""

import io
import pickle
import sys
import types

PROTOCOL = 5
#: Exact types pickle writes with its own opcodes (no code runs when they are read back).
PLAIN = frozenset((type(None), bool, int, float, str, bytes, bytearray, list, tuple, dict, set, frozenset))
#: Built-in bases: an instance of a subclass crosses as the base with its contents.
BASES = (bool, int, float, complex, str, bytes, bytearray, list, tuple, dict, set, frozenset)
#: numpy dtype kinds that cross (bool, integers, floats, complex, bytes, str): never objects or records.
NUMPY_KINDS = "biufcSU"
#: Largest frame the judge reads from the program (a bigger answer is an error, not an exhausted judge).
MAX_FRAME = 256 << 20


class CrossingError(Exception):
    """A value that cannot cross, or a malformed message from the program."""


# ------------------------------------------------------------------------- the program's side


#: The program's objects the judge holds handles to: id -> object (one table per program process).
HANDLES = {}  # type: dict[int, object]
#: The judge's callables and iterators passed to the program, as the program sees them: id -> proxy.
_JUDGE_PROXIES = {}  # type: dict[int, object]


def _register(obj):
    key = len(HANDLES) + 1
    HANDLES[key] = obj
    return key


def resolve(ref):
    """The program's object a judge reference names: ("h", id) a handle, ("g", name) a global."""
    kind, key = ref
    if kind == "h":
        return HANDLES[key]
    return PROGRAM_GLOBALS[key]


#: The program's globals (set once the solution is defined).
PROGRAM_GLOBALS = {}  # type: dict[str, object]


def _program_ref(ref):
    """Unpickled in the program's process: the object behind a reference the judge sends back."""
    return resolve(ref)


class JudgeCallable:
    """In the program's process: a function or iterator of the test's; calling it (or ``next``) asks the
    judge, which runs it and answers."""

    __slots__ = ("_id", "_kind")

    def __init__(self, key, kind):
        self._id = key
        self._kind = kind

    def __call__(self, *args, **kwargs):
        return CALLBACK(self._id, args, kwargs)

    def __iter__(self):
        return self

    def __next__(self):
        if self._kind != "iter":
            raise TypeError("not an iterator")
        return CALLBACK(self._id, (), {})

    def __repr__(self):
        return f"<the test's {'iterator' if self._kind == 'iter' else 'callable'}>"


def _judge_proxy(key, kind):
    """Unpickled in the program's process: a proxy for the judge's callable or iterator ``key``."""
    proxy = _JUDGE_PROXIES.get(key)
    if proxy is None:
        proxy = _JUDGE_PROXIES[key] = JudgeCallable(key, kind)
    return proxy


def CALLBACK(key, args, kwargs):
    raise RuntimeError("no judge to call back")


def _numpy_parts(obj):
    """(dtype str, shape, bytes) of a numpy array or scalar of a kind that crosses, else None."""
    np = sys.modules.get("numpy")
    if np is None:
        return None
    if isinstance(obj, np.ndarray):
        arr = obj
    elif isinstance(obj, np.generic):
        arr = np.asarray(obj)
    else:
        return None
    if arr.dtype.kind not in NUMPY_KINDS or arr.dtype.hasobject:
        return None
    arr = np.ascontiguousarray(arr)
    return arr.dtype.str, list(arr.shape), arr.tobytes()


class _ProgramPickler(pickle.Pickler):
    """The program's answers as the judge will read them (see the module's docstring)."""

    def reducer_override(self, obj):
        t = type(obj)
        if _own(obj):  # the constructors named in what this pickles: by reference
            return NotImplemented
        if t is complex:
            return _complex, (obj.real, obj.imag)
        if t is JudgeCallable:
            return _judge_ref, (obj._id,)
        parts = _numpy_parts(obj) if t.__module__.startswith("numpy") else None
        if parts is not None:
            return (_npscalar if not isinstance(obj, sys.modules["numpy"].ndarray) else _ndarray), parts
        name = t.__module__ + "." + t.__qualname__
        if name == "decimal.Decimal":
            return _decimal, (str(obj),)
        if name == "fractions.Fraction":
            return _fraction, (obj.numerator, obj.denominator)
        for base in BASES:
            if isinstance(obj, base):  # a subclass: its contents as the base type
                value = base(obj)
                if type(value) is not base:
                    break
                return (_complex, (value.real, value.imag)) if base is complex else (_identity, (value,))
        return _program_object, (_register(obj), t.__qualname__)


def dump_from_program(obj):
    buf = io.BytesIO()
    _ProgramPickler(buf, PROTOCOL).dump(obj)
    return buf.getvalue()


def load_in_program(data):
    return pickle.loads(data)


# ---------------------------------------------------------------------------- the judge's side


#: The judge's callables and iterators the program may call back: id -> object.
CALLBACKS = {}  # type: dict[int, object]
_CALLBACK_IDS = {}  # type: dict[int, int]


def ASK(op, ref, *args):
    raise RuntimeError("no program to ask")


class ProgramObject:
    """In the judge: an object that stays in the program's process (see the module's docstring)."""

    __slots__ = ("_ref", "_type")

    def __init__(self, ref, type_name):
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_type", type_name)

    def __repr__(self):
        return f"<program object of type {self._type}>"

    def __eq__(self, other):
        return isinstance(other, ProgramObject) and other._ref == self._ref

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(("program object", tuple(self._ref)))

    def __setattr__(self, name, value):
        raise AttributeError("a program object cannot be changed from the test")

    def __setstate__(self, state):
        raise pickle.UnpicklingError("a program object has no state")

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_ref", "_type"):
            raise AttributeError(name)
        return ASK("getattr", self._ref, name)

    def __call__(self, *args, **kwargs):
        return ASK("call", self._ref, args, kwargs)

    def __iter__(self):
        return ASK("iter", self._ref)

    def __next__(self):
        return ASK("next", self._ref)

    def __len__(self):
        n = ASK("len", self._ref)
        if type(n) is not int:
            raise TypeError("the program's __len__ did not return an int")
        return n

    def __getitem__(self, key):
        return ASK("getitem", self._ref, key)

    def __bool__(self):
        b = ASK("bool", self._ref)
        if type(b) is not bool:
            raise TypeError("the program's __bool__ did not return a bool")
        return b

    def __str__(self):
        s = ASK("str", self._ref)
        if type(s) is not str:
            raise TypeError("the program's __str__ did not return a str")
        return s


class JudgeRef:
    """In the judge: one of its own callables or iterators, handed back by the program."""

    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def __call__(self, *args, **kwargs):
        return self.obj(*args, **kwargs)

    def __iter__(self):
        return iter(self.obj)

    def __next__(self):
        return next(self.obj)

    def __eq__(self, other):
        return self.obj is (other.obj if isinstance(other, JudgeRef) else other)

    def __hash__(self):
        return id(self.obj)

    def __setstate__(self, state):
        raise pickle.UnpicklingError("no state")


def reset_judge():
    """Forget the last job's callbacks (a judge serves job after job)."""
    CALLBACKS.clear()
    _CALLBACK_IDS.clear()


def _callback_id(obj):
    key = _CALLBACK_IDS.get(id(obj))
    if key is None or CALLBACKS.get(key) is not obj:
        key = len(CALLBACKS) + 1
        CALLBACKS[key] = obj
        _CALLBACK_IDS[id(obj)] = key
    return key


_JUDGE_CALLABLES = (types.FunctionType, types.MethodType, types.LambdaType)


class _JudgePickler(pickle.Pickler):
    """The test's arguments as the program's process reads them."""

    def reducer_override(self, obj):
        t = type(obj)
        if _own(obj):
            return NotImplemented
        if t is ProgramObject:
            return _program_ref, (obj._ref,)
        if t is JudgeRef:
            obj = obj.obj
            t = type(obj)
        if isinstance(obj, _JUDGE_CALLABLES):
            return _judge_proxy, (_callback_id(obj), "call")
        if isinstance(obj, (types.GeneratorType, types.CoroutineType)) or (
            hasattr(t, "__next__") and hasattr(t, "__iter__") and t.__module__ != "numpy"
        ):
            return _judge_proxy, (_callback_id(obj), "iter")
        return NotImplemented


def dump_from_judge(obj):
    buf = io.BytesIO()
    try:
        _JudgePickler(buf, PROTOCOL).dump(obj)
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise CrossingError(f"the test passed a value the program cannot receive: {e}") from None
    return buf.getvalue()


# The constructors the judge's unpickler allows; each checks what it is given.


def _identity(value):
    if type(value) not in PLAIN:
        raise CrossingError(f"not plain data: {type(value).__name__}")
    return value


def _complex(real, imag):
    if type(real) is not float or type(imag) is not float:
        raise CrossingError("a complex number of non-floats")
    return complex(real, imag)


def _decimal(text):
    if type(text) is not str or len(text) > 10_000:
        raise CrossingError("a malformed Decimal")
    import decimal

    return decimal.Decimal(text)


def _fraction(numerator, denominator):
    if type(numerator) is not int or type(denominator) is not int or denominator == 0:
        raise CrossingError("a malformed Fraction")
    import fractions

    return fractions.Fraction(numerator, denominator)


def _array(dtype, shape, data):
    np = sys.modules.get("numpy")
    if np is None:
        import numpy as np
    if type(dtype) is not str or type(shape) is not list or type(data) is not bytes:
        raise CrossingError("a malformed numpy value")
    if not all(type(n) is int and n >= 0 for n in shape) or len(shape) > 32:
        raise CrossingError("a malformed numpy shape")
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise CrossingError(f"an unknown numpy dtype {dtype!r}") from None
    if dt.kind not in NUMPY_KINDS or dt.hasobject or dt.names is not None or dt.subdtype is not None:
        raise CrossingError(f"a numpy dtype that does not cross: {dtype!r}")
    count = 1
    for n in shape:
        count *= n
    if count * dt.itemsize != len(data):
        raise CrossingError("numpy data of the wrong size")
    return np.frombuffer(data, dtype=dt).reshape(shape).copy()


def _ndarray(dtype, shape, data):
    return _array(dtype, shape, data)


def _npscalar(dtype, shape, data):
    if shape != []:
        raise CrossingError("a numpy scalar with a shape")
    return _array(dtype, shape, data)[()]


def _program_object(key, type_name):
    if type(key) is not int or type(type_name) is not str:
        raise CrossingError("a malformed program object")
    return ProgramObject(("h", key), type_name[:200])


def _judge_ref(key):
    obj = CALLBACKS.get(key) if type(key) is int else None
    if obj is None:
        raise CrossingError("a reference to nothing the test passed")
    return JudgeRef(obj)


_ALLOWED = {
    f.__name__: f
    for f in (_identity, _complex, _decimal, _fraction, _ndarray, _npscalar, _program_object, _judge_ref)
}


#: This module's functions that appear (by name) in what either side pickles.
_OWN = frozenset(id(f) for f in (*_ALLOWED.values(), _program_ref, _judge_proxy))


def _own(obj):
    return id(obj) in _OWN  # by identity: never calls an object's own __eq__ or __hash__


class _JudgeUnpickler(pickle.Unpickler):
    """Reads what the program sent: plain opcodes, and the constructors above, nothing else."""

    def find_class(self, module, name):
        if module == __name__ and name in _ALLOWED:
            return _ALLOWED[name]
        raise CrossingError(f"the program sent an object of {module}.{name}, which does not cross")

    def persistent_load(self, pid):
        raise CrossingError("the program sent a persistent reference")


def load_in_judge(data):
    """Plain data (and program-object handles) from bytes the program's process sent."""
    try:
        return _JudgeUnpickler(io.BytesIO(data)).load()
    except CrossingError:
        raise
    except RecursionError:
        raise CrossingError("the program's answer is nested too deeply") from None
    except MemoryError:
        raise
    except Exception as e:
        raise CrossingError(f"the program sent a malformed answer ({type(e).__name__}: {e})") from None


# --------------------------------------------------------------------------------- mutation


_MUTABLE = (list, dict, set, bytearray)


def copy_back(old, new):
    """Make the test's arguments ``old`` hold what the program's copies ``new`` hold after its call (an
    in-place sort, an appended item), keeping the test's objects and, where shapes match, nested ones.
    Only the test's own mutable containers change; everything crossing was decoded as plain data."""
    t = type(old)
    if t is not type(new):
        return
    if t is list:
        if len(old) == len(new):
            for i, (o, n) in enumerate(zip(old, new)):
                if type(o) in _MUTABLE or type(o) is tuple:
                    copy_back(o, n)
                    if type(o) is not type(n):
                        old[i] = n
                elif o is not n and not _same(o, n):
                    old[i] = n
        else:
            old[:] = new
    elif t is dict:
        if old.keys() == new.keys():
            for k, n in new.items():
                o = old[k]
                if type(o) in _MUTABLE and type(o) is type(n):
                    copy_back(o, n)
                elif not _same(o, n):
                    old[k] = n
        else:
            old.clear()
            old.update(new)
    elif t is set:
        if old != new:
            old.clear()
            old.update(new)
    elif t is bytearray:
        if old != new:
            old[:] = new
    elif t is tuple and len(old) == len(new):  # a tuple's mutable items (the arguments themselves)
        for o, n in zip(old, new):
            if type(o) in _MUTABLE or type(o) is tuple:
                copy_back(o, n)


def _same(a, b):
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False
