"""Each hardening measure of the docker backend, checked from inside and from the engine's view."""

from __future__ import annotations

import json
import subprocess

import pytest
from restem.sandbox import Limits, Status

from .conftest import HOSTILE_LIMITS

pytestmark = pytest.mark.docker


def _inside(docker_box, program: str) -> dict:
    result = docker_box.run(program, "", HOSTILE_LIMITS)
    assert result.status is Status.OK, (result.reason, result.stderr)
    return json.loads(result.stdout)


PROBE = """
import json, os
status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)
def can_write(path):
    try:
        with open(path, 'w') as f:
            f.write('x')
        return True
    except OSError:
        return False
print(json.dumps({
    'uid': os.getuid(), 'gid': os.getgid(),
    'cap_eff': status['CapEff'].strip(), 'cap_bnd': status['CapBnd'].strip(),
    'no_new_privs': status['NoNewPrivs'].strip(),
    'net': sorted(os.listdir('/sys/class/net')),
    'write_root': can_write('/etc/restem-probe'),
    'write_runner': can_write('/opt/restem/runner.py'),
    'write_cwd': can_write('probe.txt'),
    'cwd': os.getcwd(),
    'shm': os.path.exists('/dev/shm'),
    'mounts': open('/proc/self/mounts').read(),
}))
"""


def test_inside_view(docker_box):
    seen = _inside(docker_box, PROBE)
    assert seen["uid"] != 0 and seen["gid"] != 0  # non-root
    assert int(seen["cap_eff"], 16) == 0 and int(seen["cap_bnd"], 16) == 0  # all caps dropped
    assert seen["no_new_privs"] == "1"
    assert seen["net"] == ["lo"]  # no network but loopback
    assert not seen["write_root"] and not seen["write_runner"]  # read-only root
    assert seen["write_cwd"] and seen["cwd"] == "/tmp"  # the tmpfs, wiped between runs
    assert not seen["shm"]  # no /dev/shm to leave things in between runs
    # No host directory is mounted in: only the image's overlay and kernel pseudo file systems.
    host_fs = [line for line in seen["mounts"].splitlines() if line.split()[2] in ("ext4", "xfs")]
    assert host_fs == [] or all(
        line.split()[1] in ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf") for line in host_fs
    )


def test_engine_view(docker_box):
    for box in list(docker_box._live):
        box.container.reload()
        host = box.container.attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges:true" in host["SecurityOpt"]
        assert host["Memory"] > 0 and host["MemorySwap"] == host["Memory"]  # no swap
        assert host["PidsLimit"] == HOSTILE_LIMITS.processes + 8
        assert host["NanoCpus"] == int(docker_box.cpus * 1e9)
        assert host["LogConfig"]["Type"] == "none"
        assert host["Binds"] in (None, []) and box.container.attrs["Mounts"] == []
        assert "size=" in host["Tmpfs"]["/tmp"]
        assert box.container.attrs["Config"]["User"] not in ("", "0", "root")
        env = box.container.attrs["Config"]["Env"] or []
        assert not any(e.startswith("RESTEM_TEST_SECRET") for e in env)


def test_logs_do_not_reach_host_disk(docker_box):
    """An output flood goes to the runner's pipe and the log driver is `none`: nothing on disk."""
    flood = docker_box.run("while True:\n    print('x' * 10000)\n", "", HOSTILE_LIMITS)
    assert flood.status is Status.OUTPUT_LIMIT
    box = next(iter(docker_box._live))
    logs = subprocess.run(
        ["docker", "logs", box.container.id], capture_output=True, text=True, check=False
    )
    assert logs.returncode != 0 and "does not support reading" in logs.stderr
    assert not box.container.attrs.get("LogPath")


def test_tmpfs_is_small(docker_box):
    program = (
        "import errno\ntry:\n    with open('big', 'wb') as f:\n"
        "        for _ in range(10**4):\n            f.write(b'0' * 2**20)\n"
        "    print('wrote all')\nexcept OSError as e:\n    print('stopped', errno.errorcode[e.errno])\n"
    )
    result = docker_box.run(program, "", Limits(wall_s=10, cpu_s=10, memory_mb=256))
    # RLIMIT_FSIZE (SIGXFSZ) or the full tmpfs (ENOSPC) stops it, well before 10 GB.
    assert result.status in (Status.OK, Status.RUNTIME_ERROR), result.reason
    assert "wrote all" not in result.stdout


def test_memory_across_processes_hits_the_cgroup(docker_box):
    """Children each under RLIMIT_AS but together over the container's memory: the OOM killer
    takes program processes, never the runner, and the pool goes on."""
    program = (
        "import os, time\nkids = []\nfor _ in range(6):\n    pid = os.fork()\n    if pid == 0:\n"
        "        x = bytearray(200 * 2**20)\n        for i in range(0, len(x), 4096):\n"
        "            x[i] = 1\n        time.sleep(5)\n        os._exit(0)\n    kids.append(pid)\n"
        "codes = [os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids]\nprint(codes)\n"
    )
    result = docker_box.run(program, "", Limits(wall_s=8, cpu_s=8, memory_mb=256))
    assert result.status is not Status.SANDBOX_ERROR, result.reason
    assert "-9" in result.stdout or result.status is not Status.OK  # someone was OOM-killed
    follow = docker_box.run("print('fine')", "", HOSTILE_LIMITS)
    assert follow.status is Status.OK and follow.stdout == "fine\n"
