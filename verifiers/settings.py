"""Settings for the verifiers: one typed, frozen object passed down, never globals."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MathSettings"]


@dataclass(frozen=True, slots=True)
class MathSettings:
    # Hard wall-clock limit for the symbolic stage of one verification, enforced by killing the
    # worker process. The exact fast path in the caller's process is bounded by input size instead.
    timeout_s: float = 3.0
    # A decimal stands for an exact irrational or non-terminating value only with this many
    # significant digits (0.3333333 for 1/3 yes, 0.33 no).
    min_sig_digits: int = 6
    # Longer extracted answers are judged by exact normalized-string equality only.
    max_answer_chars: int = 1000
    # multiprocessing start method of the worker pool. "fork" works in any script (forkserver and
    # spawn re-import the caller's __main__, which breaks scripts without a main guard); pick
    # "forkserver" in a heavily threaded program whose entry point has the guard.
    start_method: str = "fork"

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s!r}")
        if self.min_sig_digits < 1:
            raise ValueError(f"min_sig_digits must be at least 1, got {self.min_sig_digits!r}")
        if self.max_answer_chars < 1:
            raise ValueError(f"max_answer_chars must be at least 1, got {self.max_answer_chars!r}")
        if self.start_method not in ("forkserver", "spawn", "fork"):
            raise ValueError(
                f"start_method must be forkserver, spawn or fork, got {self.start_method!r}"
            )
