"""`restem serve` settings: every bound a request can hit, in one validated frozen dataclass."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

__all__ = ["TOKEN_ENV", "ServeSettings"]

# The bearer token can come from the environment, so it stays out of `ps` and shell history.
TOKEN_ENV = "RESTEM_SERVE_TOKEN"


@dataclass(frozen=True)
class ServeSettings:
    """host / port         where to listen (loopback unless told otherwise)
    token                  bearer token every request except /healthz must carry; None: none
    workers                verifier processes (math) and sandboxes (code); Ray: actors
    executor               "local" (this machine's pools) or "ray" (the CLI's Ray executor)
    backend                code sandbox: "auto" (docker when an engine answers), "docker", "local"
    max_body_bytes         a request body larger than this is refused (413)
    max_batch              rows per /verify or /get_reward request (413 above)
    max_in_flight          requests being verified at once; one more answers 503 at once
    request_timeout_s      a request still unanswered after this answers 504
    math_timeout_s         hard limit per symbolic comparison (MathSettings.timeout_s)
    code_test_s            CPU seconds per test (CodeLimits.test_s)
    max_run_timeout_s      /run_code's run_timeout is capped at this
    max_memory_mb          /run_code's memory_limit_MB is capped at this
    shutdown_grace_s       on SIGTERM, how long in-flight requests may still take
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    workers: int | None = None
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    backend: Literal["auto", "docker", "local"] = "auto"
    max_body_bytes: int = 8 << 20
    max_batch: int = 1024
    max_in_flight: int = 16
    request_timeout_s: float = 300.0
    math_timeout_s: float = 3.0
    code_test_s: float = 4.0
    max_run_timeout_s: float = 30.0
    max_memory_mb: int = 1024
    shutdown_grace_s: float = 330.0

    def __post_init__(self) -> None:
        if self.executor not in ("local", "ray"):
            raise ValueError(f"executor must be local or ray, got {self.executor!r}")
        if self.backend not in ("auto", "docker", "local"):
            raise ValueError(f"backend must be auto, docker or local, got {self.backend!r}")
        if not (0 <= self.port <= 65535):
            raise ValueError(f"port must be 0..65535, got {self.port}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.token is not None and len(self.token) < 16:
            raise ValueError("a token must be at least 16 characters")
        for name in ("max_body_bytes", "max_batch", "max_in_flight", "max_memory_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in (
            "request_timeout_s",
            "math_timeout_s",
            "code_test_s",
            "max_run_timeout_s",
            "shutdown_grace_s",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def sandbox_backend(self) -> str | None:
        """The backend name restem's code API takes (None: its own auto choice)."""
        return None if self.backend == "auto" else self.backend

    @staticmethod
    def env_token() -> str | None:
        return os.environ.get(TOKEN_ENV) or None
