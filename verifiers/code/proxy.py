"""Assert-style tests judged outside the solution's process (HumanEval's `check(candidate)`, MBPP
asserts that are not `assert EXPR == LITERAL`).

The test code is trusted (it comes from the dataset) and runs in a host subprocess of its own
(`_checker.py`: non-dumpable, CPU and memory rlimits, its stdout discarded; a fork server
started once per verifier, each test in a forked child). The solution runs only in the sandbox.
Each call the test makes of the program (`candidate(...)`, or another of its functions) is one
sandbox request: the harness calls the function with the plain-data arguments sent on stdin and
reports the plain-data value and the arguments' state after the call. The test process gets that
value (and copies the arguments' new state into its own, for tests that check an in-place
change), so a pass can only come from values.

Before the real run, a discovery run of the test in the trusted process (the program's
functions replaced by recorders that return a stand-in taking part in any operation, asserts
turned into plain expressions, `random` seeded as in the real run) lists the calls the test will
make when their arguments do not depend on the program's answers (loops of random inputs
included); a straight-line test whose calls are all written out with literal arguments
(HumanEval's and MBPP's usual shape, see `_straight_line`) needs no discovery run: the written
calls are the list. All of them, with a `describe` of the free names the test reads, go to the
sandbox as ONE run on one stdin: the harness defines the solution once and answers the requests in
order, each report under its request's own mark. A check test is one test: HumanEval's own
harness runs the whole `check` in one process under one time limit, so this run gets the limits
of one test (`CodeLimits.test_s` of CPU...), and the calls of one test share the solution's
module state, as they do there; nothing is shared between tests (each is a run of its own).
An exception in a call is that call's answer and the next call follows; a call that exits,
hangs or hits a limit ends the run: the calls before it keep their answers, it gets one from the
run's status (kept for the real run only after a CPU-limit or memory kill: a wall-clock kill may
be the machine's load, so the call is run again, alone, if the test reaches it), and the calls
after it are left to the real run. The answers go to the test process with the test (no round
trip per call); calls the real run makes that were not answered ahead go one by one, each in a
fresh process, as the test reaches them.

Why requests answered ahead rather than a conversation with a long-lived solution process: the
sandbox API runs a program on a stdin and returns its output, with per-run limits,
kill-everything cleanup and the fork-server fast path (`Sandbox.run_many`); a conversation would
need a new, interactive channel into the sandbox. Sharing a process gives a wrong solution
nothing: it can find the later requests' marks and print reports for them, but a report only
carries a plain value, which a `return` could give as well, and a request with two reports is
refused.

What a proxy cannot carry (the test gets `invalid_problem`, reward None, with the reason): an
argument that is not plain data (a callable, an object of a class of the test's own), or
reading an attribute of the program's function other than `__name__` (`candidate.__code__`).
A test that needs an object of the program's own class back gets no plain value, so it fails
as `wrong_answer`, as a returned object always has.
"""

from __future__ import annotations

import ast
import builtins
import collections
import json
import os
import resource
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restem.verifiers.code.execute import read_report, request_stdin, requests_stdin
from restem.verifiers.code.problems import Problem
from restem.verifiers.code.values import ValueFormatError, decode, loads
from restem.verifiers.verdict import CodeStatus

__all__ = ["CheckOutcome", "CheckerPool", "judge_check", "plan_check"]

_CHECKER = str(Path(__file__).with_name("_checker.py"))
_VALUES = str(Path(__file__).with_name("values.py"))
_BUILTINS = frozenset(dir(builtins))
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ()))
_CHECKER_MEMORY = 2 << 30
_AHEAD = 1000  # calls discovered and run ahead of time, at most


@dataclass(frozen=True)
class CheckOutcome:
    status: CodeStatus
    reason: str
    cpu_s: float  # sandbox CPU seconds of the calls
    wall_s: float
    retried: bool = False


@dataclass(frozen=True)
class _Plan:
    code: str
    setup: str
    prompt: str
    entry: str
    modules: tuple[str, ...]  # standard-library modules the test names without importing
    names: tuple[str, ...]  # other free names: looked up in the program (`describe`)
    calls: tuple[tuple[str, str], ...]  # (key, request JSON) of the calls with literal args
    # `calls` are all the calls the test makes, in order (see `_straight_line`): no discovery
    # run is needed.
    complete: bool = False


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _key(fn: str, args: Any, kwargs: Any) -> str:
    return json.dumps([fn, args, kwargs], sort_keys=True)


