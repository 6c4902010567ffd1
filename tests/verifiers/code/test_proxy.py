"""Assert-style tests judged in the trusted test process, the program's calls through proxies:
in-place changes come back, exceptions keep their builtin type, helpers of the dataset's prompt
stay trusted, and the forms a proxy cannot carry are `invalid_problem` with the reason. The calls
of one test run ahead in one sandbox process (its state shared by them, never by two tests); a
call that exits, hangs or hits a limit ends that run, and the verdict is the one a run of its
own would give."""

from __future__ import annotations

import os

import pytest
from restem.verifiers import CodeStatus, verify_code, verify_code_batch


def _he(test: str, entry: str = "f", prompt: str = "") -> dict:
    return {"prompt": prompt, "test": "def check(candidate):\n" + test, "entry_point": entry}


SORT_IN_PLACE = _he(
    "    xs = [3, 1, 2]\n    d = {}\n    candidate(xs, d)\n"
    "    assert xs == [1, 2, 3] and d == {'n': 3}\n"
)
RAISES = _he(
    "    try:\n        candidate(-1)\n    except ValueError:\n        pass\n"
    "    else:\n        assert False, 'no ValueError'\n    assert candidate(2) == 4\n"
)
# HumanEval/32's shape: the test checks the answer with a helper the prompt defines.
PROMPT = "def poly(xs, x):\n    return sum(c * x**i for i, c in enumerate(xs))\n\ndef find_zero(xs):\n    '''A zero of poly.'''\n"
HELPER = _he("    assert abs(poly([-6, 1], candidate([-6, 1]))) < 1e-9\n", "find_zero", PROMPT)
NON_LITERAL = _he("    for n in range(5):\n        assert candidate(n) == n * n\n")
STATEFUL = _he("    assert candidate(1) == 1\n    assert candidate(1) == 1\n")
# Two check tests of one problem (MBPP asserts that are not `== LITERAL`): a run each.
TWO_TESTS = {"test_list": ["assert f(1) in (1,)", "assert f(1) in (1,)"]}
THREE = _he(
    "    assert candidate(1) == 1\n    assert candidate(2) == 2\n    assert candidate(3) == 3\n"
)
# `sys.exit` is an exception the harness catches (the test may too); `os._exit` ends the run.
CAUGHT = _he(
    "    assert candidate(1) == 1\n    try:\n        candidate(3)\n    except Exception:\n"
    "        pass\n    assert candidate(4) == 4\n"
)
# The second of three calls changes its argument in place.
IN_PLACE_2ND = _he(
    "    assert candidate([9], 0) == 1\n    xs = [3, 1, 2]\n    candidate(xs, 1)\n"
    "    assert xs == [1, 2, 3]\n    assert candidate([5, 4], 0) == 2\n"
)
# A plain value of the program's that the test reads (`describe`), in the same run as the calls.
NAMED = _he("    assert candidate(2) == 4\n    assert candidate(3) + LIMIT == 11\n")
SEEN = "seen = []\ndef f(x):\n    seen.append(x)\n    return len(seen)"
EXIT_AT_3 = "def f(x):\n    if x == 3:\n        {}\n    return x"

