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
    test waits until no run is in flight and holds new ones back until it is done. `on_free`
    is called whenever a slot is given back (outside the lock)."""

    def __init__(self, slots: int | None = None, on_free: Any = None) -> None:
        self._cond = threading.Condition()
        self._active = 0
        self._quiet = False
        self._waiting = 0  # quiet re-runs waiting
        self._queued = 0  # normal runs waiting for a slot
        self._slots = slots
        self.on_free = on_free

    @property
    def slots(self) -> int | None:
        return self._slots

    def _open(self) -> bool:
        return not (
            self._quiet
            or self._waiting
            or (self._slots is not None and self._active >= self._slots)
        )

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._queued += 1
            try:
                while not self._open():
                    self._cond.wait()
            finally:
                self._queued -= 1
            self._active += 1
        try:
            yield
        finally:
            self.leave()

    def try_enter(self) -> bool:
        """A bounded slot now, if one is free that no run is waiting for (for a helping lane,
        which must never hold back a program)."""
        with self._cond:
            if self._slots is None or self._queued or not self._open():
                return False
            self._active += 1
            return True

    def leave(self, offer: bool = True) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()
        if offer and self.on_free is not None:
            self.on_free()

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
        self.gate = _QuietGate(slots, on_free=self._offer)
        self.checkers = CheckerPool()
        self.takes = _takes(sandbox)
        # Programs of the batch not started yet (`iter_verify_code` sets it): while there are
        # any, a free slot is theirs, and no running program's tests are split (`_offer`).
        self.backlog = 0
        self._lock = threading.Lock()
        self._running: set[_Lanes] = set()

    def close(self) -> None:
        self.checkers.close()

    def verify(self, problem: Any, program: str) -> CodeVerdict:
        if not isinstance(program, str):
            raise TypeError(f"program must be str, got {type(program).__name__}")
        with self._lock:
            self.backlog = max(0, self.backlog - 1)
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
            if not batch:  # a sandbox that answered fewer runs than it was given: our bug
                reason = "the sandbox returned no result for this test"
                batch = [TestResult(index, CodeStatus.SANDBOX_ERROR, reason=reason)]
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
        if self.batch_tests:
            with self.gate.shared():
                yield from self._open(program, stdins, limits)
        else:
            for stdin in stdins:
                with self.gate.shared():
                    run = self._run(program, stdin, limits)
                yield run

    def _open(self, program: str, stdins: Sequence[str], limits: Limits) -> Iterator[RunResult]:
        """`_stream`'s batched runs in a slot the caller holds."""
        if len(stdins) > 1:
            text, options = self._harness(program)
            yield from self.sandbox.run_many(text, stdins, limits, **options)
        elif stdins:
            yield self._run(program, stdins[0], limits)

    def _offer(self) -> None:
        """Once every program of the batch has started, a free sandbox slot takes over the
        second half of the tests a running program has not reached (the one with the most
        time expected left): the end of a batch no longer waits on one long program while
        other slots idle."""
        if self.backlog or not self.batch_tests or self.gate.slots is None:
            return
        with self._lock:
            running = list(self._running)
        best, most = None, _SPLIT_MIN_S
        for lanes in running:
            left = lanes.expected_left()
            if left > most:
                best, most = lanes, left
        if best is None or not self.gate.try_enter():
            return
        if not best.split():
            self.gate.leave(offer=False)

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
        """Tests from `first` up to the next check test (or the end), as one request (or more,
        see `_offer`); stops at a failure unless all_tests, at the total limit, and before a
        starved timeout's re-run."""
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
        lanes = _Lanes(self, harness, prepared, limits, budget)
        with self._lock:
            self._running.add(lanes)
        try:
            lanes.run()
        finally:
            with self._lock:
                self._running.discard(lanes)
        return lanes.collect()

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


# A split costs a program load in another slot (a few ms in a warm pool): only for more time
# left than this.
_SPLIT_MIN_S = 0.1


class _Span:
    """The positions one lane runs: `next` (running or about to) up to `stop`; `done` tests
    answered so far, which took `run_s` seconds (the tests' own wall time, without loading the
    program)."""

    def __init__(self, start: int, stop: int) -> None:
        self.next, self.stop = start, stop
        self.done = 0
        self.run_s = 0.0


