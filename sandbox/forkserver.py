"""The fork server: one per program. Compiles the program once, then forks one process per test.

Started by the runner (`runner.py`, pid 1 of the sandbox) as `python -I -c SOURCE FD`, already
under the program's uid and rlimits, non-dumpable; FD is a SOCK_SEQPACKET control socket. The
runner starts it *before* its program is known (a warm interpreter, started once the previous
program is wiped out, so it has never run anything but this file and `WARM_MODULES`), and it
waits for its start message. It never sees a test's input or output: for each test the runner
sends the test's stdin file and the write ends of its stdout/stderr pipes as file descriptors
(SCM_RIGHTS), and gets back the pid of a fresh process running the program on them (its pid
comes back on a pipe). That process is the runner's child (cloned with CLONE_PARENT, else
double-forked): the runner reaps it, measures it, kills its whole tree, and the fork server
stays idle. The template makes each fork server the same way.

Messages (marshal-ed dicts): start {"path": main.py, "setup": setup.py or null, "compile": bool,
"preload": bool}, answered b"ready"; per test {"cwd": dir, "env": {...}} with fds [stdin,
stdout, stderr, pid pipe], not answered: the test process itself writes its pid to the pid pipe
before the program starts. A start with "solo": true (and "cwd", "env", fds [stdin, stdout,
stderr]) is a program with one test: this process runs it itself, as the runner's own child, and
nothing is forked.

The setup (optional) is Python source run once here, in the `__main__` namespace the tests then
start from, with no stdin and its output discarded: what every test would do first (define a
solution) is done once. If it raises, or the program does not compile, each test execs a fresh
interpreter instead (setup, then the program), as `python main.py` would run it.

A test process starts as a copy of the fork server: the compiled program, the modules loaded
beforehand, the setup's namespace, nothing else; `__main__` is a module of its own, the standard
streams are rebuilt on the new fds as Python builds them, and exit runs the usual interpreter
shutdown (thread join, atexit, flush).
Standard library only.
"""

# Only modules that load fast: this interpreter starts while a program waits for it (json,
# socket and ctypes would add ~5 ms; their C halves do the same here).
import _socket
import array
import atexit
import builtins
import gc
import io
import marshal
import os
import signal
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
# Loaded while the interpreter waits for its program (off the clock): standard modules judge
# programs commonly import, none of which acts when imported. A program still imports what it
# uses; it just finds these loaded.
WARM_MODULES = (
    "bisect",
    "collections",
    "copy",
    "functools",
    "heapq",
    "itertools",
    "json",
    "math",
    "operator",
    "re",
    "string",
    "typing",
)
_STD = []  # the fork server's own standard streams, kept alive so no copy ever closes fds 0-2


_PRCTL = []  # libc's prctl, looked up once here: a test process only calls it


def _prctl_dumpable(value):
    try:
        import _ctypes

        if not _PRCTL:
            _PRCTL.append(_ctypes.dlsym(_ctypes.dlopen(None, 0), "prctl"))
        _ctypes.call_function(_PRCTL[0], (PR_SET_DUMPABLE, value, 0, 0, 0))
    except (ImportError, AttributeError, OSError):
        import ctypes

        try:
            ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, value, 0, 0, 0)
        except OSError:
            pass


def _receive(ctl, flags=0):
    """(message, fds) from the runner: a marshal-ed dict (runner and server are one Python)."""
    fds = array.array("i")
    msg, ancdata, _, _ = ctl.recvmsg(1 << 16, _socket.CMSG_LEN(4 * fds.itemsize), flags)
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return (marshal.loads(msg) if msg else None), list(fds)


def _requests(ctl):
    """The runner's requests, (message, fds), until it closes the socket; the fds of each are
    closed once it is handled (a forked child has its own copies)."""
    while True:
        try:
            request, fds = _receive(ctl)
        except (OSError, ValueError, EOFError, TypeError):
            return
        if request is None:
            return
        try:
            yield request, fds
        finally:
            for fd in fds:
                os.close(fd)


def _warm_up(ctl):
    """Load WARM_MODULES while no program is waiting: stop at the first sign of one."""
    for name in WARM_MODULES:
        try:
            ctl.recvmsg(1, 0, _socket.MSG_PEEK | _socket.MSG_DONTWAIT)
            return  # a message (or EOF) is waiting
        except BlockingIOError:
            pass
        except OSError:
            return
        try:
            __import__(name)
        except ImportError:
            pass


