"""The sandbox as a judge: stdin a regular file, the judge packages, and `run_many` (all tests of
one program in one request) with nothing of one test seen by the next. Both backends, real
processes and containers."""

from __future__ import annotations

import time

import pytest
from restem.sandbox import Limits, Status

from .conftest import HOSTILE_LIMITS

LIMITS = Limits(wall_s=5.0, cpu_s=3.0, memory_mb=512, processes=32, output_bytes=1 << 20)

# Every common way to read stdin; each prints what it read, reversed, so that a read of nothing
# (the old pipe + fstat size 0) or a partial read is visible.
IDIOMS = {
    "input": "print(input()[::-1])",
    "sys_stdin_readline": "import sys\nprint(sys.stdin.readline().rstrip('\\n')[::-1])",
    "sys_stdin_buffer_read": "import sys\nprint(sys.stdin.buffer.read().decode().split('\\n')[0][::-1])",
    "open_0_read": "print(open(0).read().split('\\n')[0][::-1])",
    "os_read_fstat_size": (
        "import os\nprint(os.read(0, os.fstat(0).st_size).decode().split('\\n')[0][::-1])"
    ),
    "bytesio_readline": (
        "import io, os\ninput = io.BytesIO(os.read(0, os.fstat(0).st_size)).readline\n"
        "print(input().decode().rstrip('\\n')[::-1])"
    ),
}


def _both(box, program, stdin, limits=LIMITS):
    """The result through `run` and through `run_many` (as the second of two tests)."""
    alone = box.run(program, stdin, limits)
    many = list(box.run_many(program, ["other\n", stdin], limits))
    return alone, many[1]


@pytest.mark.parametrize("idiom", sorted(IDIOMS))
@pytest.mark.parametrize(
    "stdin",
    ["abc\nsecond line\n", "abc", "x" * 300_000 + "\n"],  # plain, no final newline, > pipe buffer
    ids=["lines", "no_newline", "big"],
)
def test_every_stdin_idiom_reads_all_of_stdin(box, idiom, stdin):
    for result in _both(box, IDIOMS[idiom], stdin):
        assert result.status is Status.OK, (result.reason, result.stderr[-300:])
        assert result.stdout == stdin.split("\n")[0][::-1] + "\n"


def _run_in(box, mode: str, program: str, stdin: str):
    """``program``'s result on ``stdin`` by ``box.run``, or the second of two by ``run_many``."""
    if mode == "run":
        return box.run(program, stdin, LIMITS)
    return list(box.run_many(program, [stdin, stdin], LIMITS))[1]


@pytest.mark.parametrize("mode", ["run", "run_many"])
def test_stdin_is_a_read_only_regular_file(box, mode):
    program = (
        "import os, stat, sys\nst = os.fstat(0)\n"
        "try:\n    os.write(0, b'x')\n    writable = True\nexcept OSError:\n    writable = False\n"
        "sys.stdin.seek(3)\n"
        "print(stat.S_ISREG(st.st_mode), st.st_size, sys.stdin.seekable(), writable, "
        "sys.stdin.read(), sys.stdin.name, sys.stdin.encoding)"
    )
    stdin = "héllo"
    result = _run_in(box, mode, program, stdin)
    assert result.status is Status.OK, (result.reason, result.stderr[-300:])
    size = len(stdin.encode())
    assert result.stdout == f"True {size} True False llo <stdin> utf-8\n"


