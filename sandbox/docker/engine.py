"""Reach the Docker engine. Starting one is the job of scripts/ensure-docker.sh (`make sandbox-ready`)."""

from __future__ import annotations

from typing import Any

__all__ = ["EngineUnavailable", "client", "engine_reachable"]


class EngineUnavailable(RuntimeError):
    """No Docker engine answers, or the docker SDK is not installed."""


def client(timeout: int = 120) -> Any:
    """A connected `docker.DockerClient` (DOCKER_HOST etc. honoured), or EngineUnavailable."""
    try:
        import docker  # lazy: `import sandbox` must stay cheap
    except ImportError as exc:
        raise EngineUnavailable("the docker SDK is missing: pip install 'restem[sandbox]'") from exc
    try:
        c = docker.from_env(timeout=timeout)
        c.ping()
    except Exception as exc:  # the SDK raises several unrelated types for "nobody answers"
        raise EngineUnavailable(
            f"no Docker engine reachable ({exc.__class__.__name__}: {exc}); "
            "start one, e.g. `make sandbox-ready` (root on Debian installs and starts dockerd)"
        ) from exc
    return c


def engine_reachable() -> bool:
    try:
        client(timeout=10).close()
    except EngineUnavailable:
        return False
    return True
