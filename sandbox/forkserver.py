"""The fork server: one per program. Compiles the program once, then forks one process per test.

Started by the runner (`runner.py`, pid 1 of the sandbox) as `python -I -c SOURCE FD`, already
under the program's uid and rlimits, non-dumpable; FD is a SOCK_SEQPACKET control socket. It
never sees a test's input or output: for each test the runner sends the test's stdin file and the
write ends of its stdout/stderr pipes as file descriptors (SCM_RIGHTS), and gets back the pid of a
fresh process running the program on them (its pid comes back on a pipe). That process is
double-forked, so it is the runner's
child (the runner reaps it, measures it, kills its whole tree) and the fork server stays idle.

Messages (JSON): start {"path": main.py, "compile": bool, "preload": bool}, answered
{"ready": true}; per test {"cwd": dir, "env": {...}} with fds [stdin, stdout, stderr, pid pipe],
not answered: the test process itself writes its pid to the pid pipe before the program starts.

A test process starts as a copy of the fork server: the compiled program, the modules the program
imports that were loaded beforehand (`preload`), nothing else; `__main__` is a fresh module, the
standard streams are rebuilt on the new fds as Python builds them, and exit runs the usual
interpreter shutdown (thread join, atexit, flush). With `compile` false (or when compiling
failed) each test execs a fresh interpreter on main.py instead: exactly the old behaviour,
including how Python reports a source it cannot read.
Standard library only.
"""

import atexit
import builtins
import ctypes
import gc
import io
import json
import os
import signal
import socket
import sys
import types

PR_SET_DUMPABLE = 4
# Loaded beforehand when the program imports them: the declared judge packages (docs/sandbox.md)
# and standard-library modules, except those that act when imported (print, open a browser or a
# terminal), since a test would then not see that happen.
JUDGE_PACKAGES = frozenset({"numpy", "sortedcontainers"})
NO_PRELOAD = frozenset(
    {
        "this",
        "antigravity",
        "__hello__",
        "__phello__",
        "idlelib",
        "tkinter",
        "turtle",
        "turtledemo",
        "readline",
        "rlcompleter",
        "curses",
        "pdb",
        "pydoc",
        "site",
        "webbrowser",
        "__main__",
    }
)
_STD = []  # the fork server's own standard streams, kept alive so no copy ever closes fds 0-2


def imported_modules(tree):
    """Top-level names of every module a program (its parsed ``ast``) imports anywhere. Also used
    on the host, by the code verifier, to name a solution's imports to this server."""
    import ast

    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.partition(".")[0])
    return names


def _preload(source):
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    import ast

    try:
        names = imported_modules(ast.parse(source))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    for name in sorted(names):
        if name in NO_PRELOAD or not (name in stdlib or name in JUDGE_PACKAGES):
            continue
        try:
            __import__(name)
        except BaseException:
            # A half-imported module must not be what the tests see: start over without preload.
            raise SystemExit(3) from None


def _stream(fd, mode, template, line_buffering):
    """A standard stream on `fd`, built the way CPython builds sys.stdin/stdout/stderr."""
    buffer = open(fd, mode + "b", closefd=False)  # noqa: SIM115
    try:
        buffer.raw.name = template.buffer.raw.name
    except (AttributeError, TypeError):
        pass
    stream = io.TextIOWrapper(
        buffer,
        encoding=template.encoding,
        errors=template.errors,
        newline="\n",
        line_buffering=line_buffering,
    )
    try:
        stream.mode = mode
    except AttributeError:
        pass
    return stream


def _rebuild_stdio():
    sys.stdin = sys.__stdin__ = _stream(0, "r", _STD[0], False)
    sys.stdout = sys.__stdout__ = _stream(1, "w", _STD[1], False)
    sys.stderr = sys.__stderr__ = _stream(2, "w", _STD[2], True)


