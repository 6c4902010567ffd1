"""One test of one program: the sandbox program to run, and the judgment of what came back.

The program sent to the sandbox is `_harness.py` plus its configuration: the solution text, the
mode, and for this test the stdin (stdio), the argument list (call), or the test code (assert).
Expected outputs and values never enter the sandbox, except inside assert tests that are not of
the plain `assert EXPR == LITERAL` form (HumanEval's `check`), where they must.
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

__all__ = ["Prepared", "apps_wrap", "judge_run", "prepare_test"]

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
    # `assert EXPR == LITERAL`, compared here with `==`); "check" (the test asserts inside)
    kind: str


class _Guard(ast.NodeTransformer):
    """Asserts and comparisons of a test that must run inside the sandbox get plain-data guards:
    `assert E` -> `__restem_truth__(E)`, every comparison operand and every call of the entry
    point -> `__restem_plain__(...)`, so no object of the program's own class reaches them."""

    def __init__(self, entry_points: frozenset[str]):
        self.entry_points = entry_points

    @staticmethod
    def _wrap(name: str, node: ast.expr) -> ast.expr:
        return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[node], keywords=[])

    def visit_Assert(self, node: ast.Assert) -> ast.stmt:
        self.generic_visit(node)
        return ast.Expr(value=self._wrap("__restem_truth__", node.test))

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        node.left = self._wrap("__restem_plain__", node.left)
        node.comparators = [self._wrap("__restem_plain__", c) for c in node.comparators]
        return node

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id in self.entry_points:
            return self._wrap("__restem_plain__", node)
        return node


@functools.lru_cache(maxsize=4096)
def _assert_test(code: str, entry: str) -> tuple[str, str, Any]:
    """("value", EXPR, literal) for `assert EXPR == LITERAL`, else ("check", guarded code, None)."""
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
    guarded = _Guard(frozenset({entry, "candidate"})).visit(tree)
    return "check", ast.unparse(ast.fix_missing_locations(guarded)), None


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


def prepare_test(
    problem: Problem, solution: str, index: int, comparison: Comparison = Comparison.STRICT
) -> Prepared:
    """The sandbox program and stdin for test `index` of `problem`. Under `apps_compat` a
    standard-input program runs wrapped as APPS runs it (`apps_wrap`)."""
    test = problem.tests[index]
    config: dict[str, Any] = {"mode": problem.mode.value, "solution": solution}
    mark = ""
    if problem.mode is Mode.STDIO:
        if Comparison(comparison) is Comparison.APPS_COMPAT:
            config["solution"] = apps_wrap(solution)
        stdin, kind, expected = test.input, "stdout", test.expected
    else:
        mark = "restem-report-" + secrets.token_hex(16)
        stdin = mark + "\n"
        config["fn_name"] = problem.fn_name
        if problem.mode is Mode.CALL:
            config.update(args=test.input, solution_class=problem.uses_solution_class)
            kind, expected = "call", test.expected
        else:
            inner, code, expected = _assert_test(test.input, problem.fn_name or "")
            config.update(kind=inner, code=code, setup=problem.setup_code)
            kind = "assert_value" if inner == "value" else "check"
    # The config travels as a JSON string literal: nothing in it is ever code to the harness.
    text = json.dumps(config, default=_json_default)
    program = f"{_harness_source()}\n\n_main({text!r})\n"
    return Prepared(program, stdin, mark, expected, kind)


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
    if prepared.kind == "stdout":
        if run.status is not Status.OK:
            if _COMPILE_ERROR in run.stderr:
                detail = run.stderr.split(_COMPILE_ERROR, 1)[1]
                return CodeStatus.COMPILE_ERROR, detail.strip().splitlines()[0][:300]
            return CodeStatus.RUNTIME_ERROR, _last_line(run.stderr) or run.reason or "crashed"
        equal, reason = compare_stdout(run.stdout, prepared.expected, comparison)
        return (CodeStatus.PASSED if equal else CodeStatus.WRONG_ANSWER), reason
    return _judge_report(prepared, run, comparison)


def _judge_report(prepared: Prepared, run: Any, comparison: Comparison) -> tuple[CodeStatus, str]:
    prefix = prepared.mark + " "
    reports = [line[len(prefix) :] for line in run.stdout.split("\n") if line.startswith(prefix)]
    if not reports:
        why = _last_line(run.stderr) or "exit status " + str(run.exit_code)
        return CodeStatus.RUNTIME_ERROR, f"exited before the test reported ({why})"
    if len(reports) > 1:
        return CodeStatus.RUNTIME_ERROR, "more than one report"
    kind, _, payload = reports[0].partition(" ")
    try:
        detail = loads(payload) if payload else None
    except (ValueError, RecursionError):
        return CodeStatus.RUNTIME_ERROR, "malformed report"
    if kind == "pass" and prepared.kind == "check":
        return CodeStatus.PASSED, "all asserts hold"
    if kind == "compile_error":
        return CodeStatus.COMPILE_ERROR, str(detail)
    if kind == "error":
        status = (
            CodeStatus.MEMORY if str(detail).startswith("MemoryError") else CodeStatus.RUNTIME_ERROR
        )
        return status, str(detail)
    if kind == "fail":
        return CodeStatus.WRONG_ANSWER, f"assertion failed ({detail})"
    if kind == "not_plain":
        return CodeStatus.WRONG_ANSWER, f"returned something that is not plain data ({detail})"
    if kind == "value" and prepared.kind in ("call", "assert_value"):
        try:
            got = decode(detail)
        except ValueFormatError as exc:
            return CodeStatus.RUNTIME_ERROR, f"malformed value: {exc}"
        if prepared.kind == "call":
            equal, reason = compare_value(got, prepared.expected, comparison)
        else:
            equal, reason = _assert_equal(got, prepared.expected)
        return (CodeStatus.PASSED if equal else CodeStatus.WRONG_ANSWER), reason
    return CodeStatus.RUNTIME_ERROR, f"unexpected report {kind!r}"


def _assert_equal(got: Any, literal: Any) -> tuple[bool, str]:
    """`assert EXPR == LITERAL` decided here, with Python's `==` on builtin values only."""
    try:
        equal = bool(got == literal)
    except (RecursionError, TypeError):
        equal = False
    if equal:
        return True, "all asserts hold"
    return False, f"assertion failed: expected {literal!r:.80}, got {got!r:.80}"
