"""Reward holes peers are known for, each closed: objects that equal everything, exiting before
the tests run, printing the expected output or a fake report, monkeypatching builtins."""

from __future__ import annotations

import pytest
from restem.verifiers import CodeStatus, verify_code

CALL = {"input_output": {"fn_name": "add", "inputs": [[1, 2], [2, 2]], "outputs": [3, 4]}}
STDIO = {"input_output": {"inputs": ["1 2\n"], "outputs": ["3\n"]}}
MBPP = {"test_list": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]}
MBPP_CHECK = {"test_list": ["assert abs(add(0.1, 0.2) - 0.3) < 1e-9", "assert add(1, 2) in (3,)"]}
HUMANEVAL = {
    "prompt": "",
    "test": (
        "def check(candidate):\n"
        "    assert candidate(1, 2) == 3\n"
        "    assert abs(candidate(0.5, 0.25) - 0.75) < 1e-9\n"
        "    assert sorted([candidate(2, 2), 1]) == [1, 4]\n"
    ),
    "entry_point": "add",
}
WRONG = "def add(a, b):\n    return a - b\n"

ALWAYS_EQUAL = """
class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __gt__(self, other): return True
    def __sub__(self, other): return 0.0
    def __rsub__(self, other): return 0.0
    def __abs__(self): return 0.0
    def __bool__(self): return True
    def __hash__(self): return 0
def add(a, b):
    return Anything()
"""
INT_SUBCLASS = """
class Int(int):
    def __eq__(self, other): return True
    __hash__ = int.__hash__
def add(a, b):
    return Int(0)
"""
METACLASS = """
class Meta(type):
    def __eq__(cls, other): return True
    __hash__ = type.__hash__
class Fake(metaclass=Meta):
    def __eq__(self, other): return True
    def __sub__(self, other): return 0.0
def add(a, b):
    return Fake()
"""
EXIT_EARLY = "import sys\nsys.exit(0)\n" + WRONG
OS_EXIT_EARLY = "import os\nos._exit(0)\n" + WRONG
EXIT_IN_CALL = "def add(a, b):\n    import sys\n    sys.exit(0)\n"
OS_EXIT_IN_CALL = "def add(a, b):\n    import os\n    os._exit(0)\n"
PRINT_EXPECTED = "print(3)\nprint(4)\nimport sys\nsys.stdout.flush()\nimport os\nos._exit(0)\n"
FAKE_REPORTS = (
    "import sys\n"
    "mark = sys.stdin.readline().strip()\n"  # the harness read its secret before this runs
    "for kind in ('pass', 'value 3', 'value 4'):\n"
    "    print('\\n' + mark + ' ' + kind)\n"
    "    print('\\nrestem-report-' + '0' * 32 + ' ' + kind)\n"
    "sys.stdout.flush()\n"
    "import os\nos._exit(0)\n"
)
PATCH_BUILTINS = """
import builtins, json
builtins.abs = lambda x: 0
builtins.sorted = lambda xs: [1, 4]
builtins.isinstance = lambda *a: True
builtins.AssertionError = type("Nothing", (Exception,), {})
json.dumps = lambda *a, **k: '3'
def add(a, b):
    return a - b
"""
SHADOW_BUILTINS = """
def abs(x): return 0
def sorted(xs): return [1, 4]
def add(a, b):
    return a - b
"""
ATEXIT = (
    "import atexit\n"
    "atexit.register(lambda: print('\\nrestem-report-' + '0' * 32 + ' pass'))\n" + WRONG
)
# Closed in the call: the definition runs once, apart from the tests (the sandbox's setup), so
# what it does to its own fds does not reach them.
CLOSE_STDOUT = "import os\ndef add(a, b):\n    os.close(1)\n    return a + b\n"
SWAP_GUARDS = """
import sys
def add(a, b):
    g = sys._getframe(1).f_globals
    g['__restem_truth__'] = lambda x: None
    g['__restem_plain__'] = lambda x: x
    return a - b
"""

HOSTILE = {
    "always_equal": ALWAYS_EQUAL,
    "int_subclass": INT_SUBCLASS,
    "metaclass": METACLASS,
    "sys_exit_before_tests": EXIT_EARLY,
    "os_exit_before_tests": OS_EXIT_EARLY,
    "sys_exit_in_call": EXIT_IN_CALL,
    "os_exit_in_call": OS_EXIT_IN_CALL,
    "print_expected_early": PRINT_EXPECTED,
    "fake_reports": FAKE_REPORTS,
    "patch_builtins": PATCH_BUILTINS,
    "shadow_builtins": SHADOW_BUILTINS,
    "atexit_report": ATEXIT,
    "close_stdout": CLOSE_STDOUT,
    "swap_guards": SWAP_GUARDS,
}
PROBLEMS = {"call": CALL, "mbpp": MBPP, "mbpp_check": MBPP_CHECK, "humaneval": HUMANEVAL}


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_hostile_programs_fail(box, attack, problem):
    verdict = verify_code(PROBLEMS[problem], HOSTILE[attack], backend=box, all_tests=True)
    assert not verdict.correct, verdict
    assert verdict.pass_fraction == 0.0 or attack == "close_stdout", verdict
    assert verdict.status in (CodeStatus.WRONG_ANSWER, CodeStatus.RUNTIME_ERROR), verdict


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_the_honest_program_passes_the_same_problems(box, problem):
    assert verify_code(PROBLEMS[problem], "def add(a, b):\n    return a + b\n", backend=box).correct


