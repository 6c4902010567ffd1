"""APPS-style code verification: run a program against tests in the sandbox, judge outside it.

    from restem.verifiers.code import verify_code
    problem = {"input_output": {"inputs": ["1 2\n"], "outputs": ["3\n"]}}
    verify_code(problem, "print(sum(map(int, input().split())))").correct   # True

Importing this package does not import the sandbox; it loads when a program first runs.
"""

from restem.verifiers.code import problems
from restem.verifiers.code.judge import Comparison, compare_stdout, compare_value
from restem.verifiers.code.problems import *  # noqa: F403 - the problem loaders, all of them
from restem.verifiers.code.verify import (
    CodeLimits,
    iter_verify_code,
    open_sandbox,
    verify_code,
    verify_code_batch,
)

__all__ = [
    *problems.__all__,
    "CodeLimits",
    "Comparison",
    "compare_stdout",
    "compare_value",
    "iter_verify_code",
    "open_sandbox",
    "verify_code",
    "verify_code_batch",
]
