"""Assert-style tests judged in the trusted test process, the program's calls through proxies:
in-place changes come back, exceptions keep their builtin type, helpers of the dataset's prompt
stay trusted, and the forms a proxy cannot carry are `invalid_problem` with the reason."""

from __future__ import annotations

import os

import pytest
from restem.verifiers import CodeStatus, verify_code


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
    # each call is a fresh solution: no state carries from one call to the next
    (STATEFUL, "seen = []\ndef f(x):\n    seen.append(x)\n    return len(seen)", "passed"),
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