def plan_check(problem: Problem, index: int) -> _Plan:
    """What the test needs: the names to resolve and the calls to send ahead. Raises
    SyntaxError / ValueError on test code that is not Python (an invalid problem)."""
    from restem.verifiers.code import _checker

    code = problem.tests[index].input
    entry = problem.fn_name or ""
    trees = [ast.parse(code), ast.parse(problem.setup_code or "")]
    prompt_names: set[str] = set()
    prompt_binds: set[str] | None = set()  # every name the prompt binds (None: any name)
    if problem.prompt:
        try:
            prompt_tree = ast.parse(problem.prompt)
            prompt_names = {
                n.name
                for n in prompt_tree.body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            }
            prompt_binds = _binds(prompt_tree)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            prompt_names = set()
    loaded: list[str] = []
    bound: set[str] = set()
    calls: list[tuple[str, str]] = []
    found: dict[ast.Call, tuple[str, str]] = {}  # each static call's (key, request)
    tree_of: dict[ast.Call, int] = {}  # 0: found in the test, 1: in the setup
    proxies = {entry, "candidate"}
    # One pass over each tree (walking an AST is the slow part here): what every use below needs.
    parents: dict[ast.AST, ast.AST] = {}
    uses: list[ast.Name] = []  # of a proxy's name, in the test
    named: collections.Counter[str] = collections.Counter()  # Name uses, in the test
    in_setup = False  # the setup names a proxy
    for which, tree in enumerate(trees):
        todo = [tree]
        while todo:
            node = todo.pop()
            for child in ast.iter_child_nodes(node):
                parents[child] = node
                todo.append(child)
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Load):
                    loaded.append(node.id)
                else:
                    bound.add(node.id)
                if tree is trees[0]:
                    named[node.id] += 1
                    if node.id in proxies:
                        uses.append(node)
                elif node.id in proxies:
                    in_setup = True
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.alias):
                bound.add((node.asname or node.name).split(".")[0])
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bound.add(node.name)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in proxies
                and all(not isinstance(a, ast.Starred) for a in node.args)
                and all(k.arg is not None for k in node.keywords)
            ):
                values = [_literal(a) for a in node.args]
                kw = {k.arg: _literal(k.value) for k in node.keywords}
                if all(ok for ok, _ in values) and all(ok for ok, _ in kw.values()):
                    try:
                        args = [_checker._encode(v) for _, v in values]
                        kwargs = {k: _checker._encode(v) for k, (_, v) in kw.items()}
                    except _checker._NotPlain:
                        continue
                    request = {"op": "call", "fn": entry, "args": args, "kwargs": kwargs}
                    calls.append((_key(entry, args, kwargs), json.dumps(request)))
                    found[node] = calls[-1]
                    tree_of[node] = which
    # In the order written (the traversal's is not): the test's, then the setup's.
    calls = [found[n] for n in sorted(found, key=lambda n: (tree_of[n], n.lineno, n.col_offset))]
    skip = _BUILTINS | prompt_names | bound | {entry, "candidate"}
    free = list(dict.fromkeys(n for n in loaded if n not in skip))
    modules = tuple(n for n in free if n in _STDLIB)
    names = tuple(n for n in free if n not in _STDLIB)
    complete = (
        not names
        and not in_setup
        and _straight_line(trees[0], parents, uses, named, proxies, found)
    )
    if complete:
        # In the order the test makes them, without those in an assert's message, which runs
        # only when the assert fails.
        made = sorted(
            (n for n in found if not _in_message(n, parents)),
            key=lambda n: (n.lineno, n.col_offset),
        )
        calls = [found[n] for n in made]
    # The test process runs the prompt for the helpers it defines: only when the test names one.
    helpers = prompt_binds is None or bool((prompt_binds - {entry}) & set(loaded))
    return _Plan(
        code,
        problem.setup_code or "",
        problem.prompt if helpers else "",
        entry,
        modules,
        names,
        tuple(calls),
        complete,
    )


# Where a call may run more or fewer times than it is written, or later than written.
_REPEATS = (
    ast.For,
    ast.AsyncFor,
    ast.While,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.Lambda,
    ast.ClassDef,
    ast.AsyncFunctionDef,
)