CASES = [
    # (problem, program, status)
    (SORT_IN_PLACE, "def f(xs, d):\n    xs.sort()\n    d['n'] = len(xs)", "passed"),
    (SORT_IN_PLACE, "def f(xs, d):\n    xs = sorted(xs)\n    d['n'] = 3", "wrong_answer"),
    (RAISES, "def f(x):\n    if x < 0:\n        raise ValueError(x)\n    return x * x", "passed"),
    (
        RAISES,
        "def f(x):\n    if x < 0:\n        raise KeyError(x)\n    return x * x",
        "runtime_error",
    ),
    (RAISES, "def f(x):\n    if x < 0:\n        return None\n    return x * x", "wrong_answer"),
    (HELPER, PROMPT + "    return 6.0\n", "passed"),
    (HELPER, PROMPT + "    return 5.0\n", "wrong_answer"),
    # the program redefines the trusted helper to always say zero: the prompt's one is used
    (HELPER, PROMPT + "    return 5.0\ndef poly(xs, x):\n    return 0\n", "wrong_answer"),
    (NON_LITERAL, "def f(n):\n    return n * n", "passed"),
    (NON_LITERAL, "def f(n):\n    return n * n if n < 4 else 0", "wrong_answer"),
    # the calls of one check test share one process, as in HumanEval's own harness: the second
    # call sees the first one's state (each call had a fresh process before issue 12)
    (STATEFUL, SEEN, "wrong_answer"),
    (STATEFUL, "def f(x):\n    return x", "passed"),
    # near miss: two check tests are two runs, so nothing carries from one test to the next
    (TWO_TESTS, SEEN, "passed"),
    (TWO_TESTS, "def f(x):\n    return 2", "wrong_answer"),
    # a call that hangs, exits or runs out of memory after calls that passed
    (THREE, EXIT_AT_3.format("while True:\n            pass"), "timeout"),
    (THREE, EXIT_AT_3.format("import os; os._exit(0)"), "runtime_error"),
    (THREE, EXIT_AT_3.format("b = bytearray(1 << 40)"), "memory"),
    (THREE, EXIT_AT_3.format("pass"), "passed"),
    # an exception is the call's answer and the run goes on; an exit is not caught
    (CAUGHT, EXIT_AT_3.format("raise ValueError(x)"), "passed"),
    (CAUGHT, EXIT_AT_3.format("import sys; sys.exit(0)"), "passed"),
    (CAUGHT, EXIT_AT_3.format("import os; os._exit(0)"), "runtime_error"),
    # near miss: the call after the one that raised is judged as any other
    (CAUGHT, EXIT_AT_3.format("raise ValueError(x)") + " if x < 4 else 0", "wrong_answer"),
    (
        IN_PLACE_2ND,
        "def f(xs, sort):\n    if sort:\n        xs.sort()\n    return len(xs)",
        "passed",
    ),
    (IN_PLACE_2ND, "def f(xs, sort):\n    xs = sorted(xs)\n    return len(xs)", "wrong_answer"),
    (NAMED, "LIMIT = 5\ndef f(x):\n    return 2 * x", "passed"),
    (NAMED, "LIMIT = 4\ndef f(x):\n    return 2 * x", "wrong_answer"),
    (NAMED, "def f(x):\n    return 2 * x", "runtime_error"),  # no LIMIT: a NameError
    (NON_LITERAL, "def f(n):\n    while True:\n        pass", "timeout"),
    (NON_LITERAL, "def f(n):\n    return object()", "wrong_answer"),
    (NON_LITERAL, "def f(n)\n    return n", "compile_error"),
    (NON_LITERAL, "import os\nos._exit(0)\ndef f(n):\n    return n * n", "runtime_error"),
    (NON_LITERAL, "def f(n):\n    print('pass')\n    exit(0)", "runtime_error"),
]


@pytest.mark.parametrize(("problem", "program", "status"), CASES)
def test_calls_through_the_proxy(box, problem, program, status):
    from restem.verifiers import CodeLimits

    verdict = verify_code(problem, program, backend=box, limits=CodeLimits(test_s=1.0))
    assert verdict.status.value == status, verdict.reason


@pytest.mark.parametrize(
    ("hang", "retried"),
    [
        # the CPU limit: the answer of the run that all the calls shared is kept
        ("while True:\n            pass", False),
        # the wall clock (the machine's load, perhaps): the call runs again, alone, and once
        # more on a quiet sandbox
        ("import time; time.sleep(60)", True),
    ],
)
def test_a_call_that_hangs_after_calls_that_passed_times_out(box, hang, retried):
    from restem.verifiers import CodeLimits

    limits = CodeLimits(test_s=0.3)
    verdict = verify_code(THREE, EXIT_AT_3.format(hang), backend=box, limits=limits)
    assert verdict.status is CodeStatus.TIMEOUT, verdict.reason
    assert verdict.tests[-1].retried is retried, verdict.tests


UNSUPPORTED = [
    (_he("    assert candidate(lambda x: x + 1, 1) == 2\n"), "passes"),
    (_he("    assert candidate.__code__.co_argcount == 1\n"), "reads .__code__"),
]


