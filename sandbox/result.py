"""`RunResult`: what one run of an untrusted program produced."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["RunResult", "Status"]


class Status(enum.StrEnum):
    OK = "ok"  # exited with status 0 within every limit
    TIMEOUT = "timeout"  # wall or CPU limit reached; the run was killed
    MEMORY = "memory"  # memory limit reached (MemoryError or killed by the OOM killer)
    RUNTIME_ERROR = "runtime_error"  # non-zero exit or killed by a signal of its own making
    OUTPUT_LIMIT = "output_limit"  # wrote more than Limits.output_bytes to stdout or stderr
    SANDBOX_ERROR = "sandbox_error"  # the sandbox itself failed; says nothing about the program


@dataclass(frozen=True)
class RunResult:
    status: Status
    exit_code: int | None  # negative: killed by that signal; None: never started or unknown
    stdout: str  # decoded as UTF-8 with replacement, capped at Limits.output_bytes
    stderr: str
    wall_s: float
    cpu_s: float | None = None
    peak_memory_mb: float | None = None  # largest resident set of any one process of the run
    reason: str = ""  # why the status is what it is, for people reading logs

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @classmethod
    def sandbox_error(cls, reason: str, wall_s: float = 0.0) -> RunResult:
        return cls(Status.SANDBOX_ERROR, None, "", "", wall_s, reason=reason)

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> RunResult:
        fields = {k: row.get(k) for k in cls.__dataclass_fields__ if k in row}
        fields["status"] = Status(row["status"])
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        row = asdict(self)
        row["status"] = self.status.value
        return row
