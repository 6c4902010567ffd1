"""The program that runs INSIDE the sandbox: the solution, then (call / assert modes) one request.

This file is never imported by restem; `execute.py` sends its text, with a call to
`_prepare(config)` appended, as the `setup` of `Sandbox.run_many`, and `_test()` as the program.
A sandbox with a fork server runs the setup once per program, so the solution is compiled (and,
in call and assert modes, defined) once and each test starts from a copy of that state; others
run both in each test's process. The config holds the solution, the mode and, for MBPP, the
setup code; what a test asks travels on stdin:

* stdio mode: stdin is the test's input, untouched; the solution's stdout is the answer and the
  host compares it.
* call mode (APPS call-based): stdin is a report mark line, then the JSON argument list. The
  returned value is encoded as JSON of exact builtin types (a subclass with an `__eq__` that
  always returns True is refused) and compared by the host, which alone knows the expected value.
* assert mode: stdin is one or more requests, each a mark line then a JSON line: `value` (the
  EXPR of a test `assert EXPR == LITERAL`, evaluated here without its literal; the host
  compares), `call` (one call of one of the solution's functions with plain-data arguments, for
  a test judged in the host's trusted test process: the value and the arguments' state after the
  call come back) or `describe` (what some names of the solution are: callable, or their plain
  value). The solution is defined once; the requests are answered in order, one report each under
  the request's own mark (a compile or definition error: one report, under the first mark). An
  exception in a call is that call's report and the next request follows; a call that exits,
  hangs or hits a limit ends the run, and the host reads which requests got no report.

Nothing here decides a pass: a report only carries a value, which the host judges. The mark only
separates the report from what the solution prints; a solution that prints a report of its own
(for this request or a later one: all the marks are in its process) gains nothing a `return`
would not give it, and a request with two reports is refused.
"""

import builtins
import collections
import json
import os
import sys


class _NotPlain(Exception):
    pass


_STATE = {}


def _prepare(config_text):
    """Once per program (the sandbox's `setup`, run where the tests are forked from): compile
    the solution and, in call and assert modes, define it. Never raises: what went wrong is each
    test's report."""
    try:
        # Solutions written for older Pythons print integers longer than 4300 digits.
        sys.set_int_max_str_digits(0)
    except AttributeError:
        pass
    config = json.loads(config_text)
    mode = config["mode"]
    # Taken before the solution runs: whatever it does to builtins, json or os, the reports do
    # not go through it.
    tools = _tools()
    code = _compile(config["solution"])
    _STATE.update(config=config, tools=tools, code=code)
    if mode == "stdio" or isinstance(code, str):
        return
    namespace = {"__name__": "solution", "__builtins__": builtins}
    if mode == "call":
        # LeetCode's starter code annotates with `List`, `Optional`...: its judge predefines them.
        exec("from typing import *", namespace)
        # Each test runs in a fresh process, so a memo filled by earlier tests (as the original
        # judges run them, all in one process) is empty here: allow the deeper recursion.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    # The requests are the tests', not the definition's: it reads an empty stdin, wherever it runs.
    saved = _hide_stdin()
    try:
        exec(code, namespace)
    except BaseException as exc:
        _STATE["define_error"] = "while defining the solution: " + ": ".join(
            tools["describe_exc"](exc)
        )
    finally:
        _restore_stdin(saved)
    _STATE["namespace"] = namespace


def _hide_stdin():
    try:
        saved = os.dup(0)
    except OSError:
        return None
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    except OSError:
        pass
    return saved


def _restore_stdin(saved):
    if saved is not None:
        try:
            os.dup2(saved, 0)
            os.close(saved)
        except OSError:
            pass


