"""Local-backend launcher: isolate, limit, then exec the untrusted program.

Run as `python -I -S _launch.py CONFIG` by `restem.sandbox.local` (CONFIG: a marshal-ed dict, in
hex), in a new session. Standard library only. Steps, each because of a threat in docs/sandbox.md:
  1. unshare network (no host ports), mount (private /tmp, /proc) and pid namespaces (the whole
     tree dies with its init, double-forked daemons included), plus a user namespace when not
     root, where the OS allows it;
  2. pid 1 of the new namespace runs `runner.py`, the same runner as in a docker container,
     serving the host on the control socket CONFIG["ctl"]: one program, its tests one after
     another, each in a fresh process with rlimits and, when started as root, an unprivileged uid;
  3. without a pid namespace, exec the interpreter on the program here (one test per launch).
Exit status 125 with a `restem-launch:` line on stderr means the launcher itself failed.
Imports are kept to builtin modules where possible (marshal, not json; _signal, not signal): the
launcher's start-up is paid on every run.
"""

import _signal
import ctypes
import marshal
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 0x4000, 1 << 18
PR_SET_PDEATHSIG = 1
SETUP_FAILED = 125

_libc = ctypes.CDLL(None, use_errno=True)


def fail(message):
    os.write(2, f"restem-launch: {message}\n".encode())
    os._exit(SETUP_FAILED)


def mount(source, target, fstype, flags, data=None):
    if (
        _libc.mount(
            source and source.encode(),
            target.encode(),
            fstype and fstype.encode(),
            flags,
            data and data.encode(),
        )
        != 0
    ):
        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


def write_file(path, text):
    with open(path, "w") as f:
        f.write(text)


def setup_mounts(cfg):
    # Private propagation first, or our mounts would leak back into the host's namespace.
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    opts = f"size={cfg['disk_mb']}m,mode=1777"
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts)
    for extra in ("/var/tmp", "/dev/shm"):
        if os.path.isdir(extra):
            mount("tmpfs", extra, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=1777")
    # A /proc of the new pid namespace: the program sees its own processes, not the host's.
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    try:
        # Best effort: the rest of the host file system read-only for the program.
        mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    except OSError:
        pass


def exec_program(cfg, workdir):
    """In the program's own process: limits, drop privileges, exec. Never returns."""
    try:
        os.chdir(workdir)
        for name, (soft, hard) in cfg["rlimits"].items():
            resource.setrlimit(getattr(resource, "RLIMIT_" + name), (soft, hard))
        try:
            # The OOM killer should pick the program, never its supervisor.
            write_file("/proc/self/oom_score_adj", "1000")
        except OSError:
            pass
        uid = cfg["uid"]
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
        os.execve(cfg["python"], [cfg["python"], "-I", "main.py"], cfg["env"])
    except Exception as exc:
        fail(f"exec: {exc}")


def ns_init(cfg):
    """Pid 1 of the new namespace: the runner, serving the host on the control socket. When it
    exits (or the launcher dies), the kernel kills everything left in the namespace."""
    try:
        _libc.prctl(PR_SET_PDEATHSIG, _signal.SIGKILL)  # launcher killed -> namespace killed
        # The runner (and the fork server it reads) first: restem itself may live under /tmp,
        # which the private mounts below hide.
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import runner

        if cfg["unshare"] & CLONE_NEWNS:
            setup_mounts(cfg)
            workdir, scratch = "/tmp", ("/tmp", "/var/tmp", "/dev/shm")
        else:
            workdir = cfg["workdir"]
            scratch = (workdir,)

        config = runner.Config(
            python=cfg["python"],
            workdir=workdir,
            scratch=scratch,
            uid=cfg["uid"],
            rlimits=cfg["rlimits"],
        )
    except Exception as exc:
        fail(f"setup: {exc}")
    runner.serve(runner.Channel(cfg["ctl"], cfg["ctl"]), config)
    os._exit(0)


def main():
    cfg = marshal.loads(bytes.fromhex(sys.argv[1]))
    flags = cfg["unshare"]
    uid, gid = os.getuid(), os.getgid()
    if flags and _libc.unshare(flags) != 0:
        fail(f"unshare: {os.strerror(ctypes.get_errno())}")
    if flags & CLONE_NEWUSER:
        try:
            write_file("/proc/self/setgroups", "deny")
            write_file("/proc/self/uid_map", f"0 {uid} 1")
            write_file("/proc/self/gid_map", f"0 {gid} 1")
        except OSError as exc:
            fail(f"user namespace: {exc}")
    if not flags & CLONE_NEWPID:
        # No pid namespace: the program runs here; the host kills by process group (and uid).
        if cfg["uid"] is not None:
            os.chown(cfg["workdir"], cfg["uid"], cfg["uid"])
        path = os.path.join(cfg["workdir"], "main.py")
        if cfg["uid"] is not None:
            os.chown(path, cfg["uid"], cfg["uid"])
        exec_program(cfg, cfg["workdir"])
    pid = os.fork()
    if pid == 0:
        ns_init(cfg)
    _, status = os.waitpid(pid, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF if os.WIFEXITED(status) else SETUP_FAILED)


if __name__ == "__main__":
    main()
