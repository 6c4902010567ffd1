"""The local backend: one supervised subprocess per run, isolated as far as the OS allows.

Each run: a fresh private work dir; rlimits (CPU, address space, processes, file size); new
network, mount and pid namespaces when the OS lets us (root, or unprivileged user namespaces);
an unprivileged uid when started as root; the whole tree killed at the end. What this cannot
guarantee is in docs/sandbox.md: prefer the docker backend for untrusted code.
"""

from __future__ import annotations

import base64
import json
import marshal
import math
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from restem.errors import SandboxUnavailable

from . import supervise
from .base import Sandbox, as_bytes
from .limits import Limits
from .result import RunResult

__all__ = ["LocalSandbox"]

_LAUNCHER = str(Path(__file__).with_name("_launch.py"))
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
# Minimal environment: nothing of the host's (tokens, paths, proxies) reaches the program.
_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
_REPLY_MARGIN_S = 15.0  # the runner's own kill + drain + wipe on top of the wall limit


def _world_executable(path: str) -> bool:
    """Can an unprivileged uid run `path` (every directory on the way traversable)?"""
    p = Path(path)
    try:
        if not p.stat().st_mode & stat.S_IXOTH:
            return False
        return all(d.stat().st_mode & stat.S_IXOTH for d in p.parents)
    except OSError:
        return False


