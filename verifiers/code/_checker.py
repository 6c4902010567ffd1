"""The trusted test process of an assert-style test (HumanEval's `check(candidate)`, MBPP asserts
that are not `assert EXPR == LITERAL`). Run by `restem.verifiers.code.proxy` as a host subprocess:
``python -I _checker.py``; never imported by restem.

The test code comes from the dataset and runs here, in a process of its own that the solution
cannot reach: it is made non-dumpable first (no ptrace, no /proc/PID/mem or fd access by the
same uid), and the solution only ever runs in the sandbox. `candidate(...)` and the program's
other functions are proxies: each call sends its plain-data arguments to the host, which runs the
call in the sandbox and answers with the plain-data value (and the arguments' state after the
call, copied back into them, for tests that check an in-place change). So the only thing the
solution can send here is a value; printing, exiting or looping cannot make a pass.

It is a small fork server: started once per verifier, it runs each test in a forked child with
its own CPU limit, so a test starts in ~1 ms from a clean, preloaded state.

Protocol: the host sends a job as a line with its length, then the JSON. The test's calls go
out one JSON object per line, ``{"call": name, "args": [...], "kwargs": {...}}``, and each gets
one answer line ``{"value": v, "args": [...], "kwargs": {...}}``, ``{"raise": [type, message]}``
or ``{"abort": [status, reason]}``. The test ends with ``{"done": outcome, "reason": text}``,
and when its process has exited the server adds ``{"reaped": wait status}``.
"""

import ast
import builtins
import ctypes
import gc
import importlib
import importlib.util
import json
import os
import resource
import sys

PR_SET_DUMPABLE = 4


class _Abort(BaseException):
    """The sandbox ended the call (timeout, memory, crash): the test stops here, uncatchable by
    the test's own `except Exception`."""


class _Unsupported(BaseException):
    """The test uses the program in a way a proxy cannot carry (a callable argument, an attribute
    of the candidate...)."""


class _NotPlain(Exception):
    pass


def _encode(x, depth=0):
    t = type(x)
    if depth > 200:
        raise _NotPlain("nested too deeply")
    if x is None or t in (bool, int, float, str):
        return x
    if t is list:
        return [_encode(v, depth + 1) for v in x]
    if t is tuple:
        return {"__tuple__": [_encode(v, depth + 1) for v in x]}
    if t is set:
        return {"__set__": [_encode(v, depth + 1) for v in x]}
    if t is frozenset:
        return {"__frozenset__": [_encode(v, depth + 1) for v in x]}
    if isinstance(x, dict):
        return {"__dict__": [[_encode(k, depth + 1), _encode(v, depth + 1)] for k, v in x.items()]}
    if t is bytes:
        return {"__bytes__": x.hex()}
    if t is complex:
        return {"__complex__": [x.real, x.imag]}
    raise _NotPlain(f"an argument of type {t.__name__}")


def _copy_back(old, new):
    """Make `old` equal to `new` in place where it is a mutable container (the solution changed
    its copy of the argument)."""
    if type(old) is list and type(new) is list:
        if len(old) == len(new):
            for i, (a, b) in enumerate(zip(old, new)):
                if not _copy_back(a, b):
                    old[i] = b
        else:
            old[:] = new
        return True
    if type(old) is dict and type(new) is dict:
        old.clear()
        old.update(new)
        return True
    if type(old) is set and type(new) is set:
        old.clear()
        old.update(new)
        return True
    return old == new and type(old) is type(new)


class _Channel:
    def __init__(self, reader, writer, decode):
        self.reader, self.writer, self.decode = reader, writer, decode

    def send(self, obj):
        self.writer.write(json.dumps(obj) + "\n")
        self.writer.flush()

    def receive(self):
        line = self.reader.readline()
        if not line:
            raise _Abort("the host closed the channel")
        return self.decode(line)


