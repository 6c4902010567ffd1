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

# The calls of one check test share one process, so the later requests' marks are in it while
# the first call runs. Found in memory (gc, frames) or by reading stdin again, each later call
# gets a forged report of the right value, then the first call either exits or goes on (right
# this once, wrong from then on). A report is a request's answer only if it is its one report.
# (The harness has put /dev/null on fd 0 before the solution runs: the stdin search finds none.)
_PENDING = """
import gc, json, os, stat, sys

def _pairs(found, obj):
    if type(obj) is list:
        for t in obj:
            if type(t) is tuple and len(t) == 2 and type(t[0]) is bytes and type(t[1]) is dict:
                if t[0].startswith(b"restem-report-"):
                    found[t[0]] = t[1]

def _from_gc():
    found = {}
    for o in gc.get_objects():
        _pairs(found, o)
    return found

def _from_frames():
    found, f = {}, sys._getframe(1)
    while f is not None:
        for v in list(f.f_locals.values()) + list(f.f_globals.values()):
            _pairs(found, v)
        f = f.f_back
    return found

def _from_stdin():
    texts = []
    for path in ["/proc/self/fd/0", "/dev/stdin"] + [
        "/proc/self/fd/" + n for n in os.listdir("/proc/self/fd")
    ]:
        try:
            if stat.S_ISREG(os.stat(path).st_mode):  # a pipe would block
                with open(path, "rb") as stream:
                    texts.append(stream.read(1 << 20))
        except OSError:
            pass
    try:
        texts.append(os.pread(0, 1 << 20, 0))
    except OSError:
        pass
    found = {}
    for text in texts:
        lines = text.split(b"\\n")
        for mark, body in zip(lines, lines[1:]):
            if mark.startswith(b"restem-report-"):
                try:
                    found[mark.strip()] = json.loads(body)
                except ValueError:
                    pass
    return found

def _forge_later(found, a, b, own=False):
    \"\"\"Forge the right value for every call request after this one (a, b), and with `own`
    for this one too; True if any.\"\"\"
    later, forged = False, False
    for mark, request in found.items():
        args = request.get("args")
        if request.get("op") != "call" or not isinstance(args, list) or len(args) != 2:
            continue
        if not later:
            later = args == [a, b]
            if not (later and own):
                continue
        if all(type(x) in (int, float) for x in args):
            payload = {"value": args[0] + args[1], "args": args, "kwargs": {}}
            os.write(1, b"\\n" + mark + b" value " + json.dumps(payload).encode() + b"\\n")
            forged = True
    return forged

CALLS = []
"""


def _forger(find: str, then: str, own: str = "False") -> str:
    return (
        _PENDING + "def add(a, b):\n"
        "    CALLS.append((a, b))\n"
        f"    if len(CALLS) == 1 and _forge_later({find}(), a, b, {own}):\n"
        f"        {then}\n" + WRONG
    )


# The near miss of the forgers: the same search, forging the right value for every request,
# this one included, then exiting: each request has one report, of a right value, so the test
# passes: what a `return` of those values gives (and proof that the searches find the marks).
FORGE_RIGHT = {
    "all_marks_gc_exit": _forger("_from_gc", "os._exit(0)", "True"),
    "all_marks_frames_exit": _forger("_from_frames", "os._exit(0)", "True"),
}


ATTACKS = {
    "later_marks_gc_go_on": _forger("_from_gc", "return a + b"),
    "later_marks_frames_go_on": _forger("_from_frames", "return a + b"),
    "later_marks_stdin_go_on": _forger("_from_stdin", "return a + b"),
    "later_marks_gc_exit": _forger("_from_gc", "os._exit(0)"),
    "later_marks_frames_exit": _forger("_from_frames", "os._exit(0)"),
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
    keys = [(a, p) for a in [*ATTACKS, *FORGE_RIGHT, "honest"] for p in PROBLEMS]
    programs = {**ATTACKS, **FORGE_RIGHT, "honest": HONEST}
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


@pytest.mark.parametrize("problem", ["humaneval", "mbpp_check"])
@pytest.mark.parametrize("forger", sorted(FORGE_RIGHT))
def test_forged_reports_of_right_values_are_right_values(verdicts, forger, problem):
    verdict = verdicts[(forger, problem)]
    assert verdict.correct, verdict.reason