def code_imports(code):
    """Top-level names of the modules a compiled program imports anywhere (IMPORT_NAME in its
    code objects). Also used on the host, by the code verifier, to name a solution's imports to
    this server."""
    import opcode

    import_name, extended = opcode.opmap["IMPORT_NAME"], opcode.opmap["EXTENDED_ARG"]
    names, todo = set(), [code]
    while todo:
        co = todo.pop()
        todo.extend(c for c in co.co_consts if isinstance(c, types.CodeType))
        raw, arg = co.co_code, 0
        for i in range(0, len(raw) - 1, 2):
            op, arg = raw[i], (arg << 8) | raw[i + 1]
            if op == import_name and arg < len(co.co_names):
                names.add(co.co_names[arg].partition(".")[0])
            if op != extended:
                arg = 0
    names.discard("")
    return names


def _preload(*codes):
    stdlib = getattr(sys, "stdlib_module_names", frozenset())
    names = set()
    for code in codes:
        if code is not None:
            names |= code_imports(code)
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
    if _READY:
        # Built ahead (`_streams_ahead`), never used here: each test installs its own copy.
        sys.stdin, sys.stdout, sys.stderr = _READY
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = _READY
        return
    sys.stdin = sys.__stdin__ = _stream(0, "r", _STD[0], False)
    sys.stdout = sys.__stdout__ = _stream(1, "w", _STD[1], False)
    sys.stderr = sys.__stderr__ = _stream(2, "w", _STD[2], True)


_READY = ()  # a test's standard streams, built ahead by the fork server (`_streams_ahead`)


def _streams_ahead():
    """Build the tests' standard streams once, here: a test's process then only installs its
    copy (building three took ~0.2 ms of its CPU, mostly copy-on-write faults). They are built
    on fds 0-2 turned, for the moment, into the kinds of file a test gets (stdin a regular
    file, stdout and stderr pipes), so that all a stream learns of its file when it is made
    (seekable, position, block size, tty) is what it would learn in the test."""
    global _READY
    saved, made = [], []
    try:
        saved = [os.dup(fd) for fd in (0, 1, 2)]
        made.append(os.memfd_create("stdin", os.MFD_CLOEXEC))
        made.extend(os.pipe())
        for target, fd in zip((0, 1, 2), (made[0], made[2], made[2])):
            os.dup2(fd, target)
        _READY = (
            _stream(0, "r", _STD[0], False),
            _stream(1, "w", _STD[1], False),
            _stream(2, "w", _STD[2], True),
        )
    except (AttributeError, OSError, ValueError):
        _READY = ()  # each test builds its own, as before
    finally:
        for target, fd in zip((0, 1, 2), saved):
            os.dup2(fd, target)
        for fd in saved + made:
            os.close(fd)


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


def _main_module(path, main=None):
    """A `__main__` module as `python main.py` has it: fresh, or `main` (a preamble's)."""
    main = main or types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = builtins
    main.__cached__ = None
    main.__annotations__ = {}
    try:
        from importlib.machinery import SourceFileLoader

        main.__loader__ = SourceFileLoader("__main__", path)
    except ImportError:
        pass
    return main


def _run_program(code, path, main):
    """In the test process: run the compiled program as __main__; never returns."""
    _rebuild_stdio()
    # atexit handlers are kept: only modules loaded ahead registered any, as the program's own
    # imports would have.
    sys.argv[:] = [os.path.basename(path)]
    sys.orig_argv = [sys.orig_argv[0], "-I", sys.argv[0]]
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


# What a test execs when nothing was compiled ahead and there is a setup: setup.py, then
# main.py, in one `__main__` namespace.
_SETUP_THEN_MAIN = (
    "__import__('sys').argv[:] = ['main.py']\n"
    "for __restem_file in ('preamble.py', 'setup.py', 'main.py'):\n"
    "    if __import__('os').path.exists(__restem_file):\n"
    "        exec(compile(open(__restem_file, 'rb').read(), __restem_file, 'exec'))\n"
)


def _exec_fresh(env, setup):
    argv = [sys.executable, "-I", "main.py"]
    if setup:
        argv = [sys.executable, "-I", "-c", _SETUP_THEN_MAIN]
    os.execve(sys.executable, argv, env)


def _become_test(fds, request):
    """This process becomes the test: its fds, its dir, its environment, dumpable again."""
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    os.closerange(3, 1 << 20)
    os.chdir(request["cwd"])
    if request["env"] != _ENV:  # set once by the fork server as a rule (~0.4 ms a test)
        _set_env(request["env"])
    _prctl_dumpable(1)  # an ordinary process again


_ENV = {}  # the environment this process set (`_set_env`)


def _set_env(env):
    os.environ.clear()
    os.environ.update(env)
    _ENV.clear()
    _ENV.update(env)


