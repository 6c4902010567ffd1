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
import collections
import ctypes
import json
import marshal
import math
import os
import resource
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # -I leaves the script dir out
import forkserver
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
_SETUP_THEN_MAIN = forkserver._SETUP_THEN_MAIN
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
        extra_processes=4,
        rlimits=None,
    ):
        self.python = python
        self.workdir = workdir
        self.scratch = tuple(scratch)
        self.uid = uid  # drop to this uid for the program (local backend as root)
        # Our own processes counted by RLIMIT_NPROC: runner, template, fork server, middle.
        self.extra_processes = extra_processes
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


# Pids spared by every kill: the template (see `Template`). A pid leaves the set when we reap
# it, before the kernel can give the number to anyone else.
SPARED = set()


def kill_all_but(keep, reap=True):
    """Kill every process of the namespace except ourselves, `keep` and SPARED, and reap them
    (not when `reap` is false: the test's own process is for `supervise.watch` to reap and
    measure). Returns the pids we reaped (the caller checks whether `keep` died meanwhile)."""
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
            if name.isdigit():
                pid = int(name)
                # Ours are spared before their /proc is read: one file less per process a test.
                if pid != me and pid != keep and pid not in SPARED and not _zombie(name):
                    victims.append(pid)
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
        SPARED.discard(pid)
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
        SPARED.discard(pid)
    return False


def kill_rest(cfg):
    """Every process but ours (and SPARED) dies and is reaped."""
    if cfg.selective:
        kill_all_but(None)
    else:
        kill_everything()
        reap_all()


def wipe(roots, keep=None):
    """Empty the scratch dirs; `keep`: {path: content} of our own files, left in place when they
    are still exactly that (a test may have changed them; then they go like the rest)."""
    for root in roots:
        try:
            entries = os.listdir(root)
        except OSError:
            continue
        for name in entries:
            path = os.path.join(root, name)
            if keep and path in keep and _unchanged(path, keep[path]):
                continue
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
    """The program's fork server, a child of the runner. Made before its program is known (a
    warm interpreter waiting for its start message: forked from the `Template`, or launched
    fresh), then started on one program."""

    def __init__(self, pid, sock, rlimits, proc=None, preamble=""):
        self.pid, self.sock, self.rlimits, self.proc = pid, sock, rlimits, proc
        self.preamble = preamble  # the preamble its template already ran for it
        self.state = None
        self.timeout = max(10.0, 2 * rlimits["CPU"][1] + 5)
        self.nice = os.getpriority(os.PRIO_PROCESS, 0)  # inherited from us
        self.affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None

    @classmethod
    def launch(cls, cfg, rlimits):
        """A fresh interpreter (where there is no template)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = _popen_server(cfg, theirs, _limiter(rlimits, cfg.uid))
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return cls(proc.pid, ours, rlimits, proc)

    def alive(self):
        return not _zombie(self.pid)

    def start(self, attempt, path, setup, preamble, env):
        """Compile the program (and its setup), load what it imports; OSError if it fails.
        `env`: the tests' environment, set once here (a test whose env differs sets its own)."""
        try:
            self.sock.settimeout(self.timeout)
            start = dict(attempt, path=path, setup=setup, preamble=preamble, env=env)
            _send(self.sock, start, [])
            if self.sock.recv(64) != b"ready":
                raise OSError("fork server did not start")
            self.state = _process_state(self.pid)  # before any test: what `healthy` expects
            # Its limits are the program's (checked once: `healthy` then compares the whole
            # state with this one).
            if self.state is None or _limits_table(self.state[0]) != {
                _LIMIT_NAMES[name]: tuple(self.rlimits[name]) for name in _RLIMITS
            }:
                raise OSError("fork server did not start with the program's limits")
        except BaseException:
            self.stop()
            raise

    def start_solo(self, attempt, path, setup, preamble, fds, cwd, env):
        """Run the program's only test in this process itself, on `fds` (stdin, stdout, stderr);
        OSError if the message cannot be sent."""
        start = dict(
            attempt, path=path, setup=setup, preamble=preamble, solo=True, cwd=cwd, env=env
        )
        _send(self.sock, start, fds)
        self.sock.close()

    def healthy(self):
        """Alive and as it was when it started (a test of the same uid may have changed its
        limits, nice, affinity, scheduling policy or I/O priority)."""
        try:
            os.kill(self.pid, signal.SIGCONT)  # a test may have stopped it
            state = _process_state(self.pid)
        except (OSError, ValueError, IndexError):
            return False
        return state is not None and state == self.state

    def spawn(self, fds, cwd, env, pid_r):
        """Ask for a test process on `fds` (the last one: the pid pipe's write end, `pid_r`
        its read end); its pid, or OSError."""
        _send(self.sock, {"cwd": cwd, "env": env}, fds)
        os.close(fds.pop())  # the pid pipe: from now on only the fork server's side holds it
        return _read_pid(pid_r, time.monotonic() + self.sock.gettimeout())

    def forget(self):
        """It died with the rest (killed by us and reaped): drop our handles."""
        self.sock.close()
        if self.proc is not None:
            self.proc.returncode = -9  # reaped already: keep Popen from waiting again

    def stop(self):
        try:
            self.sock.close()
        finally:
            _kill_and_reap(self.pid)
            if self.proc is not None:
                self.proc.returncode = -9


