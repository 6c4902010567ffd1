"""Verdicts: what a verifier says about one answer.

A verdict is a small frozen dataclass with a string-valued status and a human-readable reason,
never a bare bool or a magic number. ``reward`` is what an RL loop should use: 1.0, 0.0, or
``None`` when the gold answer itself is unusable (skip the sample, do not punish the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

__all__ = ["CodeStatus", "CodeVerdict", "MathStatus", "MathVerdict", "TestResult"]


class MathStatus(StrEnum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    NO_ANSWER = "no_answer"  # nothing answer-like could be extracted (or it was cut off)
    INVALID_GOLD = "invalid_gold"  # the reference answer is empty or malformed
    TIMEOUT = "timeout"  # the hard time limit ran out (the worker was killed)
    ERROR = "error"  # the verifier itself failed (a worker died, a bug): not the model's fault


class _Reward:
    """``correct`` and ``reward`` from a verdict's status, the same rule for every kind."""

    __slots__ = ()
    _CORRECT: ClassVar[StrEnum]
    _UNUSABLE: ClassVar[StrEnum]  # the gold / problem itself is unusable: reward None

    @property
    def correct(self) -> bool:
        return self.status is self._CORRECT

    @property
    def reward(self) -> float | None:
        if self.status is self._UNUSABLE:
            return None
        return 1.0 if self.correct else 0.0


@dataclass(frozen=True, slots=True)
class MathVerdict(_Reward):
    status: MathStatus
    extracted: str | None = None  # the answer string that was judged
    reason: str = ""
    _CORRECT: ClassVar[MathStatus] = MathStatus.CORRECT
    _UNUSABLE: ClassVar[MathStatus] = MathStatus.INVALID_GOLD

    def to_dict(self) -> dict:
        return {
            "correct": self.correct,
            "status": self.status.value,
            "extracted": self.extracted,
            "reason": self.reason,
        }


class CodeStatus(StrEnum):
    PASSED = "passed"
    WRONG_ANSWER = "wrong_answer"  # ran, but the output or returned value is not the expected one
    TIMEOUT = "timeout"  # a test's time limit (after one quiet re-run) or the program's total limit
    RUNTIME_ERROR = "runtime_error"  # raised, exited non-zero, or exited before the tests reported
    MEMORY = "memory"  # the memory limit was reached
    COMPILE_ERROR = "compile_error"  # the program is not valid Python
    SANDBOX_ERROR = "sandbox_error"  # the sandbox itself failed: says nothing about the program
    INVALID_PROBLEM = "invalid_problem"  # the problem has no usable tests: skip, do not punish


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test of one program. `wall_s` is the run's wall time (0.0 for a test never run)."""

    __test__ = False  # a name pytest would otherwise try to collect

    index: int
    status: CodeStatus
    wall_s: float = 0.0
    reason: str = ""
    retried: bool = False  # timed out under load, then re-run once on a quiet sandbox

    @property
    def passed(self) -> bool:
        return self.status is CodeStatus.PASSED

    def to_dict(self) -> dict:
        row = {
            "index": self.index,
            "status": self.status.value,
            "wall_s": round(self.wall_s, 4),
            "reason": self.reason,
        }
        if self.retried:
            row["retried"] = True
        return row


@dataclass(frozen=True, slots=True)
class CodeVerdict(_Reward):
    """A program judged against a problem's tests.

    `tests` holds the tests that ran, in order (by default the run stops at the first failure);
    `total_tests` counts all of the problem's tests, so `pass_fraction` is passed / total_tests.
    """

    status: CodeStatus
    tests: tuple[TestResult, ...] = ()
    total_tests: int = 0
    reason: str = ""
    _CORRECT: ClassVar[CodeStatus] = CodeStatus.PASSED
    _UNUSABLE: ClassVar[CodeStatus] = CodeStatus.INVALID_PROBLEM

    @property
    def pass_fraction(self) -> float:
        if not self.total_tests:
            return 0.0
        return sum(t.passed for t in self.tests) / self.total_tests

    def to_dict(self) -> dict:
        return {
            "correct": self.correct,
            "status": self.status.value,
            "pass_fraction": round(self.pass_fraction, 6),
            "reason": self.reason,
            "tests": [t.to_dict() for t in self.tests],
        }
