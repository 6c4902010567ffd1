"""Every mode end to end on the local sandbox: stdio, call-based (function, class Solution),
assert-style (MBPP, HumanEval); statuses, per-test results, limits, batches."""

from __future__ import annotations

import pytest
from restem.sandbox import Sandbox
from restem.verifiers import CodeStatus, verify_code, verify_code_batch
from restem.verifiers.code import CodeLimits, iter_verify_code

ADD_STDIO = {
    "input_output": {"inputs": ["1 2\n", "5 5\n", "0 -3\n"], "outputs": ["3\n", "10\n", "-3\n"]}
}
ADD_CALL = {"input_output": {"fn_name": "add", "inputs": [[1, 2], [5, 5]], "outputs": [3, [10]]}}
LEETCODE = {
    "input_output": {
        "fn_name": "twoSum",
        "inputs": [[[2, 7, 11], 9], [[3, 3], 6]],
        "outputs": [[0, 1], [0, 1]],
    },
    "starter_code": "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        ",
}
MBPP = {
    "task_id": 1,
    "test_list": [
        "assert add(1, 2) == 3",
        "assert add(-1, 1) == 0",
        "assert math.isclose(add(0.1, 0.2), 0.3)",
    ],
    "test_setup_code": "import math",
}
HUMANEVAL = {
    "task_id": "HumanEval/x",
    "prompt": 'def add(a, b):\n    """Add."""\n',
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert abs(candidate(0.1, 0.2) - 0.3) < 1e-9\n",
    "entry_point": "add",
}
TWO_SUM = (
    "class Solution:\n    def twoSum(self, nums, target):\n"
    "        seen = {}\n        for i, x in enumerate(nums):\n"
    "            if target - x in seen:\n                return [seen[target - x], i]\n"
    "            seen[x] = i\n"
)

# (problem, program, status, pass_fraction)
CASES = [
    (ADD_STDIO, "a, b = map(int, input().split())\nprint(a + b)", "passed", 1.0),
    (ADD_STDIO, "import sys\nprint(sum(map(int, sys.stdin.read().split())))", "passed", 1.0),
    (
        ADD_STDIO,
        "a, b = map(int, input().split())\nprint(a - b if a == 5 else a + b)",
        "wrong_answer",
        2 / 3,
    ),
    (ADD_STDIO, "print(1 +)", "compile_error", 0.0),
    (ADD_STDIO, "raise ValueError('boom')", "runtime_error", 0.0),
    (
        ADD_STDIO,
        "import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.exit(0)",
        "passed",
        1.0,
    ),
    (ADD_STDIO, "x = bytearray(2 << 30)", "memory", 0.0),
    (ADD_CALL, "def add(a, b):\n    return a + b", "passed", 1.0),
    (ADD_CALL, "def add(a, b):\n    return a * b", "wrong_answer", 0.0),
    (ADD_CALL, "def plus(a, b):\n    return a + b", "runtime_error", 0.0),
    (ADD_CALL, "def add(a, b):\n    return [][0]", "runtime_error", 0.0),
    (ADD_CALL, "def add(a, b)\n    return a + b", "compile_error", 0.0),
    (ADD_CALL, "class Solution:\n    def add(self, a, b):\n        return a + b", "passed", 1.0),
    (LEETCODE, TWO_SUM, "passed", 1.0),
    (
        LEETCODE,
        TWO_SUM.replace("class Solution:\n    def", "if 1:\n    def").replace("self, ", ""),
        "passed",
        1.0,
    ),
    (LEETCODE, TWO_SUM.replace("[seen[target - x], i]", "(seen[target - x], i)"), "passed", 1.0),
    (
        LEETCODE,
        TWO_SUM.replace("[seen[target - x], i]", "[i, seen[target - x]]"),
        "wrong_answer",
        0.0,
    ),
    (MBPP, "def add(a, b):\n    return a + b", "passed", 1.0),
    (MBPP, "def add(a, b):\n    return a + b if a >= 0 else 1", "wrong_answer", 2 / 3),
    (MBPP, "def add(a, b):\n    return round(a + b)", "wrong_answer", 2 / 3),
    (MBPP, "def sum_(a, b):\n    return a + b", "runtime_error", 0.0),
    (HUMANEVAL, 'def add(a, b):\n    """Add."""\n    return a + b\n', "passed", 1.0),
    (HUMANEVAL, 'def add(a, b):\n    """Add."""\n    return int(a + b)\n', "wrong_answer", 0.0),
]


