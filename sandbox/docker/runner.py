"""The runner: pid 1 of every warm sandbox container; runs one submission at a time.

Protocol on its stdin / stdout (attached by the host): frames of a 4-byte big-endian length and a
JSON object. Request: {"program": str, "stdin": base64 str, "limits": {...}}. Reply: the fields of
RunResult. A request {"ping": true} is answered {"pong": true}.

Why pid 1: inside its pid namespace, init only receives signals it has handlers for, so a program
that kills its parent or calls kill(-1) cannot take the runner down; and kill(-1, SIGKILL) sent by
init kills every other process in the container, double-forked daemons included.
Standard library only (the image has Python and nothing else).
"""

import base64
import ctypes
import json
import math
import os
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script dir out
import supervise  # copied next to this file in the image

PR_SET_DUMPABLE = 4
SCRATCH = ("/tmp", "/dev/shm")  # the only writable places; wiped between submissions
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def read_exact(n):
    buf = b""
    while len(buf) < n:
        chunk = os.read(0, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def write_frame(obj):
    data = json.dumps(obj).encode()
    payload = struct.pack(">I", len(data)) + data
    while payload:
        payload = payload[os.write(1, payload) :]


def kill_everything():
    # From init, kill(-1) reaches every process in the container except init itself.
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def reap_all(deadline_s=2.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            time.sleep(0.002)
    return False


def wipe_scratch():
    for root in SCRATCH:
        try:
            entries = os.listdir(root)
        except OSError:
            continue
        for name in entries:
            path = os.path.join(root, name)
            # A program may have chmod-ed its files to 000; we are their owner, so restore first.
            for dirpath, dirnames, _ in os.walk(path):
                for d in dirnames:
                    try:
                        os.chmod(os.path.join(dirpath, d), 0o700)
                    except OSError:
                        pass
            try:
                os.chmod(path, 0o700)
            except OSError:
                pass
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass


def limiter(limits):
    cpu = math.ceil(limits["cpu_s"])
    mem = limits["memory_mb"] << 20
    disk = limits["disk_mb"] << 20
    nproc = limits["processes"] + 1  # the runner itself counts against our uid

    def apply():
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        resource.setrlimit(resource.RLIMIT_FSIZE, (disk, disk))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")  # the OOM killer should take the program, not the runner
        except OSError:
            pass

    return apply


def run_one(request):
    limits = request["limits"]
    workdir = tempfile.mkdtemp(prefix="run-", dir="/tmp")
    try:
        with open(os.path.join(workdir, "main.py"), "wb") as f:
            f.write(request["program"].encode("utf-8", "surrogatepass"))
        env = dict(ENV, HOME=workdir, TMPDIR=workdir)
        return supervise.supervise(
            [sys.executable, "-I", "main.py"],
            stdin=base64.b64decode(request.get("stdin", "")),
            wall_s=limits["wall_s"],
            cpu_s=limits["cpu_s"],
            memory_mb=limits["memory_mb"],
            output_bytes=limits["output_bytes"],
            env=env,
            cwd=workdir,
            kill=lambda proc: kill_everything(),
            preexec_fn=limiter(limits),
        )
    finally:
        kill_everything()
        reap_all()
        wipe_scratch()


def main():
    # Non-dumpable: a program of the same uid can neither ptrace the runner nor read its /proc.
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    wipe_scratch()
    while True:
        header = read_exact(4)
        if header is None:
            return  # host went away: the container ends with us
        (size,) = struct.unpack(">I", header)
        body = read_exact(size)
        if body is None:
            return
        request = json.loads(body)
        if request.get("ping"):
            write_frame({"pong": True})
            continue
        write_frame(run_one(request))


if __name__ == "__main__":
    main()