class Template:
    """A long-lived interpreter that never runs a program: it forks each program's fork server
    (~1 ms, not an interpreter start). It lives beside the programs, with their uid, so like
    the runner it is checked before each use (alive, not stopped, its limits, nice, affinity
    and scheduling policy as it started); one that fails the check is replaced."""

    def __init__(self, cfg):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        try:
            self.proc = _popen_server(cfg, theirs, _limiter({}, cfg.uid), "template")
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.pid = self.proc.pid
        SPARED.add(self.pid)
        try:
            self.sock.settimeout(10.0)
            if self.sock.recv(64) != b"ready":
                raise OSError("the template did not start")
            self.state = self._state()
        except BaseException:
            self.stop()
            raise

    def _state(self):
        return _process_state(self.pid)

    def healthy(self):
        if self.pid not in SPARED:
            return False  # reaped: it died
        try:
            os.kill(self.pid, signal.SIGCONT)  # a program may have stopped it
            state = self._state()
        except (OSError, ValueError, IndexError):
            return False
        return state is not None and state == self.state

    def fork_server(self, rlimits, preamble):
        """A new fork server for one program, with `rlimits` and `preamble` (trusted code the
        template runs once for all the programs that share it), as our child; OSError if none."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid_r, pid_w = os.pipe()
        try:
            self.sock.settimeout(10.0)
            _send(self.sock, {"rlimits": rlimits, "preamble": preamble}, [theirs.fileno(), pid_w])
            os.close(pid_w)
            pid_w = -1
            theirs.close()
            pid = _read_pid(pid_r, time.monotonic() + 10.0)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(pid_r)
            if pid_w >= 0:
                os.close(pid_w)
        return ForkServer(pid, ours, rlimits, preamble=preamble)

    def stop(self):
        self.sock.close()
        _kill_and_reap(self.pid)
        SPARED.discard(self.pid)
        self.proc.returncode = -9


_SYS_IOPRIO_GET = {"x86_64": 252, "aarch64": 31}.get(os.uname().machine)
_LIBC = []


def _libc():
    if not _LIBC:
        _LIBC.append(ctypes.CDLL(None, use_errno=True))
    return _LIBC[0]


def _unchanged(path, content):
    """A regular file (not a link) of the sandbox's holding exactly `content`?"""
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size != len(content) or st.st_nlink != 1:
            return False
        with open(path, "rb") as f:
            return f.read(len(content) + 1) == content
    except OSError:
        return False