def _test_process(ctl, code, path, main, request, fds, setup):
    """The test's process, just forked: its fds, its session, its dir; then the program."""
    try:
        # Our pid to the runner first, before any of the program runs: nothing it does (killing
        # the middle process, the fork server) can keep the runner from knowing its test.
        os.write(fds[3], str(os.getpid()).encode())
        ctl.detach()  # its fd is closed below; the object must never close a reused number
        os.setsid()
        _become_test(fds, request)
        if code is None:
            _exec_fresh(request["env"], setup)
    except BaseException as exc:
        try:
            os.write(2, f"restem-forkserver: {exc}\n".encode())
        finally:
            os._exit(125)
    _run_program(code, path, main)


def _spawn(ctl, code, path, main, request, fds, setup):
    """A test process, the runner's child. It writes its pid to fds[3]; when anything fails,
    that pipe just closes empty."""
    _runner_child(_test_process, ctl, code, path, main, request, fds, setup)


def _runner_child(body, *args):
    """Run `body(*args)` (it never returns) in a new process that is the runner's child: cloned with
    CLONE_PARENT where we can (one copy of this process), else double-forked (it becomes the
    runner's child once the middle process exits; SIGCHLD is ignored here, nobody waits for
    the middle)."""
    pid = _clone_parent()
    if pid == 0:
        try:
            _after_clone()
            body(*args)
        finally:
            os._exit(125)  # never back into our loop, whatever happened
    if pid > 0:
        return
    if os.fork() == 0:
        # Not ignored here, or the kernel would reap the new process itself when it exits
        # before the runner does: the runner must find it as a zombie to learn how it ended.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            if os.fork() == 0:
                body(*args)
        finally:
            os._exit(0)


# clone(2) with CLONE_PARENT | SIGCHLD and no new stack behaves as fork(2), except that the
# child's parent is ours. Syscall numbers of the architectures we know; elsewhere, double fork.
_SYS_CLONE = {"x86_64": 56, "aarch64": 220}.get(os.uname().machine)
_CLONE_FLAGS = 0x00008000 | signal.SIGCHLD
_CLONE = []


def _clone_parent():
    """The child's pid (0 in the child), or -1 when clone is not available here."""
    if _SYS_CLONE is None or _CLONE == [None]:
        return -1
    try:
        if not _CLONE:
            import _ctypes

            _CLONE.append(_ctypes.dlsym(_ctypes.dlopen(None, 0), "syscall"))
        import _ctypes

        pid = _ctypes.call_function(_CLONE[0], (_SYS_CLONE, _CLONE_FLAGS, 0, 0, 0, 0))
    except (ImportError, AttributeError, OSError):
        _CLONE[:] = [None]
        return -1
    if pid < 0:
        _CLONE[:] = [None]  # refused here (a seccomp profile, say): double fork from now on
    return pid


def _after_clone():
    """What os.fork's child hooks do that matters to a program: a random module loaded ahead
    gets a fresh seed, as in a new interpreter. And SIGCHLD is ours to ignore, not the
    program's: it waits for its own children."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    random = sys.modules.get("random")
    if random is not None:
        try:
            random.seed()
        except Exception:
            pass


def _compile(path):
    """The code object of a file, None when it does not compile."""
    with open(path, "rb") as f:
        source = f.read()
    try:
        return compile(source, path, "exec", dont_inherit=True)
    except BaseException:
        return None  # each test runs `python main.py` and reports the error itself


def _run_setups(codes, main):
    """Run the preamble and setup code objects (None: did not compile) as `__main__`; did
    they all finish without raising?"""
    ours = sys.modules["__main__"]
    sys.modules["__main__"] = main
    try:
        for code in codes:
            if code is None:
                return False
            exec(code, main.__dict__)
        return True
    except BaseException:
        return False
    finally:
        sys.modules["__main__"] = ours


def _solo(ctl, start, fds, code, setup_codes, main):
    """The program's only test, run by this very process; never returns. The setup runs first,
    before the test's fds are in place, as it would in a fork server."""
    if code is not None and not _run_setups(setup_codes, main):
        code = None
    for stream in (sys.stdout, sys.stderr):  # what the setup printed goes where ours goes
        try:
            stream.flush()
        except BaseException:
            pass
    try:
        ctl.detach()
        _become_test(fds, start)
        if code is None:
            _exec_fresh(start["env"], start.get("setup") or start.get("preamble"))
    except BaseException as exc:
        try:
            os.write(2, f"restem-forkserver: {exc}\n".encode())
        finally:
            os._exit(125)
    _run_program(code, start["path"], main)


_PREAMBLES = {}  # preamble text -> the `__main__` module it ran in (here, in the template)


