"""Watch one child process under a wall deadline and output caps, then say how it ended.

Standard library only and no package imports: this file is copied into the sandbox image, where
the in-container runner uses it, and the local backend uses it on the host and in its pid
namespace. Every backend gets the same status rules that way.

Stdin is a regular file, as on judges (`stdin_file`): seekable, `fstat` gives its size, so
`os.read(0, os.fstat(0).st_size)` reads it all. Stdout and stderr are pipes read here, cut at
`output_bytes`.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence

__all__ = ["classify", "error_row", "stdin_file", "supervise", "watch"]

_CHUNK = 1 << 16
_DRAIN_S = 0.5  # after the tree is killed, how long to wait for the pipes to report EOF


def stdin_file(data: bytes) -> int:
    """A read-only fd of a regular file holding `data`, with no name anywhere (nothing to find,
    nothing to clean up). A memfd where the kernel has one, else an unlinked temporary file."""
    fd = -1
    try:
        fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        fd, path = tempfile.mkstemp(prefix=".stdin-")
        os.unlink(path)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        try:
            # Read-only like a judge's stdin: the program cannot rewrite its own input.
            ro = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            ro = os.dup(fd)
            os.lseek(ro, 0, os.SEEK_SET)
        return ro
    finally:
        os.close(fd)


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
    """Start `argv` in a new session, stdin a file holding `stdin`, and `watch` it.

    `kill(proc)` must kill the child's whole process tree; it is called when a limit is hit and
    once more after every exit, so that nothing the program started outlives it.
    """
    start = time.monotonic()
    child_fds: list[int] = []  # ours to close once the child has its copies
    out_r = err_r = -1
    try:
        child_fds.append(stdin_file(stdin))
        out_r, out_w = os.pipe()
        child_fds.append(out_w)
        err_r, err_w = os.pipe()
        child_fds.append(err_w)
        proc = subprocess.Popen(
            list(argv),
            stdin=child_fds[0],
            stdout=out_w,
            stderr=err_w,
            env=env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
            preexec_fn=preexec_fn,  # only from single-threaded callers (the runner)
        )
    except (OSError, subprocess.SubprocessError) as exc:
        for fd in (out_r, err_r):
            if fd >= 0:
                os.close(fd)
        return error_row(f"cannot start {argv[0]}: {exc}", time.monotonic() - start)
    finally:
        for fd in child_fds:
            os.close(fd)
    row = watch(
        proc.pid,
        out_r,
        err_r,
        start=start,
        wall_s=wall_s,
        cpu_s=cpu_s,
        memory_mb=memory_mb,
        output_bytes=output_bytes,
        kill=lambda: kill(proc),
    )
    if row["exit_code"] is not None:
        proc.returncode = row["exit_code"]  # reaped here: keep Popen from waiting again
    return row


def watch(
    pid: int,
    out_fd: int,
    err_fd: int,
    *,
    start: float,
    wall_s: float,
    cpu_s: float,
    memory_mb: int,
    output_bytes: int,
    kill: Callable[[], None],
    interrupt: tuple[int, Callable[[], bool]] | None = None,
) -> dict:
    """Collect capped stdout/stderr of our child `pid` until it exits or a limit is hit; reap it.

    Closes `out_fd` and `err_fd`. `kill()` must kill the child's whole process tree. With
    `interrupt` (fd, callback): when fd turns readable the callback runs, and if it returns True
    the child is stopped there (status "sandbox_error", reason "stopped"). Returns a
    JSON-friendly dict with the fields of `RunResult`.
    """
    out, err = bytearray(), bytearray()
    sel = selectors.DefaultSelector()
    try:
        reaped, verdict = _pump(
            pid, sel, out_fd, err_fd, out, err, start + wall_s, output_bytes, interrupt
        )
        if reaped is None:
            kill()
            reaped = _reap(pid, deadline=time.monotonic() + 5.0)
        # Also after a normal exit: a double-forked daemon may still be running.
        kill()
        _drain(sel, out, err, output_bytes)
    finally:
        sel.close()
        for fd in (out_fd, err_fd):
            try:
                os.close(fd)
            except OSError:
                pass
    wall = time.monotonic() - start
    if reaped is None:
        return error_row("child did not die after SIGKILL", wall)
    if verdict == "stopped":
        return error_row("stopped: the host ended the program", wall)
    status, usage = reaped
    code = os.waitstatus_to_exitcode(status)
    if not verdict and (len(out) > output_bytes or len(err) > output_bytes):
        verdict = "output_limit"
    cpu = usage.ru_utime + usage.ru_stime
    peak = usage.ru_maxrss / 1024.0  # KiB on Linux
    state, reason = classify(code, verdict, cpu, cpu_s, peak, memory_mb, bytes(err))
    return {
        "status": state,
        "exit_code": code,
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
    last = _last_line(stderr)
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return "runtime_error", f"killed by {name}" + (f": {last}" if last else "")
    # The last line of a traceback names the error (e.g. "ModuleNotFoundError: No module named
    # 'x'"): the reason says it, so a reader need not dig through stderr.
    return "runtime_error", last or f"exit status {code}"


def _last_line(stderr: bytes) -> str:
    for line in reversed(stderr[-4096:].decode("utf-8", "replace").splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""


def _pump(pid, sel, out_fd, err_fd, out, err, deadline, cap, interrupt=None):
    """Move bytes until the child exits or a limit is hit. Returns (reaped or None, verdict)."""
    if interrupt is not None:
        sel.register(interrupt[0], selectors.EVENT_READ, "interrupt")
    pidfd = None
    if hasattr(os, "pidfd_open"):
        try:
            pidfd = os.pidfd_open(pid)
            sel.register(pidfd, selectors.EVENT_READ, "exit")
        except OSError:
            pidfd = None
    for fd, buf in ((out_fd, out), (err_fd, err)):
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ, buf)
    try:
        while True:
            try:
                reaped = _try_reap(pid, strict=True)
                ours = True
            except ChildProcessError:
                # Not (yet) our child: the runner's test process until the fork server's middle
                # process exits. Its pidfd may already say "exited": wait briefly, do not spin.
                reaped, ours = None, False
            if reaped is not None:
                return reaped, ""
            left = deadline - time.monotonic()
            if left <= 0:
                return None, "timeout"
            # Without a pidfd nothing wakes us on exit: poll.
            wait = left if pidfd is not None and ours else min(left, 0.02 if ours else 0.001)
            for key, _ in sel.select(wait):
                if key.data == "exit":
                    continue
                if key.data == "interrupt":
                    if interrupt[1]():
                        return None, "stopped"
                    continue
                try:
                    chunk = os.read(key.fd, _CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                key.data.extend(chunk)
                if len(key.data) > cap:
                    return None, "output_limit"
    finally:
        if pidfd is not None:
            sel.unregister(pidfd)
            os.close(pidfd)
        if interrupt is not None:
            sel.unregister(interrupt[0])


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


def _try_reap(pid, strict=False):
    try:
        got, status, usage = os.wait4(pid, os.WNOHANG)
    except ChildProcessError:
        if strict:
            raise
        return None
    return (status, usage) if got else None


def _reap(pid, deadline):
    while True:
        reaped = _try_reap(pid)
        if reaped is not None or time.monotonic() > deadline:
            return reaped
        time.sleep(0.005)


def error_row(reason: str, wall: float) -> dict:
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
