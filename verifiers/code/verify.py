"""`verify_code` and its batch forms: a program against a problem's tests, in a sandbox.

All tests of one program go to the sandbox as one `Sandbox.run_many` request: the program text is
the same for every test and each test's data is its stdin, so a backend can load the program once
and still run every test in a process of its own (no state leaks from one test to the next, and
a crash or hang costs only that test). Tests run in order and, by default, stop at the first
failure (the request is closed, so the remaining tests never run). Assert tests that are not
`assert EXPR == LITERAL` run in a trusted host process whose calls of the program go to the
sandbox (`restem.verifiers.code.proxy`). The batch forms keep `workers` programs in the sandbox
at once, so every worker stays busy across problems, and as many more being judged on the host
(an assert test's trusted process runs while the sandbox runs the next program).

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
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restem.verifiers.code.execute import (
    TEST_PROGRAM,
    Prepared,
    harness_program,
    is_check_test,
    judge_run,
    prepare_test,
    split_harness,
)
from restem.verifiers.code.judge import Comparison
from restem.verifiers.code.problems import Problem, ProblemError, as_problem
from restem.verifiers.code.proxy import CheckerPool, judge_check
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
    """Normal runs share the sandbox, `slots` at once (None: no bound); a re-run of a timed-out
    test waits until no run is in flight and holds new ones back until it is done."""

    def __init__(self, slots: int | None = None) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._quiet = False
        self._waiting = 0
        self._slots = slots

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while (
                self._quiet
                or self._waiting
                or (self._slots is not None and self._active >= self._slots)
            ):
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


class _Budget:
    """CPU seconds spent on one program so far."""

    def __init__(self) -> None:
        self.spent = 0.0


class _Verifier:
    def __init__(
        self,
        sandbox: Sandbox,
        limits: CodeLimits,
        all_tests: bool,
        comparison: Comparison,
        batch_tests: bool = True,
        slots: int | None = None,
    ) -> None:
        self.sandbox = sandbox
        self.limits = limits
        self.all_tests = all_tests
        self.comparison = Comparison(comparison)
        self.batch_tests = batch_tests
        self.gate = _QuietGate(slots)
        self.checkers = CheckerPool()
        self.takes = _takes(sandbox)

    def close(self) -> None:
        self.checkers.close()

    def verify(self, problem: Any, program: str) -> CodeVerdict:
        if not isinstance(program, str):
            raise TypeError(f"program must be str, got {type(program).__name__}")
        try:
            problem = as_problem(problem)
        except (ProblemError, OSError, UnicodeDecodeError) as exc:
            return CodeVerdict(CodeStatus.INVALID_PROBLEM, reason=str(exc))
        total = len(problem.tests)
        try:
            harness = harness_program(problem, program, self.comparison)
        except (TypeError, ValueError) as exc:
            return CodeVerdict(CodeStatus.INVALID_PROBLEM, reason=str(exc))
        results: list[TestResult] = []
        budget = _Budget()
        index = 0
        while index < total:
            if budget.spent >= self.limits.total_s:
                results.append(
                    TestResult(
                        index,
                        CodeStatus.TIMEOUT,
                        reason=f"the program's total limit of {self.limits.total_s:g} CPU s ran out",
                    )
                )
                break
            if is_check_test(problem, index):
                batch = [self._check_test(problem, harness, index, budget)]
            else:
                batch = self._run_tests(problem, program, harness, index, budget)
            stop = False
            for result in batch:
                results.append(result)
                if result.status is CodeStatus.INVALID_PROBLEM:
                    return CodeVerdict(
                        CodeStatus.INVALID_PROBLEM, tuple(results), total, result.reason
                    )
                if not result.passed and (
                    not self.all_tests or result.status is CodeStatus.COMPILE_ERROR
                ):
                    stop = True
                    break
            if stop:
                break
            index = results[-1].index + 1
        return _verdict(tuple(results), total)

    def _stream(self, program: str, stdins: Sequence[str], limits: Limits) -> Iterator[RunResult]:
        """The runs of one program on `stdins`, in order: one `run_many` request, or (for the
        benchmark's comparison) one `run` per input. Closing it stops the remaining runs. A
        single input is one `run`: loading a program once costs more than one run of it."""
        if self.batch_tests and len(stdins) > 1:
            with self.gate.shared():
                text, options = self._harness(program)
                yield from self.sandbox.run_many(text, stdins, limits, **options)
        else:
            for stdin in stdins:
                with self.gate.shared():
                    run = self._run(program, stdin, limits)
                yield run

    def _run(self, harness: str, stdin: str, limits: Limits) -> RunResult:
        text, options = self._harness(harness)
        return self.sandbox.run(text, stdin, limits, **options)

    def _harness(self, harness: str) -> tuple[str, dict[str, str]]:
        """The sandbox program and options for a `harness_program`: the harness as a preamble
        (run once for many programs where the sandbox can) and the rest as setup, or all as
        setup, or all as the program, by what the sandbox's methods take."""
        if "preamble" in self.takes:
            preamble, setup = split_harness(harness)
            return TEST_PROGRAM, {"setup": setup, "preamble": preamble}
        if "setup" in self.takes:
            return TEST_PROGRAM, {"setup": harness}
        return harness + TEST_PROGRAM, {}

    def _run_tests(
        self, problem: Problem, solution: str, harness: str, first: int, budget: _Budget
    ) -> list[TestResult]:
        """Tests from `first` up to the next check test (or the end), as one request; stops at
        a failure unless all_tests, at the total limit, and before a starved timeout's re-run."""
        prepared: list[tuple[int, Prepared]] = []
        for index in range(first, len(problem.tests)):
            if is_check_test(problem, index):
                break
            try:
                prepared.append(
                    (index, prepare_test(problem, solution, index, self.comparison, harness))
                )
            except (TypeError, ValueError, SyntaxError, RecursionError, MemoryError) as exc:
                if not prepared:
                    reason = f"test {index}: {exc}"
                    return [TestResult(index, CodeStatus.INVALID_PROBLEM, reason=reason)]
                break
        expected = [p.expected for _, p in prepared if isinstance(p.expected, str)]
        limits = self.limits.run_limits(max(expected, key=len, default=None))
        results: list[TestResult] = []
        starved: tuple[int, Prepared, RunResult] | None = None
        stream = self._stream(harness, [p.stdin for _, p in prepared], limits)
        try:
            for (index, test), run in zip(prepared, stream):
                status, reason = judge_run(test, run, self.comparison)
                if status is CodeStatus.TIMEOUT and self._starved(run, limits):
                    starved = (index, test, run)
                    break
                budget.spent += run.cpu_s if run.cpu_s is not None else run.wall_s
                results.append(TestResult(index, status, run.wall_s, reason))
                failed = status is not CodeStatus.PASSED
                if (failed and (not self.all_tests or status is CodeStatus.COMPILE_ERROR)) or (
                    budget.spent >= self.limits.total_s
                ):
                    break
        finally:
            stream.close()
        if starved is not None:
            results.append(self._rerun(*starved, limits, budget))
        return results

    def _rerun(
        self, index: int, test: Prepared, first: RunResult, limits: Limits, budget: _Budget
    ) -> TestResult:
        """A test the wall clock killed with CPU allowance left: once more, alone."""
        run = self._quiet_run(test.program, test.stdin, limits)
        status, reason = judge_run(test, run, self.comparison)
        if status is CodeStatus.TIMEOUT:
            reason = (
                f"{reason}; also on a quiet re-run (first run: {first.wall_s:.1f} s wall, "
                f"{first.cpu_s or 0:.1f} s CPU; load average {_load()})"
            )
        else:
            reason = f"{reason} (on a quiet re-run: the first run timed out under load)"
        budget.spent += run.cpu_s if run.cpu_s is not None else run.wall_s
        return TestResult(index, status, run.wall_s, reason, True)

    def _quiet_run(self, program: str, stdin: str, limits: Limits) -> RunResult:
        with self.gate.quiet():
            return self._run(program, stdin, limits)

    def _check_test(
        self, problem: Problem, harness: str, index: int, budget: _Budget
    ) -> TestResult:
        """An assert test run in the trusted test process, its calls in the sandbox."""
        from restem.sandbox import Status

        limits = self.limits.run_limits()

        def run_many(program: str, stdins: Sequence[str]) -> Iterator[RunResult]:
            return self._stream(program, stdins, limits)

        def run_one(program: str, stdin: str) -> tuple[RunResult, bool]:
            stream = self._stream(program, [stdin], limits)
            try:
                run = next(stream)
            finally:
                stream.close()
            if run.status is Status.TIMEOUT and self._starved(run, limits):
                return self._quiet_run(program, stdin, limits), True
            return run, False

        outcome = judge_check(
            problem,
            index,
            harness,
            run_many,
            run_one,
            checkers=self.checkers,
            cpu_budget_s=max(0.0, self.limits.total_s - budget.spent),
            wall_s=limits.wall_s,
        )
        budget.spent += outcome.cpu_s
        return TestResult(index, outcome.status, outcome.wall_s, outcome.reason, outcome.retried)

    def _starved(self, run: RunResult, limits: Limits) -> bool:
        """Killed by the wall clock with CPU allowance left: maybe load, so worth one re-run.
        (A CPU-limit kill comes earlier than the wall clock, whatever the load.)"""
        # RunResult has no field naming the limit hit; its reason says "wall-clock" for it.
        wall_clock = "wall-clock" in run.reason or run.wall_s >= 0.9 * limits.wall_s
        if not self.limits.retry_timeouts or not wall_clock:
            return False
        return run.cpu_s is None or run.cpu_s < 0.9 * limits.cpu_s


def _takes(sandbox: Sandbox) -> set[str]:
    """Which of `setup` and `preamble` the sandbox's run and run_many both take (a subclass
    written before them may take neither)."""
    import inspect

    taken = {"setup", "preamble"}
    for method in (sandbox.run, sandbox.run_many):
        try:
            parameters = inspect.signature(method).parameters.values()
        except (TypeError, ValueError):
            return set()
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            taken &= {p.name for p in parameters}
    if "setup" not in taken:
        return set()
    return taken


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
    batch_tests: bool = True,
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
            return _verify_once(
                sandbox, limits, all_tests, comparison, batch_tests, problem, program
            )
    return _verify_once(backend, limits, all_tests, comparison, batch_tests, problem, program)


def _verify_once(sandbox: Sandbox, limits, all_tests, comparison, batch_tests, problem, program):
    verifier = _Verifier(sandbox, limits, all_tests, comparison, batch_tests)
    try:
        return verifier.verify(problem, program)
    finally:
        verifier.close()


def iter_verify_code(
    items: Iterable[tuple[Any, str]],
    *,
    backend: str | Sandbox | None = "local",
    workers: int | None = None,
    limits: CodeLimits | None = None,
    all_tests: bool = False,
    comparison: Comparison | str = Comparison.STRICT,
    batch_tests: bool = True,
) -> Iterator[CodeVerdict]:
    """Verdicts for (problem, program) pairs, in input order, each as soon as it and those before
    it are known. `workers` programs run in the sandbox at once (default: the sandbox's workers,
    else CPUs), and as many more are judged on the host meanwhile (an assert test's trusted test
    process, output comparisons), so that neither side waits for the other.
    `batch_tests=False` sends each test as its own `run` instead of all of a program's tests as
    one `run_many` request (the slower path, kept for the benchmark's comparison)."""
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
    workers = max(1, workers)
    verifier = _Verifier(sandbox, limits, all_tests, comparison, batch_tests, slots=workers)
    try:
        # Leaving the `with` waits for the verdicts in progress, so nothing uses the verifier's
        # test processes or the sandbox once they are closed.
        with ThreadPoolExecutor(max_workers=2 * workers) as pool:
            futures = [pool.submit(verifier.verify, problem, program) for problem, program in items]
            try:
                for future in futures:
                    yield future.result()
            finally:
                for future in futures:
                    future.cancel()
    finally:
        verifier.close()
        if owned:
            sandbox.close()


def verify_code_batch(items: Iterable[tuple[Any, str]], **options: Any) -> list[CodeVerdict]:
    """`iter_verify_code` as a list (same options)."""
    return list(iter_verify_code(items, **options))