@pytest.mark.parametrize(("problem", "why"), UNSUPPORTED)
def test_forms_a_proxy_cannot_carry_are_invalid_problems(box, problem, why):
    verdict = verify_code(problem, "def f(*a):\n    return 2", backend=box)
    assert verdict.status is CodeStatus.INVALID_PROBLEM and verdict.reward is None
    assert (
        "cannot be judged outside the program's process" in verdict.reason and why in verdict.reason
    )


def _my_checkers() -> list[int]:
    """Test processes (servers and their children) this process started and left running."""
    mine = f"RESTEM_CHECKER_OWNER={os.getpid()}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if mine in f.read().split(b"\0"):
                    found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.parametrize(
    ("test", "status"),
    [
        ("    while True:\n        pass\n", "timeout"),  # the trusted test itself never ends
        ("    import os\n    os._exit(3)\n", "sandbox_error"),  # nor reports
        ("    assert candidate(2) == 4\n", "passed"),  # near miss: a test that ends
    ],
)
def test_a_test_process_that_hangs_or_dies_is_a_verdict_and_leaves_nothing(box, test, status):
    from restem.verifiers import CodeLimits

    limits = CodeLimits(test_s=0.5, total_s=1.0)
    verdict = verify_code(_he(test), "def f(x):\n    return x * x", backend=box, limits=limits)
    assert verdict.status.value == status, verdict.reason
    assert _my_checkers() == []


# A test whose calls are all written out (literal arguments, straight-line code, `check` run
# once) needs no discovery run: the written calls are the ones it makes, in order. Each shape
# that could make other calls, more calls or the calls in another order is a near miss.
STRAIGHT = [
    # (test body of check(candidate) or a whole test, complete?)
    ("    assert candidate(1) == 1\n    assert candidate(2) == 4\n", True),
    ("    assert abs(candidate(2.0) - 4.0) < 1e-6\n    assert candidate(1) == 1\n", True),
    ("    assert candidate(1) == 1, 'got ' + str(candidate(1))\n", True),  # message: not a call
    ("    try:\n        candidate(-1)\n    except ValueError:\n        pass\n", True),
    ("    assert f(1) == 1\n", True),  # the entry's own name
    ("    for n in range(3):\n        assert candidate(n) == n\n", False),  # a loop
    ("    assert all(candidate(n) == n for n in (1, 2))\n", False),  # a generator
    ("    assert candidate(1 + 1) == 2\n", False),  # not a literal argument
    ("    g = candidate\n    assert g(1) == 1\n", False),  # an alias
    ("    assert helper(candidate) == 1\n", False),  # passed on
    ("    assert candidate(candidate(1)) == 1\n", False),  # an answer as an argument
    ("    def inner():\n        return candidate(1)\n    assert inner() == 1\n", False),
    ("    assert candidate(*[1]) == 1\n", False),  # starred
    ("    assert candidate(1) == LIMIT\n", False),  # a name of the program's
]
WHOLE = [
    ("def check(candidate):\n    assert candidate(1) == 1\n\ncheck(f)\n", True),
    ("def check(g):\n    assert g(1) == 1\n\ncheck(f)\n", False),  # the proxy under another name
    ("def check(candidate):\n    assert candidate(1) == 1\n\ncheck(f)\ncheck(f)\n", False),
    ("def check(candidate):\n    assert candidate(1) == 1\n\ncheck(lambda x: x)\n", False),
    ("def check(candidate):\n    assert candidate(1) == 1\n", False),  # never run
    ("@decorate\ndef check(candidate):\n    assert candidate(1) == 1\n\ncheck(f)\n", False),
    ("assert f(1) == 1\nassert f(2) == 2\n", True),
    ("candidate = print\nassert candidate(1) is None\n", False),  # rebound
]


def _plan(test_code: str):
    from restem.verifiers.code.problems import Mode, Problem, TestCase
    from restem.verifiers.code.proxy import plan_check

    return plan_check(Problem(Mode.ASSERT, (TestCase(test_code),), "f"), 0)


@pytest.mark.parametrize(("body", "complete"), STRAIGHT)
def test_straight_line_tests_need_no_discovery_run(body, complete):
    plan = _plan(f"def check(candidate):\n{body}\n\ncheck(f)\n")
    assert plan.complete is complete


@pytest.mark.parametrize(("code", "complete"), WHOLE)
def test_how_check_is_run_decides_whether_the_written_calls_are_all(code, complete):
    assert _plan(code).complete is complete


