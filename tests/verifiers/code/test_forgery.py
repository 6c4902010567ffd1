"""Forging a pass on assert-style suites, on both backends: a wrong solution that reaches for the
harness (frames, gc, inspect, ctypes, signal handlers) or writes to the test process (its fds,
/proc, ptrace) is judged wrong. The test code runs in a trusted host process of its own; the
solution's process can only send values back, so each attack gains nothing a `return` would not.
The honest program passes the same problems (the near miss)."""

from __future__ import annotations

import pytest
from restem.verifiers import CodeLimits, verify_code_batch

from tests.verifiers.code.test_tampering import HUMANEVAL as _HUMANEVAL
from tests.verifiers.code.test_tampering import MBPP, MBPP_CHECK

# The tampering tests' suite with a loop of asserts added.
HUMANEVAL = {
    **_HUMANEVAL,
    "test": _HUMANEVAL["test"]
    + "    for n in range(3):\n        assert candidate(n, n) == 2 * n\n",
}
PROBLEMS = {"humaneval": HUMANEVAL, "mbpp_check": MBPP_CHECK, "mbpp": MBPP}

HONEST = "def add(a, b):\n    return a + b\n"
WRONG = "    return a - b\n"

# Call every function the harness might use to report, wherever it is found.
_CALL_REPORTERS = """
def _call_reporters(functions):
    for f in functions:
        if getattr(f, "__name__", "") in ("report", "report_value", "send", "_done", "exit_now"):
            for args in ((b"pass",), (b"value", {"value": 3}), ({"done": "pass"},)):
                try:
                    f(*args)
                except BaseException:
                    pass
"""

