"""Warm interpreters: the template, the warm fork server, setup, cloned tests, pipelining.

Both backends. Docker keeps one runner (and one template) per container across programs, so a
program there can reach the template that forks the next program's fork server; the local
backend gives each program a fresh pid namespace, which makes it the near-miss control: the
same assertions must hold there trivially.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
from restem.sandbox import Limits, Sandbox, Status

from .conftest import HOSTILE_LIMITS

LIMITS = Limits(wall_s=5.0, cpu_s=3.0, memory_mb=256, processes=32, output_bytes=65536)


@pytest.fixture(params=["local", pytest.param("docker", marks=pytest.mark.docker)])
def fresh(request):
    """A factory of new one-worker sandboxes (A and B then share the container / runner)."""
    made = []

    def make():
        if request.param == "local":
            from restem.sandbox.local import LocalSandbox

            box = LocalSandbox(workers=1)
        else:
            request.getfixturevalue("docker_client")  # skips without an engine
            from restem.sandbox.docker.pool import DockerSandbox

            box = DockerSandbox(workers=1, limits=HOSTILE_LIMITS)
        made.append(box)
        return box

    yield make
    for box in made:
        box.close()


def _containers(box) -> set:
    """Docker: the live containers (a replaced one means B did not share A's runner)."""
    return set(box._live) if box.name == "docker" else set()


# ---------------------------------------------------------------- A. tampering with the template

# Every process of our uid that is not us nor an ancestor (the runner is pid 1: an ancestor).
FIND_TARGETS = """
import os, json, resource, signal, ctypes
me = os.getpid()
ancestors = set()
p = me
while p > 0:
    ancestors.add(p)
    with open(f"/proc/{p}/stat") as f:
        p = int(f.read().rpartition(")")[2].split()[1])
def uid_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
targets = []
for name in os.listdir("/proc"):
    if name.isdigit() and int(name) not in ancestors:
        try:
            if uid_of(int(name)) == os.getuid():
                targets.append(int(name))
        except OSError:
            pass
done = {}
"""

# Run per target `pid`; records what the kernel allowed.
ATTACKS = {
    "sigstop": "os.kill(pid, signal.SIGSTOP)",
    "sigkill": "os.kill(pid, signal.SIGKILL)",
    "sigterm": "os.kill(pid, signal.SIGTERM)",
    "rlimit_as": "resource.prlimit(pid, resource.RLIMIT_AS, (32 << 20, 32 << 20))",
    "rlimit_nofile": "resource.prlimit(pid, resource.RLIMIT_NOFILE, (8, 8))",
    "rlimit_cpu": "resource.prlimit(pid, resource.RLIMIT_CPU, (1, 1))",
    "rlimit_nproc": "resource.prlimit(pid, resource.RLIMIT_NPROC, (2, 2))",
    # Not among the limits the runner sets; still inherited by every fork server.
    "rlimit_stack": "resource.prlimit(pid, resource.RLIMIT_STACK, (1 << 20, 1 << 20))",
    "rlimit_data": "resource.prlimit(pid, resource.RLIMIT_DATA, (64 << 20, 64 << 20))",
    "nice": "os.setpriority(os.PRIO_PROCESS, pid, 19)",
    "affinity": (
        "cpus = sorted(os.sched_getaffinity(pid))\n"
        "if len(cpus) < 2:\n    raise OSError('one cpu')\n"
        "os.sched_setaffinity(pid, {cpus[-1]})"
    ),
    "sched_idle": "os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))",
    "oom_score_adj": "open(f'/proc/{pid}/oom_score_adj', 'w').write('1000')",
    # ioprio_set(IOPRIO_WHO_PROCESS, pid, IOPRIO_CLASS_IDLE << 13): allowed for the same uid.
    "ioprio_idle": (
        "if ctypes.CDLL(None, use_errno=True).syscall(251, 1, pid, 3 << 13) != 0:\n"
        "    raise OSError(ctypes.get_errno(), 'ioprio_set')"
    ),
}


def attack_program(attack: str, daemon: bool = False) -> str:
    body = "\n".join("        " + line for line in ATTACKS[attack].splitlines())
    loop = f"""
for pid in targets:
    try:
{body}
        done[pid] = True
    except Exception as exc:
        done[pid] = type(exc).__name__
"""
    if not daemon:
        return FIND_TARGETS + loop + "print(json.dumps(done))\n"
    # A daemon (own session) that keeps attacking whatever of our uid shows up later.
    return (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        + "\n".join("            " + line for line in (FIND_TARGETS + loop).splitlines())
        + "\n            time.sleep(0.005)\n"
        "    os._exit(0)\n"
        "os.wait()\n"
        "time.sleep(0.3)\n"
        "print('{}')\n"
    )


# What an honest program observes about itself; must equal a control run on an untouched box.
PROBE = """
import os, json, resource, ctypes
limits = {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")}
with open("/proc/self/oom_score_adj") as f:
    oom = f.read().strip()
ioprio = ctypes.CDLL(None, use_errno=True).syscall(252, 1, 0)
print(json.dumps({
    "limits": limits,
    "nice": os.getpriority(os.PRIO_PROCESS, 0),
    "affinity": sorted(os.sched_getaffinity(0)),
    "policy": os.sched_getscheduler(0),
    "oom": oom,
    "ioprio": ioprio,
    "echo": input(),
}))
"""


def _observe(result) -> dict:
    assert result.status is Status.OK, result
    return json.loads(result.stdout)


@dataclass(frozen=True)
class Way:
    """How A and B are run: one-test programs (the fork server runs the test) or several."""

    name: str
    tests: int


WAYS = [Way("run", 1), Way("run_many", 3)]


def _run(box: Sandbox, way: Way, program: str, stdin: str = "") -> list:
    if way.tests == 1:
        return [box.run(program, stdin, LIMITS)]
    return list(box.run_many(program, [stdin] * way.tests, LIMITS))


def _params():
    out = []
    for attack in ATTACKS:
        for way in WAYS:
            for daemon in (False, True):
                out.append((attack, way, daemon))
    return out


_CONTROL: dict[str, dict] = {}  # backend name -> the probe's view on an untouched sandbox


@pytest.mark.parametrize(
    "attack,way,daemon",
    _params(),
    ids=[f"{a}-{w.name}-{'daemon' if d else 'direct'}" for a, w, d in _params()],
)
def test_template_tampering_does_not_reach_next_program(fresh, attack, way, daemon):
    box = fresh()
    if box.name not in _CONTROL:
        # Once per backend, on a sandbox of its own that no program ever touched; it also ran
        # on a warm fork server: its view is what a fresh sandbox gives.
        _CONTROL[box.name] = _observe(fresh().run(PROBE, "control\n", LIMITS))
    control = _CONTROL[box.name]
    assert _observe(box.run(PROBE, "before\n", LIMITS)) == {**control, "echo": "before"}
    before = _containers(box)
    t0 = time.monotonic()
    for result in _run(box, way, attack_program(attack, daemon)):
        # A itself may be broken by its own attack (it may hit its fork server); never hangs.
        assert result.status in (Status.OK, Status.RUNTIME_ERROR, Status.TIMEOUT), result
    if not daemon:
        # The first test of A ran before any attack: it saw at least the template.
        first = _run(box, Way("run", 1), attack_program(attack))[0]
        assert first.status is Status.OK and json.loads(first.stdout), first
    for result in _run(box, way, PROBE, "after\n"):
        assert _observe(result) == {**control, "echo": "after"}
    assert time.monotonic() - t0 < 60  # a stopped template would hang B until the reply margin
    if box.name == "docker":
        assert _containers(box) == before, "B ran in a new container: the check proved nothing"


@pytest.mark.parametrize("way", WAYS, ids=[w.name for w in WAYS])
def test_template_is_not_readable(fresh, way):
    """Its memory, environment and fds, and ptrace: all refused for every process A can see
    (A's own test processes excluded: on run_many none is visible besides itself)."""
    program = (
        FIND_TARGETS
        + """
libc = ctypes.CDLL(None, use_errno=True)
for pid in targets:
    got = []
    for what in ("mem", "environ"):
        try:
            with open(f"/proc/{pid}/{what}", "rb") as f:
                f.read(1)
            got.append(what)
        except OSError:
            pass
    try:
        os.listdir(f"/proc/{pid}/fd")
        got.append("fd")
    except OSError:
        pass
    if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
        got.append("ptrace")
        libc.ptrace(17, pid, 0, 0)
    done[pid] = got
print(json.dumps(done))
"""
    )
    box = fresh()
    for result in _run(box, way, program):
        assert result.status is Status.OK, result
        done = json.loads(result.stdout)
        assert all(got == [] for got in done.values()), done
    # Near miss: the same probes on a process of its own succeed, so a refusal means something.
    own = """
import os, subprocess
child = subprocess.Popen(["sleep", "30"])
with open(f"/proc/{child.pid}/environ", "rb") as f:
    f.read()
print(len(os.listdir(f"/proc/{child.pid}/fd")) > 0)
child.kill()
"""
    result = box.run(own, "", LIMITS)
    assert result.status is Status.OK and result.stdout == "True\n", result


# ---------------------------------------------------------------- B. setup semantics

SETUP_PID = "import os\nSETUP_PID = os.getpid()\nK = 41\nprint('from setup')\n"
USES_SETUP = "import os\nprint(K + int(input()), SETUP_PID == os.getpid())\n"


@pytest.mark.parametrize("n", [1, 4])
def test_setup_defines_names(box, n):
    stdins = [f"{i}\n" for i in range(n)]
    results = list(box.run_many(USES_SETUP, stdins, LIMITS, setup=SETUP_PID))
    assert [r.status for r in results] == [Status.OK] * n, results
    for i, r in enumerate(results):
        # The stdin is the test's own. Setup output is discarded on the fork-server path
        # (several tests); a one-test program may run setup in its own process and show it.
        lines = r.stdout.splitlines()
        if n == 1:
            lines = [line for line in lines if line != "from setup"]
        else:
            assert "from setup" not in r.stdout, r
        assert len(lines) == 1 and int(lines[0].split()[0]) == 41 + i, r


def test_setup_runs_once_per_program(box):
    """On the fork-server path, every test sees the pid that ran the setup, not its own."""
    program = "import os\nprint(SETUP_PID, os.getpid())\n"
    results = list(box.run_many(program, [""] * 4, LIMITS, setup=SETUP_PID))
    assert all(r.status is Status.OK for r in results), results
    pairs = [tuple(map(int, r.stdout.split())) for r in results]
    setup_pids = {s for s, _ in pairs}
    own = {o for _, o in pairs}
    if box.name == "local" and not box.isolation["pid"]:
        pytest.skip("no pid namespace: each test runs setup itself")
    assert len(setup_pids) == 1, pairs
    assert not setup_pids & own, pairs
    assert len(own) == 4, pairs  # near miss: the tests themselves are distinct processes


def test_setup_alone_then_program_without_setup(box):
    """Near miss: the next program on the same sandbox, given no setup, has no such names."""
    first = box.run(USES_SETUP, "1\n", LIMITS, setup=SETUP_PID)
    assert first.stdout.splitlines()[-1] == "42 True", first
    r = box.run(USES_SETUP, "1\n", LIMITS)
    assert r.status is Status.RUNTIME_ERROR and "NameError" in r.stderr, r


# The setup runs where the tests start from, in the tests' environment; what it sets there every
# test sees (as when each test runs the setup itself), and no later program does.
SETUP_ENV = "import os\nSEEN = os.environ.get('HOME')\nos.environ['FROM_SETUP'] = 'yes'\n"
READS_ENV = (
    "import os\nprint(SEEN == os.environ['HOME'], os.getenv('FROM_SETUP'), sorted(os.environ))\n"
)


@pytest.mark.parametrize("n", [1, 3])
def test_setup_sees_the_tests_environment_and_its_changes_reach_each_test(box, n):
    results = list(box.run_many(READS_ENV, [""] * n, LIMITS, setup=SETUP_ENV))
    assert [r.status for r in results] == [Status.OK] * n, results
    assert len({r.stdout for r in results}) == 1, results
    assert results[0].stdout.startswith("True yes "), results[0]
    after = box.run("import os\nprint(os.getenv('FROM_SETUP'))\n", "", LIMITS)
    assert after.stdout == "None\n", after  # near miss: the next program, without that setup


@pytest.mark.parametrize(
    "setup,error",
    [
        ("raise ValueError('setup broke')\n", "ValueError"),
        ("def f(:\n", "SyntaxError"),
        ("import no_such_module_restem\n", "ModuleNotFoundError"),
    ],
    ids=["raises", "syntax", "import"],
)
@pytest.mark.parametrize("n", [1, 3])
def test_setup_failure_shows_in_each_test(box, setup, error, n):
    results = list(box.run_many("print('ran')\n", [""] * n, LIMITS, setup=setup))
    assert len(results) == n
    for r in results:
        assert r.status is Status.RUNTIME_ERROR, r
        assert error in r.reason or error in r.stderr, r
        assert r.stdout == "", r  # the program does not run past a failed setup


def test_setup_failure_near_miss_setup_ok(box):
    results = list(box.run_many("print('ran')\n", [""] * 3, LIMITS, setup="x = 1\n"))
    assert [(r.status, r.stdout) for r in results] == [(Status.OK, "ran\n")] * 3


@pytest.mark.parametrize("n", [1, 3])
def test_setup_does_not_consume_stdin(box, n):
    # A setup that reads stdin would get nothing (fork-server path) or the test's stdin; the
    # program must still read all of its own.
    program = "import sys\nprint(sys.stdin.read().split())\n"
    stdins = [f"a{i} b{i}\n" for i in range(n)]
    results = list(box.run_many(program, stdins, LIMITS, setup="import sys\nX = 1\n"))
    assert [r.stdout for r in results] == [f"['a{i}', 'b{i}']\n" for i in range(n)], results


class OldStyle(Sandbox):
    """A backend written before `setup`: only `run(program, stdin, limits)`."""

    name = "old"

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner

    def run(self, program, stdin=b"", limits=None):
        return self.inner.run(program, stdin, limits)


def test_old_signature_subclass_works_through_run_many(box):
    old = OldStyle(box)
    results = list(old.run_many("print(input())\n", ["x\n", "y\n"], LIMITS))
    assert [r.stdout for r in results] == ["x\n", "y\n"]
    assert old.run("print(7)\n", "", LIMITS).stdout == "7\n"
    # Near miss: asking it for a setup fails loudly rather than dropping the setup silently.
    with pytest.raises(TypeError):
        list(old.run_many("print(K)\n", [""], LIMITS, setup="K = 1\n"))


# ---------------------------------------------------------------- C. cloned tests are fresh

RANDOM = "import random\nprint(random.random())\n"


@pytest.mark.parametrize(
    "program,setup,equal",
    [
        (RANDOM, "", False),
        (RANDOM, "import random\n", False),  # random preloaded by the setup: reseeded per test
        ("import random\nrandom.seed(1)\nprint(random.random())\n", "", True),
    ],
    ids=["fresh_seed", "setup_imports_random", "seeded_near_miss"],
)
def test_random_is_reseeded_per_test(box, program, setup, equal):
    results = list(box.run_many(program, ["", "", ""], LIMITS, setup=setup))
    values = [r.stdout for r in results]
    assert all(r.status is Status.OK for r in results), results
    assert (len(set(values)) == 1) is equal, values


@pytest.mark.parametrize(
    "code,expected",
    [(0, "0"), (3, "3"), (-9, "-9")],
)
@pytest.mark.parametrize("n", [1, 2])
def test_child_exit_status_is_seen(box, code, expected, n):
    """SIGCHLD is default in the test (ignored, the kernel would reap the child itself)."""
    child = f"os._exit({code})" if code >= 0 else "os.kill(os.getpid(), signal.SIGKILL)"
    program = (
        "import os, signal\npid = os.fork()\nif pid == 0:\n"
        f"    {child}\n"
        "_, status = os.waitpid(pid, 0)\nprint(os.waitstatus_to_exitcode(status))\n"
        "print(signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL)\n"
    )
    results = list(box.run_many(program, [""] * n, LIMITS))
    assert [r.stdout for r in results] == [f"{expected}\nTrue\n"] * n, results


@pytest.mark.parametrize("n", [1, 3])
def test_parent_is_the_runner(box, n):
    if box.name == "local" and not box.isolation["pid"]:
        pytest.skip("no pid namespace")
    program = "import os\nprint(os.getppid(), os.getpid() != 1)\n"
    results = list(box.run_many(program, [""] * n, LIMITS))
    assert [r.stdout for r in results] == ["1 True\n"] * n, results


# ---------------------------------------------------------------- D. pipelining, early stop

SLOW_AFTER_FIRST = "import time\nx = input()\nif x != '0':\n    time.sleep(60)\nprint(x)\n"


@pytest.mark.parametrize("close", ["close", "break"])
def test_early_stop_is_prompt(fresh, close):
    box = fresh()
    slow = Limits(wall_s=90.0, cpu_s=3.0, memory_mb=256, processes=32, output_bytes=65536)
    t0 = time.monotonic()
    gen = box.run_many(SLOW_AFTER_FIRST, ["0\n", "1\n", "2\n", "3\n"], slow)
    if close == "close":
        first = next(gen)
        gen.close()
    else:
        for result in gen:
            first = result
            break
        del gen  # the loop's break leaves it to be closed when dropped
    assert first.status is Status.OK and first.stdout == "0\n", first
    # Bad behaviour: the close waits for the sleeping test(s): 60 s or more.
    assert time.monotonic() - t0 < 10
    t1 = time.monotonic()
    after = box.run("print(input()[::-1])\n", "abc\n", LIMITS)
    assert after.status is Status.OK and after.stdout == "cba\n", after
    assert time.monotonic() - t1 < 10


def test_all_quick_tests_in_order(fresh):
    box = fresh()
    results = list(box.run_many("print(input())\n", ["a\n", "b\n", "c\n", "d\n"], LIMITS))
    assert [(r.status, r.stdout) for r in results] == [(Status.OK, f"{c}\n") for c in "abcd"], (
        results
    )


@pytest.mark.parametrize("stop_at", [None, 0, 5, 19])
def test_twenty_tests_answered_in_order(fresh, stop_at):
    """Distinct stdins come back in order; stopping anywhere leaves the box correct."""
    box = fresh()
    program = "import sys, time\nn = int(input())\ntime.sleep((n % 3) * 0.01)\nprint(n * n)\n"
    stdins = [f"{i}\n" for i in range(20)]
    got = []
    for i, r in enumerate(box.run_many(program, stdins, LIMITS)):
        assert r.status is Status.OK, r
        got.append(r.stdout)
        if i == stop_at:
            break
    n = 20 if stop_at is None else stop_at + 1
    assert got == [f"{i * i}\n" for i in range(n)]
    again = list(box.run_many(program, stdins[:3], LIMITS))
    assert [r.stdout for r in again] == ["0\n", "1\n", "4\n"]
