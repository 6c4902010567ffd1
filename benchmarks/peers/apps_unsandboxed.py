"""The unsafe baseline many code-RL projects use: APPS ``testing_util``-style checking.

The solution is ``exec``-ed inside a worker process of the caller's machine with no isolation at
all: stdin and stdout are swapped for in-memory buffers, a ``signal.alarm`` bounds the time, and
the outputs are compared by whitespace-separated tokens (standard-input problems) or with ``==``
on the returned value (call-based problems, an expected ``[v]`` also matching ``v``). Written here
from that behaviour, not copied. A program can read any file, open sockets, patch the checker or
kill the worker: never run model output this way. It is here as the speed a sandbox gives up.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

__all__ = ["NAME", "Job", "available", "run_batch", "run_job"]

NAME = "unsandboxed"


@dataclass(frozen=True)
class Job:
    """One test of one program: ``mode`` stdio | call | assert (as in `restem.verifiers.code`)."""

    mode: str
    program: str
    input: Any  # stdio: stdin text; call: the argument list; assert: the test code
    expected: Any = None
    fn_name: str | None = None
    setup: str = ""


def available() -> str | None:
    return None


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout


def _tokens_equal(got: str, expected: str) -> bool:
    return got.split() == str(expected).split()


def _value_equal(got: Any, expected: Any) -> bool:
    if isinstance(got, tuple):
        got = list(got)
    try:
        return got == expected or [got] == expected
    except Exception:
        return False


def _target(namespace: dict, fn_name: str):
    cls = namespace.get("Solution")
    if isinstance(cls, type) and hasattr(cls, fn_name):
        return getattr(cls(), fn_name)
    return namespace[fn_name]


def run_job(job: Job, timeout_s: int = 4) -> bool:
    """Did the test pass? Runs in this process."""
    real_in, real_out, real_err = sys.stdin, sys.stdout, sys.stderr
    stdin_text = job.input if job.mode == "stdio" else ""
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin_text.encode("utf-8")), encoding="utf-8")
    captured = io.BytesIO()
    sys.stdout = io.TextIOWrapper(captured, encoding="utf-8", write_through=True)
    sys.stderr = io.StringIO()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(timeout_s)
    try:
        namespace: dict[str, Any] = {"__name__": "__main__"}
        try:
            exec(compile(job.program, "<solution>", "exec"), namespace)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                return False
        if job.mode == "stdio":
            sys.stdout.flush()
            return _tokens_equal(captured.getvalue().decode("utf-8", "replace"), job.expected)
        if job.mode == "call":
            return _value_equal(_target(namespace, job.fn_name)(*job.input), job.expected)
        if job.setup:
            exec(job.setup, namespace)
        exec(job.input, namespace)  # assert mode: the test raises when it fails
        return True
    except BaseException:  # anything the program does is a failed test
        return False
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        sys.stdin, sys.stdout, sys.stderr = real_in, real_out, real_err


def _run_chunk(jobs: list[Job]) -> list[bool]:
    return [run_job(job) for job in jobs]


def run_batch(jobs: Sequence[Job], workers: int, executor: ProcessPoolExecutor | None = None):
    """Test results in order, from ``workers`` forked worker processes (or ``executor``)."""
    jobs = list(jobs)
    size = max(1, math.ceil(len(jobs) / (max(1, workers) * 8)))
    chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
    if executor is not None:
        return [r for chunk in executor.map(_run_chunk, chunks) for r in chunk]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as ex:
        return [r for chunk in ex.map(_run_chunk, chunks) for r in chunk]
