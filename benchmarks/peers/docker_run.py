"""One ``docker run`` per program: the sandbox a user writes first, and the one restem's warm
container pool replaces. The same image and, as far as ``docker run`` flags go, the same hardening
as restem's pool (no network, read-only root, no capabilities, an unprivileged user, memory and
process caps); each run pays a container start and removal.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

__all__ = ["NAME", "DockerRunSandbox", "argv", "available", "run", "run_batch"]

NAME = "docker-run"


def _image() -> str:
    from restem.sandbox.docker.image import IMAGE

    return IMAGE


def available() -> str | None:
    """None when ``docker run`` of the sandbox image can work here, else why not."""
    if shutil.which("docker") is None:
        return "no docker command on PATH"
    try:
        probe = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Id}}", _image()],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker does not answer ({exc})"
    if probe.returncode != 0:
        return f"image {_image()} missing or engine down: {probe.stderr.strip()[:200]}"
    return None


def argv(program: str, memory_mb: int = 512) -> list[str]:
    return [
        "docker", "run", "--rm", "-i", "--network", "none", "--log-driver", "none",
        "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=64m",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
        "--user", "20000:20000", "--memory", f"{memory_mb + 128}m", "--pids-limit", "40",
        "--cpus", "1", _image(), "python3", "-I", "-c", program,
    ]  # fmt: skip


def run(program: str, stdin: str, wall_s: float = 10.0, memory_mb: int = 512):
    """A `restem.sandbox.RunResult` for one program run in a fresh container."""
    from restem.sandbox import RunResult, Status

    start = time.monotonic()
    try:
        done = subprocess.run(
            argv(program, memory_mb),
            input=stdin.encode("utf-8"),
            capture_output=True,
            timeout=wall_s + 10.0,  # container start-up on top of the program's own limit
            check=False,
        )
    except subprocess.TimeoutExpired:
        # `docker run --rm` was killed; the container may linger a moment before it is removed
        return RunResult(Status.TIMEOUT, None, "", "", time.monotonic() - start, reason="wall")
    except OSError as exc:
        return RunResult.sandbox_error(f"docker run: {exc}", time.monotonic() - start)
    wall = time.monotonic() - start
    out = done.stdout.decode("utf-8", "replace")
    err = done.stderr.decode("utf-8", "replace")
    if done.returncode == 0:
        return RunResult(Status.OK, 0, out, err, wall)
    if done.returncode in (125, 126, 127):  # docker's own failures, not the program's
        return RunResult.sandbox_error(f"docker run exit {done.returncode}: {err[:200]}", wall)
    status = Status.MEMORY if done.returncode == 137 else Status.RUNTIME_ERROR
    return RunResult(status, done.returncode, out, err, wall)


def run_batch(
    jobs: Sequence[tuple[str, str]], workers: int, wall_s: float = 10.0, memory_mb: int = 512
) -> list:
    """Many (program, stdin) jobs, ``workers`` ``docker run`` at a time; results in order."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        return list(ex.map(lambda job: run(job[0], job[1], wall_s, memory_mb), jobs))


def DockerRunSandbox(workers: int = 1):
    """A `restem.sandbox.Sandbox` whose every run is one ``docker run``, so restem's verifier can
    drive it (one run per test)."""
    from restem.sandbox import Limits, Sandbox

    class _DockerRun(Sandbox):
        name = NAME

        def __init__(self) -> None:
            self.workers = max(1, workers)

        def run(self, program, stdin=b"", limits=None, *, setup="", preamble=""):
            limits = limits or Limits()
            text = stdin.decode("utf-8", "surrogateescape") if isinstance(stdin, bytes) else stdin
            # One process per run: the preamble and setup simply run first.
            whole = "\n".join(part for part in (preamble, setup, program) if part)
            return run(whole, text, limits.wall_s, limits.memory_mb)

    return _DockerRun()