@pytest.mark.parametrize(("problem", "program", "status", "fraction"), CASES)
def test_modes(box, problem, program, status, fraction):
    verdict = verify_code(problem, program, backend=box, all_tests=True)
    assert verdict.status == status, verdict.reason
    assert verdict.correct is (status == "passed")
    assert verdict.pass_fraction == pytest.approx(fraction)
    assert verdict.reward == (1.0 if status == "passed" else 0.0)


def test_stops_at_the_first_failure_unless_all_tests(box):
    program = "a, b = map(int, input().split())\nprint(0)"
    first = verify_code(ADD_STDIO, program, backend=box)
    assert [t.status for t in first.tests] == [CodeStatus.WRONG_ANSWER]
    every = verify_code(ADD_STDIO, program, backend=box, all_tests=True)
    assert len(every.tests) == 3 and every.total_tests == 3
    assert every.reason.startswith("test 0: line 1, token 1: expected '3', got '0'")
    row = every.to_dict()
    assert set(row) == {"correct", "status", "pass_fraction", "reason", "tests"}
    assert row["tests"][0]["status"] == "wrong_answer" and row["tests"][0]["wall_s"] > 0


def test_a_compile_error_stops_even_with_all_tests(box):
    verdict = verify_code(ADD_STDIO, "print(", backend=box, all_tests=True)
    assert verdict.status is CodeStatus.COMPILE_ERROR and len(verdict.tests) == 1


def test_cpu_bound_timeout_is_not_rerun(box):
    limits = CodeLimits(test_s=1.0)
    verdict = verify_code(
        ADD_CALL, "def add(a, b):\n    while True: pass", backend=box, limits=limits
    )
    assert verdict.status is CodeStatus.TIMEOUT
    assert not verdict.tests[0].retried  # it used its CPU allowance: load did not cause it


def test_a_wall_clock_timeout_is_rerun_once_alone_and_reported(box):
    limits = CodeLimits(test_s=0.5)
    verdict = verify_code(
        ADD_CALL, "import time\ndef add(a, b):\n    time.sleep(60)", backend=box, limits=limits
    )
    assert verdict.status is CodeStatus.TIMEOUT
    assert verdict.tests[0].retried
    assert "also on a quiet re-run" in verdict.reason and "load average" in verdict.reason
    assert verdict.tests[0].wall_s < 5


class _StarvedOnce(Sandbox):
    """A real local sandbox whose first run gets a wall clock too short to finish: what a
    loaded machine does to a correct program. (`run_many` is the base class's loop over `run`.)"""

    def __init__(self, box):
        self.box, self.workers, self.runs = box, 1, 0

    def run(self, program, stdin=b"", limits=None):
        from dataclasses import replace

        self.runs += 1
        if self.runs == 1:
            limits = replace(limits, wall_s=0.001)
        return self.box.run(program, stdin, limits)


def test_a_program_starved_under_load_passes_on_the_quiet_rerun(box):
    starved = _StarvedOnce(box)
    verdict = verify_code(ADD_CALL, "def add(a, b):\n    return a + b", backend=starved)
    assert verdict.correct, verdict.reason
    assert verdict.tests[0].retried and "quiet re-run" in verdict.tests[0].reason
    assert starved.runs == 3  # two tests, the first one twice


