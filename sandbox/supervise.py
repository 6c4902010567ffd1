"""Run one child process under a wall deadline and output caps, then say how it ended.

Standard library only and no package imports: this file is copied into the sandbox image, where
the in-container runner uses it, and the local backend uses it on the host. Both get the same
status rules that way.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Sequence

__all__ = ["classify", "supervise"]

_CHUNK = 1 << 16
_DRAIN_S = 0.5  # after the tree is killed, how long to wait for the pipes to report EOF


def supervise(
    argv: Sequence[str],
    *,
    stdin: bytes,
    wall_s: float,
    cpu_s: float,
    memory_mb: int,
    output_bytes: int,
    env: dict[str, str],
    kill: Callable[[subprocess.Popen], None],
    cwd: str | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> dict:
    """Start `argv` in a new session, feed `stdin`, collect capped stdout/stderr.

    `kill(proc)` must kill the child's whole process tree; it is called when a limit is hit and
    once more after every exit, so that nothing the program started outlives it.
    Returns a JSON-friendly dict with the fields of `RunResult`.
    """
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
            preexec_fn=preexec_fn,  # only from single-threaded callers (the runner)
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return _error(f"cannot start {argv[0]}: {exc}", time.monotonic() - start)

    out, err = bytearray(), bytearray()
    verdict = ""  # "timeout" | "output_limit": the supervisor stopped the run
    reaped = None
    sel = selectors.DefaultSelector()
    try:
        reaped, verdict = _pump(proc, sel, stdin, out, err, start + wall_s, output_bytes)
        if reaped is None:
            kill(proc)
            reaped = _reap(proc, deadline=time.monotonic() + 5.0)
        # Also after a normal exit: a double-forked daemon may still be running.
        kill(proc)
        _drain(sel, out, err, output_bytes)
    finally:
        sel.close()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass
    wall = time.monotonic() - start
    if reaped is None:
        return _error("child did not die after SIGKILL", wall)
    status, usage = reaped
    proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    if not verdict and (len(out) > output_bytes or len(err) > output_bytes):
        verdict = "output_limit"
    cpu = usage.ru_utime + usage.ru_stime
    peak = usage.ru_maxrss / 1024.0  # KiB on Linux
    state, reason = classify(proc.returncode, verdict, cpu, cpu_s, peak, memory_mb, bytes(err))
    return {
        "status": state,
        "exit_code": proc.returncode,
        "stdout": bytes(out[:output_bytes]).decode("utf-8", "replace"),
        "stderr": bytes(err[:output_bytes]).decode("utf-8", "replace"),
        "wall_s": round(wall, 6),
        "cpu_s": round(cpu, 6),
        "peak_memory_mb": round(peak, 3),
        "reason": reason,
    }


def classify(
    code: int,
    verdict: str,
    cpu: float,
    cpu_limit: float,
    peak_mb: float,
    memory_mb: int,
    stderr: bytes,
) -> tuple[str, str]:
    """(status, reason) from how the child ended. Verdicts of the supervisor come first."""
    if verdict == "output_limit":
        return "output_limit", "output exceeded the limit; run stopped"
    if verdict == "timeout":
        return "timeout", "wall-clock limit reached; run killed"
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu >= 0.95 * cpu_limit):
        return "timeout", "CPU limit reached"
    if code != 0 and b"MemoryError" in stderr[-4096:]:
        return "memory", "MemoryError: address-space limit reached"
    if code == -signal.SIGKILL and peak_mb >= 0.8 * memory_mb:
        # Nobody here sent it; at the memory ceiling that is the OOM killer.
        return "memory", "killed at the memory limit (OOM)"
    if code == 0:
        return "ok", ""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return "runtime_error", f"killed by {name}"
    return "runtime_error", f"exit status {code}"


def _pump(proc, sel, stdin, out, err, deadline, cap):
    """Move bytes until the child exits or a limit is hit. Returns (reaped or None, verdict)."""
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(proc.pid)
            sel.register(pidfd, selectors.EVENT_READ, "exit")
        except OSError:
            pidfd = None
    for pipe, buf in ((proc.stdout, out), (proc.stderr, err)):
        os.set_blocking(pipe.fileno(), False)
        sel.register(pipe.fileno(), selectors.EVENT_READ, buf)
    view = memoryview(stdin)
    if stdin:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE, "stdin")
    else:
        proc.stdin.close()
    try:
        while True:
            reaped = _try_reap(proc)
            if reaped is not None:
                return reaped, ""
            left = deadline - time.monotonic()
            if left <= 0:
                return None, "timeout"
            # Without a pidfd nothing wakes us on exit: poll.
            for key, _ in sel.select(left if pidfd is not None else min(left, 0.02)):
                if key.data == "exit":
                    continue
                fd = key.fd
                if key.data == "stdin":
                    try:
                        view = view[os.write(fd, view[:_CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except OSError:  # the program closed stdin: fine
                        view = view[:0]
                    if not view:
                        sel.unregister(fd)
                        proc.stdin.close()
                    continue
                try:
                    chunk = os.read(fd, _CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    continue
                key.data.extend(chunk)
                if len(key.data) > cap:
                    return None, "output_limit"
    finally:
        if pidfd is not None:
            sel.unregister(pidfd)
            os.close(pidfd)
        if stdin and not proc.stdin.closed:
            try:
                sel.unregister(proc.stdin.fileno())
            except (KeyError, ValueError):
                pass


def _drain(sel, out, err, cap):
    """Read what is left in the pipes once every writer is dead; bounded in time and size."""
    deadline = time.monotonic() + _DRAIN_S
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            if key.data not in (out, err):
                sel.unregister(key.fd)
                continue
            try:
                chunk = os.read(key.fd, _CHUNK)
            except BlockingIOError:
                continue
            if not chunk or len(key.data) > cap:
                sel.unregister(key.fd)
            else:
                key.data.extend(chunk)


def _try_reap(proc):
    try:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    except ChildProcessError:
        return None
    return (status, usage) if pid else None


def _reap(proc, deadline):
    while True:
        reaped = _try_reap(proc)
        if reaped is not None or time.monotonic() > deadline:
            return reaped
        time.sleep(0.005)


def _error(reason: str, wall: float) -> dict:
    return {
        "status": "sandbox_error",
        "exit_code": None,
        "stdout": "",
        "stderr": "",
        "wall_s": round(wall, 6),
        "cpu_s": None,
        "peak_memory_mb": None,
        "reason": reason,
    }