def test_written_calls_go_ahead_in_the_order_the_test_makes_them():
    # ast.walk is breadth first: the nested call would come first without the sort.
    plan = _plan("assert abs(f(2) - 4) < 1\nassert f(3) == 9\nassert f(1) == 1\n")
    assert plan.complete
    assert [json_args(request) for _, request in plan.calls] == [[2], [3], [1]]


def json_args(request: str) -> list:
    import json

    return json.loads(request)["args"]


# A stateful program: the answers run ahead must reach the test in the order the calls were
# made, or the order-dependent asserts fail.
COUNTER = "seen = []\ndef f(x):\n    seen.append(x)\n    return len(seen)"


@pytest.mark.parametrize(
    ("test", "status"),
    [
        ("    assert abs(candidate(5) - 1) < 0.5\n    assert candidate(6) == 2\n", "passed"),
        ("    assert candidate(5) == 1\n    assert abs(candidate(6) - 2) < 0.5\n", "passed"),
        ("    assert candidate(5) == 2\n", "wrong_answer"),
    ],
)
def test_answers_run_ahead_keep_their_order(box, test, status):
    verdict = verify_code(_he(test), COUNTER, backend=box)
    assert verdict.status.value == status, verdict.reason


# The test process runs the dataset's prompt only for the helpers the test names.
PROMPTS = [
    # (prompt, test body, prompt kept?)
    (PROMPT, "    assert abs(poly([-6, 1], candidate([-6, 1]))) < 1e-9\n", True),
    (
        "from math import isclose as close\ndef f(x):\n    '''doc'''\n",
        "    assert close(candidate(1), 1.0)\n",
        True,
    ),
    ("from math import *\ndef f(x):\n    '''doc'''\n", "    assert candidate(1) == 1\n", True),
    ("SCALE = 2\ndef f(x):\n    '''doc'''\n", "    assert candidate(1) == SCALE\n", True),
    (
        "from typing import List\ndef f(x: List[int]):\n    '''doc'''\n",
        "    assert candidate([1]) == 1\n",
        False,
    ),
    ("def f(x):\n    '''doc'''\n", "    assert candidate(1) == 1\n", False),  # the entry only
]


@pytest.mark.parametrize(("prompt", "body", "kept"), PROMPTS)
def test_the_prompt_runs_in_the_test_process_only_for_its_helpers(prompt, body, kept):
    from restem.verifiers.code.problems import Mode, Problem, TestCase
    from restem.verifiers.code.proxy import plan_check

    code = f"def check(candidate):\n{body}\n\ncheck(f)\n"
    plan = plan_check(Problem(Mode.ASSERT, (TestCase(code),), "f", prompt=prompt), 0)
    assert (plan.prompt == prompt) is kept


@pytest.mark.parametrize(
    ("problem", "status"),
    [
        (_he("    assert candidate(2) == 4 +\n"), "invalid_problem"),  # check code that won't parse
        ({"task_id": 1, "test_list": ["assert f(2) == 4 +"]}, "invalid_problem"),  # an MBPP assert
        (_he("    assert candidate(2) == 4\n"), "passed"),  # near miss: it parses
    ],
)
def test_test_code_that_does_not_parse_is_an_invalid_problem_not_a_crash(box, problem, status):
    [verdict] = verify_code_batch([(problem, "def f(x):\n    return x * x")], backend=box)
    assert verdict.status.value == status, verdict.reason


def test_one_problem_checked_for_many_samples_judges_each_on_its_own(box):
    # The checker compiles a problem's test code once and keeps it: every sample still gets
    # its own verdict, in order, whatever the samples before it did.
    problem = _he(
        "    assert candidate(2) == 4\n"
        "    xs = [candidate(i) for i in range(3)]\n"
        "    assert xs == [0, 1, 4], xs\n"
    )
    programs = [
        "def f(x):\n    return x * x",
        "def f(x):\n    return x + 2",
        "def f(x):\n    return x * x",
        "def f(x):\n    return x * x if x else 1",
    ]
    verdicts = verify_code_batch([(problem, p) for p in programs], backend=box, workers=1)
    assert [v.status.value for v in verdicts] == [
        "passed",
        "wrong_answer",
        "passed",
        "wrong_answer",
    ]
