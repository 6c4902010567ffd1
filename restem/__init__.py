"""restem: hardened reward verifiers (MATH answers, code with tests) and a ReST-EM harness.

>>> import restem
>>> restem.verify_math("so the answer is $\\boxed{\\frac{1}{2}}$", "0.5").correct
True

The everyday entry points are here; the packages hold the rest:
``restem.verifiers`` (is this answer right?), ``restem.sandbox`` (how untrusted code runs),
``restem.harness`` (the self-training loop). ``import restem`` needs only the standard library;
sympy, pebble, docker and torch load on first use.
"""

from restem.errors import (
    ConfigError,
    ExecutorError,
    GenerationError,
    JobError,
    ProblemError,
    RestemError,
    RunError,
    SandboxUnavailable,
)
from restem.verifiers import (
    CodeLimits,
    CodeStatus,
    CodeVerdict,
    MathSettings,
    MathStatus,
    MathVerdict,
    TestResult,
    iter_verify_code,
    iter_verify_math,
    verify_code,
    verify_code_batch,
    verify_math,
    verify_math_batch,
)

__version__ = "0.2.0"

__all__ = [
    "CodeLimits",
    "CodeStatus",
    "CodeVerdict",
    "ConfigError",
    "ExecutorError",
    "GenerationError",
    "JobError",
    "MathSettings",
    "MathStatus",
    "MathVerdict",
    "ProblemError",
    "RestemError",
    "RunError",
    "SandboxUnavailable",
    "TestResult",
    "iter_verify_code",
    "iter_verify_math",
    "verify_code",
    "verify_code_batch",
    "verify_math",
    "verify_math_batch",
]
