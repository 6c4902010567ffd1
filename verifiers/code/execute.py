"""One test of one program: the sandbox program to run, and the judgment of what came back.

The program sent to the sandbox is `_harness.py` plus its configuration (the solution text, the
mode, MBPP's setup code): the same text for every test of one program, so a sandbox can load it
once and run all the tests (`Sandbox.run_many`). Each test's data goes on stdin: the input
(stdio), a report mark and the argument list (call), or a mark and the EXPR of `assert EXPR ==
LITERAL` (assert). Expected outputs and values never enter the sandbox. Assert tests of any other
form (HumanEval's `check`) run in a trusted process on the host (`restem.verifiers.code.proxy`),
their calls of the program sent to the sandbox as several requests on one stdin
(`requests_stdin`).
"""

from __future__ import annotations

import ast
import functools
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restem.verifiers.code.judge import Comparison, compare_stdout, compare_value
from restem.verifiers.code.problems import Mode, Problem
from restem.verifiers.code.values import ValueFormatError, decode, loads
from restem.verifiers.verdict import CodeStatus

__all__ = [
    "TEST_PROGRAM",
    "Prepared",
    "apps_wrap",
    "harness_program",
    "is_check_test",
    "judge_run",
    "prepare_test",
    "read_report",
    "request_stdin",
    "requests_stdin",
    "split_harness",
]

_COMPILE_ERROR = "restem-harness: compile error: "


@functools.cache
def _harness_source() -> str:
    return Path(__file__).with_name("_harness.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Prepared:
    """What to run for one test, and what the host needs to judge it afterwards."""

    program: str
    stdin: str
    mark: str  # the report prefix (call and assert modes)
    expected: Any
    # "stdout"; "call" (a returned value, compared by `compare_value`); "assert_value" (the EXPR of
    # `assert EXPR == LITERAL`, compared here with `==`); "check" (judged by `proxy`, not here)
    kind: str


@functools.lru_cache(maxsize=4096)
def _assert_test(code: str, entry: str) -> tuple[str, str, Any]:
    """("value", EXPR, literal) for `assert EXPR == LITERAL`, else ("check", code, None)."""
    tree = ast.parse(code)
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.Assert) and not tree.body[0].msg:
        test = tree.body[0].test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
            for expr, other in ((test.left, test.comparators[0]), (test.comparators[0], test.left)):
                try:
                    literal = ast.literal_eval(other)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    continue
                return "value", ast.unparse(expr), literal
    return "check", code, None


# What APPS's testing_util.py puts before every program (less numpy, which the sandbox lacks).
_APPS_IMPORTS = (
    "import sys\nimport time\nimport itertools\n"
    "from itertools import accumulate, product, permutations, combinations\n"
    "import collections\nfrom collections import Counter, OrderedDict, deque, defaultdict, ChainMap\n"
    "from functools import lru_cache\nimport math\n"
    "from math import sqrt, sin, cos, tan, ceil, fabs, floor, gcd, exp, log, log2\n"
    "import fractions\nfrom typing import List, Tuple\nimport random\nimport heapq\n"
    "from heapq import *\n"
)


def apps_wrap(solution: str) -> str:
    """A standard-input program as APPS runs it: after its imports, the body indented into a
    function `code()`, then called; so a top-level `return` ends the program there."""
    lines = [
        line if line.startswith(("from ", "import ")) else "\t" + line
        for line in solution.split("\n")
    ]
    out, started = [], False
    for line in lines:
        if line.startswith("\t") and not started:
            out += ["stdin = sys.stdin", "stdout = sys.stdout", "def code():", line]
            started = True
        elif started and line.startswith(("from ", "import ")):
            out.append("\t" + line)
        else:
            out.append(line)
    return _APPS_IMPORTS + "\n".join(out) + "\ncode()\n"


# What each test runs; the harness (`harness_program`) is its `setup`.
TEST_PROGRAM = "_test()\n"


def harness_program(
    problem: Problem, solution: str, comparison: Comparison = Comparison.STRICT
) -> str:
    """The sandbox `setup` for every test of `problem` (the harness, the solution and the mode;
    each test runs `TEST_PROGRAM` after it). What differs between tests goes on stdin
    (`prepare_test`). Under `apps_compat` a standard-input program runs wrapped as APPS runs
    it (`apps_wrap`)."""
    config: dict[str, Any] = {"mode": problem.mode.value, "solution": solution}
    if problem.mode is Mode.STDIO:
        if Comparison(comparison) is Comparison.APPS_COMPAT:
            config["solution"] = apps_wrap(solution)
    else:
        config["fn_name"] = problem.fn_name
        if problem.mode is Mode.CALL:
            config["solution_class"] = problem.uses_solution_class
        else:
            config["setup"] = problem.setup_code
    # The config travels as a JSON string literal: nothing in it is ever code to the harness.
    text = json.dumps(config)
    return f"{_harness_source()}\n{_preload_hint(solution)}\n_prepare({text!r})\n"