def _binds(tree: ast.AST) -> set[str] | None:
    """Every name bound anywhere in `tree` (None when a star import may bind any)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            if node.name == "*":
                return None
            names.add((node.asname or node.name).split(".")[0])
    return names


def _in_message(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Is `node` in an assert's message (evaluated only when the assert fails)?"""
    child, up = node, parents.get(node)
    while up is not None:
        if isinstance(up, ast.Assert) and child is up.msg:
            return True
        child, up = up, parents.get(up)
    return False


def _straight_line(
    test: ast.Module,
    parents: dict[ast.AST, ast.AST],
    uses: list[ast.Name],
    named: collections.Counter[str],
    proxies: set[str],
    found: dict[ast.Call, Any],
) -> bool:
    """Are the static calls (`found`) every call the test makes of the program, each made once,
    in the order written? True only for the plain shape of HumanEval / MBPP tests: every use of
    a proxy name is a found call with literal arguments, outside loops, comprehensions and
    lambdas, at the module's top level or in a top-level function that the module calls once
    (`check(candidate)`), where a proxy may also be passed. Anything else (a helper, an alias, a
    call in a loop) gets a discovery run, as before. `parents`, `uses` (the Name nodes of the
    proxies) and `named` (uses per name) come from `plan_check`'s walk of the test."""
    functions = {
        s.name: s for s in test.body if isinstance(s, ast.FunctionDef) and not s.decorator_list
    }
    # The module-level statements `f(...)` of a top-level function (how `check` is run).
    runs: dict[str, list[ast.Call]] = {}
    for statement in test.body:
        value = statement.value if isinstance(statement, ast.Expr) else None
        called = value.func if isinstance(value, ast.Call) else None
        if isinstance(called, ast.Name) and called.id in functions:
            runs.setdefault(called.id, []).append(value)
    for name, calls in runs.items():
        # A proxy goes in exactly where a parameter of a proxy's name takes it (`check(f)` with
        # `def check(candidate)`), else the calls in the function are not the ones found.
        arguments = functions[name].args
        params = [a.arg for a in (*arguments.posonlyargs, *arguments.args)]
        for call in calls:
            if call.keywords or any(isinstance(a, ast.Starred) for a in call.args):
                return False
            given = [isinstance(a, ast.Name) and a.id in proxies for a in call.args]
            wanted = [p in proxies for p in params]
            if (
                len(given) > len(params)
                or given != wanted[: len(given)]
                or any(wanted[len(given) :])
            ):
                return False
    for node in uses:
        if isinstance(node.ctx, ast.Store | ast.Del):
            return False  # rebound: later uses may not be the proxy
        parent = parents.get(node)
        passed = (
            isinstance(parent, ast.Call)
            and node in parent.args
            and any(parent in calls for calls in runs.values())
        )
        if not passed and not (isinstance(parent, ast.Call) and parent.func is node):
            return False  # aliased, returned, passed elsewhere: only a discovery run knows
        if not passed and parent not in found:
            return False  # a call whose arguments are not literals
        # Up to the module: no loop on the way, at most one top-level function, run once.
        up = parents.get(parent)
        while up is not None and up is not test:
            if isinstance(up, _REPEATS):
                return False
            if isinstance(up, ast.FunctionDef):
                if functions.get(up.name) is not up or named[up.name] != 1:
                    return False
                if len(runs.get(up.name, ())) != 1:
                    return False
            up = parents.get(up)
    return True


def _answer_in_run(run: Any, mark: str, wall_s: float) -> tuple[dict[str, Any], bool]:
    """The answer to one of the requests of a run that answered several, in order, and whether
    the test may use it without running the call again. A request with a report has its answer
    (two reports for one request: refused, as in a run of its own). The first one without a
    report is the one the run ended in: its answer comes from the run's status, kept only for a
    limit that a re-run would hit again (the CPU limit, memory); a wall-clock kill may be the
    machine's load, so the test runs that call again, alone, when it reaches it."""
    from restem.sandbox import Status

    kind, _ = read_report(mark, run, raw=True)
    ended = run.status is not Status.OK and run.status is not Status.RUNTIME_ERROR
    # A cut-off run may hold half a report: the status says more than a malformed line then.
    if kind == "none" or (kind == "malformed" and ended):
        answer = _answer(run, mark)
        if run.status is Status.MEMORY:
            return answer, True
        wall_clock = "wall-clock" in (run.reason or "") or run.wall_s >= 0.9 * wall_s
        return answer, run.status is Status.TIMEOUT and not wall_clock
    return _answer(run, mark, report_first=True), True