def _tools():
    """The reporting functions, built from pristine builtins."""
    write, dumps, exit_now = os.write, json.dumps, os._exit
    exact_type, builtin_type = type, type
    pristine = dict(builtins.__dict__)
    builtin_types = frozenset(v for v in pristine.values() if exact_type(v) is builtin_type)
    none_type = exact_type(None)
    # Standard-library containers count as the dict / list they hold (MBPP returns Counters);
    # their content is read through the builtin dict and list types, never their own methods.
    dict_types = (dict, collections.Counter, collections.defaultdict, collections.OrderedDict)
    deque, dict_items, to_list = collections.deque, dict.items, list

    def report(mark, kind, payload=None):
        data = b"\n" + mark + b" " + kind
        if payload is not None:
            data += b" " + dumps(payload).encode()
        data += b"\n"
        while data:
            data = data[write(1, data) :]

    def describe_exc(exc):
        name = exact_type(exc).__name__ if exact_type(exc) in builtin_types else "Exception"
        try:
            text = str(exc)
        except BaseException:
            text = ""
        return [name, text[:300]]

    def encode(x, depth=0):
        t = exact_type(x)
        if depth > 200:
            raise _NotPlain("nested too deeply")
        # Identity, never `in` / `==`: a metaclass can make a class compare equal to `int`.
        if t is none_type or t is bool or t is int or t is float or t is str:
            return x
        if t is list:
            return [encode(v, depth + 1) for v in x]
        if t is tuple:
            return {"__tuple__": [encode(v, depth + 1) for v in x]}
        if t is set:
            return {"__set__": [encode(v, depth + 1) for v in x]}
        if t is frozenset:
            return {"__frozenset__": [encode(v, depth + 1) for v in x]}
        if any(t is d for d in dict_types):
            pairs = dict_items(x)
            return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in pairs]}
        if t is deque:
            return [encode(v, depth + 1) for v in to_list(x)]
        if t is bytes:
            return {"__bytes__": x.hex()}
        if t is complex:
            return {"__complex__": [x.real, x.imag]}
        raise _NotPlain("a value of a non-builtin type" if t not in builtin_types else t.__name__)

    def report_value(mark, value, extra=None):
        try:
            payload = {"value": encode(value)}
            if extra is not None:
                payload.update(extra())
        except _NotPlain as exc:
            report(mark, b"not_plain", str(exc))
            return
        report(mark, b"value", payload)

    return {
        "report": report,
        "describe_exc": describe_exc,
        "encode": encode,
        "report_value": report_value,
        "exit_now": exit_now,
        "pristine": pristine,
        "loads": json.loads,
    }


def _test():
    """One test (the sandbox's program, run in each test's own process)."""
    config, tools, code = _STATE["config"], _STATE["tools"], _STATE["code"]
    mode = config["mode"]
    if mode == "stdio":
        if isinstance(code, str):
            os.write(2, ("\nrestem-harness: compile error: " + code + "\n").encode())
            os._exit(1)
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
        return
    report, report_value, exit_now = tools["report"], tools["report_value"], tools["exit_now"]
    describe_exc, encode, pristine = tools["describe_exc"], tools["encode"], tools["pristine"]
    loads = tools["loads"]

    # The requests, and everything the reports need, are taken before the solution runs again.
    data = _read_all()
    if mode == "call":
        mark, _, body = data.partition(b"\n")
        requests = [(mark.strip(), loads(body or b"null"))]
    else:
        lines = data.split(b"\n")
        requests = [(lines[i].strip(), loads(lines[i + 1])) for i in range(0, len(lines) - 1, 2)]
    try:
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    except OSError:
        pass
    first = requests[0][0] if requests else b""
    if isinstance(code, str):
        report(first, b"compile_error", code)
        exit_now(0)
    if "define_error" in _STATE:
        report(first, b"define_error", _STATE["define_error"])
        exit_now(0)
    namespace = _STATE["namespace"]

    if mode == "call":
        target = _resolve(namespace, config["fn_name"], config["solution_class"])
        if target is None:
            report(first, b"define_error", "the program defines no " + config["fn_name"])
            exit_now(0)
        try:
            result = target(*requests[0][1])
        except BaseException as exc:
            report(first, b"error", describe_exc(exc))
            exit_now(0)
        report_value(first, result)
        exit_now(0)

    def answer(mark, request):
        """One report for one assert-mode request."""
        op = request["op"]
        if op == "describe":
            kinds = {}
            for name in request["names"]:
                if name not in namespace or (
                    name in pristine and namespace[name] is pristine[name]
                ):
                    continue
                value = namespace[name]
                if callable(value):
                    kinds[name] = "callable"
                else:
                    try:
                        kinds[name] = {"value": encode(value)}
                    except _NotPlain:
                        kinds[name] = "other"
            # Beside the value, not in it: a plain dict is not a value's tagged form.
            report(mark, b"value", {"value": None, "names": kinds})
            return
        if op == "call":
            target = namespace.get(request["fn"])
            if not callable(target):
                report(mark, b"define_error", "the program defines no function " + request["fn"])
                return
            args = _decode(request["args"])
            kwargs = {k: _decode(v) for k, v in request["kwargs"].items()}
            try:
                result = target(*args, **kwargs)
            except BaseException as exc:
                report(mark, b"error", describe_exc(exc))
                return
            # The arguments' state after the call: a test may check an in-place change.
            report_value(
                mark,
                result,
                lambda: {
                    "args": [encode(a) for a in args],
                    "kwargs": {k: encode(v) for k, v in kwargs.items()},
                },
            )
            return
        # op == "value": the EXPR of `assert EXPR == LITERAL`, with the solution's names but
        # never its shadows of builtins; the host compares it with the literal.
        entry = config["fn_name"]
        tests_ns = {k: v for k, v in namespace.items() if k not in pristine or k == entry}
        tests_ns.update(__builtins__=dict(pristine), __name__="restem_tests")
        try:
            if config["setup"]:
                exec(compile(config["setup"], "<setup>", "exec"), tests_ns)
            result = eval(compile(request["code"], "<test>", "eval"), tests_ns)
        except BaseException as exc:
            report(mark, b"error", describe_exc(exc))
            return
        report_value(mark, result)

    # In order, in this one process (the solution's state carries from one to the next); an
    # exception is its request's report, an exit or a limit ends the run.
    for mark, request in requests:
        answer(mark, request)
    exit_now(0)