def _process_state(pid):
    """What a process of the same uid can change about another and a child would inherit:
    every rlimit (/proc/<pid>/limits, whole; prlimit() would need CAP_SYS_RESOURCE across
    uids), nice, scheduling policy, CPU affinity, I/O priority, OOM score adjustment. None
    when it is dead (a zombie, or exiting)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rpartition(b")")[2].split()
    if fields[0] in (b"Z", b"X", b"x"):
        return None
    with open(f"/proc/{pid}/limits") as f:
        limits = f.read()
    with open(f"/proc/{pid}/oom_score_adj") as f:
        oom = f.read().strip()
    affinity = os.sched_getaffinity(pid) if hasattr(os, "sched_getaffinity") else None
    ioprio = None
    if _SYS_IOPRIO_GET is not None:
        ioprio = _libc().syscall(_SYS_IOPRIO_GET, 1, pid)
    return limits, fields[16], fields[38], affinity, ioprio, oom  # nice, policy


def _kill_and_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # not our child (yet: its middle process still runs): `kill_all_but` reaps it


def _popen_server(cfg, theirs, preexec, *args):
    return subprocess.Popen(
        [cfg.python, "-I", "-c", _FORKSERVER_SOURCE, str(theirs.fileno()), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(ENV, HOME=cfg.workdir, TMPDIR=cfg.workdir),
        cwd=cfg.workdir,
        pass_fds=(theirs.fileno(),),
        start_new_session=True,
        preexec_fn=preexec,
    )


def _read_pid(pid_r, deadline):
    """A pid written to a pipe, read until every write end is closed; OSError if none."""
    data = b""
    while True:
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


def _send(sock, message, fds):
    # marshal: the fork server reads it without importing anything (json would cost it ~5 ms);
    # version 2 holds plain data the same way in every Python 3.
    socket.send_fds(sock, [marshal.dumps(message, 2)], fds)


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

    def __init__(self, cfg, source, limits, setup="", zygote=None, template=None, preamble=""):
        self.cfg = cfg
        self.source = source.encode("utf-8", "surrogatepass")
        self.setup = setup.encode("utf-8", "surrogatepass") if setup else b""
        self.limits = limits
        self.rlimits = cfg.rlimits or rlimits_for(limits, cfg.extra_processes)
        self.path = os.path.join(cfg.workdir, "main.py")
        self.setup_path = os.path.join(cfg.workdir, "setup.py") if setup else None
        self.preamble = preamble
        self.preamble_path = os.path.join(cfg.workdir, "preamble.py") if preamble else None
        self.server = None
        self.zygote = zygote  # a warm interpreter with our rlimits, not started yet, or None
        self.template = template
        self.attempt = 0
        self.last_error = ""

    def _fresh_workdir(self):
        files = {self.path: self.source}
        if self.setup_path:
            files[self.setup_path] = self.setup
        if self.preamble_path:
            files[self.preamble_path] = self.preamble.encode("utf-8", "surrogatepass")
        wipe(self.cfg.scratch, files)
        os.makedirs(self.cfg.workdir, exist_ok=True)
        for path, data in files.items():
            if os.path.lexists(path):
                continue  # kept by wipe: exactly what we would write
            with open(path, "wb") as f:
                f.write(data)
            if self.cfg.uid is not None:
                os.chown(path, self.cfg.uid, self.cfg.uid)
        if self.cfg.uid is not None:
            os.chown(self.cfg.workdir, self.cfg.uid, self.cfg.uid)

    def _take_zygote(self):
        zygote, self.zygote = self.zygote, None
        # One made for another preamble has that one loaded; one with none loads ours itself.
        if zygote is not None and zygote.alive() and zygote.preamble in ("", self.preamble):
            return zygote
        if zygote is not None:
            zygote.stop()
        return None

    def _server(self):
        if self.server is not None and not self.server.healthy():
            self._stop_server()
        while self.server is None and self.attempt < len(_ATTEMPTS):
            server = self._take_zygote() if self.attempt == 0 else None
            try:
                server = server or new_server(self.cfg, self.template, self.rlimits, self.preamble)
                server.start(
                    _ATTEMPTS[self.attempt],
                    self.path,
                    self.setup_path,
                    self.preamble_path,
                    self._env(),
                )
                self.server = server
            except (OSError, ValueError) as exc:
                self.attempt += 1
                self.last_error = f"{exc.__class__.__name__}: {exc}"
                kill_rest(self.cfg)
        return self.server

    def _stop_server(self):
        if self.server is not None:
            self.server.stop()
            self.server = None

    def _env(self):
        return dict(ENV, HOME=self.cfg.workdir, TMPDIR=self.cfg.workdir)

    def run_alone(self, stdin):
        """A program with one test: a fresh interpreter, no fork server to start first."""
        zygote = self._take_zygote()
        if zygote is not None and self.cfg.selective:
            return self._run_solo(zygote, stdin)
        if zygote is not None:
            zygote.stop()
        limits = self.limits
        self._fresh_workdir()
        argv = [self.cfg.python, "-I", "main.py"]
        if self.setup_path or self.preamble_path:
            argv = [self.cfg.python, "-I", "-c", _SETUP_THEN_MAIN]
        return supervise.supervise(
            argv,
            stdin=stdin,
            wall_s=limits["wall_s"],
            cpu_s=limits["cpu_s"],
            memory_mb=limits["memory_mb"],
            output_bytes=limits["output_bytes"],
            env=self._env(),
            cwd=self.cfg.workdir,
            kill=lambda proc: self._kill_tree(),
            preexec_fn=_limiter(self.rlimits, self.cfg.uid),
        )

    def _run_solo(self, zygote, stdin):
        """The one test in the warm interpreter itself: no interpreter start, no fork."""
        limits = self.limits
        self._fresh_workdir()
        child_fds = []
        out_r = err_r = -1
        try:
            child_fds.append(supervise.stdin_file(stdin))
            out_r, out_w = os.pipe()
            child_fds.append(out_w)
            err_r, err_w = os.pipe()
            child_fds.append(err_w)
            start = time.monotonic()
            zygote.start_solo(
                _ATTEMPTS[0],
                self.path,
                self.setup_path,
                self.preamble_path,
                child_fds,
                self.cfg.workdir,
                self._env(),
            )
        except (OSError, ValueError):
            for fd in (out_r, err_r):
                if fd >= 0:
                    os.close(fd)
            zygote.stop()
            kill_all_but(None)
            self.zygote = None
            return self.run_alone(stdin)
        finally:
            for fd in child_fds:
                os.close(fd)
        row = supervise.watch(
            zygote.pid,
            out_r,
            err_r,
            start=start,
            wall_s=limits["wall_s"],
            cpu_s=limits["cpu_s"],
            memory_mb=limits["memory_mb"],
            output_bytes=limits["output_bytes"],
            kill=lambda: kill_all_but(None, reap=False),
            interrupt=self.interrupt,
        )
        if zygote.proc is not None:
            zygote.proc.returncode = row["exit_code"] if row["exit_code"] is not None else -9
        return row

    def _kill_tree(self):
        """Kill every process of the program, reaping none (the caller reaps its child)."""
        if self.cfg.selective:
            kill_all_but(None, reap=False)
        else:
            kill_everything()

    interrupt = None  # (fd, callback) for `supervise.watch`: a message from the host mid-test

    def run_test(self, stdin):
        if not self.cfg.selective:
            # Between tests we could only kill everything, the fork server too: no gain.
            return self.run_alone(stdin)
        limits = self.limits
        env = self._env()
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
            interrupt=self.interrupt,
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
                self.server.forget()
                self.server = None
        else:
            kill_everything()
            if self.server is not None:
                self.server.forget()
                self.server = None
            reap_all()

    def kill(self):
        """Every process of the program dies and is reaped (the scratch dirs stay, see wipe)."""
        if self.server is not None:
            self.server.forget()
            self.server = None
        if self.zygote is not None:
            self.zygote.forget()
            self.zygote = None
        kill_rest(self.cfg)

    def close(self):
        self.kill()
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


_ALL_RLIMITS = tuple(
    (name, getattr(resource, name)) for name in dir(resource) if name.startswith("RLIMIT_")
)


def _own_state():
    """What a program of our uid could change about us (rlimits, nice, CPU affinity) and we could
    not always change back (a lowered hard limit stays lowered)."""
    limits = {}
    for name, number in _ALL_RLIMITS:
        limits[name] = resource.getrlimit(number)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return limits, os.getpriority(os.PRIO_PROCESS, 0), affinity


def serve(channel, cfg):
    """Answer requests until the host goes away.

    The host may send a program's next tests before the answer to the current one (pipelining):
    they wait in `inbox`. While a test runs, a message from the host is read at once: an "end"
    (or the host going away) kills the test there, so stopping early wastes no test time.

    A reply carries "retire": true when a program changed the runner itself (see `_own_state`):
    the host then replaces this sandbox, and the runner exits once the reply is out.

    Once a program is over (its processes killed and reaped, the reply sent), its scratch is
    wiped and a warm interpreter is started for the next program (`ForkServer`, not yet given
    a program): the next program skips the interpreter's start. A request with "cold": true
    gets none of that (a fresh interpreter per test, as before fork servers; for comparisons)."""
    try:
        # Non-dumpable: a program of the same uid can neither ptrace us nor read our /proc.
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    wipe(cfg.scratch)
    state = _own_state()
    inbox = collections.deque()
    gone = object()

    def on_message():
        """A message arrived mid-test: stop the test for an "end" or EOF, else keep it."""
        message = channel.read()
        stop = message is None or bool(message.get("end"))
        if stop:
            inbox.clear()  # tests sent ahead of the end are never run
        inbox.append(gone if message is None else message)
        return stop

    program = None
    zygote = None
    warm_rlimits = None
    warm_preamble = ""
    template = None
    while True:
        request = inbox.popleft() if inbox else channel.read()
        if request is None or request is gone:
            if program is not None:
                program.close()
            if zygote is not None:
                zygote.stop()
            if template is not None:
                template.stop()
            return  # host went away
        if request.get("ping"):
            channel.write({"pong": True})
            continue
        if request.get("end"):
            if program is not None:
                program.close()
                program = None
                inbox.clear()  # tests of that program sent ahead
            channel.write({"ended": True})
            template = _template(cfg, template)
            zygote = _warm(cfg, template, warm_rlimits, zygote, warm_preamble)
            continue
        if "program" in request:
            if program is not None:
                program.close()
            rlimits = cfg.rlimits or rlimits_for(request["limits"], cfg.extra_processes)
            cold = bool(request.get("cold"))
            warm_rlimits = None if cold else rlimits
            warm_preamble = request.get("preamble") or ""
            if zygote is not None and (
                cold or zygote.rlimits != rlimits or zygote.preamble not in ("", warm_preamble)
            ):
                zygote.stop()
                zygote = None
            if not cold:
                template = _template(cfg, template)
            program = Program(
                cfg,
                request["program"],
                request["limits"],
                request.get("setup") or "",
                zygote,
                None if cold else template,
                warm_preamble,
            )
            program.interrupt = (channel.rfd, on_message)
            zygote = None
        if program is None:
            channel.write(supervise.error_row("a test without a program", 0.0))
            continue
        stdin = base64.b64decode(request.get("stdin", ""))
        if "program" in request and request.get("last"):
            row = program.run_alone(stdin)
        else:
            row = program.run_test(stdin)
        last = request.get("last")
        if last:
            program.kill()  # before the check below: nothing of it may act after
        if _own_state() != state:
            row["retire"] = True
            channel.write(row)
            program.close()
            return
        channel.write(row)
        if last:
            # After the answer: the host judges it while we clean up and warm up.
            program.close()
            program = None
            template = _template(cfg, template)
            zygote = _warm(cfg, template, warm_rlimits, zygote, warm_preamble)


def new_server(cfg, template, rlimits, preamble):
    """A fork server not yet given its program: forked from the template when there is a
    healthy one, else a fresh interpreter."""
    if template is not None and template.healthy():
        try:
            return template.fork_server(rlimits, preamble)
        except (OSError, ValueError):
            pass
    return ForkServer.launch(cfg, rlimits)


def _warm(cfg, template, rlimits, zygote, preamble):
    """A warm interpreter for the next program (only where a program cannot reach it: with our
    own pid namespace's /proc, every process of the last program is dead by now)."""
    if zygote is not None or rlimits is None or not cfg.selective:
        return zygote
    kill_all_but(None)
    me = os.getpid()
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in SPARED and int(name) != me and not _zombie(name):
            return None  # something would not die: no interpreter for it to reach
    try:
        return new_server(cfg, template, rlimits, preamble)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def _template(cfg, template):
    """The template, checked (and replaced when it fails the check or died)."""
    if not cfg.selective:
        return None
    if template is not None and template.healthy():
        return template
    if template is not None:
        template.stop()
    try:
        return Template(cfg)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def main():
    serve(Channel(0, 1), Config())


if __name__ == "__main__":
    main()
