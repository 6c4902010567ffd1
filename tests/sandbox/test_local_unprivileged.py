"""The local backend started by an ordinary user: user namespaces instead of root's powers."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534

SCRIPT = textwrap.dedent(
    """
    import json, sys, types
    # The checkout's folders as the installed packages (the editable install is root's alone).
    restem = types.ModuleType("restem")
    restem.__path__ = [sys.argv[1] + "/restem"]
    sys.modules["restem"] = restem
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "restem.sandbox", sys.argv[1] + "/sandbox/__init__.py",
        submodule_search_locations=[sys.argv[1] + "/sandbox"],
    )
    sandbox = importlib.util.module_from_spec(spec)
    sys.modules["restem.sandbox"] = sandbox
    spec.loader.exec_module(sandbox)
    from restem.sandbox import Limits
    from restem.sandbox.local import LocalSandbox
    box = LocalSandbox(workers=1)
    limits = Limits(wall_s=3, cpu_s=2, memory_mb=256, processes=16)
    programs = {
        "hello": "print(int(input()) * 2)",
        "net": "import socket\\ntry:\\n    socket.create_connection(('127.0.0.1', 1), timeout=1)\\n"
               "    print('connected')\\nexcept OSError:\\n    print('blocked')",
        "fork_bomb": "import os\\nwhile True:\\n    os.fork()",
        "loop": "while True:\\n    pass",
        "tmp": "open('/tmp/' + input(), 'w').write('x')\\nprint('ok')",
    }
    out = {"isolation": box.isolation}
    for name, program in programs.items():
        r = box.run(program, sys.argv[2] if name == "tmp" else "21", limits)
        out[name] = [r.status.value, r.stdout]
    # Several tests of one program, each in its own process: nothing of one is seen by the next.
    many = list(box.run_many(
        "import os\\nprint(input(), sorted(os.listdir('.')))\\nopen('left', 'w').write('x')",
        ["1", "2", "3"], limits,
    ))
    out["many"] = [[r.status.value, r.stdout] for r in many]
    print(json.dumps(out))
    """
)


def _world_traversable(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_local_backend_as_an_ordinary_user(tmp_path):
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    if not (shutil.which("setpriv") and python and _world_traversable(ROOT)):
        pytest.skip("needs setpriv, a system python3 and a world-readable checkout")
    canary = f"restem-nobody-{os.getpid()}"
    before = _pids_of(NOBODY)
    out = subprocess.run(
        [
            *("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"),
            *(python, "-c", SCRIPT, str(ROOT), canary),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
        env={"PATH": "/usr/bin:/bin", "HOME": "/"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout)
    if not seen["isolation"]["network"]:
        pytest.skip(f"this kernel refuses unprivileged user namespaces: {seen['isolation']}")
    assert seen["isolation"] == {"network": True, "mount": True, "pid": True, "uid": False}
    assert seen["hello"] == ["ok", "42\n"]
    assert seen["net"] == ["ok", "blocked\n"]
    assert seen["fork_bomb"][0] in ("runtime_error", "timeout")
    assert seen["loop"][0] == "timeout"
    assert seen["tmp"] == ["ok", "ok\n"] and not Path("/tmp", canary).exists()
    assert seen["many"] == [["ok", f"{i} ['main.py']\n"] for i in (1, 2, 3)]
    # Nothing of the runs left behind. Killed processes can take a moment to be reaped on a
    # loaded machine, so look again for a few seconds before calling one a leftover.
    deadline = time.monotonic() + 10
    while (left := _pids_of(NOBODY) - before) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == set(), _commands(left)


def _commands(pids: set[int]) -> dict[int, str]:
    found = {}
    for pid in pids:
        try:
            found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            found[pid] = "(gone)"
    return found


def _pids_of(uid: int) -> set[int]:
    out = subprocess.run(["ps", "-u", str(uid), "-o", "pid="], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}
