"""Every hostile program of issue 3, against both backends (table-driven).

For each: the right status, a bounded wall time, no process or container left behind, the host
unaffected, and the next program on the same sandbox still gets a correct result.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from restem.sandbox import Status

from .conftest import HOSTILE_LIMITS, SECRET, proc_children, procs_of_uids

TIMEOUT, OK, RUNTIME, MEMORY, OUTPUT = (
    Status.TIMEOUT,
    Status.OK,
    Status.RUNTIME_ERROR,
    Status.MEMORY,
    Status.OUTPUT_LIMIT,
)
CANARY = f"/tmp/restem-canary-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Hostile:
    name: str
    program: str
    statuses: frozenset[Status]
    stdout: str | None = None  # exact stdout expected, when it matters
    stdin: str = ""
    not_in_stdout: tuple[str, ...] = field(default_factory=tuple)


def H(name, program, *statuses, **kw):
    return Hostile(name, program, frozenset(statuses), **kw)


HOSTILE = [
    H("infinite_loop", "while True:\n    pass\n", TIMEOUT),
    H("c_level_loop", "print(sum(range(10**11)))\n", TIMEOUT),
    H("sleep_forever", "import time\ntime.sleep(10**6)\n", TIMEOUT),
    H(
        "ignore_sigterm",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(10**6)\n",
        TIMEOUT,
    ),
    # Forks fail at the process limit; whether the tree then dies or spins, it is bounded.
    H("fork_bomb", "import os\nwhile True:\n    os.fork()\n", RUNTIME, TIMEOUT),
    H(
        "fork_bomb_persistent",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        TIMEOUT,
    ),
    H("memory_hog_at_once", "x = bytearray(10**10)\n", MEMORY),
    H("memory_hog_growing", "a = []\nwhile True:\n    a.append(bytearray(10**6))\n", MEMORY),
    H("stdout_flood", "while True:\n    print('x' * 1000)\n", OUTPUT),
    H("stderr_flood", "import sys\nwhile True:\n    sys.stderr.write('y' * 1000)\n", OUTPUT),
    H("close_stdout_then_loop", "import os\nos.close(1)\nwhile True:\n    pass\n", TIMEOUT),
    H("deep_recursion", "def f(n):\n    return f(n + 1)\nf(0)\n", RUNTIME),
    H(
        "deep_recursion_unbounded",
        "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)\n",
        RUNTIME,
        TIMEOUT,
        MEMORY,
    ),
    H(
        "thread_storm",
        "import threading, time\nfor _ in range(100000):\n"
        "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n",
        RUNTIME,
        MEMORY,
    ),
    H(
        "double_forked_daemon",
        "import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        while True:\n            time.sleep(0.05)\n    os._exit(0)\nos.wait()\n"
        "print('parent done')\n",
        OK,
        stdout="parent done\n",
    ),
    H(
        "kill_parent",
        "import os, signal, time\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\n"
        "except OSError:\n    pass\ntime.sleep(0.2)\nprint('alive')\n",
        OK,
        stdout="alive\n",
    ),
    H(
        "kill_everything",
        "import os, signal, time\nfor sig in (signal.SIGKILL, signal.SIGTERM):\n    try:\n"
        "        os.kill(-1, sig)\n    except OSError:\n        pass\ntime.sleep(0.2)\nprint('alive')\n",
        OK,
        stdout="alive\n",
    ),
    H(
        "connect_host_port",
        "import socket\nport = int(input())\ntry:\n"
        "    socket.create_connection(('127.0.0.1', port), timeout=1).close()\n"
        "    print('connected')\nexcept OSError:\n    print('blocked')\n",
        OK,
        stdout="blocked\n",
    ),
    H(
        "write_host_tmp",
        f"open({CANARY!r}, 'w').write('pwned')\nprint('wrote')\n",
        OK,
        RUNTIME,
    ),
    # Reward hacking: forge the supervisor's reply or take over the supervisor for later runs.
    H(
        "write_to_supervisor_stdout",
        "import os\nhits = 0\nfor pid in ('1', str(os.getppid())):\n    try:\n"
        "        with open(f'/proc/{pid}/fd/1', 'wb') as f:\n"
        '            f.write(b\'\\x00\\x00\\x00\\x10{"status": "ok"}\')\n        hits += 1\n'
        "    except OSError:\n        pass\nprint('blocked' if hits == 0 else 'forged')\n",
        OK,
        stdout="blocked\n",
    ),
    H(
        "ptrace_supervisor",
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nhits = 0\n"
        "for pid in (1, os.getppid()):\n    if libc.ptrace(16, pid, 0, 0) == 0:\n        hits += 1\n"
        "print('blocked' if hits == 0 else 'attached')\n",
        OK,
        stdout="blocked\n",
    ),
    H(
        "read_host_environment",
        "import os, glob\nprint(dict(os.environ))\nfor p in glob.glob('/proc/*/environ'):\n"
        "    try:\n        print(open(p, 'rb').read())\n    except OSError:\n        pass\n",
        OK,
        not_in_stdout=(SECRET,),
    ),
]


def _no_leftovers(box) -> list:
    """What the last run left running; empty when clean (polled: SIGKILL takes a moment)."""
    deadline = time.monotonic() + 3
    while True:
        if box.name == "local":
            left = [p for p in proc_children(os.getpid()) if _is_launcher(p)]
            if box._uid_base is not None:
                left += procs_of_uids(box._uid_base, box._uid_base + 64)
        else:
            left = []
            for b in list(box._live):
                procs = b.container.top()["Processes"] or []
                if [p for p in procs if not _ours(p, procs)]:
                    left.append((b.container.short_id, procs))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _ours(proc: list[str], procs: list[list[str]]) -> bool:
    """The runner, its template, and the fork server it forks from the template for the next
    program once the last one is dead: children of the runner running the fork server's source
    (two at most: a process of the program left behind would make three)."""
    runner = [p for p in procs if p[-1].endswith("/opt/restem/runner.py")]
    if proc in runner:
        return True
    warm = [p for p in procs if runner and p[2] == runner[0][1] and "The fork server" in p[-1]]
    return proc in warm and len(warm) <= 2


def _is_launcher(pid: int) -> bool:
    try:
        return "_launch.py" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("via", ["run", "run_many"])
@pytest.mark.parametrize("case", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_program(box, case, via, sentinel, listener):
    """Through `run` (one test) and `run_many` (the same program as two tests in a row: the
    second test must fare exactly like the first, whatever the first did to the sandbox)."""
    stdin = f"{listener.port}\n" if case.name == "connect_host_port" else case.stdin
    start = time.monotonic()
    if via == "run":
        results = [box.run(case.program, stdin, HOSTILE_LIMITS)]
    else:
        results = list(box.run_many(case.program, [stdin, stdin], HOSTILE_LIMITS))
    elapsed = time.monotonic() - start

    for result in results:
        assert result.status in case.statuses, (result.status, result.reason, result.stderr[-500:])
        if case.stdout is not None:
            assert result.stdout == case.stdout
        for secret in case.not_in_stdout:
            assert secret not in result.stdout
        assert len(result.stdout) <= HOSTILE_LIMITS.output_bytes
        assert len(result.stderr) <= HOSTILE_LIMITS.output_bytes
    # Bounded: the wall limit, plus the supervisor's kill-and-drain, plus docker's round trip.
    assert elapsed < len(results) * (HOSTILE_LIMITS.wall_s + 3.0), elapsed

    # Nothing left behind, host unaffected.
    assert _no_leftovers(box) == []
    assert sentinel.poll() is None, "a sandboxed program killed a host process"
    assert listener.accepted == 0, "a sandboxed program reached a host port"
    assert not Path(CANARY).exists(), "a sandboxed program wrote to the host's /tmp"

    # The next program on the same sandbox still gets a correct result, and sees nothing of
    # the previous one (fresh work dir, scratch wiped).
    follow = box.run(
        f"import os\nprint(int(input()) * 2, os.path.exists({CANARY!r}), sorted(os.listdir('.')))",
        "21\n",
        HOSTILE_LIMITS,
    )
    assert follow.status is Status.OK, (follow.reason, follow.stderr)
    assert follow.stdout == "42 False ['main.py']\n"


# Programs that try to carry something from one test to the next test of the same program. Each
# runs as three tests of one `run_many`; stdin says which test it is. Every test must see what the
# first one saw: a fresh process, an empty work dir, the sandbox's environment, no other process.
LEAKS = {
    "files": (
        "import os, glob\ni = input()\n"
        "seen = sorted(glob.glob('/tmp/**', recursive=True) + glob.glob('/dev/shm/*') + "
        "glob.glob(os.path.expanduser('~/*')) + os.listdir('.'))\n"
        "for d in ('.', '/tmp', os.path.expanduser('~'), '/dev/shm', '/var/tmp'):\n"
        "    try:\n        open(os.path.join(d, 'left-' + i), 'w').write(i)\n"
        "        os.makedirs(os.path.join(d, 'dir-' + i, 'sub'), exist_ok=True)\n"
        "        os.chmod(os.path.join(d, 'dir-' + i), 0)\n"
        "    except OSError:\n        pass\nprint(seen)"
    ),
    "environment": (
        "import os\ni = input()\nseen = os.environ.get('LEAK'), os.getenv('PUT')\n"
        "os.environ['LEAK'] = i\nos.putenv('PUT', i)\nos.chdir('/')\nprint(seen, sorted(os.environ))"
    ),
    "module_state": (
        "import sys, json, builtins\ni = input()\n"
        "seen = (globals().get('STATE'), getattr(json, 'STATE', None), hasattr(builtins, 'STATE'), "
        "'restem_fake_module' in sys.modules, sys.getrecursionlimit(), sys.path[-1])\n"
        "STATE = i\njson.STATE = i\nbuiltins.STATE = i\nsys.modules['restem_fake_module'] = json\n"
        "sys.setrecursionlimit(54321)\nsys.path.append('/tmp')\nprint(seen)"
    ),
    "outliving_child": (
        # A daemon that keeps writing a file, and a plain child still sleeping: both must be gone
        # before the next test, which also looks for any process but itself and the sandbox's own.
        "import os, time, glob\ni = input()\ntime.sleep(0.3)\n"
        "mine = {os.getpid(), os.getppid(), 1}\n"
        "others = []\nfor p in glob.glob('/proc/[0-9]*'):\n    try:\n"
        "        cmd = open(p + '/cmdline', 'rb').read()\n    except OSError:\n        continue\n"
        "    if b'restem-leak' in cmd:\n        others.append(p)\n"
        "print(sorted(os.listdir('/tmp')), others)\n"
        "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        import sys\n        sys.argv[0] = 'restem-leak'\n"
        "        while True:\n            open('/tmp/daemon-' + i, 'w').write('x')\n"
        "            time.sleep(0.02)\n    os._exit(0)\n"
        "if os.fork() == 0:\n    os.execvp('sleep', ['sleep', '100', 'restem-leak'])\n"
    ),
    "signals_to_the_sandbox": (
        # Stop, then kill, every other process it can see (the fork server included).
        "import os, signal\ni = input()\nhit = 0\nfor sig in (signal.SIGSTOP, signal.SIGKILL):\n"
        "    for p in os.listdir('/proc'):\n        if p.isdigit() and int(p) != os.getpid():\n"
        "            try:\n                os.kill(int(p), sig)\n                hit += 1\n"
        "            except OSError:\n                pass\nprint('alive', i)"
    ),
    "limits_of_the_sandbox": (
        # Lower the limits of every process it may touch (the fork server of the same uid).
        "import os, resource\ni = input()\n"
        "x = bytearray(50 * 2**20)\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nos.wait()\n"
        "for p in os.listdir('/proc'):\n    if p.isdigit() and int(p) != os.getpid():\n"
        "        for r in (resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_CPU):\n"
        "            try:\n                resource.prlimit(int(p), r, (1, 1))\n"
        "            except (OSError, ValueError):\n                pass\nprint('fine', i)"
    ),
}


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_nothing_leaks_between_the_tests_of_one_program(box, name):
    results = list(box.run_many(LEAKS[name], ["t1\n", "t2\n", "t3\n"], HOSTILE_LIMITS))
    assert [r.status for r in results] == [Status.OK] * 3, [(r.reason, r.stderr) for r in results]
    outputs = [r.stdout.replace(f"t{i}", "t#") for i, r in enumerate(results, 1)]
    assert outputs[0] == outputs[1] == outputs[2], [r.stdout for r in results]
    assert _no_leftovers(box) == []
    alone = box.run(LEAKS[name], "t1\n", HOSTILE_LIMITS)
    assert alone.stdout == results[0].stdout


def test_output_is_capped_at_exactly_the_limit(box):
    result = box.run("import sys\nsys.stdout.write('z' * 10**6)\n", "", HOSTILE_LIMITS)
    assert result.status is Status.OUTPUT_LIMIT
    assert result.stdout == "z" * HOSTILE_LIMITS.output_bytes


def test_batch_with_hostile_neighbours_keeps_order_and_results(box):
    programs = []
    for i in range(8):
        programs.append((f"print({i} * int(input()))", f"{i}\n"))
        programs.append(("while True:\n    pass\n", ""))
    results = box.run_batch(programs, HOSTILE_LIMITS)
    assert [r.status for r in results[0::2]] == [Status.OK] * 8
    assert [r.stdout for r in results[0::2]] == [f"{i * i}\n" for i in range(8)]
    assert all(r.status is Status.TIMEOUT for r in results[1::2])
    assert _no_leftovers(box) == []