def split_harness(setup: str) -> tuple[str, str]:
    """(preamble, setup) of a `harness_program`: the harness's own source, the same for every
    program (trusted: a sandbox may run it once for all of them), and the rest (the solution
    and its config, run per program)."""
    source = _harness_source() + "\n"
    if setup.startswith(source):
        return source, setup[len(source) :]
    return "", setup


def _preload_hint(solution: str) -> str:
    """A function never called, importing what the solution imports: a sandbox that loads the
    program once (a fork server) sees these imports and loads the modules before the tests."""
    # Read from the bytecode (as the fork server does), which is faster than walking the AST.
    try:
        code = compile(solution, "<solution>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError):
        return ""
    from restem.sandbox.forkserver import code_imports

    names = sorted(n for n in code_imports(code) if n.isidentifier())
    if not names:
        return ""
    return "def _restem_preload():\n" + "".join(f"    import {n}\n" for n in names)


_MARK_PREFIX = "restem-report-"  # a report mark: this, then 32 hex digits


def request_stdin(request: Any) -> tuple[str, str]:
    """(stdin, mark) for a call / assert mode request: a fresh report mark, then the request."""
    mark = _MARK_PREFIX + secrets.token_hex(16)
    return f"{mark}\n{json.dumps(request, default=_json_default)}\n", mark


def requests_stdin(requests: list[Any]) -> tuple[str, list[str]]:
    """(stdin, marks) for assert mode requests answered in order by one process (a check test's
    calls): each request with a fresh mark of its own, so each report is read on its own."""
    parts = [request_stdin(request) for request in requests]
    return "".join(stdin for stdin, _ in parts), [mark for _, mark in parts]


def is_check_test(problem: Problem, index: int) -> bool:
    """Does test `index` run in the trusted test process (`restem.verifiers.code.proxy`), not
    as one sandbox run? (assert tests that are not `assert EXPR == LITERAL`)"""
    if problem.mode is not Mode.ASSERT:
        return False
    try:
        return _assert_test(problem.tests[index].input, problem.fn_name or "")[0] == "check"
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False  # test code that does not parse: `prepare_test` says so (invalid_problem)


def prepare_test(
    problem: Problem,
    solution: str,
    index: int,
    comparison: Comparison = Comparison.STRICT,
    program: str | None = None,
) -> Prepared:
    """The sandbox program and stdin for test `index` of `problem` (`program`: the
    `harness_program`, when the caller has it already). A "check" test is not run this way: its
    `Prepared` only names it (see `is_check_test`)."""
    test = problem.tests[index]
    if program is None:
        program = harness_program(problem, solution, comparison)
    if problem.mode is Mode.STDIO:
        return Prepared(program, test.input, "", test.expected, "stdout")
    if problem.mode is Mode.CALL:
        stdin, mark = request_stdin(test.input)
        return Prepared(program, stdin, mark, test.expected, "call")
    inner, code, expected = _assert_test(test.input, problem.fn_name or "")
    if inner == "check":
        return Prepared(program, "", "", None, "check")
    stdin, mark = request_stdin({"op": "value", "code": code})
    return Prepared(program, stdin, mark, expected, "assert_value")


def _json_default(value: Any) -> Any:
    raise TypeError(f"argument of type {type(value).__name__} cannot be sent to the sandbox")


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def judge_run(
    prepared: Prepared, run: Any, comparison: Comparison = Comparison.STRICT
) -> tuple[CodeStatus, str]:
    """The status of one test from its sandbox `RunResult` (status, reason)."""
    from restem.sandbox import Status

    if run.status is Status.SANDBOX_ERROR:
        return CodeStatus.SANDBOX_ERROR, run.reason or "the sandbox failed"
    if run.status is Status.TIMEOUT:
        return CodeStatus.TIMEOUT, run.reason or "time limit"
    if run.status is Status.MEMORY:
        return CodeStatus.MEMORY, run.reason or "memory limit"
    if run.status is Status.OUTPUT_LIMIT:
        return CodeStatus.WRONG_ANSWER, "printed more than the output limit"
    if prepared.kind == "check":
        raise ValueError("a check test is judged by restem.verifiers.code.proxy, not judge_run")
    if prepared.kind == "stdout":
        if run.status is not Status.OK:
            if _COMPILE_ERROR in run.stderr:
                detail = run.stderr.split(_COMPILE_ERROR, 1)[1]
                return CodeStatus.COMPILE_ERROR, detail.strip().splitlines()[0][:300]
            return CodeStatus.RUNTIME_ERROR, _last_line(run.stderr) or run.reason or "crashed"
        equal, reason = compare_stdout(run.stdout, prepared.expected, comparison)
        return (CodeStatus.PASSED if equal else CodeStatus.WRONG_ANSWER), reason
    return _judge_report(prepared, run, comparison)


@functools.lru_cache(maxsize=16)
def _reports(stdout: str) -> dict[str, list[str]]:
    """{mark: what follows "MARK " on each line that starts with it}: read once per run, not
    once per request (a run answers up to a thousand)."""
    found: dict[str, list[str]] = {}
    for line in stdout.split("\n"):
        if line.startswith(_MARK_PREFIX):
            mark, space, rest = line.partition(" ")
            if space:
                found.setdefault(mark, []).append(rest)
    return found


def read_report(mark: str, run: Any, raw: bool = False) -> tuple[str, Any]:
    """The harness's report in a run's stdout: (kind, payload). Kinds: "value" (payload: the
    decoded {"value": ..., ...} object), "error" ([exception type, message]), "define_error",
    "compile_error", "not_plain" (text), and "none" / "malformed" (text) when there is no usable
    report: several reports, a forged encoding, or an exit before the report. With `raw`, a
    value report's payload is checked but returned in its tagged JSON form."""
    reports = _reports(run.stdout).get(mark, [])
    if not reports:
        why = _last_line(run.stderr) or "exit status " + str(run.exit_code)
        return "none", f"exited before the test reported ({why})"
    if len(reports) > 1:
        return "malformed", "more than one report"
    kind, _, payload = reports[0].partition(" ")
    try:
        detail = loads(payload) if payload else None
    except (ValueError, RecursionError):
        return "malformed", "malformed report"
    if kind == "value":
        try:
            if not isinstance(detail, dict) or "value" not in detail:
                raise ValueFormatError("no value")
            decoded = {"value": decode(detail["value"])}
            if "args" in detail:  # a proxy call's arguments after the call, and keywords
                decoded["args"] = [decode(a) for a in detail["args"]]
                decoded["kwargs"] = {str(k): decode(v) for k, v in detail["kwargs"].items()}
            return "value", detail if raw else decoded
        except (ValueFormatError, TypeError, KeyError, AttributeError) as exc:
            return "malformed", f"malformed value: {exc}"
    if kind == "error":
        if not (
            isinstance(detail, list)
            and len(detail) == 2
            and all(isinstance(x, str) for x in detail)
        ):
            return "malformed", "malformed report"
        return "error", detail
    if kind in ("define_error", "compile_error", "not_plain"):
        return kind, str(detail)
    return "malformed", f"unexpected report {kind[:40]!r}"


def _judge_report(prepared: Prepared, run: Any, comparison: Comparison) -> tuple[CodeStatus, str]:
    kind, detail = read_report(prepared.mark, run)
    if kind in ("none", "malformed"):
        return CodeStatus.RUNTIME_ERROR, detail
    if kind == "compile_error":
        return CodeStatus.COMPILE_ERROR, detail
    if kind == "define_error":
        status = CodeStatus.MEMORY if "MemoryError" in detail else CodeStatus.RUNTIME_ERROR
        return status, detail
    if kind == "error":
        name, message = detail
        status = CodeStatus.MEMORY if name == "MemoryError" else CodeStatus.RUNTIME_ERROR
        return status, (f"{name}: {message}" if message else name)[:300]
    if kind == "not_plain":
        return CodeStatus.WRONG_ANSWER, f"returned something that is not plain data ({detail})"
    got = detail["value"]
    if prepared.kind == "call":
        equal, reason = compare_value(got, prepared.expected, comparison)
    else:
        equal, reason = _assert_equal(got, prepared.expected)
    return (CodeStatus.PASSED if equal else CodeStatus.WRONG_ANSWER), reason


def _assert_equal(got: Any, literal: Any) -> tuple[bool, str]:
    """`assert EXPR == LITERAL` decided here, with Python's `==` on builtin values only."""
    try:
        equal = bool(got == literal)
    except (RecursionError, TypeError):
        equal = False
    if equal:
        return True, "all asserts hold"
    return False, f"assertion failed: expected {literal!r:.80}, got {got!r:.80}"