def _preamble(text):
    """A module the preamble (trusted code of the host's: never a program's) ran in, made once
    for all the programs that share it; None when there is none or it fails."""
    if not text:
        return None
    if text not in _PREAMBLES:
        if len(_PREAMBLES) >= 4:
            _PREAMBLES.clear()
        module = types.ModuleType("__main__")
        module.__builtins__ = builtins
        ours = sys.modules["__main__"]
        sys.modules["__main__"] = module
        try:
            exec(compile(text, "preamble.py", "exec", dont_inherit=True), module.__dict__)
            # A preamble may name code of its own that every test runs (trusted, like the
            # preamble): run here once, where the interpreter specialises it, each test's
            # process finds it so and copies fewer pages.
            warm = module.__dict__.get("_restem_warm")
            if callable(warm):
                try:
                    warm()
                except Exception:
                    pass  # only a speed-up: the preamble itself ran
        except BaseException:
            module = None
        finally:
            sys.modules["__main__"] = ours
        _PREAMBLES[text] = module
        gc.freeze()
    return _PREAMBLES[text]


def _template(ctl):
    """Long-lived: never runs a program, forks a fresh fork server for each. Request:
    {"rlimits": {...}, "preamble": text or None} with fds [the new server's control socket,
    a pid pipe]."""
    # The fork servers find these loaded, at no cost (resource: for their rlimits; opcode: to
    # read a program's imports, ~0.4 ms a program otherwise). Nothing more: every page here is
    # copied into each test's page tables and torn down at its exit.
    for name in (*WARM_MODULES, "resource", "_ctypes", "opcode"):
        try:
            __import__(name)
        except ImportError:
            pass
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # middle processes reap themselves
    gc.freeze()
    ctl.send(b"ready")
    for request, fds in _requests(ctl):
        try:
            premade = _preamble(request.get("preamble"))
            if len(fds) == 2:
                _runner_child(_new_fork_server, ctl, request, fds, premade)
        except Exception:
            pass  # the pid pipe closes empty: the runner sees the failure


def _new_fork_server(ctl, request, fds, premade):
    """In a process the template made: become a fork server with the request's rlimits, on the
    control socket fds[0]; our pid goes to the runner on fds[1]. Never returns."""
    import resource

    try:
        os.write(fds[1], str(os.getpid()).encode())
        os.close(fds[1])
        ctl.close()
        os.setsid()
        for name, value in request["rlimits"].items():
            resource.setrlimit(getattr(resource, "RLIMIT_" + name), tuple(value))
        server = _socket.socket(fileno=fds[0])
    except BaseException:
        os._exit(125)
    _fork_server(server, premade)
    os._exit(0)


def main():
    _prctl_dumpable(0)  # no ptrace, no /proc/<pid>/mem
    _STD.extend((sys.stdin, sys.stdout, sys.stderr))
    ctl = _socket.socket(fileno=int(sys.argv[1]))
    if sys.argv[2:] == ["template"]:
        _template(ctl)
        return
    _warm_up(ctl)
    _fork_server(ctl)


def _fork_server(ctl, premade=None):
    """One program: its start message, then a test process per request. `premade`: a
    `__main__` module the template already ran this program's preamble in."""
    try:
        start, fds = _receive(ctl)
    except (OSError, ValueError, EOFError, TypeError):
        return
    if start is None:
        return  # the runner closed the socket: never used
    path, setup = start["path"], start.get("setup")
    if "env" in start:  # before the setup runs: it sees the tests' environment
        _set_env(start["env"])
    # Files to run before the program, as code objects (None: does not compile).
    preamble = start.get("preamble") if premade is None else None
    code, setups = None, []
    main = _main_module(path, premade)
    if start["compile"]:
        code = _compile(path)
        setups = [_compile(f) for f in (preamble, setup) if f]
        if start.get("solo"):
            _solo(ctl, start, fds, code, setups, main)
        if code is not None and start["preload"]:
            _preload(code, *setups)
    elif start.get("solo"):
        _solo(ctl, start, fds, None, [], main)
    # Output of the setup goes nowhere (the fork server's fds are /dev/null).
    if code is not None and not _run_setups(setups, main):
        code = None
    if code is None:
        main = None
    setup = setup or start.get("preamble")  # what a fresh interpreter must run first
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # middle processes reap themselves
    if code is not None:
        _streams_ahead()
    # Objects alive now are never collected in a test process: its garbage collector does not
    # walk (and so copy) the pages they are on.
    gc.freeze()
    ctl.send(b"ready")
    for request, fds in _requests(ctl):
        try:
            if len(fds) == 4:
                _spawn(ctl, code, path, main, request, fds, setup)
        except Exception:
            pass  # the pid pipe closes empty: the runner sees the failure


if __name__ == "__main__":
    main()
