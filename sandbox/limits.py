"""`Limits`: the resources one run of an untrusted program may use."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """Per-run limits, enforced by every backend.

    wall_s       wall-clock seconds from start to exit (enforced by the supervisor, a process
                 boundary away from the program)
    cpu_s        CPU seconds of the program and its children (RLIMIT_CPU per process; the
                 supervisor's wall limit backs it up)
    memory_mb    address space per process (RLIMIT_AS) and, under docker, the container's
                 memory cgroup (swap included, i.e. no swap)
    processes    processes + threads the run may hold at once
    output_bytes cap on stdout and, separately, on stderr; the run is stopped when exceeded
    disk_mb      size of the program's private, writable work dir (a tmpfs where possible)
    """

    wall_s: float = 10.0
    cpu_s: float = 10.0
    memory_mb: int = 512
    processes: int = 32
    output_bytes: int = 1 << 20
    disk_mb: int = 64

    def __post_init__(self) -> None:
        # Checked here, not at run time: a bad Limits is the caller's bug, not the program's.
        for name in ("wall_s", "cpu_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"Limits.{name} must be a positive finite number, got {value!r}")
        for name in ("memory_mb", "processes", "output_bytes", "disk_mb"):
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")
        if self.memory_mb < 32:
            raise ValueError("Limits.memory_mb below 32 cannot start a Python interpreter")

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)