class _Proxy:
    """Stands for one function of the program, which runs in the sandbox. `memo`: answers the
    host got ahead of time, by call (the host's `_key`), each list in the order they were made."""

    def __init__(self, channel, name, decode, memo):
        self._channel, self._name, self._decode, self._memo = channel, name, decode, memo
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        try:
            sent_args = [_encode(a) for a in args]
            sent_kwargs = {str(k): _encode(v) for k, v in kwargs.items()}
        except _NotPlain as exc:
            raise _Unsupported(f"the test passes {exc} to {self._name}") from None
        ahead = self._memo.get(json.dumps([self._name, sent_args, sent_kwargs], sort_keys=True))
        if ahead:
            answer = ahead.pop(0)
        else:
            self._channel.send({"call": self._name, "args": sent_args, "kwargs": sent_kwargs})
            answer = self._channel.receive()
        if "abort" in answer:
            raise _Abort(*answer["abort"])
        if "raise" in answer:
            name, message = answer["raise"]
            kind = getattr(builtins, name, None)
            if not (isinstance(kind, type) and issubclass(kind, Exception)):
                kind = Exception
            try:
                error = kind(message)
            except Exception:
                error = Exception(message)
            raise error
        for old, new in zip(args, answer.get("args", [])):
            _copy_back(old, self._decode(new))
        for key, new in answer.get("kwargs", {}).items():
            if key in kwargs:
                _copy_back(kwargs[key], self._decode(new))
        return self._decode(answer["value"])

    def __getattr__(self, name):
        raise _Unsupported(f"the test reads .{name} of the program's {self._name}")

    def __repr__(self):
        return f"<function {self._name}>"


class _Anything:
    """What a call returns in a discovery run: it takes part in any operation, compares equal
    and true, so the test goes on and shows its later calls."""

    def __eq__(self, other):
        return True

    __ne__ = __lt__ = __gt__ = __le__ = __ge__ = __contains__ = lambda self, other: True

    def __bool__(self):
        return True

    def __hash__(self):
        return 0

    def __float__(self):
        return 0.0

    def __int__(self):
        return 0

    __index__ = __int__

    def __len__(self):
        return 0

    def __iter__(self):
        return iter(())

    def __str__(self):
        return ""

    def _same(self, *args, **kwargs):
        return self

    __getattr__ = __getitem__ = __call__ = __neg__ = __pos__ = __abs__ = __round__ = _same
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = _same
    __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = _same
    __rpow__ = __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _same
    __lshift__ = __rshift__ = __invert__ = _same


class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        self.generic_visit(node)
        return ast.Expr(value=node.test)


class _Enough(BaseException):
    pass


class _Recorder:
    """A proxy in a discovery run: records the call's plain-data arguments, returns _Anything."""

    def __init__(self, calls, name, limit):
        self._calls, self._name, self._limit = calls, name, limit
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        try:
            sent_args = [_encode(a) for a in args]
            sent_kwargs = {str(k): _encode(v) for k, v in kwargs.items()}
            self._calls.append({"fn": self._name, "args": sent_args, "kwargs": sent_kwargs})
        except _NotPlain:
            pass
        if len(self._calls) >= self._limit:
            raise _Enough
        return _Anything()

    def __getattr__(self, name):
        return _Anything()


def main():
    """A small fork server: each job (one test) runs in a forked child, so every test starts
    from the same clean, preloaded state and the interpreter starts only once."""
    # No process of the same uid may attach to this one (or its children, which inherit the
    # flag) or read their memory or descriptors.
    _not_dumpable()
    # The protocol moves to private descriptors: what the test code prints goes nowhere.
    channel_in, channel_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    values_path = sys.argv[1]
    spec = importlib.util.spec_from_file_location("restem_values", values_path)
    values = importlib.util.module_from_spec(spec)
    sys.modules["restem_values"] = values  # its dataclasses look their module up
    spec.loader.exec_module(values)
    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    try:
        # The program's integers arrive in full; the CPU limit bounds their cost.
        sys.set_int_max_str_digits(0)
    except AttributeError:
        pass
    # What is alive now is never collected in a test's process: its collector does not walk
    # (and so copy) those pages.
    gc.freeze()
    while True:
        header = _read_line(channel_in)
        if not header:
            return
        job = json.loads(_read_exact(channel_in, int(header)))
        codes = _compiled(job)
        pid = os.fork()
        if pid == 0:
            try:
                _not_dumpable()
                # `random` reseeds itself in a forked child; a test must see the same draws in
                # its discovery run and its real run.
                if "random" in sys.modules:
                    sys.modules["random"].seed(0)
                cpu = max(1, int(job.get("cpu_s", 60)))
                resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
                reader = os.fdopen(os.dup(channel_in), "r", encoding="utf-8")
                writer = os.fdopen(os.dup(channel_out), "w", encoding="utf-8")
                _run_test(job, _Channel(reader, writer, json.loads), values.decode, codes)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        os.write(channel_out, (json.dumps({"reaped": status}) + "\n").encode())


