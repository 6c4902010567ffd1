"""SIGTERM during a load run: every accepted request is answered, nothing is left behind."""

from __future__ import annotations

import os
import tempfile

import pytest
from restem.benchmarks.serve_bench import ServerProcess, _containers_of, shutdown_under_load


def _drain_and_check(backend: str, requests: int) -> None:
    server_tmp = tempfile.mkdtemp(prefix="restem_serve_test_")
    server = ServerProcess(["--backend", backend, "--workers", "2"]).start(
        env={"TMPDIR": server_tmp}
    )
    try:
        if backend == "docker":  # the pool is warm from the start, owned by the server
            assert _containers_of(server.proc.pid), "no container of the server found"
        result = shutdown_under_load(server, requests)
    finally:
        if server.proc.poll() is None:
            server.stop()
    # All were accepted before SIGTERM (--max-in-flight is above `requests`), so all must have
    # their verdict.
    assert result["accepted_before_sigterm"] == requests, result
    assert result["answered_200"] == requests, result
    assert result["exit_status"] == 0, "".join(server.stderr)
    if backend == "local":
        assert server.pids, "the server had no sandbox processes to check"
    assert server.left_behind() == [], "processes of the server outlived it"
    if backend == "docker":
        assert _containers_of(server.proc.pid) == [], "containers of the server outlived it"
    assert os.listdir(server_tmp) == [], "the server left files in its temp folder"
    os.rmdir(server_tmp)


@pytest.mark.slow
def test_sigterm_under_load_answers_every_request_local():
    _drain_and_check("local", requests=6)


@pytest.mark.slow
@pytest.mark.docker
def test_sigterm_under_load_answers_every_request_docker():
    from restem.sandbox import docker_available

    if not docker_available():
        pytest.skip("no Docker engine answers")
    _drain_and_check("docker", requests=6)