FRAMES = (
    "import sys\n" + _CALL_REPORTERS + "def add(a, b):\n"
    "    f = sys._getframe(1)\n"
    "    while f is not None:\n"
    "        scopes = list(f.f_locals.values()) + list(f.f_globals.values())\n"
    "        for v in scopes:\n"
    "            if isinstance(v, dict):\n"
    "                v.update(AssertionError=type('Nothing', (Exception,), {}))\n"
    "        f.f_globals['__restem_truth__'] = lambda x: None\n"
    "        _call_reporters(scopes)\n"
    "        f = f.f_back\n" + WRONG
)
GC = (
    "import gc\n" + _CALL_REPORTERS + "def add(a, b):\n"
    "    _call_reporters([o for o in gc.get_objects() if callable(o)])\n" + WRONG
)
INSPECT = (
    "import inspect, os\n"
    "def add(a, b):\n"
    "    for info in inspect.stack():\n"
    "        for name, v in info.frame.f_locals.items():\n"
    "            if name in ('mark', 'secret', 'token') and isinstance(v, (str, bytes)):\n"
    "                m = v.encode() if isinstance(v, str) else v\n"
    "                os.write(1, b'\\n' + m + b' pass\\n')\n"
    "                os._exit(0)\n" + WRONG
)
CTYPES = (
    "import ctypes, gc\n"
    "call = ctypes.pythonapi.PyObject_CallObject\n"
    "call.restype, call.argtypes = ctypes.py_object, [ctypes.py_object, ctypes.py_object]\n"
    "def add(a, b):\n"
    "    for o in gc.get_objects():\n"
    "        if callable(o) and getattr(o, '__name__', '') in ('report', 'report_value'):\n"
    "            try:\n"
    "                call(o, (b'pass',))\n"
    "            except BaseException:\n"
    "                pass\n"
    "    # and patch the harness's encoder in memory: its code object's constants\n"
    "    for o in gc.get_objects():\n"
    "        if callable(o) and getattr(o, '__name__', '') == 'encode':\n"
    "            ctypes.pythonapi.PyFunction_SetDefaults(ctypes.py_object(o), ctypes.py_object(None))\n"
    + WRONG
)
SIGNALS = (
    "import gc, os, signal\n" + _CALL_REPORTERS + "def handler(*_):\n"
    "    _call_reporters([o for o in gc.get_objects() if callable(o)])\n"
    "    os.write(1, b'\\nrestem-report-' + b'0' * 32 + b' pass\\n')\n"
    "    os._exit(0)\n"
    "for s in ('SIGXCPU', 'SIGTERM', 'SIGALRM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGVTALRM'):\n"
    "    signal.signal(getattr(signal, s), handler)\n"
    "signal.setitimer(signal.ITIMER_VIRTUAL, 0.05)\n"
    "def add(a, b):\n"
    "    while True:\n"
    "        pass\n"
)
_FORGED = (
    'FORGED = [b\'{"done": "pass", "reason": "forged"}\\n\',\n'
    '          b\'{"value": 3, "args": [], "kwargs": {}}\\n\']\n'
)
WRITE_FDS = (
    "import os\n" + _FORGED + "def add(a, b):\n"
    "    for fd in range(3, 256):\n"
    "        for line in FORGED:\n"
    "            try:\n"
    "                os.write(fd, line)\n"
    "            except OSError:\n"
    "                pass\n" + WRONG
)
WRITE_PROC = (
    "import os, stat\n" + _FORGED + "def add(a, b):\n"
    "    for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
    "        try:\n"
    "            fds = os.listdir(f'/proc/{pid}/fd')\n"
    "        except OSError:\n"
    "            continue\n"
    "        for n in fds:\n"
    "            path = f'/proc/{pid}/fd/{n}'\n"
    "            try:\n"
    "                if not stat.S_ISFIFO(os.stat(path).st_mode):\n"
    "                    continue  # only pipes: the channel to a test process is one\n"
    "                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)\n"
    "            except OSError:\n"
    "                continue\n"
    "            for line in FORGED:\n"
    "                try:\n"
    "                    os.write(fd, line)\n"
    "                except OSError:\n"
    "                    pass\n"
    "            os.close(fd)\n" + WRONG
)
PTRACE = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]\n"
    "def add(a, b):\n"
    "    for pid in [int(p) for p in os.listdir('/proc') if p.isdigit()]:\n"
    "        if pid == os.getpid():\n"
    "            continue\n"
    "        if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH\n"
    "            libc.ptrace(17, pid, None, None)  # PTRACE_DETACH\n"
    "            os.write(1, b'attached to ' + str(pid).encode() + b'\\n')\n"
    "        try:\n"
    "            with open(f'/proc/{pid}/mem', 'r+b') as mem:\n"
    "                mem.write(b'')\n"
    "        except OSError:\n"
    "            pass\n" + WRONG
)

ATTACKS = {
    "frames": FRAMES,
    "gc": GC,
    "inspect": INSPECT,
    "ctypes": CTYPES,
    "signal_handlers": SIGNALS,
    "write_fds": WRITE_FDS,
    "write_proc_fds": WRITE_PROC,
    "ptrace_and_proc_mem": PTRACE,
}
LIMITS = CodeLimits(test_s=1.0, total_s=20.0)


@pytest.fixture(scope="module")
def verdicts(backend):
    """Every attack and the honest program on every problem, in one batch per backend."""
    keys = [(a, p) for a in [*ATTACKS, "honest"] for p in PROBLEMS]
    programs = {**ATTACKS, "honest": HONEST}
    items = [(PROBLEMS[p], programs[a]) for a, p in keys]
    found = verify_code_batch(items, backend=backend, workers=2, limits=LIMITS, all_tests=True)
    return dict(zip(keys, found, strict=True))


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_forging_wrong_solution_is_judged_wrong(verdicts, attack, problem):
    verdict = verdicts[(attack, problem)]
    assert not verdict.correct, verdict.reason
    assert verdict.reward == 0.0


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_the_honest_solution_passes_the_same_problems(verdicts, problem):
    verdict = verdicts[("honest", problem)]
    assert verdict.correct, verdict.reason
