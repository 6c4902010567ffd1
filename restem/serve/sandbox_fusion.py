"""SandboxFusion's ``POST /run_code`` for Python, answered by restem's sandbox.

The request and response follow SandboxFusion's models, so its clients (the ``sandbox-fusion``
package, verl's sandbox client) work unchanged. Only ``python`` runs; other languages, and the
``files`` / ``fetch_files`` features restem's sandbox does not offer, are a 400 that says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from restem.sandbox import Limits, RunResult, Status

__all__ = ["FIELDS", "RunCodeRequest", "RunCodeRequestError", "parse_request", "to_response"]

# Every field a SandboxFusion client sends; anything else is a mistake worth reporting.
FIELDS = frozenset(
    {
        "code",
        "language",
        "stdin",
        "run_timeout",
        "compile_timeout",
        "memory_limit_MB",
        "files",
        "fetch_files",
    }
)
PYTHON = frozenset({"python", "python3"})


class RunCodeRequestError(ValueError):
    """A request restem will not run; the message says why (answered as 400)."""


@dataclass(frozen=True)
class RunCodeRequest:
    code: str
    stdin: str
    limits: Limits


def _number(body: dict, name: str, default: float) -> float:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RunCodeRequestError(f"{name} must be a number, got {type(value).__name__}")
    if value <= 0:
        raise RunCodeRequestError(f"{name} must be positive, got {value}")
    return float(value)


def parse_request(body: Any, *, max_run_timeout_s: float, max_memory_mb: int) -> RunCodeRequest:
    """The run restem will do for a /run_code body, with limits capped by the server's."""
    if not isinstance(body, dict):
        raise RunCodeRequestError(f"expected a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise RunCodeRequestError(
            f"unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(FIELDS))}"
        )
    code = body.get("code")
    if not isinstance(code, str):
        raise RunCodeRequestError(f"code must be a string, got {type(code).__name__}")
    language = body.get("language")
    if not isinstance(language, str):
        raise RunCodeRequestError(f"language must be a string, got {type(language).__name__}")
    if language not in PYTHON:
        raise RunCodeRequestError(
            f"language {language!r} is not supported: restem's sandbox runs python only"
        )
    stdin = body.get("stdin")
    if stdin is None:
        stdin = ""
    if not isinstance(stdin, str):
        raise RunCodeRequestError(f"stdin must be a string or null, got {type(stdin).__name__}")
    for name in ("files", "fetch_files"):
        if body.get(name):
            raise RunCodeRequestError(f"{name} is not supported by restem's sandbox")
    run_timeout = min(_number(body, "run_timeout", 10.0), max_run_timeout_s)
    _number(body, "compile_timeout", 10.0)  # python compiles nothing; checked, then unused
    memory = min(int(_number(body, "memory_limit_MB", max_memory_mb)), max_memory_mb)
    limits = Limits(wall_s=run_timeout, cpu_s=run_timeout, memory_mb=max(memory, 64))
    return RunCodeRequest(code, stdin, limits)


def to_response(result: RunResult) -> dict:
    """SandboxFusion's RunCodeResponse for one run. A sandbox failure is status SandboxError
    (its clients retry those); everything the program did is Success (exit 0) or Failed."""
    if result.status is Status.SANDBOX_ERROR:
        return {
            "status": "SandboxError",
            "message": result.reason or "the sandbox failed",
            "compile_result": None,
            "run_result": None,
            "executor_pod_name": None,
            "files": {},
        }
    timed_out = result.status is Status.TIMEOUT
    code = result.exit_code
    if code is None or (code == 0 and result.status is not Status.OK):
        code = 1  # killed for memory / output: a failure even if it never set an exit status
    stderr = result.stderr
    if result.status not in (Status.OK, Status.RUNTIME_ERROR) and result.reason:
        stderr = (stderr + ("\n" if stderr else "") + f"[restem] {result.reason}").lstrip("\n")
    ok = result.status is Status.OK and code == 0
    return {
        "status": "Success" if ok else "Failed",
        "message": "" if ok else (result.reason or result.status.value),
        "compile_result": None,
        "run_result": {
            "status": "TimeLimitExceeded" if timed_out else "Finished",
            "execution_time": round(result.wall_s, 6),
            "cpu_time": None if result.cpu_s is None else round(result.cpu_s, 6),
            "return_code": code,
            "stdout": result.stdout,
            "stderr": stderr,
        },
        "executor_pod_name": None,
        "files": {},
    }
