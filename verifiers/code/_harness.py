"""The program that runs INSIDE the sandbox: one solution against one test, then a report.

This file is never imported by restem; `execute.py` sends its text to the sandbox with a call to
`_main(config)` appended. The solution runs in this same process, so nothing written here is
trusted for more than it can be:

* stdio mode: the solution's stdout is the answer; the host compares it.
* call mode: the returned value is encoded as JSON of exact builtin types (a subclass with an
  `__eq__` that always returns True is refused) and compared by the host, which alone knows the
  expected value.
* assert mode: a test of the form `assert EXPR == LITERAL` is sent without its literal: EXPR's
  value comes back and the host compares. Other tests run here, with every comparison operand and
  every assert condition required to be plain builtin data and the builtins restored to their
  state before the solution ran; the "pass" report carries a secret read from stdin before the
  solution starts, so a solution that exits early or prints a fake report fails.
"""

import builtins
import collections
import json
import os
import sys


class _NotPlain(Exception):
    pass


def _main(config_text):
    try:
        # Solutions written for older Pythons print integers longer than 4300 digits.
        sys.set_int_max_str_digits(0)
    except AttributeError:
        pass
    config = json.loads(config_text)
    mode = config["mode"]
    if mode == "stdio":
        code = _compile(config["solution"])
        if isinstance(code, str):
            os.write(2, ("\nrestem-harness: compile error: " + code + "\n").encode())
            os._exit(1)
        del config
        exec(code, {"__name__": "__main__", "__builtins__": builtins})
        return

    # Everything the report needs is captured before the solution can patch modules.
    mark = sys.stdin.readline().strip().encode()
    write, dumps, exit_now = os.write, json.dumps, os._exit
    exact_type, builtin_type = type, type
    pristine = dict(builtins.__dict__)
    builtin_types = frozenset(v for v in pristine.values() if exact_type(v) is builtin_type)
    none_type = exact_type(None)
    # Standard-library containers count as the dict / list they hold (MBPP returns Counters);
    # their content is read through the builtin dict and list types, never their own methods.
    dict_types = (dict, collections.Counter, collections.defaultdict, collections.OrderedDict)
    deque, dict_items, to_dict, to_list = collections.deque, dict.items, dict, list

    def report(kind, payload=None):
        data = b"\n" + mark + b" " + kind
        if payload is not None:
            data += b" " + dumps(payload).encode()
        data += b"\n"
        while data:
            data = data[write(1, data) :]
        exit_now(0)

    def describe(exc):
        name = exact_type(exc).__name__ if exact_type(exc) in builtin_types else "exception"
        try:
            text = str(exc)
        except BaseException:
            text = ""
        return (name + ": " + text)[:300] if text else name

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

    def plain(x):
        if exact_type(x) is builtin_type and x in builtin_types:
            return x  # `type(result) == int` compares builtin type objects
        encode(x)
        if any(exact_type(x) is d for d in dict_types[1:]):
            return to_dict(dict_items(x))
        return to_list(x) if exact_type(x) is deque else x

    def truth(x):
        encode(x)
        if not x:
            raise AssertionError("assertion failed")

    code = _compile(config["solution"])
    if isinstance(code, str):
        report(b"compile_error", code)
    namespace = {"__name__": "solution", "__builtins__": builtins}
    if mode == "call":
        # LeetCode's starter code annotates with `List`, `Optional`...: its judge predefines them.
        exec("from typing import *", namespace)
        # Each test runs in a fresh process, so a memo filled by earlier tests (as the original
        # judges run them, all in one process) is empty here: allow the deeper recursion.
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
    try:
        exec(code, namespace)
    except BaseException as exc:
        report(b"error", "while defining the solution: " + describe(exc))

    if mode == "call":
        target = _resolve(namespace, config["fn_name"], config["solution_class"])
        if target is None:
            report(b"error", "the program defines no " + config["fn_name"])
        try:
            result = target(*config["args"])
        except BaseException as exc:
            report(b"error", describe(exc))
        try:
            report(b"value", encode(result))
        except _NotPlain as exc:
            report(b"not_plain", str(exc))

    # assert mode: the tests see the solution's names, but never its shadows of builtins.
    entry = config["fn_name"]
    tests_ns = {k: v for k, v in namespace.items() if k not in pristine or k == entry}
    tests_ns.update(
        __builtins__=dict(pristine),
        __name__="restem_tests",
        __restem_plain__=plain,
        __restem_truth__=truth,
    )
    try:
        if config["setup"]:
            exec(compile(config["setup"], "<setup>", "exec"), tests_ns)
        if config["kind"] == "value":
            result = eval(compile(config["code"], "<test>", "eval"), tests_ns)
        else:
            exec(compile(config["code"], "<test>", "exec"), tests_ns)
            result = None
    except AssertionError as exc:
        report(b"fail", describe(exc))
    except _NotPlain as exc:
        report(b"not_plain", str(exc))
    except BaseException as exc:
        report(b"error", describe(exc))
    if (
        tests_ns.get("__restem_truth__") is not truth
        or tests_ns.get("__restem_plain__") is not plain
    ):
        report(b"error", "the test's guards were replaced")
    if config["kind"] == "value":
        try:
            report(b"value", encode(result))
        except _NotPlain as exc:
            report(b"not_plain", str(exc))
    report(b"pass")


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
