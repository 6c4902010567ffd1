"""Symbolic MATH answer equivalence: extract -> normalize -> parse -> compare (-> symbolic)."""

from restem.verifiers.math.verify import iter_verify_math, verify_math, verify_math_batch

__all__ = ["iter_verify_math", "verify_math", "verify_math_batch"]
