"""`DockerSandbox`: a warm pool of hardened containers, one submission at a time in each.

Starting a container costs ~0.4 s; a warm one runs a program for little more than the cost of
the interpreter, and each further test of the same program (`run_many`) for the cost of a fork.
Each container runs `runner.py` (shared with the local backend) as pid 1; we talk to it over the container's
attached stdin/stdout (no network, no host mounts needed). A container whose runner stops
answering or dies is destroyed and replaced; the batch goes on.

Containers carry ROLE_LABEL and OWNER_LABEL (host:pid). They are removed on `close()`, at
interpreter exit (atexit, which also runs after Ctrl-C), and, when a later pool starts, those
whose owner process on this host is gone (leftovers of a crash or SIGKILL).
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import queue
import socket
import struct
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..base import Sandbox, as_bytes
from ..limits import Limits
from ..result import RunResult
from . import engine
from .image import IMAGE, build_image

__all__ = [
    "OWNER_LABEL",
    "POOL_LABEL",
    "ROLE_LABEL",
    "DockerSandbox",
    "cleanup_leftovers",
    "container_options",
]

ROLE_LABEL = "org.restem.sandbox"
OWNER_LABEL = "org.restem.owner"
POOL_LABEL = "org.restem.pool"  # one id per DockerSandbox: several pools may share an owner
_REPLY_MARGIN_S = 15.0  # runner's own kill + drain + wipe on top of the wall limit
# Tests sent to a container before their turn: enough that it never waits for the host, few
# enough that an early stop has little to drop.
_AHEAD = 4
_AHEAD_BYTES = 4 << 20


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_leftovers(client: Any) -> int:
    """Remove sandbox containers whose owner process on this host is gone. Returns how many."""
    import docker.errors

    host = socket.gethostname()
    removed = 0
    for c in client.containers.list(all=True, filters={"label": ROLE_LABEL}):
        owner_host, _, pid = c.labels.get(OWNER_LABEL, "").rpartition(":")
        # Another host's pool on a shared engine, or a live process here: not ours to remove.
        if owner_host != host or (pid.isdigit() and _alive(int(pid))):
            continue
        try:
            c.remove(force=True)
            removed += 1
        except docker.errors.NotFound:
            pass
    return removed


def container_options(
    limits: Limits, uid: int, cpus: float, owner: str, pool_id: str = ""
) -> dict[str, Any]:
    """The hardening, in one place (docs/sandbox.md explains each line)."""
    from docker.types import LogConfig

    memory = limits.memory_mb + limits.disk_mb + 64  # program + its tmpfs + runner
    return {
        "user": f"{uid}:{uid}",  # non-root; a uid of its own so RLIMIT_NPROC is per container
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={limits.disk_mb}m,mode=1777"},
        "ipc_mode": "none",  # private IPC and no /dev/shm to leave things in
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "mem_limit": f"{memory}m",
        "memswap_limit": f"{memory}m",  # equal to mem_limit: no swap
        "pids_limit": limits.processes + 8,
        "nano_cpus": int(cpus * 1e9),
        "log_config": LogConfig(type="none"),  # an output flood must not land on the host's disk
        "environment": {},
        "hostname": "sandbox",
        "labels": {ROLE_LABEL: "1", OWNER_LABEL: owner, POOL_LABEL: pool_id},
        "stdin_open": True,
        "detach": True,
    }


class RunnerError(RuntimeError):
    """The in-container runner did not answer properly; the container gets replaced."""


class _Box:
    """One warm container and the attached stream to its runner."""

    def __init__(self, client: Any, image: str, options: dict[str, Any]) -> None:
        self.container = client.containers.create(image, **options)
        try:
            sock = client.api.attach_socket(
                self.container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            self._sock = getattr(sock, "_sock", sock)  # the SDK hands back a SocketIO
            self._keep = sock
            self.container.start()
            self._out = bytearray()
            self.stderr_tail = b""
            self.call({"ping": True}, timeout=30)
        except BaseException:
            self.destroy()
            raise

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.send(request, timeout)
        return self.receive(timeout)

    def send(self, request: dict[str, Any], timeout: float) -> None:
        data = json.dumps(request).encode()
        try:
            self._sock.settimeout(timeout)
            self._sock.sendall(struct.pack(">I", len(data)) + data)
        except OSError as exc:
            raise RunnerError(f"{exc.__class__.__name__}: {exc}") from exc

    def receive(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        try:
            (size,) = struct.unpack(">I", self._read(4, deadline))
            return json.loads(self._read(size, deadline))
        except (OSError, ValueError, struct.error) as exc:
            raise RunnerError(f"{exc.__class__.__name__}: {exc}") from exc

    def _read(self, n: int, deadline: float) -> bytes:
        # Attached non-tty streams are multiplexed: 8-byte header (stream id, size), payload.
        while len(self._out) < n:
            header = self._recv(8, deadline)
            stream, size = header[0], struct.unpack(">I", header[4:])[0]
            payload = self._recv(size, deadline)
            if stream == 1:
                self._out += payload
            else:
                self.stderr_tail = (self.stderr_tail + payload)[-2000:]
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def _recv(self, n: int, deadline: float) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("runner did not answer in time")
            self._sock.settimeout(left)
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                tail = self.stderr_tail.decode(errors="replace")
                raise ConnectionError(f"runner stream closed {tail!r}")
            buf += chunk
        return bytes(buf)

    def destroy(self) -> None:
        try:
            self._sock.close()
        except Exception:
            pass
        try:
            self.container.remove(force=True)
        except Exception:  # already gone, or the engine is: nothing more to do here
            pass


class DockerSandbox(Sandbox):
    """Hardened backend: `workers` warm containers; see the module docstring."""

    name = "docker"

    def __init__(
        self,
        workers: int = 2,
        limits: Limits | None = None,
        image: str = IMAGE,
        cpus: float = 1.0,
        build: bool = True,
        reply_margin_s: float = _REPLY_MARGIN_S,
        warm: bool = True,
    ) -> None:
        self.workers = max(1, int(workers))
        # False: every program starts a fresh interpreter, as before warm interpreters (the
        # benchmark's baseline); True: the runner keeps one ready for the next program.
        self.warm = bool(warm)
        # Container-wide ceilings (memory cgroup, pids); a run asking for more is held to these.
        self.limits = limits or Limits()
        self.image = image
        self.cpus = cpus
        self.reply_margin_s = reply_margin_s  # past wall_s + this, the runner counts as hung
        self._client = engine.client()
        if build and image == IMAGE:
            build_image(tag=image, log=lambda _msg: None)
        self.removed_leftovers = cleanup_leftovers(self._client)
        self._owner = _owner()
        self.pool_id = uuid.uuid4().hex[:12]
        self._uid_base = 20_000 + (os.getpid() % 1000) * 64
        self._next_uid = 0
        self._lock = threading.Lock()
        self._live: set[_Box] = set()
        self._idle: queue.Queue[_Box | None] = queue.Queue()
        self._closed = False
        ref = weakref.ref(self)
        atexit.register(lambda: (s := ref()) is not None and s.close())
        try:
            with ThreadPoolExecutor(self.workers) as ex:
                boxes = list(ex.map(lambda _: self._new_box(), range(self.workers)))
        except BaseException:
            self.close()  # the containers that did start must not outlive a failed start
            raise
        for box in boxes:
            self._idle.put(box)

    def _new_box(self) -> _Box:
        with self._lock:
            if self._closed:
                raise RuntimeError("DockerSandbox is closed")
            self._next_uid = self._next_uid % 63 + 1
            uid = self._uid_base + self._next_uid
        box = _Box(
            self._client,
            self.image,
            container_options(self.limits, uid, self.cpus, self._owner, self.pool_id),
        )
        with self._lock:
            self._live.add(box)
        return box

    def _drop(self, box: _Box) -> None:
        with self._lock:
            self._live.discard(box)
        box.destroy()

    def run_many(
        self,
        program: str,
        stdins: Sequence[str | bytes],
        limits: Limits | None = None,
        *,
        setup: str = "",
        preamble: str = "",
    ) -> Iterator[RunResult]:
        """All tests of `program` in one container, one after another: the runner compiles it
        once and forks a fresh process per test (see runner.py). Stop iterating and the rest
        are not run. The container is held until the last result or until the generator is
        closed (a `for` loop that breaks closes it)."""
        if not all(isinstance(x, str) for x in (program, setup, preamble)):
            raise TypeError(f"program must be str, got {type(program).__name__}")
        if self._closed:
            raise RuntimeError("DockerSandbox is closed")
        limits = limits or self.limits
        return self._run_many(program, setup, preamble, list(stdins), limits)

    def _run_many(
        self, program: str, setup: str, preamble: str, stdins: list[str | bytes], limits: Limits
    ) -> Iterator[RunResult]:
        """Tests go out ahead of their answers (up to `_AHEAD` tests / `_AHEAD_BYTES`), so the
        container never waits for the host between two tests; an early stop sends "end", which
        the runner acts on at once, even mid-test."""
        if not stdins:
            return
        box: _Box | None = self._idle.get()
        held = True  # box taken from the pool and not yet given back
        open_program = False  # the runner holds this program (sent, not yet over)
        sent = answered = 0
        in_flight: list[int] = []  # sizes of the tests sent and not answered, oldest first
        try:
            while answered < len(stdins):
                error: Exception | None = None
                started = time.monotonic()
                try:
                    if box is None:  # an earlier replacement failed: try again now
                        box = self._new_box()
                    while sent < len(stdins) and (
                        not in_flight or (len(in_flight) < _AHEAD and sum(in_flight) < _AHEAD_BYTES)
                    ):
                        data = base64.b64encode(as_bytes(stdins[sent])).decode()
                        request: dict[str, Any] = {"stdin": data, "last": sent == len(stdins) - 1}
                        if not open_program:
                            request.update(program=program, limits=limits.to_dict())
                            if setup:
                                request["setup"] = setup
                            if preamble:
                                request["preamble"] = preamble
                            if not self.warm:
                                request["cold"] = True
                        box.send(request, timeout=limits.wall_s + self.reply_margin_s)
                        open_program = True
                        in_flight.append(len(data))
                        sent += 1
                    # The first test of a program also waits for compiling and imports.
                    timeout = limits.wall_s + self.reply_margin_s + limits.cpu_s
                    row = box.receive(timeout)
                    result = RunResult.from_dict(row)
                except (RunnerError, KeyError, TypeError, ValueError) as exc:
                    error = exc
                except Exception as exc:  # engine trouble while (re)creating: report, go on
                    if box is not None:
                        self._drop(box)
                    box, open_program = None, False
                    result = RunResult.sandbox_error(
                        f"docker engine: {exc}", time.monotonic() - started
                    )
                if error is not None:
                    box, reason = self._replace(box, error)
                    result = RunResult.sandbox_error(reason, time.monotonic() - started)
                    open_program = False
                elif error is None and row.get("retire"):
                    # The program changed the runner: a new container for the tests after it.
                    box, _ = self._replace(box, RunnerError("retired by the runner"))
                    open_program = False
                answered += 1
                if not open_program:
                    # The tests sent after this one are lost with the old container: again.
                    sent, in_flight = answered, []
                else:
                    in_flight.pop(0)
                    if answered == len(stdins):
                        open_program = False  # the runner ended it after the last test
                if answered == len(stdins):
                    # Clean already (the runner killed everything before answering): free the
                    # container before the caller sees the last result.
                    self._idle.put(box)
                    held = False
                yield result
        finally:
            if held:
                if open_program and box is not None:
                    try:
                        self._end(box, limits)
                    except (RunnerError, KeyError, TypeError, ValueError) as exc:
                        box, _ = self._replace(box, exc)
                self._idle.put(box)

    def _end(self, box: _Box, limits: Limits) -> None:
        """Stop the program mid-way: answers to tests sent ahead are read and dropped."""
        box.send({"end": True}, timeout=self.reply_margin_s)
        deadline = time.monotonic() + limits.wall_s + self.reply_margin_s
        while True:
            row = box.receive(max(0.1, deadline - time.monotonic()))
            if row == {"ended": True}:
                return
            if row.get("retire"):
                raise RunnerError("retired by the runner")

    def _replace(self, box: _Box | None, exc: Exception) -> tuple[_Box | None, str]:
        reason = f"sandbox container failed and was replaced: {exc}"
        if box is not None:
            self._drop(box)
        try:
            return self._new_box(), reason
        except Exception as new_exc:
            return None, reason + f"; replacement failed: {new_exc}"

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            boxes = list(self._live)
            self._live.clear()
        try:
            with ThreadPoolExecutor(max(1, min(8, len(boxes)))) as ex:
                list(ex.map(_Box.destroy, boxes))
        except RuntimeError:  # at interpreter exit (atexit) no new threads: one by one
            for box in boxes:
                box.destroy()
        try:
            self._client.close()
        except Exception:
            pass
