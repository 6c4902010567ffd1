"""A process pool with hard per-task time limits (pebble).

A task that overruns is stopped by killing its worker process, which pebble then replaces: the
only way to stop sympy (or anything else) stuck in C code or a runaway loop. Nothing here touches
``signal.alarm``, so callers may be threads, asyncio tasks or other worker processes.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future

__all__ = ["HardLimitPool", "shared_pool"]

_PRELOAD = [
    "restem.verifiers.math.symbolic"
]  # imported once by the fork server, so workers start warm


def _init_worker() -> None:
    # pebble stops an overrunning worker with SIGTERM, waits up to 3 s, then SIGKILLs it, and only
    # then resolves the task's future. Its Python-level SIGTERM handler cannot run while the worker
    # is stuck in C code (a huge factorial), so every such time-out came 3 s late: the default
    # action ends the process at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Inside our own worker it is safe to lift the guard against slow int<->str conversion:
    # the hard time limit bounds the cost, and 5000-digit answers must be comparable.
    sys.set_int_max_str_digits(0)
    # The time limit is enforced by the parent. If the parent dies (SIGKILLed, its node's Ray
    # actor killed) a worker stuck in sympy would run on unbounded, holding the parent's
    # inherited sockets open, so it exits as soon as it is orphaned.
    parent = os.getppid()
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.25)
    os._exit(1)


def _allow_children_in_daemon() -> None:
    # multiprocessing.Pool workers are daemonic and may not start children. The hard time limit
    # needs a child process, so a verifier called inside such a worker lifts the flag: our
    # children are killed with their pool, which is shut down at exit.
    process = multiprocessing.current_process()
    if process.daemon:
        process._config["daemon"] = False  # type: ignore[attr-defined]


class HardLimitPool:
    """``submit(fn, *args, timeout=s)`` -> a future; a task over its limit has its worker killed."""

    def __init__(self, workers: int, start_method: str = "fork"):
        import pebble

        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        _allow_children_in_daemon()
        context = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            context.set_forkserver_preload(_PRELOAD)
        elif start_method == "fork":
            # Import sympy once here, so that every (re)forked worker starts warm instead of
            # spending ~1 s importing it, and no import runs in a child forked mid-import.
            for module in _PRELOAD:
                importlib.import_module(module)
        self.workers = workers
        self.start_method = start_method
        self._pool = pebble.ProcessPool(
            max_workers=workers, initializer=_init_worker, context=context
        )
        self._pid = os.getpid()

    def submit(self, fn, *args, timeout: float) -> Future:
        return self._pool.schedule(fn, args=args, timeout=timeout)

    def worker_pids(self) -> list[int]:
        """The pids of the live worker processes (for tests that kill one)."""
        manager = self._pool._pool_manager.worker_manager  # pebble keeps no public accessor
        return [w.pid for w in list(manager.workers.values()) if w.pid]

    @property
    def usable(self) -> bool:
        return os.getpid() == self._pid and self._pool.active

    def close(self) -> None:
        if os.getpid() != self._pid:
            return  # a forked child must not tear down its parent's workers
        self._pool.stop()
        self._pool.join(timeout=5)

    def __enter__(self) -> HardLimitPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_shared: dict[tuple[int, str], HardLimitPool] = {}
_shared_lock = threading.Lock()


def shared_pool(workers: int | None = None, start_method: str = "fork") -> HardLimitPool:
    """One long-lived pool per (size, start method) for single calls; closed at exit."""
    workers = workers or max(1, os.cpu_count() or 1)
    key = (workers, start_method)
    with _shared_lock:
        pool = _shared.get(key)
        if pool is None or not pool.usable:
            _register_exit_cleanup()
            pool = HardLimitPool(workers, start_method)
            _shared[key] = pool
        return pool


def _close_shared() -> None:
    for pool in list(_shared.values()):
        try:
            pool.close()
        except Exception:  # exiting anyway; a half-dead pool must not mask the real exit status
            pass
    _shared.clear()


atexit.register(_close_shared)
_finalizer_pid: int | None = None


def _register_exit_cleanup() -> None:
    # atexit alone is too late in a multiprocessing child (a ProcessPoolExecutor worker, say): its
    # exit path joins every child process first, and idle pool workers never end. A multiprocessing
    # finalizer runs before that join. Registered per process, because a forked child starts with
    # an empty finalizer registry.
    global _finalizer_pid
    if _finalizer_pid != os.getpid():
        _finalizer_pid = os.getpid()
        multiprocessing.util.Finalize(None, _close_shared, exitpriority=100)
