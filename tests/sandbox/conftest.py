"""Fixtures: real backends (no mocks), a host sentinel process, a host listener, a host secret.

Docker tests skip when no engine answers, except under RESTEM_REQUIRE_DOCKER=1 (CI), where such a
skip is turned into a failure: the hardened backend must really have been exercised.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
from restem.sandbox import Limits

REQUIRE_DOCKER = os.environ.get("RESTEM_REQUIRE_DOCKER") == "1"
SECRET = f"restem-secret-{uuid.uuid4().hex}"
# Set before any sandbox starts, so a leak of the host environment would show it.
os.environ["RESTEM_TEST_SECRET"] = SECRET

# Short limits keep the hostile table fast; every bound below is derived from these.
HOSTILE_LIMITS = Limits(wall_s=2.0, cpu_s=1.0, memory_mb=256, processes=32, output_bytes=65536)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_DOCKER and report.skipped and item.get_closest_marker("docker"):
        report.outcome = "failed"
        report.longrepr = f"RESTEM_REQUIRE_DOCKER=1 but a docker test skipped: {report.longrepr}"


def _docker_or_skip():
    from restem.sandbox.docker.engine import SandboxUnavailable, client

    try:
        return client()
    except SandboxUnavailable as exc:
        if REQUIRE_DOCKER:
            pytest.fail(f"RESTEM_REQUIRE_DOCKER=1 and {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def docker_client():
    c = _docker_or_skip()
    yield c
    c.close()


@pytest.fixture(scope="session")
def local_box():
    from restem.sandbox.local import LocalSandbox

    with LocalSandbox(workers=2) as box:
        yield box


@pytest.fixture(scope="session")
def docker_box(docker_client):
    from restem.sandbox.docker.pool import DockerSandbox

    with DockerSandbox(workers=2, limits=HOSTILE_LIMITS) as box:
        yield box


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def box(request):
    """Each test using `box` runs against both backends."""
    return request.getfixturevalue(f"{request.param}_box")


@pytest.fixture(scope="session")
def sentinel():
    """An ordinary host process that no program may be able to kill (kill(-1) and friends)."""
    proc = subprocess.Popen(["sleep", "3600"])
    yield proc
    proc.kill()
    proc.wait()


class Listener:
    """A host TCP server on 127.0.0.1; counts connections it accepted."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()


@pytest.fixture(scope="session")
def listener():
    server = Listener()
    yield server
    server.sock.close()


def proc_children(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def procs_of_uids(lo: int, hi: int) -> list[int]:
    """Pids of processes whose real uid is in [lo, hi)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("Uid:"):
                    if lo <= int(line.split()[1]) < hi:
                        found.append(int(entry.name))
                    break
        except OSError:
            continue
    return found