def test_the_total_limit_stops_a_program(box):
    problem = {"input_output": {"fn_name": "f", "inputs": [[0]] * 6, "outputs": [0] * 6}}
    program = "def f(x):\n    import time\n    t = time.process_time()\n    while time.process_time() - t < 0.4: pass\n    return x"
    verdict = verify_code(problem, program, backend=box, limits=CodeLimits(test_s=2, total_s=1.0))
    assert verdict.status is CodeStatus.TIMEOUT
    assert "total limit" in verdict.reason
    assert 2 <= len(verdict.tests) <= 4 and verdict.tests[-1].wall_s == 0.0


def test_invalid_problems_get_a_verdict_with_no_reward(box):
    verdict = verify_code({"input_output": {"inputs": [], "outputs": []}}, "pass", backend=box)
    assert verdict.status is CodeStatus.INVALID_PROBLEM and verdict.reward is None
    assert "no tests" in verdict.reason


def test_a_program_that_is_not_text_is_a_caller_bug(box):
    with pytest.raises(TypeError):
        verify_code(ADD_STDIO, b"print(1)", backend=box)


def test_backend_by_name_opens_and_closes_its_own_sandbox():
    assert verify_code(ADD_STDIO, "print(sum(map(int, input().split())))", backend="local").correct


def test_batch_keeps_order_and_mixes_problems(box):
    items = [
        (ADD_STDIO, "print(sum(map(int, input().split())))"),
        (ADD_CALL, "def add(a, b):\n    return a - b"),
        (MBPP, "def add(a, b):\n    return a + b"),
        ({"input_output": {}}, "pass"),
        (HUMANEVAL, HUMANEVAL["prompt"] + "    return a + b\n"),
    ]
    statuses = [v.status.value for v in verify_code_batch(items, backend=box, workers=2)]
    assert statuses == ["passed", "wrong_answer", "passed", "invalid_problem", "passed"]
    assert [v.status.value for v in iter_verify_code(items[:2], backend="local", workers=2)] == [
        "passed",
        "wrong_answer",
    ]


class _Counting(Sandbox):
    """A real local sandbox that records every request it gets."""

    def __init__(self, box):
        self.box, self.workers, self.requests, self.runs = box, 1, [], 0

    def run(self, program, stdin=b"", limits=None):
        self.runs += 1
        return self.box.run(program, stdin, limits)

    def run_many(self, program, stdins, limits=None):
        self.requests.append((program, list(stdins)))
        return super().run_many(program, stdins, limits)


FIVE_CALLS = {
    "input_output": {"fn_name": "f", "inputs": [[n] for n in range(5)], "outputs": [0] * 5}
}


@pytest.mark.parametrize(
    ("program", "all_tests", "runs"),
    [
        ("def f(x):\n    return 0", False, 5),  # all pass: all run
        ("def f(x):\n    return x", False, 2),  # test 1 fails: the request is closed there
        ("def f(x):\n    return x", True, 5),  # near miss: --all-tests runs every test
    ],
)
def test_all_tests_of_a_program_are_one_request_with_one_program_text(
    box, program, all_tests, runs
):
    counting = _Counting(box)
    verify_code(FIVE_CALLS, program, backend=counting, all_tests=all_tests)
    assert len(counting.requests) == 1 and counting.runs == runs
    text, stdins = counting.requests[0]
    assert len(stdins) == 5 and len(set(stdins)) == 5  # each test's data is its stdin
    assert "[3]" not in text and all(f"[{n}]" in s for n, s in enumerate(stdins))


def test_one_run_per_test_path_gives_the_same_verdicts(box):
    for problem, program, status, fraction in CASES:
        counting = _Counting(box)
        verdict = verify_code(problem, program, backend=counting, batch_tests=False, all_tests=True)
        assert verdict.status.value == status and not counting.requests
        assert verdict.pass_fraction == pytest.approx(fraction)