def _answer(run: Any, mark: str, report_first: bool = False) -> dict[str, Any]:
    """The checker's answer to one call, from the sandbox run that made it (`report_first`:
    from its report, whatever ended the run after it)."""
    from restem.sandbox import Status

    ended = run.status is not Status.OK and run.status is not Status.RUNTIME_ERROR
    if ended and not report_first:
        status = {
            Status.TIMEOUT: CodeStatus.TIMEOUT,
            Status.MEMORY: CodeStatus.MEMORY,
            Status.OUTPUT_LIMIT: CodeStatus.WRONG_ANSWER,
        }.get(run.status, CodeStatus.SANDBOX_ERROR)
        reason = run.reason or str(run.status)
        if run.status is Status.OUTPUT_LIMIT:
            reason = "printed more than the output limit"
        return {"abort": [status.value, reason]}
    kind, detail = read_report(mark, run, raw=True)
    if kind == "value":
        answer = {"value": detail["value"], "args": detail.get("args", []), **_kw(detail)}
        if "names" in detail:  # a describe request's answer
            answer["names"] = detail["names"]
        return answer
    if kind == "error":
        if detail[0] == "MemoryError":
            return {"abort": [CodeStatus.MEMORY.value, "MemoryError: " + detail[1]]}
        return {"raise": detail}
    if kind == "compile_error":
        return {"abort": [CodeStatus.COMPILE_ERROR.value, detail]}
    if kind == "not_plain":
        return {
            "abort": [
                CodeStatus.WRONG_ANSWER.value,
                f"returned something that is not plain data ({detail})",
            ]
        }
    status = CodeStatus.MEMORY if "MemoryError" in str(detail) else CodeStatus.RUNTIME_ERROR
    return {"abort": [status.value, str(detail)]}


def _names(kinds: Any) -> dict[str, Any] | None:
    """A describe answer checked before the test process decodes it: each name "callable",
    "other" or {"value": a value's tagged form}; None if anything else."""
    if not isinstance(kinds, dict):
        return None
    for name, kind in kinds.items():
        if kind in ("callable", "other"):
            continue
        if not (isinstance(name, str) and isinstance(kind, dict) and list(kind) == ["value"]):
            return None
        try:
            decode(kind["value"])
        except (ValueFormatError, TypeError, KeyError, AttributeError, RecursionError):
            return None
    return kinds


def _kw(detail: dict) -> dict:
    return {"kwargs": detail["kwargs"]} if "kwargs" in detail else {}


