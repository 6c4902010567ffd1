"""The end of a batch: once every program has started, a free sandbox slot takes over the second
half of the tests a long program has not reached (`verify._Lanes`). The verdict must be the one
a single request gives: same tests, same order, same stop at the first failure."""

from __future__ import annotations

import threading

import pytest
from restem.sandbox import Sandbox
from restem.verifiers.code import verify_code_batch

SLOW = 0.3  # seconds a test sleeps: slow enough to be worth a split, no CPU spent


class _Recording(Sandbox):
    """A real sandbox that records the tests (stdins) of every request, from any thread."""

    def __init__(self, box, workers):
        self.box, self.workers = box, workers
        self.requests: list[list[str]] = []
        self._lock = threading.Lock()

    def _record(self, stdins):
        with self._lock:
            self.requests.append([s if isinstance(s, str) else s.decode() for s in stdins])

    def run(self, program, stdin=b"", limits=None, **options):
        self._record([stdin])
        return self.box.run(program, stdin, limits, **options)

    def run_many(self, program, stdins, limits=None, **options):
        self._record(stdins)
        return self.box.run_many(program, stdins, limits, **options)


def _problem(outputs):
    n = len(outputs)
    return {"input_output": {"inputs": [f"{i}\n" for i in range(n)], "outputs": outputs}}


def _program(sleep):
    return f"import time\nn = int(input())\ntime.sleep({sleep})\nprint(n)\n"


def _judge(backend, workers, problem, program, all_tests):
    recording = _Recording(backend, workers)
    [verdict] = verify_code_batch(
        [(problem, program)], backend=recording, workers=workers, all_tests=all_tests
    )
    return verdict, recording.requests


def _summary(verdict):
    return verdict.status, [(t.index, t.status) for t in verdict.tests], verdict.reason


# (expected outputs: a wrong one where the program fails, all_tests)
CASES = [
    pytest.param([f"{i}\n" for i in range(6)], False, id="all-pass"),
    pytest.param([*(f"{i}\n" for i in range(4)), "x\n", "5\n"], False, id="fails-in-the-helper"),
    pytest.param(["0\n", "x\n", *(f"{i}\n" for i in range(2, 6))], False, id="fails-first-half"),
    pytest.param(["0\n", "x\n", "2\n", "3\n", "x\n", "5\n"], True, id="all-tests-two-failures"),
]


@pytest.mark.parametrize(("outputs", "all_tests"), CASES)
def test_a_split_program_gets_the_verdict_of_one_request(backend, outputs, all_tests):
    problem, program = _problem(outputs), _program(SLOW)
    threads = set(threading.enumerate())
    alone, alone_requests = _judge(backend, 1, problem, program, all_tests)
    split, split_requests = _judge(backend, 2, problem, program, all_tests)
    assert set(threading.enumerate()) <= threads  # every lane's thread was joined
    assert len(alone_requests) == 1  # near miss: one slot, nothing to split to
    assert _summary(split) == _summary(alone)
    if outputs.count("x\n") == 0 or "x\n" not in outputs[:3]:
        assert len(split_requests) >= 2  # the idle second slot took part of the tests
    # Each request is a contiguous run of tests, the second starting where the first gave up.
    starts = sorted(int(r[0]) for r in split_requests)
    assert starts[0] == 0 and all(
        [f"{i}\n" for i in range(int(r[0]), int(r[0]) + len(r))] == r for r in split_requests
    )


def test_quick_tests_are_not_split(box):
    # Near miss of the rule: a split costs a program load, not worth it for ms-long tests.
    problem = _problem([f"{i}\n" for i in range(6)])
    verdict, requests = _judge(box, 2, problem, _program(0), False)
    assert verdict.correct and len(requests) == 1


def test_no_split_while_programs_wait_for_a_slot(box):
    # Two long programs on two slots: each has a slot of its own, none is free to help until
    # one of them ends; the batch still gets both verdicts right.
    problem = _problem([f"{i}\n" for i in range(4)])
    recording = _Recording(box, 2)
    verdicts = verify_code_batch(
        [(problem, _program(SLOW)), (problem, _program(SLOW))], backend=recording, workers=2
    )
    assert [v.correct for v in verdicts] == [True, True]
    assert [len(v.tests) for v in verdicts] == [4, 4]
    assert sum(len(r) for r in recording.requests) >= 8
