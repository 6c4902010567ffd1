"""The one interface every backend implements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from .limits import Limits
from .result import RunResult

__all__ = ["Program", "Sandbox"]

# A program is Python source text; stdin is text (UTF-8) or bytes.
Program = tuple[str, str | bytes]


def _options(setup: str, preamble: str) -> dict[str, str]:
    options = {"setup": setup} if setup else {}
    if preamble:
        options["preamble"] = preamble
    return options


def as_bytes(data: str | bytes | None) -> bytes:
    if data is None:
        return b""
    return data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")


class Sandbox:
    """Runs untrusted Python programs. Thread-safe; `run_batch` runs up to `workers` at once.

    Untrusted input never raises: whatever the program does comes back as a `RunResult`. Misuse by
    the caller (bad Limits, using a closed sandbox) does raise.
    """

    name: str = "abstract"
    workers: int = 1

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # Each default below is written in terms of the other: a backend overrides at least one.
        if cls.run is Sandbox.run and cls.run_many is Sandbox.run_many:
            raise TypeError(f"{cls.__name__} must implement run or run_many")

    def run(
        self,
        program: str,
        stdin: str | bytes = b"",
        limits: Limits | None = None,
        *,
        setup: str = "",
        preamble: str = "",
    ) -> RunResult:
        """Run one program on one input. By default the first (only) result of `run_many`."""
        # Passed on only when given: a subclass written before them still works without them.
        options = _options(setup, preamble)
        results = self.run_many(program, [stdin], limits, **options)
        try:
            return next(results)
        finally:
            results.close()

    def run_many(
        self,
        program: str,
        stdins: Sequence[str | bytes],
        limits: Limits | None = None,
        *,
        setup: str = "",
        preamble: str = "",
    ) -> Iterator[RunResult]:
        """Run one program on many inputs (its tests); results in input order, yielded as each
        finishes. Each input runs in its own process with its own limits, stdin file and clean
        work dir, as `run` does. Stop iterating (or `close()` the generator) and the remaining
        inputs are not run: that is how a judge stops at the first failure.

        `setup`: Python source that every test runs first, in the program's `__main__`
        namespace (define a solution, say). A backend may run it once, apart from the tests,
        and start each test from a copy of the state it left; so it should neither read stdin
        nor print (there, it gets no stdin and its output is discarded).

        `preamble`: YOUR OWN trusted Python source, never a program's, run before `setup` in
        the same namespace (a test harness's definitions, say). A backend may run it once for
        all the programs that share it, outside any program's isolation: that is why it must
        not hold untrusted code.

        An open `run_many` holds one of the sandbox's `workers` slots until its last result or
        until it is closed: one thread should not interleave more of them than `workers`.
        Backends override this to load the program once; this default runs each input with `run`.
        """
        options = _options(setup, preamble)
        for stdin in stdins:
            yield self.run(program, stdin, limits, **options)

    def run_batch(
        self, programs: Sequence[Program | str], limits: Limits | None = None
    ) -> list[RunResult]:
        """Run many programs concurrently; results in input order."""
        jobs = [(p, b"") if isinstance(p, str) else (p[0], p[1]) for p in programs]
        if not jobs:
            return []
        # Threads only wait on child processes / sockets here, so the GIL is no bottleneck.
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(jobs)))) as ex:
            return list(ex.map(lambda job: self.run(job[0], job[1], limits), jobs))

    def close(self) -> None:
        """Release processes / containers. Idempotent."""

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