def _restem_warm():
    """Called once by a sandbox that loads this harness ahead of many programs (the fork
    server's template, see restem.sandbox.forkserver): the reporting path on sample values,
    its reports going where the caller's output goes (nowhere), so that each test's process
    finds this code specialised by the interpreter already."""
    tools = _tools()
    sample = [0, -7, 2.5, "x", None, True, (1, 2), {"k": [1]}, {3}, frozenset({4}), b"z", 1j]
    text = json.dumps(tools["encode"](sample))
    for _ in range(64):
        tools["report_value"](b"restem-warm", sample)
        _decode(tools["loads"](text))


def _read_all():
    """All of stdin, from fd 0 itself (sys.stdin is the fork server's copy or a fresh one)."""
    chunks = []
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _decode(obj, depth=0):
    """The tagged JSON of `restem.verifiers.code.values` back into builtin values."""
    if depth > 200:
        raise ValueError("nested too deeply")
    if isinstance(obj, list):
        return [_decode(x, depth + 1) for x in obj]
    if not isinstance(obj, dict):
        return obj
    ((tag, body),) = obj.items()
    if tag == "__tuple__":
        return tuple(_decode(x, depth + 1) for x in body)
    if tag == "__set__":
        return {_decode(x, depth + 1) for x in body}
    if tag == "__frozenset__":
        return frozenset(_decode(x, depth + 1) for x in body)
    if tag == "__bytes__":
        return bytes.fromhex(body)
    if tag == "__complex__":
        return complex(body[0], body[1])
    if tag == "__dict__":
        return {_decode(k, depth + 1): _decode(v, depth + 1) for k, v in body}
    raise ValueError("unknown tag " + tag)


def _preload():
    """Never called: tells a sandbox that loads the program once what the harness imports."""
    import typing  # noqa: F401  (call mode runs `from typing import *`)


def _compile(source):
    """A code object, or the reason it is not valid Python (as text)."""
    try:
        return compile(source, "<solution>", "exec")
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
        return type(exc).__name__ + ": " + str(exc)[:300]


def _resolve(namespace, fn_name, solution_class):
    """The function to call: `Solution().fn_name` for LeetCode-style starters, else `fn_name`;
    either form is accepted when the other is missing."""
    function = namespace.get(fn_name)
    solution = namespace.get("Solution")
    method = None
    if isinstance(solution, type) and hasattr(solution, fn_name):
        try:
            method = getattr(solution(), fn_name)
        except Exception:
            method = None
    first, second = (method, function) if solution_class else (function, method)
    for candidate in (first, second):
        if callable(candidate) and not isinstance(candidate, type):
            return candidate
    return None