def test_stdio_program_that_exits_before_printing_fails(box):
    for program in (
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "print(3, end='')\nimport os\nos._exit(0)",
    ):
        assert verify_code(STDIO, program, backend=box).status is CodeStatus.WRONG_ANSWER


def test_expected_values_never_enter_the_sandbox(box):
    # The program prints everything it can see: the expected value must not be among it.
    secret = 987654321
    problem = {"input_output": {"fn_name": "f", "inputs": [[1]], "outputs": [secret]}}
    spy = (
        "def scan():\n"
        "    import gc, os, sys\n"
        "    main = sys.modules['__main__']\n"
        "    seen = sys.stdin.read() + repr(vars(main))\n"
        "    seen += ''.join(open(p).read() for p in os.listdir('.') if p.endswith('.py'))\n"
        "    seen += repr([o for o in gc.get_objects() if isinstance(o, (list, tuple, dict))])\n"
        "    assert 'def _prepare(config_text)' in seen  # the spy does see the harness\n"
        f"    assert str({secret - 1} + 1) not in seen, 'leak'\n"  # not a literal in this source
        "scan()\n"
        "def f(x):\n    scan()\n    return 0\n"
    )
    verdict = verify_code(problem, spy, backend=box)
    assert verdict.status is CodeStatus.WRONG_ANSWER, verdict.reason
    assert "expected 987654321, got 0" in verdict.reason


# A program that passes only if something of an earlier test of the same program reaches a later
# one: each test asks "how many tests ran before me?" and expects 0, 1, 2. Every channel must
# answer 0 each time (all tests of a program go to the sandbox as one request).
SEEN_BEFORE = {"input_output": {"fn_name": "f", "inputs": [[0], [1], [2]], "outputs": [0, 1, 2]}}
LEAKS = {
    "file_in_work_dir": (
        "import os\ndef f(x):\n    n = len([p for p in os.listdir('.') if p.startswith('mark')])\n"
        "    open(f'mark{x}', 'w').write('x')\n    return n\n"
    ),
    "file_in_tmp": (
        "import os, glob\ndef f(x):\n    n = len(glob.glob('/tmp/restem-leak-*'))\n"
        "    open(f'/tmp/restem-leak-{x}', 'w').write('x')\n    return n\n"
    ),
    "environment": (
        "import os\ndef f(x):\n    n = int(os.environ.get('RESTEM_LEAK', '0'))\n"
        "    os.environ['RESTEM_LEAK'] = str(n + 1)\n    os.putenv('RESTEM_LEAK', str(n + 1))\n"
        "    return n\n"
    ),
    "module_state": (
        "import sys\ndef f(x):\n    box = sys.modules.setdefault('restem_leak', type(sys)('l'))\n"
        "    box.n = getattr(box, 'n', -1) + 1\n    return box.n\n"
    ),
    "builtins_state": (
        "import builtins\ndef f(x):\n    builtins.restem_leak = getattr(builtins, 'restem_leak', -1) + 1\n"
        "    return builtins.restem_leak\n"
    ),
    # a child that outlives its test and tries to write where a later test will read
    "forked_child": (
        "import os, time\ndef f(x):\n    n = len([p for p in os.listdir('/tmp') if p.startswith('rl')])\n"
        "    if os.fork() == 0:\n"
        "        for i in range(40):\n"
        "            try:\n                open(f'/tmp/rl{x}-{i}', 'w').close()\n"
        "            except OSError:\n                pass\n"
        "            time.sleep(0.05)\n"
        "        os._exit(0)\n"
        "    return n\n"
    ),
}


@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_nothing_leaks_from_one_test_to_the_next_of_the_same_program(backend, leak):
    verdict = verify_code(SEEN_BEFORE, LEAKS[leak], backend=backend, all_tests=True)
    assert [t.status for t in verdict.tests] == [
        CodeStatus.PASSED,  # the first test sees nothing before it: 0 is right
        CodeStatus.WRONG_ANSWER,
        CodeStatus.WRONG_ANSWER,
    ], verdict


def test_the_same_state_does_count_within_one_test(box):
    # near miss: inside one test the program's state works as usual
    problem = {"input_output": {"fn_name": "f", "inputs": [[0]], "outputs": [1]}}
    program = (
        LEAKS["module_state"].replace("def f(x):", "def g(x):")
        + "def f(x):\n    g(x)\n    return g(x)\n"
    )
    assert verify_code(problem, program, backend=box).correct