class _Lanes:
    """One program's tests from `first` up to the next check test, run by one `run_many`
    request (a lane) or, once slots fall idle at the end of a batch, by several: a lane gives
    the second half of the tests it has not started to a new lane in a free slot (`split`).
    Each result is kept by its position and `collect` reads them in order, cutting where one
    lane would have stopped, so the verdict is the same however the tests were spread."""

    def __init__(
        self,
        verifier: _Verifier,
        harness: str,
        prepared: list[tuple[int, Prepared]],
        limits: Limits,
        budget: _Budget,
    ) -> None:
        self.verifier = verifier
        self.harness = harness
        self.prepared = prepared
        self.limits = limits
        self.budget = budget
        self.lock = threading.Lock()
        self.results: dict[int, tuple[TestResult, float]] = {}  # position -> (result, CPU s)
        self.halt = len(prepared)  # no position from here on is wanted
        self.spent = 0.0  # CPU s of every lane's runs, for stopping at the total limit
        self.starved: tuple[int, RunResult] | None = None
        self.spans: list[_Span] = []
        self.helpers: list[threading.Thread] = []

    def run(self) -> None:
        """Run every test (this thread is the first lane), then wait for the other lanes."""
        span = _Span(0, len(self.prepared))
        with self.lock:
            self.spans.append(span)
        self._lane(span, self.verifier._stream)
        joined = 0
        while True:
            with self.lock:
                if joined == len(self.helpers):
                    return
                helper = self.helpers[joined]
            helper.join()
            joined += 1

    def _lane(self, span: _Span, open_stream: Any) -> None:
        with self.lock:
            stop = min(span.stop, self.halt)
        if span.next >= stop:
            return
        stream = open_stream(
            self.harness, [t.stdin for _, t in self.prepared[span.next : stop]], self.limits
        )
        verifier = self.verifier
        try:
            for position, run in zip(range(span.next, stop), stream):
                index, test = self.prepared[position]
                status, reason = judge_run(test, run, verifier.comparison)
                cpu = run.cpu_s if run.cpu_s is not None else run.wall_s
                with self.lock:
                    if position >= min(span.stop, self.halt):
                        break  # given to another lane meanwhile, or past a stop
                    span.next, span.done = position + 1, span.done + 1
                    span.run_s += run.wall_s
                    self.spent += cpu
                    if status is CodeStatus.TIMEOUT and verifier._starved(run, self.limits):
                        if self.starved is None or position < self.starved[0]:
                            self.starved = (position, run)
                        self.halt = min(self.halt, position)
                        break
                    self.results[position] = (TestResult(index, status, run.wall_s, reason), cpu)
                    failed = status is not CodeStatus.PASSED
                    if failed and (not verifier.all_tests or status is CodeStatus.COMPILE_ERROR):
                        self.halt = min(self.halt, position + 1)
                    if self.budget.spent + self.spent >= verifier.limits.total_s:
                        self.halt = min(self.halt, position + 1)
                    if span.next >= min(span.stop, self.halt):
                        break
                verifier._offer()
        finally:
            stream.close()
            with self.lock:
                span.stop = span.next  # nothing more runs in this lane

    def expected_left(self) -> float:
        """Seconds the longest lane still needs beyond its current test, at the pace of its
        tests so far (0 before its first answer)."""
        most = 0.0
        with self.lock:
            for span in self.spans:
                left = min(span.stop, self.halt) - span.next - 1
                if left > 0 and span.done:
                    most = max(most, left * span.run_s / span.done)
        return most

    def split(self) -> bool:
        """Give the second half of the longest lane's tests not started to a new lane, in the
        sandbox slot the caller holds (released when that lane ends). False: nothing to give."""
        with self.lock:
            spans = [s for s in self.spans if min(s.stop, self.halt) - s.next >= 2]
            if not spans:
                return False
            span = max(spans, key=lambda s: min(s.stop, self.halt) - s.next)
            stop = min(span.stop, self.halt)
            new = _Span(stop - (stop - span.next) // 2, stop)
            span.stop = new.next
            self.spans.append(new)
            helper = threading.Thread(target=self._help, args=(new,), daemon=True)
            self.helpers.append(helper)
            helper.start()
        return True

    def _help(self, span: _Span) -> None:
        try:
            self._lane(span, self.verifier._open)
        finally:
            self.verifier.gate.leave()

    def collect(self) -> list[TestResult]:
        """The results in order, up to where one lane would have stopped; a starved test's
        re-run after them. The budget is charged for those only, as one lane's would be."""
        verifier, out = self.verifier, []
        for position in range(len(self.prepared)):
            if self.starved is not None and position == self.starved[0]:
                index, test = self.prepared[position]
                out.append(verifier._rerun(index, test, self.starved[1], self.limits, self.budget))
                break
            if position not in self.results:
                break  # not reached (a stop; the caller goes on from here)
            result, cpu = self.results[position]
            out.append(result)
            self.budget.spent += cpu
            if (
                not result.passed
                and (not verifier.all_tests or result.status is CodeStatus.COMPILE_ERROR)
            ) or self.budget.spent >= verifier.limits.total_s:
                break
        return out


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
    verifier.backlog = len(items)
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
