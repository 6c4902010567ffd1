"""Where untrusted code runs: hardened Docker containers and a local process backend.

    from restem.sandbox import Limits, get_sandbox
    with get_sandbox() as box:                       # docker when an engine answers, else local
        result = box.run("print(input()[::-1])", "abc", Limits(wall_s=5))
        result.status, result.stdout                 # (Status.OK, 'cba\\n')
        for r in box.run_many(program, stdins):      # one program, all its tests, in order
            ...                                      # break: the remaining tests are not run

Importing this package is cheap: the docker SDK loads only when the docker backend is used.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .base import Sandbox
from .limits import Limits
from .result import RunResult, Status

if TYPE_CHECKING:
    from .docker.pool import DockerSandbox
    from .local import LocalSandbox

__all__ = [
    "DockerSandbox",
    "Limits",
    "LocalSandbox",
    "RunResult",
    "Sandbox",
    "Status",
    "docker_available",
    "get_sandbox",
]

BACKENDS = ("docker", "local")


def docker_available() -> bool:
    """Does a Docker engine answer (and is the docker SDK installed)?"""
    from .docker.engine import engine_reachable

    return engine_reachable()


def get_sandbox(name: str | None = None, **options) -> Sandbox:
    """A sandbox by name: "docker" (hardened), "local", or None / "auto" (RESTEM_SANDBOX, else
    docker when an engine answers, else local)."""
    name = name or os.environ.get("RESTEM_SANDBOX") or "auto"
    if name == "auto":
        name = "docker" if docker_available() else "local"
    if name == "docker":
        from .docker.pool import DockerSandbox

        return DockerSandbox(**options)
    if name == "local":
        from .local import LocalSandbox

        return LocalSandbox(**options)
    raise ValueError(f"unknown sandbox backend {name!r}; choose one of {', '.join(BACKENDS)}")


def __getattr__(name: str):
    # Lazy: `import sandbox` must not import the docker SDK.
    if name == "LocalSandbox":
        from .local import LocalSandbox

        return LocalSandbox
    if name == "DockerSandbox":
        from .docker.pool import DockerSandbox

        return DockerSandbox
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
