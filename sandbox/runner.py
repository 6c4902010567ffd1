"""The runner: pid 1 of a sandbox. Runs one program at a time, on one test after another.

Used by both backends: as pid 1 of every warm docker container (on the container's attached
stdin/stdout) and as pid 1 of the local backend's pid namespace (on a socket to the host).

Protocol: frames of a 4-byte big-endian length and a JSON object.
  {"program": str, "limits": {...}, "stdin": b64, "last": bool}  start a program; run its 1st test
  {"stdin": b64, "last": bool}                                   the program's next test
  {"end": true}                                                  stop early; answered {"ended": true}
  {"ping": true}                                                 answered {"pong": true}
Each test is answered with the fields of RunResult. After a test sent with "last", or on "end",
the program is over: every process but the runner killed, the scratch dirs wiped.

Per program a fork server (`forkserver.py`) compiles the program once; per test it forks a fresh
process (stdin: a regular file; stdout/stderr: pipes read here; the program's rlimits; a fresh,
empty work dir). Between two tests every process except the runner and the fork server is killed
and the scratch dirs are wiped, so a test sees no file or process of another. A test may kill,
stop or re-limit the fork server (same uid): it is checked before every test and restarted when
anything is off; if it cannot start at all, tests exec a fresh interpreter as before.

Why pid 1: inside its pid namespace, init only receives signals it has handlers for, so a program
that kills its parent or calls kill(-1) cannot take the runner down; and kill(-1, SIGKILL) sent by
init kills every other process in the namespace, double-forked daemons included.
Standard library only.
"""

import base64
import ctypes
import json
import math
import os
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script dir out
import supervise

PR_SET_DUMPABLE = 4
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    # One thread per numeric library: a judge gives a program one CPU, and thread pools started
    # at import would count against the process and memory limits.
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
# Read once, at import: the local backend then mounts a private /tmp, which may hide this folder.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "forkserver.py")) as _f:
    _FORKSERVER_SOURCE = _f.read()
_RLIMITS = ("CPU", "AS", "NPROC", "FSIZE", "CORE", "NOFILE")
_LIMIT_NAMES = {  # as /proc/<pid>/limits names them
    "CPU": "Max cpu time",
    "AS": "Max address space",
    "NPROC": "Max processes",
    "FSIZE": "Max file size",
    "CORE": "Max core file size",
    "NOFILE": "Max open files",
}
# Ways to start the fork server, tried in order when one does not come up.
_ATTEMPTS = ({"compile": True, "preload": True}, {"compile": False, "preload": False})


class Config:
    """What differs between the docker container and the local pid namespace."""

    def __init__(
        self,
        *,
        python=sys.executable,
        workdir="/tmp",
        scratch=("/tmp", "/dev/shm"),
        uid=None,
        extra_processes=3,
        rlimits=None,
    ):
        self.python = python
        self.workdir = workdir
        self.scratch = tuple(scratch)
        self.uid = uid  # drop to this uid for the program (local backend as root)
        self.extra_processes = extra_processes  # our own processes counted by RLIMIT_NPROC
        self.rlimits = rlimits  # fixed rlimits from the host, else derived from each program's
        # Killing "all but the fork server" needs a /proc of our own pid namespace; otherwise
        # kill(-1) between tests, and a new fork server for each test.
        try:
            self.selective = os.getpid() == 1 and os.readlink("/proc/self") == "1"
        except OSError:
            self.selective = False


def rlimits_for(limits, extra_processes):
    cpu = math.ceil(limits["cpu_s"])
    mem = limits["memory_mb"] << 20
    disk = limits["disk_mb"] << 20
    nproc = limits["processes"] + extra_processes
    return {
        "CPU": (cpu, cpu + 1),
        "AS": (mem, mem),
        "NPROC": (nproc, nproc),
        "FSIZE": (disk, disk),
        "CORE": (0, 0),
        "NOFILE": (256, 256),
    }


def kill_all_but(keep, reap=True):
    """Kill every process of the namespace except ourselves and `keep`, and reap them (not when
    `reap` is false: the test's own process is for `supervise.watch` to reap and measure).
    Returns the pids we reaped (the caller checks whether `keep` died meanwhile)."""
    me = os.getpid()
    reaped = set()
    deadline = time.monotonic() + 5.0
    while True:
        if reap:
            reaped |= reap_ready()
            if keep in reaped:
                keep = None  # it died: its pid may come back as anybody's
        victims = []
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) not in (me, keep) and not _zombie(name):
                victims.append(int(name))
        if not victims or time.monotonic() > deadline:
            return reaped
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.001)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return True  # gone


def reap_ready():
    reaped = set()
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped.add(pid)


def kill_everything():
    # From init, kill(-1) reaches every process in the namespace except init itself.
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


def wipe(roots):
    for root in roots:
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


