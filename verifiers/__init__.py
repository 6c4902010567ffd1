"""restem's reward verifiers: is this answer right?

>>> from verifiers import verify_math
>>> verify_math("so the answer is $\\boxed{\\frac{1}{2}}$", "0.5").correct
True

``import verifiers`` needs only the standard library; sympy and pebble load on first use.
"""

from restem.verifiers.code import (
    CodeLimits,
    Comparison,
    Problem,
    as_problem,
    iter_verify_code,
    verify_code,
    verify_code_batch,
)
from restem.verifiers.math import iter_verify_math, verify_math, verify_math_batch
from restem.verifiers.settings import MathSettings
from restem.verifiers.verdict import CodeStatus, CodeVerdict, MathStatus, MathVerdict, TestResult

__all__ = [
    "CodeLimits",
    "CodeStatus",
    "CodeVerdict",
    "Comparison",
    "MathSettings",
    "MathStatus",
    "MathVerdict",
    "Problem",
    "TestResult",
    "as_problem",
    "iter_verify_code",
    "iter_verify_math",
    "verify_code",
    "verify_code_batch",
    "verify_math",
    "verify_math_batch",
]
