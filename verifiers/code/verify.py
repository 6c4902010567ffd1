"""`verify_code` and its batch forms: a program against a problem's tests, in a sandbox.

Each test is one sandbox run (a fresh process: no state leaks from one test to the next, and a
crash or hang costs only that test). Tests of one program run in order and, by default, stop at
the first failure; the batch forms keep `workers` programs in flight at once, so every worker
stays busy across problems.

Time limits and machine load
----------------------------
The per-test limit (`CodeLimits.test_s`, 4 s) is CPU time, which a busy machine hardly changes:
a program that needs more CPU than that fails as `timeout` at once, however idle the machine.
The wall-clock limit behind it (3 × test_s + 1 s) catches programs that sleep or block, and
programs the machine starves. A test killed by the wall clock before it used its CPU allowance
may have been starved by other work, so it is re-run once, alone: new runs of the same batch
wait until the re-run is over (a "quiet" sandbox). If it passes then, the test passes and its
result says `retried`; if it times out again, the verdict is `timeout` and its reason gives the
machine's load average, so a loaded machine shows in the output instead of silently turning
correct programs into failures. The total per-program limit (`total_s`, 60 s) also counts CPU
seconds.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restem.verifiers.code.execute import judge_run, prepare_test
from restem.verifiers.code.judge import Comparison
from restem.verifiers.code.problems import Problem, ProblemError, as_problem
from restem.verifiers.verdict import CodeStatus, CodeVerdict, TestResult

if TYPE_CHECKING:
    from restem.sandbox import Limits, RunResult, Sandbox

__all__ = ["CodeLimits", "iter_verify_code", "open_sandbox", "verify_code", "verify_code_batch"]


@dataclass(frozen=True)
class CodeLimits:
    """Resource limits for judging one program (see the module docstring for the time policy).

    test_s        CPU seconds per test; the wall-clock limit is 3 * test_s + 1
    total_s       CPU seconds for all tests of one program
    memory_mb     address space of the program (and, under docker, its container's memory)
    processes     processes + threads at once
    output_bytes  stdout cap per test; raised to twice the expected output where that is larger
    retry_timeouts  re-run once, alone, a test that the wall clock killed under load
    """

    test_s: float = 4.0
    total_s: float = 60.0
    memory_mb: int = 1024
    processes: int = 32
    output_bytes: int = 1 << 20
    retry_timeouts: bool = True

    def __post_init__(self) -> None:
        for name in ("test_s", "total_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"CodeLimits.{name} must be positive, got {value!r}")

    def run_limits(self, expected_output: Any = None) -> Limits:
        from restem.sandbox import Limits

        cap = self.output_bytes
        if isinstance(expected_output, str):
            cap = max(cap, 2 * len(expected_output.encode("utf-8", "replace")) + 4096)
        return Limits(
            wall_s=3 * self.test_s + 1,
            cpu_s=self.test_s,
            memory_mb=self.memory_mb,
            processes=self.processes,
            output_bytes=cap,
        )


def open_sandbox(backend: str | None = "local", workers: int = 1, limits: CodeLimits | None = None):
    """A sandbox for `backend` ("local", "docker", or None for the sandbox package's choice),
    sized for `limits` (a docker container's memory ceiling must hold the program's)."""
    from restem.sandbox import get_sandbox

    limits = limits or CodeLimits()
    name = backend or os.environ.get("RESTEM_SANDBOX") or "auto"
    if name == "auto":
        from restem.sandbox import docker_available

        name = "docker" if docker_available() else "local"
    if name == "docker":
        return get_sandbox("docker", workers=workers, limits=limits.run_limits())
    return get_sandbox(name, workers=workers)


class _QuietGate:
    """Normal runs share the sandbox; a re-run of a timed-out test waits until no run is in
    flight and holds new ones back until it is done."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._quiet = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._quiet or self._waiting:
                self._cond.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()

    @contextmanager
    def quiet(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._quiet or self._active:
                self._cond.wait()
            self._waiting -= 1
            self._quiet = True
        try:
            yield
        finally:
            with self._cond:
                self._quiet = False
                self._cond.notify_all()


class _Verifier:
    def __init__(
        self,
        sandbox: Sandbox,
        limits: CodeLimits,
        all_tests: bool,
        comparison: Comparison,
    ) -> None:
        self.sandbox = sandbox
        self.limits = limits
        self.all_tests = all_tests
        self.comparison = Comparison(comparison)
        self.gate = _QuietGate()

    def verify(self, problem: Any, program: str) -> CodeVerdict:
        if not isinstance(program, str):
            raise TypeError(f"program must be str, got {type(program).__name__}")
        try:
            problem = as_problem(problem)
        except (ProblemError, OSError, UnicodeDecodeError) as exc:
            return CodeVerdict(CodeStatus.INVALID_PROBLEM, reason=str(exc))
        total = len(problem.tests)
        results: list[TestResult] = []
        spent = 0.0
        for index in range(total):
            if spent >= self.limits.total_s:
                results.append(
                    TestResult(
                        index,
                        CodeStatus.TIMEOUT,
                        reason=f"the program's total limit of {self.limits.total_s:g} CPU s ran out",
                    )
                )
                break
            result, cost = self._run_test(problem, program, index)
            spent += cost
            results.append(result)
            if result.status is CodeStatus.INVALID_PROBLEM:
                return CodeVerdict(CodeStatus.INVALID_PROBLEM, tuple(results), total, result.reason)
            if not result.passed and (
                not self.all_tests or result.status is CodeStatus.COMPILE_ERROR
            ):
                break
        return _verdict(tuple(results), total)

    def _run_test(self, problem: Problem, program: str, index: int) -> tuple[TestResult, float]:
        try:
            prepared = prepare_test(problem, program, index, self.comparison)
        except (TypeError, ValueError, SyntaxError, RecursionError, MemoryError) as exc:
            return TestResult(index, CodeStatus.INVALID_PROBLEM, reason=f"test {index}: {exc}"), 0
        limits = self.limits.run_limits(prepared.expected)
        with self.gate.shared():
            run = self.sandbox.run(prepared.program, prepared.stdin, limits)
        status, reason = judge_run(prepared, run, self.comparison)
        retried = False
        if status is CodeStatus.TIMEOUT and self._starved(run, limits):
            first = run
            with self.gate.quiet():
                run = self.sandbox.run(prepared.program, prepared.stdin, limits)
            status, reason = judge_run(prepared, run, self.comparison)
            retried = True
            if status is CodeStatus.TIMEOUT:
                reason = (
                    f"{reason}; also on a quiet re-run (first run: {first.wall_s:.1f} s wall, "
                    f"{first.cpu_s or 0:.1f} s CPU; load average {_load()})"
                )
            else:
                reason = f"{reason} (on a quiet re-run: the first run timed out under load)"
        cost = run.cpu_s if run.cpu_s is not None else run.wall_s
        return TestResult(index, status, run.wall_s, reason, retried), cost

    def _starved(self, run: RunResult, limits: Limits) -> bool:
        """Killed by the wall clock with CPU allowance left: maybe load, so worth one re-run.
        (A CPU-limit kill comes earlier than the wall clock, whatever the load.)"""
        # RunResult has no field naming the limit hit; its reason says "wall-clock" for it.
        wall_clock = "wall-clock" in run.reason or run.wall_s >= 0.9 * limits.wall_s
        if not self.limits.retry_timeouts or not wall_clock:
            return False
        return run.cpu_s is None or run.cpu_s < 0.9 * limits.cpu_s


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def _verdict(results: tuple[TestResult, ...], total: int) -> CodeVerdict:
    failed = next((r for r in results if not r.passed), None)
    if failed is None:
        return CodeVerdict(CodeStatus.PASSED, results, total, f"all {total} tests passed")
    return CodeVerdict(failed.status, results, total, f"test {failed.index}: {failed.reason}")


def verify_code(
    problem: Problem | dict | str | os.PathLike,
    program: str,
    *,
    backend: str | Sandbox | None = "local",
    limits: CodeLimits | None = None,
    all_tests: bool = False,
    comparison: Comparison | str = Comparison.STRICT,
) -> CodeVerdict:
    """Judge `program` (Python source) against `problem`'s tests.

    `problem`: a `Problem`, a row object (APPS `input_output`, HumanEval, MBPP), or an APPS
    folder path. `backend`: "local", "docker", None (docker when an engine answers), or an open
    `Sandbox` to reuse (starting a docker pool per call is slow). Never raises on what the program
    does or on bad problem data (that is `invalid_problem`); a non-str program is a TypeError.
    """
    limits = limits or CodeLimits()
    if isinstance(backend, str) or backend is None:
        with open_sandbox(backend, 1, limits) as sandbox:
            return _Verifier(sandbox, limits, all_tests, comparison).verify(problem, program)
    return _Verifier(backend, limits, all_tests, comparison).verify(problem, program)


def iter_verify_code(
    items: Iterable[tuple[Any, str]],
    *,
    backend: str | Sandbox | None = "local",
    workers: int | None = None,
    limits: CodeLimits | None = None,
    all_tests: bool = False,
    comparison: Comparison | str = Comparison.STRICT,
) -> Iterator[CodeVerdict]:
    """Verdicts for (problem, program) pairs, in input order, each as soon as it and those before
    it are known. `workers` programs run at once (default: the sandbox's workers, else CPUs)."""
    limits = limits or CodeLimits()
    items = list(items)
    for _, program in items:
        if not isinstance(program, str):
            raise TypeError(f"program must be str, got {type(program).__name__}")
    owned = isinstance(backend, str) or backend is None
    if owned:
        workers = workers or os.cpu_count() or 1
        sandbox = open_sandbox(backend, workers, limits)
    else:
        sandbox = backend
        workers = workers or sandbox.workers
    try:
        verifier = _Verifier(sandbox, limits, all_tests, comparison)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(verifier.verify, problem, program) for problem, program in items]
            try:
                for future in futures:
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()
    finally:
        if owned:
            sandbox.close()


def verify_code_batch(items: Iterable[tuple[Any, str]], **options: Any) -> list[CodeVerdict]:
    """`iter_verify_code` as a list (same options)."""
    return list(iter_verify_code(items, **options))