def test_a_test_sees_standard_streams_as_python_main_py_makes_them(box):
    # run_many's tests get streams the fork server built ahead (on a regular file and pipes);
    # `run` builds them in the test: both must look like a fresh `python main.py`'s.
    program = (
        "import sys\n"
        "for s in (sys.stdin, sys.stdout, sys.stderr):\n"
        "    print(type(s).__name__, type(s.buffer).__name__, s.name, s.mode, s.encoding,\n"
        "          s.errors, s.line_buffering, s.write_through, s.seekable(), s.isatty(),\n"
        "          s.fileno(), s.closed, file=sys.stderr)\n"
        "print(sys.stdin is sys.__stdin__, sys.stdout is sys.__stdout__, sys.stdin.buffer.tell(),\n"
        "      sys.stdin.readline().strip(), sys.stdin.buffer.tell())\n"
    )
    expected_err = (
        "TextIOWrapper BufferedReader <stdin> r utf-8 surrogateescape False False True False 0 False\n"
        "TextIOWrapper BufferedWriter <stdout> w utf-8 surrogateescape False False False False 1 False\n"
        "TextIOWrapper BufferedWriter <stderr> w utf-8 backslashreplace True False False False 2 "
        "False\n"
    )
    for result in _both(box, program, "abc\nnext\n"):
        assert result.status is Status.OK, (result.reason, result.stderr[-300:])
        assert (result.stdout, result.stderr) == ("True True 0 abc 9\n", expected_err)


def test_empty_and_binary_stdin(box):
    program = (
        "import os, sys\nd = sys.stdin.buffer.read()\nprint(os.fstat(0).st_size, len(d), d[:2])"
    )
    empty, binary = box.run_many(program, [b"", b"\xff\xfe\x00rest"], LIMITS)
    assert empty.stdout == "0 0 b''\n"
    assert binary.stdout == "7 7 b'\\xff\\xfe'\n"


# --- judge packages ----------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.parametrize("mode", ["run", "run_many"])
def test_judge_packages_in_the_image(docker_box, mode):
    program = (
        "import numpy as np\nfrom sortedcontainers import SortedList\n"
        "s = SortedList(map(int, input().split()))\nprint(list(s), int(np.arange(4).sum()))"
    )
    stdin = "3 1 2"
    result = _run_in(docker_box, mode, program, stdin)
    assert result.status is Status.OK, (result.reason, result.stderr[-500:])
    assert result.stdout == "[1, 2, 3] 6\n"


@pytest.mark.docker
def test_image_records_its_package_set(docker_client, docker_box):
    from restem.sandbox.docker.image import IMAGE, PACKAGES_LABEL, judge_packages

    labels = docker_client.images.get(IMAGE).labels
    assert labels[PACKAGES_LABEL].split() == judge_packages()
    assert {p.split("==")[0] for p in judge_packages()} >= {"numpy", "sortedcontainers"}
    assert all("==" in p for p in judge_packages())  # pinned


@pytest.mark.parametrize(
    ("program", "module"),
    [
        ("import restem_no_such_module\n", "restem_no_such_module"),
        ("from restem_absent.sub import x\n", "restem_absent"),
        ("def f():\n    import restem_late\nprint(1)\nf()\n", "restem_late"),  # after output
    ],
    ids=["import", "from_import", "inside_function"],
)
def test_missing_module_is_a_runtime_error_naming_it(box, program, module):
    for result in _both(box, program, "x\n"):
        assert result.status is Status.RUNTIME_ERROR
        assert "ModuleNotFoundError" in result.reason and module in result.reason, result.reason


# --- run_many: order, early stop, the same results as run -------------------------------------


def test_run_many_results_in_input_order(box):
    program = "import time\nn = int(input())\ntime.sleep(0.01 * (n % 3))\nprint(n * n)"
    results = list(box.run_many(program, [str(i) for i in range(12)], LIMITS))
    assert [r.stdout for r in results] == [f"{i * i}\n" for i in range(12)]
    assert list(box.run_many(program, [], LIMITS)) == []


def test_run_many_stops_when_the_consumer_stops(box):
    # Test 2 would loop until its 30 s wall limit: stopping after test 1 must not wait for it.
    program = "if input() == 'loop':\n    while True:\n        pass\nprint('done')"
    slow = Limits(wall_s=30.0, cpu_s=30.0)
    start = time.monotonic()
    for result in box.run_many(program, ["quick", "loop", "loop"], slow):
        assert result.stdout == "done\n"
        break
    assert time.monotonic() - start < 15.0
    # The sandbox is free and clean for the next program.
    follow = box.run("import os\nprint(sorted(os.listdir('.')))", "", LIMITS)
    assert follow.stdout == "['main.py']\n"