class ForkServer:
    """The program's fork server, a child of the runner."""

    def __init__(self, cfg, rlimits, path, attempt):
        self.rlimits = rlimits
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        try:
            self.proc = subprocess.Popen(
                [cfg.python, "-I", "-c", _FORKSERVER_SOURCE, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(ENV, HOME=cfg.workdir, TMPDIR=cfg.workdir),
                cwd=cfg.workdir,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                preexec_fn=_limiter(rlimits, cfg.uid),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.pid = self.proc.pid
        self.nice = os.getpriority(os.PRIO_PROCESS, 0)  # inherited from us
        self.affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        try:
            self.sock.settimeout(max(10.0, 2 * rlimits["CPU"][1] + 5))
            self.sock.send(json.dumps(dict(attempt, path=path)).encode())
            if json.loads(self.sock.recv(1 << 16) or b"{}") != {"ready": True}:
                raise OSError("fork server did not start")
        except BaseException:
            self.stop()
            raise

    def healthy(self):
        """Alive and with the limits we gave it (a test of the same uid may have changed them)."""
        try:
            os.kill(self.pid, signal.SIGCONT)  # a test may have stopped it
            # /proc/<pid>/limits, not prlimit(): that needs CAP_SYS_RESOURCE across uids.
            with open(f"/proc/{self.pid}/limits") as f:
                table = f.read()
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                fields = f.read().rpartition(b")")[2].split()
            nice = int(fields[16])
            if (
                fields[0] in (b"Z", b"X", b"x")
                or nice != self.nice
                or (self.affinity is not None and os.sched_getaffinity(self.pid) != self.affinity)
            ):
                return False
        except (OSError, ValueError, IndexError):
            return False
        return _limits_table(table) == {
            _LIMIT_NAMES[name]: tuple(self.rlimits[name]) for name in _RLIMITS
        }

    def spawn(self, fds, cwd, env, pid_r):
        """Ask for a test process on `fds` (the last one: the pid pipe's write end, `pid_r`
        its read end); its pid, or OSError."""
        socket.send_fds(self.sock, [json.dumps({"cwd": cwd, "env": env}).encode()], fds)
        os.close(fds.pop())  # the pid pipe: from now on only the fork server's side holds it
        deadline = time.monotonic() + self.sock.gettimeout()
        data = b""
        while True:  # until EOF: every write end closed (test process started, or failure)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pid_r], [], [], left)[0]:
                raise OSError("fork server did not answer")
            chunk = os.read(pid_r, 64)
            if not chunk:
                break
            data += chunk
        if not data.isdigit():
            raise OSError("fork server went away")
        return int(data)

    def stop(self):
        try:
            self.sock.close()
        finally:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
            self.proc.returncode = -9  # reaped here: keep Popen from waiting again


def _limits_table(text):
    """{name: (soft, hard)} of the limits we set, read from a /proc/<pid>/limits text."""
    wanted = set(_LIMIT_NAMES.values())
    table = {}
    for line in text.splitlines():
        for name in wanted:
            if line.startswith(name + " "):
                fields = line[len(name) :].split()
                table[name] = tuple(
                    resource.RLIM_INFINITY if v == "unlimited" else int(v) for v in fields[:2]
                )
    return table


def _limiter(rlimits, uid):
    def apply():
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        for name, value in rlimits.items():
            resource.setrlimit(getattr(resource, "RLIMIT_" + name), tuple(value))
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")  # the OOM killer should take the program, not the runner
        except OSError:
            pass

    return apply


class Program:
    """One program and its tests, run one after another."""

    def __init__(self, cfg, source, limits):
        self.cfg = cfg
        self.source = source.encode("utf-8", "surrogatepass")
        self.limits = limits
        self.rlimits = cfg.rlimits or rlimits_for(limits, cfg.extra_processes)
        self.path = os.path.join(cfg.workdir, "main.py")
        self.server = None
        self.attempt = 0
        self.last_error = ""

    def _fresh_workdir(self):
        wipe(self.cfg.scratch)
        os.makedirs(self.cfg.workdir, exist_ok=True)
        with open(self.path, "wb") as f:
            f.write(self.source)
        if self.cfg.uid is not None:
            os.chown(self.cfg.workdir, self.cfg.uid, self.cfg.uid)
            os.chown(self.path, self.cfg.uid, self.cfg.uid)

    def _server(self):
        if self.server is not None and not self.server.healthy():
            self._stop_server()
        while self.server is None and self.attempt < len(_ATTEMPTS):
            try:
                self.server = ForkServer(self.cfg, self.rlimits, self.path, _ATTEMPTS[self.attempt])
            except (OSError, ValueError) as exc:
                self.attempt += 1
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                kill_everything() if not self.cfg.selective else kill_all_but(None)
                reap_all()
        return self.server

    def _stop_server(self):
        if self.server is not None:
            self.server.stop()
            self.server = None

    def run_alone(self, stdin):
        """A program with one test: exec a fresh interpreter, no fork server to start first."""
        limits = self.limits
        self._fresh_workdir()
        return supervise.supervise(
            [self.cfg.python, "-I", "main.py"],
            stdin=stdin,
            wall_s=limits["wall_s"],
            cpu_s=limits["cpu_s"],
            memory_mb=limits["memory_mb"],
            output_bytes=limits["output_bytes"],
            env=dict(ENV, HOME=self.cfg.workdir, TMPDIR=self.cfg.workdir),
            cwd=self.cfg.workdir,
            kill=lambda proc: kill_everything(),
            preexec_fn=_limiter(self.rlimits, self.cfg.uid),
        )

    def run_test(self, stdin):
        if not self.cfg.selective:
            # Between tests we could only kill everything, the fork server too: no gain.
            return self.run_alone(stdin)
        limits = self.limits
        env = dict(ENV, HOME=self.cfg.workdir, TMPDIR=self.cfg.workdir)
        for _ in range(2):
            self._fresh_workdir()
            server = self._server()
            if server is None:
                return self.run_alone(stdin)  # no fork server comes up: a fresh interpreter
            start = time.monotonic()
            spawned = self._spawn(server, stdin, env)
            if spawned is not None:
                break
            # Broken by the previous test (killed, stopped, re-limited) or gone: whatever the
            # failed attempt may have started dies, and the test gets new files and a new server.
            self._stop_server()
            kill_all_but(None)
        else:
            return supervise.error_row("fork server failed twice", 0.0)
        pid, out_r, err_r = spawned
        row = supervise.watch(
            pid,
            out_r,
            err_r,
            start=start,
            wall_s=limits["wall_s"],
            cpu_s=limits["cpu_s"],
            memory_mb=limits["memory_mb"],
            output_bytes=limits["output_bytes"],
            kill=lambda: kill_all_but(self.server.pid if self.server else None, reap=False),
        )
        self._kill_test()
        return row

    def _spawn(self, server, stdin, env):
        """(pid, stdout fd, stderr fd) of a new test process, or None when the server failed."""
        child_fds = []  # ours to close once the test process has its copies
        out_r = err_r = pid_r = -1
        try:
            child_fds.append(supervise.stdin_file(stdin))
            out_r, out_w = os.pipe()
            child_fds.append(out_w)
            err_r, err_w = os.pipe()
            child_fds.append(err_w)
            pid_r, pid_w = os.pipe()
            child_fds.append(pid_w)
            return server.spawn(child_fds, self.cfg.workdir, env, pid_r), out_r, err_r
        except (OSError, ValueError):
            for fd in (out_r, err_r):
                if fd >= 0:
                    os.close(fd)
            return None
        finally:
            for fd in [*child_fds, pid_r]:
                if fd >= 0:
                    os.close(fd)

    def _kill_test(self):
        """Every process of the test dies and is reaped; the fork server stays."""
        if self.server is not None and self.cfg.selective:
            if self.server.pid in kill_all_but(self.server.pid):
                self.server.proc.returncode = -9
                self.server.sock.close()
                self.server = None
        else:
            kill_everything()
            if self.server is not None:
                self.server.sock.close()
                self.server.proc.returncode = -9
                self.server = None
            reap_all()

    def close(self):
        if self.server is not None:
            self.server.sock.close()
            self.server.proc.returncode = -9
            self.server = None
        kill_everything()
        reap_all()
        wipe(self.cfg.scratch)


class Channel:
    """Length-prefixed JSON frames over a pair of fds."""

    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd

    def _read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = os.read(self.rfd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def read(self):
        header = self._read_exact(4)
        if header is None:
            return None
        body = self._read_exact(struct.unpack(">I", header)[0])
        return None if body is None else json.loads(body)

    def write(self, obj):
        data = json.dumps(obj).encode()
        payload = struct.pack(">I", len(data)) + data
        while payload:
            payload = payload[os.write(self.wfd, payload) :]


def _own_state():
    """What a program of our uid could change about us (rlimits, nice, CPU affinity) and we could
    not always change back (a lowered hard limit stays lowered)."""
    limits = {}
    for name in dir(resource):
        if name.startswith("RLIMIT_"):
            limits[name] = resource.getrlimit(getattr(resource, name))
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return limits, os.getpriority(os.PRIO_PROCESS, 0), affinity


def serve(channel, cfg):
    """Answer requests until the host goes away.

    A reply carries "retire": true when a program changed the runner itself (see `_own_state`):
    the host then replaces this sandbox, and the runner exits once the reply is out."""
    try:
        # Non-dumpable: a program of the same uid can neither ptrace us nor read our /proc.
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    wipe(cfg.scratch)
    state = _own_state()
    program = None
    while True:
        request = channel.read()
        if request is None:
            if program is not None:
                program.close()
            return  # host went away
        if request.get("ping"):
            channel.write({"pong": True})
            continue
        if request.get("end"):
            if program is not None:
                program.close()
                program = None
            channel.write({"ended": True})
            continue
        if "program" in request:
            if program is not None:
                program.close()
            program = Program(cfg, request["program"], request["limits"])
        if program is None:
            channel.write(supervise.error_row("a test without a program", 0.0))
            continue
        stdin = base64.b64decode(request.get("stdin", ""))
        if "program" in request and request.get("last"):
            row = program.run_alone(stdin)
        else:
            row = program.run_test(stdin)
        if request.get("last"):
            program.close()
            program = None
        if _own_state() != state:
            row["retire"] = True
            channel.write(row)
            if program is not None:
                program.close()
            return
        channel.write(row)


def main():
    serve(Channel(0, 1), Config())


if __name__ == "__main__":
    main()