_PRELOAD = ("math", "random", "re", "copy", "collections", "itertools", "string", "hashlib")

# Code objects of the jobs' texts, compiled here before the fork: the test's process only runs
# them (compiling there cost its CPU and copy-on-write faults each time), and a problem checked
# for many samples is compiled once.
_CODES = {}


def _compile_part(part, text, discover):
    """The code object of a job's "prompt", "setup" or "code"; with `discover`, the test code's
    asserts become plain expressions (their calls are made, a false one stops nothing)."""
    filename = {"prompt": "<prompt>", "setup": "<setup>", "code": "<test>"}[part]
    if discover and part == "code":
        text = ast.fix_missing_locations(_NoAsserts().visit(ast.parse(text)))
    return compile(text, filename, "exec")


def _compiled(job):
    """{"prompt" | "setup" | "code": code object or None (does not compile: the test's process
    compiles it again and fails there as it always did)}."""
    discover = bool(job.get("discover"))
    out = {}
    for part in ("prompt", "setup", "code"):
        text = job.get(part)
        if not text:
            continue
        key = (part, text, discover and part == "code")
        if key not in _CODES:
            if len(_CODES) >= 512:
                _CODES.clear()
            try:
                _CODES[key] = _compile_part(part, text, discover)
            except BaseException:
                _CODES[key] = None
        out[part] = _CODES[key]
    return out


_LIBC = []


def _not_dumpable():
    try:
        if not _LIBC:  # loaded once: a forked test finds it (loading costs ~1 ms)
            _LIBC.append(ctypes.CDLL(None, use_errno=True))
        _LIBC[0].prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _read_line(fd):
    """Bytes up to a newline, read one at a time: nothing past it is taken from the pipe."""
    out = b""
    while not out.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            return b""
        out += chunk
    return out


def _read_exact(fd, size):
    out = b""
    while len(out) < size:
        chunk = os.read(fd, size - len(out))
        if not chunk:
            raise EOFError("the host closed the channel")
        out += chunk
    return out


def _run_test(job, channel, decode, codes=None):
    """Run the test; or with `discover`, run it on recorders and send the calls it makes
    (their arguments only: what the host may run ahead of time, all in one request). `codes`:
    the job's texts compiled already (`_compiled`)."""
    codes = codes or {}
    calls = []
    if job.get("discover"):

        def proxy(name):
            return _Recorder(calls, name, job["discover"])

    else:
        memo = job.get("memo") or {}

        def proxy(name):
            return _Proxy(channel, name, decode, memo)

    namespace = {"__name__": "restem_tests", "__builtins__": builtins}
    outcome, reason = "pass", "all asserts hold"
    try:
        # Trusted helpers (HumanEval's prompt defines some the tests call): taken from the
        # dataset's own text, never from the program, which could redefine them.
        trusted = {}
        if job["prompt"]:
            try:
                exec(codes.get("prompt") or _compile_part("prompt", job["prompt"], False), trusted)
            except Exception:
                trusted = {}
        for name in job["modules"]:
            try:
                namespace[name] = importlib.import_module(name)
            except ImportError:
                pass
        for name, kind in job["names"].items():
            if kind == "callable":
                namespace[name] = proxy(name)
            elif isinstance(kind, dict):
                namespace[name] = decode(kind["value"])
        for name, value in trusted.items():
            if name != job["entry"] and not name.startswith("__") and callable(value):
                namespace[name] = value
        namespace[job["entry"]] = proxy(job["entry"])
        namespace.setdefault("candidate", namespace[job["entry"]])
        if job["setup"]:
            exec(codes.get("setup") or _compile_part("setup", job["setup"], False), namespace)
        code = codes.get("code") or _compile_part("code", job["code"], job.get("discover"))
        exec(code, namespace)
    except _Abort as exc:
        outcome, reason = "abort", list(exc.args) if len(exc.args) == 2 else ["runtime_error", ""]
    except _Unsupported as exc:
        outcome, reason = "unsupported", str(exc)
    except AssertionError as exc:
        outcome, reason = "fail", _describe(exc)
    except BaseException as exc:
        outcome, reason = "error", _describe(exc)
    if job.get("discover"):
        channel.send({"calls": calls})
        return
    channel.send({"done": outcome, "reason": reason})


def _describe(exc):
    text = str(exc)[:300]
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


if __name__ == "__main__":
    main()