class _Lines:
    """Lines from a pipe, each within a deadline."""

    def __init__(self, stream: Any) -> None:
        self.fd = stream.fileno()
        self.buffer = b""
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.fd, selectors.EVENT_READ)

    def read(self, timeout: float) -> bytes | None:
        """One line (without its newline), b"" at end of stream, None on timeout."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return b""
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def close(self) -> None:
        self.selector.close()


def judge_check(
    problem: Problem,
    index: int,
    program: str,
    run_many: Callable[[str, Sequence[str]], Iterator[Any]],
    run_one: Callable[[str, str], tuple[Any, bool]],
    *,
    checkers: CheckerPool,
    cpu_budget_s: float,
    wall_s: float,
) -> CheckOutcome:
    """Judge assert test `index` of `problem` with the test in a trusted host process and the
    solution (`program`: the harness program of `execute.harness_program`) in the sandbox.
    `run_many(program, stdins)` runs requests ahead of time; `run_one(program, stdin)` runs one
    as the test reaches it and returns (result, retried)."""
    start = time.monotonic()
    try:
        plan = plan_check(problem, index)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        return CheckOutcome(CodeStatus.INVALID_PROBLEM, f"test {index}: {exc}", 0.0, 0.0)
    spent = 0.0
    retried = False
    memo: dict[str, list[dict[str, Any]]] = {}
    names: dict[str, Any] = {}

    base_job = {
        "code": plan.code,
        "setup": plan.setup,
        "prompt": plan.prompt,
        "entry": plan.entry,
        "modules": list(plan.modules),
    }
    checker = checkers.acquire()
    healthy = False
    try:
        # A discovery run of the test, on recorders, shows the calls it will make when their
        # arguments do not depend on the program's answers (most tests, loops included). A
        # straight-line test's calls are all written out: no need.
        discovered: list[dict[str, Any]] = []
        healthy = True
        if not plan.complete:
            discovered, healthy = checker.discover(
                {**base_job, "names": dict.fromkeys(plan.names, "callable"), "cpu_s": 2},
                min(wall_s, 10.0),
            )
        if not healthy:
            checker.close()
            checker = checkers.acquire()
        calls: list[tuple[str, dict[str, Any]]] = []
        for call in discovered:
            request = {"op": "call", **call}
            calls.append((_key(call["fn"], call["args"], call["kwargs"]), request))
        known = {key for key, _ in calls}
        calls += [(key, json.loads(text)) for key, text in plan.calls if key not in known]

        # Ahead of time, in one sandbox run: what the free names are, and the calls.
        requests: list[tuple[str | None, dict[str, Any]]] = []  # (memo key, None: describe)
        if plan.names:
            requests.append((None, {"op": "describe", "names": list(plan.names)}))
        requests += calls[:_AHEAD]
        if requests:
            stdin, marks = requests_stdin([request for _, request in requests])
            stream = run_many(program, [stdin])
            try:
                run = next(iter(stream), None)
            finally:
                close = getattr(stream, "close", None)
                if close is not None:
                    close()
            if run is not None:
                spent += run.cpu_s if run.cpu_s is not None else run.wall_s
            for (key, _), mark in zip(requests, marks) if run is not None else ():
                answer, memoize = _answer_in_run(run, mark, wall_s)
                if key is None:
                    if "abort" in answer:
                        status, reason = answer["abort"]
                        return CheckOutcome(CodeStatus(status), reason, spent, _since(start))
                    names = _names(answer.get("names"))
                    if names is None:
                        why = "the program's names came back malformed"
                        return CheckOutcome(CodeStatus.RUNTIME_ERROR, why, spent, _since(start))
                    continue
                if memoize:
                    memo.setdefault(key, []).append(answer)
                if "abort" in answer:
                    # The run, or the test when it reaches this call, ends here: the later
                    # calls go one by one if the test reaches them.
                    break

        job = {
            **base_job,
            "names": names,
            "cpu_s": max(1.0, cpu_budget_s - spent) + 1,
        }
        status, reason, spent, retried, healthy = checker.converse(
            job, memo, run_one, program, wall_s, cpu_budget_s, spent
        )
    finally:
        checkers.release(checker, healthy)
    return CheckOutcome(status, reason, spent, _since(start), retried)


class CheckerPool:
    """Trusted test processes (`_checker.py` fork servers), started on demand and reused; one
    per test in flight. Thread-safe. `close` ends them all."""

    def __init__(self) -> None:
        self._idle: list[_Checker] = []
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self) -> _Checker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the checker pool is closed")
            if self._idle:
                return self._idle.pop()
        return _Checker()

    def release(self, checker: _Checker, healthy: bool) -> None:
        with self._lock:
            if healthy and not self._closed:
                self._idle.append(checker)
                return
        checker.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for checker in idle:
            checker.close()


class _Checker:
    """One trusted test process: a fork server running one test at a time."""

    def __init__(self) -> None:
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115  (closed by close())
        self.proc = subprocess.Popen(
            [sys.executable, "-I", _CHECKER, _VALUES],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            start_new_session=True,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LC_ALL": "C.UTF-8",
                # which process started it: lets a test find what is left behind
                "RESTEM_CHECKER_OWNER": str(os.getpid()),
            },
        )
        _limit_memory(self.proc.pid)
        self.lines = _Lines(self.proc.stdout)

    def close(self) -> None:
        self.lines.close()
        try:
            # The server and any test child it forked: one process group.
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.errors):
            try:
                stream.close()
            except OSError:
                pass

    def _send(self, data: bytes) -> bool:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def _failure(self) -> str:
        try:
            self.errors.seek(0)
            tail = self.errors.read()[-2000:].decode("utf-8", "replace").strip().splitlines()
        except (OSError, ValueError):
            tail = []
        return "the test process failed" + (f": {tail[-1][:300]}" if tail else "")

    def discover(self, job: dict[str, Any], wall_s: float) -> tuple[list[dict], bool]:
        """The calls a discovery run of the test makes: (calls, still usable)."""
        payload = json.dumps({**job, "discover": _AHEAD}).encode()
        if not self._send(str(len(payload)).encode() + b"\n" + payload):
            return [], False
        calls: list[dict] = []
        while True:
            line = self.lines.read(wall_s)
            if not line:  # a timeout or the end: this process is not reused
                return calls, False
            try:
                message = loads(line.decode("utf-8"))
            except (ValueError, UnicodeDecodeError, RecursionError):
                return calls, False
            if "reaped" in message:
                return calls, True
            if isinstance(message.get("calls"), list):
                calls = [
                    c
                    for c in message["calls"]
                    if isinstance(c, dict) and isinstance(c.get("fn"), str)
                ]

    def converse(
        self,
        job: dict[str, Any],
        memo: dict[str, list[dict[str, Any]]],
        run_one: Callable[[str, str], tuple[Any, bool]],
        program: str,
        wall_s: float,
        cpu_budget_s: float,
        spent: float,
    ) -> tuple[CodeStatus, str, float, bool, bool]:
        """Run one test: (status, reason, CPU spent, retried, still usable)."""
        retried = False
        # The answers run ahead travel with the job: the test takes them without a round trip
        # per call, and only asks here for the calls nobody foresaw.
        payload = json.dumps({**job, "memo": memo}).encode()
        if not self._send(str(len(payload)).encode() + b"\n" + payload):
            return CodeStatus.SANDBOX_ERROR, self._failure(), spent, retried, False
        outcome = None
        while True:
            line = self.lines.read(wall_s)
            if line is None:
                reason = f"the test code ran past {wall_s:g} s"
                return CodeStatus.TIMEOUT, reason, spent, retried, False
            if not line:
                return CodeStatus.SANDBOX_ERROR, self._failure(), spent, retried, False
            try:
                message = loads(line.decode("utf-8"))
            except (ValueError, UnicodeDecodeError, RecursionError):
                why = "the test process sent a malformed line"
                return CodeStatus.SANDBOX_ERROR, why, spent, retried, False
            if "reaped" in message:
                if outcome is not None:
                    return (*outcome, spent, retried, True)
                status = message["reaped"]
                if os.WIFSIGNALED(status) and os.WTERMSIG(status) in (
                    signal.SIGXCPU,
                    signal.SIGKILL,
                ):
                    why = f"the test code ran out of CPU ({cpu_budget_s:g} s for the program)"
                    return CodeStatus.TIMEOUT, why, spent, retried, True
                why = f"the test process ended without a result (wait status {status})"
                return CodeStatus.SANDBOX_ERROR, why, spent, retried, True
            if "done" in message:
                outcome = _done(message)
                continue
            fn, args, kwargs = message.get("call"), message.get("args"), message.get("kwargs")
            if spent >= cpu_budget_s:
                why = f"the program's total limit of {cpu_budget_s:g} CPU s ran out"
                answer = {"abort": [CodeStatus.TIMEOUT.value, why]}
            else:
                request = {"op": "call", "fn": fn, "args": args, "kwargs": kwargs}
                stdin, mark = request_stdin(request)
                run, again = run_one(program, stdin)
                retried = retried or again
                spent += run.cpu_s if run.cpu_s is not None else run.wall_s
                answer = _answer(run, mark)
            if not self._send((json.dumps(answer) + "\n").encode()):
                return CodeStatus.SANDBOX_ERROR, self._failure(), spent, retried, False


def _since(start: float) -> float:
    return round(time.monotonic() - start, 4)


def _limit_memory(pid: int) -> None:
    """The test code is trusted but may still be greedy: bound its address space."""
    try:
        resource.prlimit(pid, resource.RLIMIT_AS, (_CHECKER_MEMORY, _CHECKER_MEMORY))
    except (OSError, ValueError, AttributeError):
        pass


def _done(message: dict) -> tuple[CodeStatus, str]:
    outcome, reason = message.get("done"), message.get("reason")
    if outcome == "pass":
        return CodeStatus.PASSED, "all asserts hold"
    if outcome == "fail":
        return CodeStatus.WRONG_ANSWER, f"assertion failed ({reason})"
    if outcome == "error":
        return CodeStatus.RUNTIME_ERROR, str(reason)
    if outcome == "unsupported":
        return (
            CodeStatus.INVALID_PROBLEM,
            f"this test cannot be judged outside the program's process: {reason}",
        )
    if outcome == "abort" and isinstance(reason, list) and len(reason) == 2:
        try:
            return CodeStatus(reason[0]), str(reason[1])
        except ValueError:
            pass
    return CodeStatus.SANDBOX_ERROR, f"the test process ended with {outcome!r}"