class LocalSandbox(Sandbox):
    """Runs programs as local subprocesses. See the module docstring for the isolation."""

    name = "local"

    def __init__(self, workers: int = 2, python: str | None = None) -> None:
        self.workers = max(1, int(workers))
        self._is_root = os.geteuid() == 0
        # The launcher runs with our own interpreter, resolved: a pyenv shim costs ~0.36 s a start.
        self._launch_python = os.path.realpath(sys.executable)
        self._uid_base = 100_000 + (os.getpid() % 50_000) * 64 if self._is_root else None
        self._free_uids: list[int] = []
        self._next_uid = 0
        self._lock = threading.Lock()
        self.python = python or self._pick_python()
        self.isolation = self._probe()

    def _pick_python(self) -> str:
        own = os.path.realpath(sys.executable)
        if not self._is_root or _world_executable(own):
            return own
        # Dropped to an unprivileged uid, the program cannot reach an interpreter under /root.
        for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
            if os.path.exists(candidate) and _world_executable(os.path.realpath(candidate)):
                return os.path.realpath(candidate)
        self._uid_base = None  # no usable interpreter for another uid: stay as we are
        return own

    def _probe(self) -> dict[str, bool]:
        """Find the strongest namespace set that works here; say so when network is not cut."""
        full = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | (0 if self._is_root else CLONE_NEWUSER)
        for flags in (full, full & ~CLONE_NEWNS, 0):
            self._flags = flags
            result = self.run("print('ok')", b"", Limits(wall_s=10, cpu_s=10))
            if result.ok and result.stdout == "ok\n":
                break
        else:
            raise SandboxUnavailable(f"local sandbox cannot start a program: {result.reason}")
        isolation = {
            "network": bool(self._flags & CLONE_NEWNET),
            "mount": bool(self._flags & CLONE_NEWNS),
            "pid": bool(self._flags & CLONE_NEWPID),
            "uid": self._uid_base is not None,
        }
        if not isolation["network"]:
            warnings.warn(
                "local sandbox: this OS refuses a network namespace; programs can use the network",
                RuntimeWarning,
                stacklevel=3,
            )
        return isolation

    def _take_uid(self) -> int | None:
        if self._uid_base is None:
            return None
        with self._lock:
            if self._free_uids:
                return self._free_uids.pop()
            self._next_uid += 1
            return self._uid_base + self._next_uid

    def _give_uid(self, uid: int | None) -> None:
        if uid is not None:
            with self._lock:
                self._free_uids.append(uid)

    def run_many(
        self,
        program: str,
        stdins: Sequence[str | bytes],
        limits: Limits | None = None,
        *,
        setup: str = "",
        preamble: str = "",
    ) -> Iterator[RunResult]:
        """All tests of `program` in one pid namespace, one after another: the runner there
        compiles it once and forks a fresh process per test (see runner.py). Stop iterating and
        the rest are not run. (A namespace serves one program: the preamble is just the start
        of the setup here.)"""
        if not all(isinstance(x, str) for x in (program, setup, preamble)):
            raise TypeError(f"program must be str, got {type(program).__name__}")
        limits = limits or Limits()
        if preamble:
            setup = f"{preamble}\n{setup}"
        if not self._flags & CLONE_NEWPID:
            # One process per test anyway: the setup simply runs first in each.
            whole = f"{setup}\n{program}" if setup else program
            return (self._run_direct(whole, stdin, limits) for stdin in list(stdins))
        return self._run_session(program, setup, list(stdins), limits)

    def _run_session(
        self, program: str, setup: str, stdins: list[str | bytes], limits: Limits
    ) -> Iterator[RunResult]:
        session: _Session | None = None
        try:
            for i, stdin in enumerate(stdins):
                last = i == len(stdins) - 1
                request: dict = {"stdin": base64.b64encode(as_bytes(stdin)).decode(), "last": last}
                timeout = limits.wall_s + _REPLY_MARGIN_S
                if session is None:
                    session = _Session(self, limits)
                    request.update(program=program, limits=limits.to_dict())
                    if setup:
                        request["setup"] = setup
                    timeout += limits.cpu_s  # the fork server compiles and imports first
                try:
                    row = session.call(request, timeout)
                    result = RunResult.from_dict(row)
                except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
                    result = RunResult.sandbox_error(session.failure(exc), session.age())
                    row = {"retire": True}
                if row.get("retire"):  # failed, or the program changed the runner: start over
                    session.close()
                    session = None
                if last and session is not None:
                    session.close()  # nothing of the program left before the caller sees it
                    session = None
                yield result
        finally:
            if session is not None:
                session.close()

    def _run_direct(self, program: str, stdin: str | bytes, limits: Limits) -> RunResult:
        """Without a pid namespace: one launcher per test, the program exec-ed by it."""
        uid = self._take_uid()
        workdir = tempfile.mkdtemp(prefix="restem-run-")
        try:
            source = program.encode("utf-8", "surrogatepass")
            Path(workdir, "main.py").write_bytes(source)
            cfg = self._config(limits, uid, workdir)
            row = supervise.supervise(
                [self._launch_python, "-I", "-S", _LAUNCHER, marshal.dumps(cfg).hex()],
                stdin=as_bytes(stdin),
                wall_s=limits.wall_s,
                cpu_s=limits.cpu_s,
                memory_mb=limits.memory_mb,
                output_bytes=limits.output_bytes,
                env=_ENV,
                kill=lambda proc: self._kill(proc, uid),
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            self._give_uid(uid)
        if row["exit_code"] == 125 and "restem-launch:" in row["stderr"]:
            return RunResult.sandbox_error(row["stderr"].strip()[-500:], row["wall_s"])
        return RunResult.from_dict(row)

    def _config(self, limits: Limits, uid: int | None, workdir: str) -> dict:
        cpu = math.ceil(limits.cpu_s)
        mem = limits.memory_mb << 20
        processes = limits.processes
        if uid is None and not self._is_root:
            # RLIMIT_NPROC counts every process of our uid, not only this run's.
            processes += sum(1 for p in Path("/proc").iterdir() if p.name.isdigit())
        if self._flags & CLONE_NEWPID:
            # The runner's template, fork server and short-lived middle process.
            processes += 3
        rlimits = {
            "CPU": (cpu, cpu + 1),
            "AS": (mem, mem),
            "NPROC": (processes, processes),
            "FSIZE": (limits.disk_mb << 20, limits.disk_mb << 20),
            "CORE": (0, 0),
            "NOFILE": (256, 256),
        }
        env = dict(_ENV, HOME="/tmp", TMPDIR="/tmp")
        if not self._flags & CLONE_NEWNS:
            env.update(HOME=workdir, TMPDIR=workdir)
        return {
            "python": self.python,
            "program": os.path.join(workdir, "main.py"),
            "workdir": workdir,
            "unshare": self._flags,
            "uid": uid,
            "rlimits": rlimits,
            "disk_mb": limits.disk_mb,
            "env": env,
        }

    def _kill(self, proc: subprocess.Popen, uid: int | None) -> None:
        # Launcher and namespace init share the launcher's process group; killing the init kills
        # everything in the pid namespace, whatever sessions the program made.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if not self._flags & CLONE_NEWPID and uid is not None:
            _kill_uid(uid)


class _Session:
    """One launcher: a pid namespace whose pid 1 (runner.py) runs one program's tests."""

    def __init__(self, box: LocalSandbox, limits: Limits) -> None:
        self.box = box
        self.started = time.monotonic()
        self.uid = box._take_uid()
        self.workdir = tempfile.mkdtemp(prefix="restem-run-")
        ours, theirs = socket.socketpair()
        self.sock = ours
        cfg = box._config(limits, self.uid, self.workdir)
        cfg["ctl"] = theirs.fileno()
        try:
            self.proc = subprocess.Popen(
                [box._launch_python, "-I", "-S", _LAUNCHER, marshal.dumps(cfg).hex()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,  # only the launcher writes here: never the program
                env=_ENV,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            self._release()
            raise
        finally:
            theirs.close()

    def age(self) -> float:
        return time.monotonic() - self.started

    def call(self, request: dict, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        data = json.dumps(request).encode()
        self.sock.settimeout(timeout)
        self.sock.sendall(struct.pack(">I", len(data)) + data)
        (size,) = struct.unpack(">I", self._recv(4, deadline))
        return json.loads(self._recv(size, deadline))

    def _recv(self, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the sandbox's runner did not answer in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the sandbox's runner went away")
            buf += chunk
        return bytes(buf)

    def failure(self, exc: Exception) -> str:
        """Why the launcher failed: its own `restem-launch:` message when it left one."""
        self._kill()
        try:
            _, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            err = b""
        text = (err or b"").decode("utf-8", "replace").strip()
        if "restem-launch:" in text:
            return text[-500:]
        return f"local sandbox failed: {exc.__class__.__name__}: {exc} {text[-300:]}".strip()

    def _kill(self) -> None:
        # Killing the launcher's group kills the namespace's init, and with it the namespace.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        self.sock.close()
        self._kill()
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._release()

    def _release(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.box._give_uid(self.uid)


def _kill_uid(uid: int) -> None:
    """Without a pid namespace, stragglers that left the group still run as the run's uid."""
    code = f"import os,signal; os.setuid({uid}); os.kill(-1, signal.SIGKILL)"
    subprocess.run(
        [os.path.realpath(sys.executable), "-I", "-S", "-c", code],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=10,
    )
