"""A real `restem serve` process on 127.0.0.1 (a free port the server picks), stopped with SIGTERM."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from restem.benchmarks.serve_bench import ServerProcess

pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install '.[serve]'")
httpx = pytest.importorskip("httpx", reason="the trainers extra is not installed")

TOKEN = "restem-test-token-0123456789"


class Server(ServerProcess):
    """The bench's server process, as the tests use it: a client with the token, and a stop
    that fails the test when the server does not exit by itself in time."""

    def client(self, **options) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=60, **options)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit status (the server must exit by itself, in time)."""
        started = time.monotonic()
        status = super().stop(timeout)
        if status == -signal.SIGKILL and time.monotonic() - started >= timeout:
            raise AssertionError(f"restem serve did not exit within {timeout:g} s of SIGTERM")
        return status


def start_server(*args: str, token: str | None = None, env: dict | None = None) -> Server:
    # The token goes by the env route; --token is tested separately.
    try:
        return Server(list(args), token).start(env)
    except RuntimeError as exc:  # the server's own message, e.g. why it refused to listen
        raise AssertionError(str(exc)) from None


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
