"""Reach the Docker engine. Starting one is the job of scripts/ensure-docker.sh (`make sandbox-ready`)."""

from __future__ import annotations

from typing import Any

from restem.errors import SandboxUnavailable

__all__ = ["SandboxUnavailable", "client", "engine_reachable"]


def client(timeout: int = 120) -> Any:
    """A connected `docker.DockerClient` (DOCKER_HOST etc. honoured), or SandboxUnavailable."""
    try:
        import docker  # lazy: `import sandbox` must stay cheap
    except ImportError as exc:
        raise SandboxUnavailable(
            "the docker SDK is missing: pip install 'restem[sandbox]'"
        ) from exc
    try:
        c = docker.from_env(timeout=timeout)
        c.ping()
    except Exception as exc:  # the SDK raises several unrelated types for "nobody answers"
        raise SandboxUnavailable(
            f"no Docker engine reachable ({exc.__class__.__name__}: {exc}); "
            "start one, e.g. `make sandbox-ready` (root on Debian installs and starts dockerd)"
        ) from exc
    return c


def engine_reachable() -> bool:
    try:
        client(timeout=10).close()
    except SandboxUnavailable:
        return False
    return True