def _exit_status(exc):
    """What Python's own top level makes of an uncaught SystemExit."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


def _finish(status):
    """Interpreter shutdown as Python does it: join threads, atexit, flush; then exit."""
    threading = sys.modules.get("threading")
    if threading is not None:
        try:
            threading._shutdown()
        except BaseException:
            pass
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    try:
        sys.stdout.flush()
    except BaseException:
        try:
            sys.stderr.write("Exception ignored on flushing sys.stdout\n")
        except BaseException:
            pass
        if status == 0:
            status = 120  # what CPython exits with when the final flush fails
    try:
        sys.stderr.flush()
    except BaseException:
        pass
    os._exit(status)


def _run_program(code, path):
    """In the test process: run the compiled program as __main__; never returns."""
    _rebuild_stdio()
    # atexit handlers are kept: only modules loaded ahead registered any, as the program's own
    # imports would have.
    sys.argv[:] = [os.path.basename(path)]
    sys.orig_argv = [sys.orig_argv[0], "-I", sys.argv[0]]
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = builtins
    main.__cached__ = None
    main.__annotations__ = {}  # as `python main.py` has
    try:
        from importlib.machinery import SourceFileLoader

        main.__loader__ = SourceFileLoader("__main__", path)
    except ImportError:
        pass
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    except SystemExit as exc:
        _finish(_exit_status(exc))
    except BaseException as exc:
        # Drop this frame: the traceback starts at the program, as with `python main.py`.
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None
        try:
            sys.excepthook(type(exc), exc.with_traceback(tb), tb)
        except BaseException:
            pass
        if isinstance(exc, KeyboardInterrupt):
            # Python exits "killed by SIGINT" after an uncaught KeyboardInterrupt.
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except BaseException:
                    pass
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        _finish(1)
    _finish(0)


def _test_process(ctl, code, path, request, fds):
    """The test's process, just forked: its fds, its session, its dir; then the program."""
    try:
        # Our pid to the runner first, before any of the program runs: nothing it does (killing
        # the middle process, the fork server) can keep the runner from knowing its test.
        os.write(fds[3], str(os.getpid()).encode())
        ctl.detach()  # its fd is closed below; the object must never close a reused number
        os.setsid()
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        os.closerange(3, 1 << 20)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        try:
            ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # an ordinary process again
        except OSError:
            pass
        if code is None:
            os.execve(sys.executable, [sys.executable, "-I", "main.py"], request["env"])
    except BaseException as exc:
        try:
            os.write(2, f"restem-forkserver: {exc}\n".encode())
        finally:
            os._exit(125)
    _run_program(code, path)


def _spawn(ctl, code, path, request, fds):
    """Double fork: the test process becomes the runner's child once the middle process exits
    (SIGCHLD is ignored here: nobody waits for it). The test process writes its pid to fds[3];
    when anything fails, that pipe just closes empty."""
    if os.fork() == 0:
        # Not ignored here, or the kernel would reap the test process itself when it exits
        # before we do: the runner must find it as a zombie to learn how it ended.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            if os.fork() == 0:
                _test_process(ctl, code, path, request, fds)
        finally:
            os._exit(0)


def main():
    try:
        ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no ptrace, no /proc/<pid>/mem
    except OSError:
        pass
    _STD.extend((sys.stdin, sys.stdout, sys.stderr))
    ctl = socket.socket(fileno=int(sys.argv[1]))
    start = json.loads(ctl.recv(1 << 16))
    path = start["path"]
    code = None
    if start["compile"]:
        with open(path, "rb") as f:
            source = f.read()
        try:
            code = compile(source, path, "exec", dont_inherit=True)
        except BaseException:
            code = None  # each test runs `python main.py` and reports the error itself
        if code is not None and start["preload"]:
            _preload(source)
        del source
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # middle processes reap themselves
    # Objects alive now are never collected in a test process: its garbage collector does not
    # walk (and so copy) the pages they are on.
    gc.freeze()
    ctl.send(b'{"ready": true}')
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(ctl, 1 << 16, 4)
        except OSError:
            return
        if not msg:
            return  # the runner closed the socket
        try:
            if len(fds) == 4:
                _spawn(ctl, code, path, json.loads(msg), fds)
        except Exception:
            pass  # the pid pipe closes empty: the runner sees the failure
        finally:
            for fd in fds:
                os.close(fd)


if __name__ == "__main__":
    main()
