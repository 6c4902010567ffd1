"""APPS-style code verification: run a program against tests in the sandbox, judge outside it.

    from restem.verifiers.code import verify_code
    problem = {"input_output": {"inputs": ["1 2\n"], "outputs": ["3\n"]}}
    verify_code(problem, "print(sum(map(int, input().split())))").correct   # True

Importing this package does not import the sandbox; it loads when a program first runs.
"""

from restem.verifiers.code.judge import Comparison, compare_stdout, compare_value
from restem.verifiers.code.problems import (
    Mode,
    Problem,
    ProblemError,
    TestCase,
    apps_problem,
    as_problem,
    humaneval_problem,
    load_apps_folder,
    load_apps_mapcoder,
    load_apps_solutions,
    load_humaneval,
    load_mbpp,
    mbpp_problem,
)
from restem.verifiers.code.verify import (
    CodeLimits,
    iter_verify_code,
    open_sandbox,
    verify_code,
    verify_code_batch,
)

__all__ = [
    "CodeLimits",
    "Comparison",
    "Mode",
    "Problem",
    "ProblemError",
    "TestCase",
    "apps_problem",
    "as_problem",
    "compare_stdout",
    "compare_value",
    "humaneval_problem",
    "iter_verify_code",
    "load_apps_folder",
    "load_apps_mapcoder",
    "load_apps_solutions",
    "load_humaneval",
    "load_mbpp",
    "mbpp_problem",
    "open_sandbox",
    "verify_code",
    "verify_code_batch",
]