# Programs whose behaviour a fork server could change if it were not a faithful copy of
# `python main.py`; each must give the same result through run (a fresh interpreter) and
# run_many (a forked process).
PARITY = {
    "exit_code": ("import sys\nsys.exit(3)", ""),
    "exit_message": ("import sys\nsys.exit('bye')", ""),
    "exception": ("print('before')\nraise ValueError('boom')", ""),
    "keyboard_interrupt": ("raise KeyboardInterrupt", ""),
    "syntax_error": ("print('x'\n", ""),
    "nul_byte": ("print(1)\x00", ""),
    "atexit": ("import atexit\natexit.register(print, 'at exit')\nprint('main')", ""),
    "logging_at_exit": (
        "import logging, sys\nh = logging.StreamHandler(sys.stdout)\nh.flush = lambda: print('flushed')\n"
        "logging.getLogger().addHandler(h)\nprint('main')",
        "",
    ),
    "argv": ("import sys\nprint(sys.argv, sys.orig_argv[1:], sys.flags.isolated)", ""),
    "thread_after_main": (
        "import threading, time\n"
        "threading.Thread(target=lambda: (time.sleep(0.1), print('thread'))).start()\n"
        "print('main')",
        "",
    ),
    "unflushed_os_exit": ("import os\nprint('lost')\nos._exit(0)", ""),
    "main_module": (
        "import sys, __main__\nprint(__name__, __main__.__file__, sys.argv, "
        "sorted(k for k in vars(__main__) if k.startswith('__')))",
        "",
    ),
    "traceback_text": ("def f():\n    return 1 / 0\nf()", ""),
    "stdin_crlf": ("print(repr(input()))", "a\r\nb\n"),
    "recursion_limit": ("import sys\nprint(sys.getrecursionlimit())", ""),
    "from_future": ("from __future__ import annotations\nx: undefined = 1\nprint(x)", ""),
}


@pytest.mark.parametrize("name", sorted(PARITY))
def test_run_many_behaves_like_a_fresh_interpreter(box, name):
    program, stdin = PARITY[name]
    alone = box.run(program, stdin, LIMITS)
    first, second = box.run_many(program, [stdin, stdin], LIMITS)
    for many in (first, second):
        assert (many.status, many.exit_code, many.stdout) == (
            alone.status,
            alone.exit_code,
            alone.stdout,
        ), (many.stderr, alone.stderr)
        assert many.stderr == alone.stderr
        assert many.reason == alone.reason


def test_run_many_gives_each_test_its_own_limits(box):
    program = (
        "import sys\nif input() == 'hog':\n    x = bytearray(10**10)\n"
        "if input() == 'spin':\n    while True:\n        pass\nprint('fine')"
    )
    results = list(
        box.run_many(program, ["hog\n-", "-\nspin", "-\n-", "hog\n-", "-\n-"], HOSTILE_LIMITS)
    )
    assert [r.status for r in results] == [
        Status.MEMORY,
        Status.TIMEOUT,
        Status.OK,
        Status.MEMORY,
        Status.OK,
    ]
    assert results[2].stdout == results[4].stdout == "fine\n"


def test_backends_agree(local_box, docker_box):
    programs = [(IDIOMS[k], "abc\ndef\n") for k in sorted(IDIOMS)]
    programs += [PARITY[k] for k in ("exception", "exit_message", "syntax_error", "main_module")]
    for program, stdin in programs:
        local = list(local_box.run_many(program, [stdin, stdin], LIMITS))
        docker = list(docker_box.run_many(program, [stdin, stdin], LIMITS))
        for a, b in zip(local, docker, strict=True):
            assert (a.status, a.exit_code, a.stdout, a.reason) == (
                b.status,
                b.exit_code,
                b.stdout,
                b.reason,
            ), program


test_backends_agree = pytest.mark.docker(test_backends_agree)
