"""A real `restem serve` process on 127.0.0.1 (a free port the server picks), stopped with SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install '.[serve]'")
httpx = pytest.importorskip("httpx", reason="the trainers extra is not installed")

TOKEN = "restem-test-token-0123456789"


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    token: str | None
    stderr: list[str] = field(default_factory=list)

    def client(self, **options) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **options)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit status (the server must exit by itself, in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("restem serve did not exit within 60 s of SIGTERM") from None


def descendants(pid: int) -> list[int]:
    """Processes below `pid` (via /proc), to prove nothing outlives the server."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def start_server(*args: str, token: str | None = None, env: dict | None = None) -> Server:
    environment = {**os.environ, **(env or {})}
    environment.pop("RESTEM_SERVE_TOKEN", None)
    if token:
        environment["RESTEM_SERVE_TOKEN"] = token  # the env route; --token is tested separately
    proc = subprocess.Popen(
        [sys.executable, "-m", "restem.serve.cli", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
    line = proc.stdout.readline()  # blocks until the server listens, or exits
    if "listening on" not in line:
        proc.wait(30)
        raise AssertionError(f"restem serve did not start: {line!r} {''.join(stderr)}")
    threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()
    return Server(proc, line.rsplit(" ", 1)[1].strip(), token, stderr)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One local-sandbox server for a module's tests, with a token."""
    srv = start_server("--backend", "local", "--workers", "2", token=TOKEN)
    yield srv
    assert srv.stop() == 0, "".join(srv.stderr)


@pytest.fixture(scope="module")
def open_server() -> Iterator[Server]:
    """A server without a token (SandboxFusion's client sends none)."""
    srv = start_server("--backend", "local", "--workers", "2")
    yield srv
    assert srv.stop() == 0, "".join(srv.stderr)
