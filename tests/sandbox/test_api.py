"""The interface: Limits, RunResult, get_sandbox, cheap import, and things that must not raise."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from restem.sandbox import Limits, RunResult, Status, get_sandbox
from restem.sandbox.local import LocalSandbox


@pytest.mark.parametrize(
    "bad",
    [
        {"wall_s": 0},
        {"wall_s": float("inf")},
        {"cpu_s": -1},
        {"memory_mb": 16},
        {"processes": 0},
        {"output_bytes": 1.5},
        {"disk_mb": True},
    ],
)
def test_bad_limits_raise(bad):
    with pytest.raises(ValueError):
        Limits(**bad)


def test_limits_are_frozen_and_result_round_trips():
    limits = Limits()
    with pytest.raises(AttributeError):
        limits.wall_s = 1  # type: ignore[misc]
    result = RunResult(Status.OK, 0, "out", "", 0.1, 0.05, 12.0)
    assert RunResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert Status("timeout") is Status.TIMEOUT and str(Status.MEMORY) == "memory"


def test_import_is_cheap():
    code = "import sys, restem.sandbox; print('docker' in sys.modules, 'restem.sandbox.local' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_get_sandbox_by_name():
    with get_sandbox("local") as box:
        assert isinstance(box, LocalSandbox)
    with pytest.raises(ValueError):
        get_sandbox("chroot")


@pytest.mark.parametrize(
    ("program", "ok"),
    [
        ("", True),
        ("\x01 not python at all", False),
        ("\x00 nul byte", None),  # Python 3.11 stops reading at a NUL; later versions refuse
        ("print('\ud800')", False),  # lone surrogate in the source text
        ("import sys; sys.exit('bye')", False),
        ("x" * 200_000, False),  # a big program (NameError)
        ("raise KeyboardInterrupt", False),
        ("import os; os.abort()", False),
    ],
    ids=["empty", "binary", "nul", "surrogate", "exit_str", "huge", "keyboard_interrupt", "abort"],
)
def test_untrusted_input_never_raises(box, program, ok):
    result = box.run(program, b"\xff\xfe binary stdin", Limits(wall_s=5, cpu_s=5))
    assert isinstance(result, RunResult)
    assert result.status is not Status.SANDBOX_ERROR, result.reason
    if ok is not None:
        assert (result.status is Status.OK) == ok, (result.status, result.stderr[-300:])
        assert result.status in (Status.OK, Status.RUNTIME_ERROR)


def test_stdin_bytes_and_text_and_large(box):
    data = "line\n" * 100_000  # more than a pipe buffer both ways
    result = box.run(
        "import sys\nd = sys.stdin.read()\nprint(len(d))\n", data, Limits(wall_s=10, cpu_s=10)
    )
    assert result.status is Status.OK and result.stdout == f"{len(data)}\n"
    assert result.cpu_s is not None and result.peak_memory_mb and result.wall_s > 0


def test_program_that_ignores_stdin(box):
    result = box.run("print('no read')", "x" * 1_000_000, Limits(wall_s=5, cpu_s=5))
    assert result.status is Status.OK and result.stdout == "no read\n"


def test_local_isolation_report():
    box = LocalSandbox(workers=1)
    assert set(box.isolation) == {"network", "mount", "pid", "uid"}
    if os.geteuid() == 0 and sys.platform == "linux":
        # As root on Linux every namespace is available; anything less is a regression.
        assert all(box.isolation.values()), box.isolation
    assert os.path.isabs(box.python)
