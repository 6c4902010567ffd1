"""The public entry points: verify one answer, or a batch in order, under hard time limits.

Each pair is first judged in the caller's process with exact arithmetic (linear-time parsing,
size-capped rationals: no sympy, no hang risk). Only pairs that need symbolic work go to a worker
process of a pebble pool, where a hard time limit kills and replaces a stuck worker.
"""

from __future__ import annotations

import os
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from restem.verifiers.math.compare import NeedSympy
from restem.verifiers.math.judge import judge, judge_symbolic
from restem.verifiers.pool import HardLimitPool, shared_pool
from restem.verifiers.settings import MathSettings
from restem.verifiers.verdict import MathStatus, MathVerdict

__all__ = ["iter_verify_math", "verify_math", "verify_math_batch"]

_DEFAULT = MathSettings()


def _text(value, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # numeric golds from JSON ("answer": 42) are common and unambiguous
    raise TypeError(f"{name} must be a str (or a number), got {type(value).__name__}")


def _fast(response: str, gold: str, settings: MathSettings) -> MathVerdict | None:
    """The in-process verdict, or None when the symbolic stage must decide."""
    try:
        return judge(response, gold, settings)
    except NeedSympy:
        return None
    except Exception as exc:  # never raise on input; report our own failure as an error verdict
        return MathVerdict(MathStatus.ERROR, None, f"internal error: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {frame[0].filename.rsplit('/', 1)[-1]}:{frame[0].lineno}" if frame else ""
    return f"{type(exc).__name__}: {str(exc)[:200]}{where}"


def _resolve(future: Future, settings: MathSettings) -> MathVerdict:
    """Wait for a worker's verdict; a timeout or a dead worker becomes a verdict, never a raise."""
    try:
        return future.result()
    except FutureTimeout:
        return MathVerdict(
            MathStatus.TIMEOUT,
            None,
            f"symbolic comparison exceeded {settings.timeout_s:g} s; the worker was killed",
        )
    except Exception as exc:
        import pebble

        if isinstance(exc, pebble.ProcessExpired):
            return MathVerdict(
                MathStatus.ERROR, None, f"verifier worker died (exit code {exc.exitcode})"
            )
        return MathVerdict(MathStatus.ERROR, None, f"verifier failed: {_describe(exc)}")


def verify_math(response: str, gold: str, *, settings: MathSettings = _DEFAULT) -> MathVerdict:
    """Is ``response`` (a model's full answer, or a bare answer) equivalent to ``gold``?

    Never raises on any input string and never takes much longer than ``settings.timeout_s``.
    Safe to call from threads, asyncio code and worker processes.
    """
    response, gold = _text(response, "response"), _text(gold, "gold")
    verdict = _fast(response, gold, settings)
    if verdict is not None:
        return verdict
    pool = shared_pool(start_method=settings.start_method)
    future = pool.submit(judge_symbolic, response, gold, settings, timeout=settings.timeout_s)
    return _resolve(future, settings)


def iter_verify_math(
    pairs: Iterable[tuple[str, str]],
    *,
    workers: int | None = None,
    settings: MathSettings = _DEFAULT,
    pool: HardLimitPool | None = None,
    window: int = 512,
) -> Iterator[MathVerdict]:
    """Verdicts in input order, as soon as each is known; at most ``window`` pairs in flight."""
    pending: deque[MathVerdict | Future] = deque()

    def worker_pool() -> HardLimitPool:
        nonlocal pool
        if pool is None:
            # The long-lived shared pool: a fresh pool per batch would cost ~0.1 s of start-up.
            pool = shared_pool(workers or os.cpu_count() or 1, settings.start_method)
        return pool

    try:
        for response, gold in pairs:
            response, gold = _text(response, "response"), _text(gold, "gold")
            verdict = _fast(response, gold, settings)
            if verdict is None:
                verdict = worker_pool().submit(
                    judge_symbolic, response, gold, settings, timeout=settings.timeout_s
                )
            pending.append(verdict)
            while pending and (
                isinstance(pending[0], MathVerdict) or pending[0].done() or len(pending) > window
            ):
                head = pending.popleft()
                yield head if isinstance(head, MathVerdict) else _resolve(head, settings)
        while pending:
            head = pending.popleft()
            yield head if isinstance(head, MathVerdict) else _resolve(head, settings)
    finally:
        for item in pending:
            if isinstance(item, Future):
                item.cancel()


def verify_math_batch(
    pairs: Iterable[tuple[str, str]],
    *,
    workers: int | None = None,
    settings: MathSettings = _DEFAULT,
    on_verdict: Callable[[int, MathVerdict], None] | None = None,
) -> list[MathVerdict]:
    """Verify many pairs with ``workers`` processes for the symbolic stage; order preserved."""
    verdicts = []
    for index, verdict in enumerate(iter_verify_math(pairs, workers=workers, settings=settings)):
        verdicts.append(verdict)
        if on_verdict is not None:
            on_verdict(index, verdict)
    return verdicts
