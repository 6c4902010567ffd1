"""Executors: where a batch of verifications runs.

``LocalExecutor`` (the default) verifies on this machine: the hard-limit process pool for math,
a sandbox pool for code. ``RayExecutor`` spreads the same work over a Ray cluster: one verifier
actor per worker slot, each with its own process pool and its own sandbox pool (Docker on its
node), so nothing untrusted crosses nodes and each node's limits are enforced where the code runs.

Both give the same verdicts, in input order, streamed as they become known. With Ray, items travel
in chunks; a chunk whose actor dies (its process killed, its node lost) is sent to another actor,
and a replacement actor is started. Each verdict is yielded exactly once: a chunk's verdicts come
from the one attempt that finished. A chunk lost ``max_attempts`` times comes back as ``error`` /
``sandbox_error`` verdicts that say so, rather than stalling the batch.

>>> with make_executor("local") as executor:
...     [v.status.value for v in executor.verify_math([("\\\\boxed{2}", "2")])]
['correct']
"""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from restem.verifiers.settings import MathSettings
from restem.verifiers.verdict import CodeStatus, CodeVerdict, MathStatus, MathVerdict

from restem.errors import ExecutorError
from restem.supervisor import ActorSupervisor, Supervision

if TYPE_CHECKING:
    from restem.verifiers.code.judge import Comparison
    from restem.verifiers.code.verify import CodeLimits

__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorError",
    "LocalExecutor",
    "RayExecutor",
    "connect_ray",
    "make_executor",
]

EXECUTORS = ("local", "ray")
_MATH_DEFAULT = MathSettings()


def _check_pairs(pairs: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    # Checked where the caller is, so a caller's bug is a TypeError here, not a remote failure.
    for pair in pairs:
        response, gold = pair
        for value, name in ((response, "response"), (gold, "gold")):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be str, got {type(value).__name__}")
        yield response, gold


def _check_items(items: Iterable[tuple[Any, str]]) -> Iterator[tuple[Any, str]]:
    from restem.verifiers.code.problems import ProblemError, as_problem

    for problem, program in items:
        if not isinstance(program, str):
            raise TypeError(f"program must be str, got {type(program).__name__}")
        try:
            # Resolved here: an APPS folder path exists on this machine, not on a remote node.
            problem = as_problem(problem)
        except ProblemError:
            pass  # judged where it runs, as invalid_problem
        yield problem, program


class Executor:
    """Verifies batches; verdicts come back in input order. Use as a context manager."""

    name = "executor"

    def verify_math(
        self, pairs: Iterable[tuple[str, str]], *, settings: MathSettings = _MATH_DEFAULT
    ) -> Iterator[MathVerdict]:
        raise NotImplementedError

    def verify_code(
        self,
        items: Iterable[tuple[Any, str]],
        *,
        backend: str | None = "local",
        limits: CodeLimits | None = None,
        all_tests: bool = False,
        comparison: Comparison | str = "strict",
    ) -> Iterator[CodeVerdict]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalExecutor(Executor):
    """This machine: ``workers`` pool processes (math) or sandboxes (code); default: CPUs."""

    name = "local"

    def __init__(self, workers: int | None = None):
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._sandboxes: dict[tuple, Any] = {}

    def verify_math(self, pairs, *, settings=_MATH_DEFAULT):
        from restem.verifiers.math.verify import iter_verify_math

        return iter_verify_math(_check_pairs(pairs), workers=self.workers, settings=settings)

    def sandbox(self, backend: str | None = "local", limits: CodeLimits | None = None):
        """The open sandbox that ``verify_code`` uses for (backend, limits), opened on first use
        and kept open across calls (a docker pool costs seconds to start; the harness calls once
        per chunk). Raises what the sandbox raises when it cannot start."""
        from restem.verifiers.code.verify import CodeLimits, open_sandbox

        key = (backend, limits or CodeLimits())
        if key not in self._sandboxes:
            workers = self.workers or os.cpu_count() or 1
            self._sandboxes[key] = open_sandbox(backend, workers, key[1])
        return self._sandboxes[key]

    def verify_code(
        self, items, *, backend="local", limits=None, all_tests=False, comparison="strict"
    ):
        from restem.verifiers.code.verify import CodeLimits, iter_verify_code

        limits = limits or CodeLimits()
        sandbox = self.sandbox(backend, limits)
        return iter_verify_code(
            list(_check_items(items)),
            backend=sandbox,
            workers=self.workers or sandbox.workers,
            limits=limits,
            all_tests=all_tests,
            comparison=comparison,
        )

    def close(self) -> None:
        sandboxes, self._sandboxes = list(self._sandboxes.values()), {}
        for sandbox in sandboxes:
            sandbox.close()


# ---------------------------------------------------------------- Ray


def connect_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` ("auto": the one this node belongs to), or start a
    Ray instance on this machine when ``address`` is None. A no-op when already connected."""
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "the ray executor needs Ray: pip install 'restem[ray]' (on every node)"
        ) from None
    if ray.is_initialized():
        return
    _check_reachable(address)
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
    if address is None:
        # "local", not None: None would join whatever instance this machine last started.
        address = "local"
        options["num_cpus"] = num_cpus
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "a local instance" if address == "local" else address
        raise ExecutorError(f"cannot connect to Ray at {where}: {exc}") from None


def _check_reachable(address: str | None) -> None:
    """Fail fast on a host:port nobody listens on; ray.init would retry it for minutes."""
    if address in (None, "auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdecimal():
        raise ExecutorError(f"Ray address must be auto, host:port or ray://host:port: {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise ExecutorError(
            f"cannot connect to Ray at {address}: {exc.strerror or exc} "
            "(is `ray start --head` running there, and the port open?)"
        ) from None


class VerifierWorker:
    """The Ray actor's body: verifies chunks on its node with its own pools."""

    role = "verifier worker"
    error = ExecutorError

    def __init__(self, pool_workers: int):
        self.pool_workers = pool_workers
        self._local = LocalExecutor(pool_workers)

    def where(self) -> dict:
        import ray

        return {
            "node": ray.get_runtime_context().get_node_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def verify_math(self, pairs: list, settings: MathSettings) -> list[MathVerdict]:
        return list(self._local.verify_math(pairs, settings=settings))

    def verify_code(self, items: list, options: dict) -> list[CodeVerdict]:
        return list(self._local.verify_code(items, **options))

    def close(self) -> bool:
        self._local.close()
        return True


class RayExecutor(Executor):
    """Verifier actors on a Ray cluster.

    address       None: start Ray on this machine; "auto": the cluster this node joined;
                  "host:port" or "ray://host:10001": that cluster
    workers       actors; default: the cluster's CPUs / cpus_per_worker
    pool_workers  processes (math) or sandboxes (code) per actor
    math_chunk, code_chunk  items per remote call (bigger: less overhead; smaller: finer
                  load balance and less work redone when a node is lost)
    max_attempts  tries per chunk before its verdicts become errors
    start_timeout_s  how long to wait for any actor to start before giving up
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        cpus_per_worker: float = 1.0,
        pool_workers: int = 1,
        math_chunk: int = 64,
        code_chunk: int = 2,
        max_attempts: int = 3,
        start_timeout_s: float = 300.0,
    ):
        for name, value in (
            ("workers", workers),
            ("pool_workers", pool_workers),
            ("math_chunk", math_chunk),
            ("code_chunk", code_chunk),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not cpus_per_worker > 0:
            raise ValueError(f"cpus_per_worker must be positive, got {cpus_per_worker}")
        supervision = Supervision(max_attempts, start_timeout_s)  # checked before Ray starts
        connect_ray(address)
        import ray

        if workers is None:
            cpus = ray.cluster_resources().get("CPU", 1.0)
            workers = max(1, int(cpus // cpus_per_worker))
        self.workers = workers
        self.pool_workers = pool_workers
        self.math_chunk = math_chunk
        self.code_chunk = code_chunk
        self._actors = ActorSupervisor(
            VerifierWorker, (pool_workers,), workers, supervision, num_cpus=cpus_per_worker
        )
        self.stats = self._actors.stats

    def wait_ready(self, timeout: float | None = None) -> list[dict]:
        """Wait (up to ``timeout``, default start_timeout_s) until every actor has started;
        return where each ready one runs: slot, node id, host, pid."""
        return self._actors.wait_ready(timeout)

    def _stream(self, method: str, items: Iterable, chunk: int, options, lost) -> Iterator:
        blocks = iter(lambda: list(itertools.islice(items, chunk)), [])
        calls = ((block, options) for block in blocks)
        on_lost = lambda args, reason: [lost(reason) for _ in args[0]]  # noqa: E731
        for verdicts in self._actors.run(method, calls, on_lost=on_lost):
            yield from verdicts

    # ------------------------------------------------------------ the API

    def verify_math(self, pairs, *, settings=_MATH_DEFAULT):
        return self._stream(
            "verify_math",
            _check_pairs(pairs),
            self.math_chunk,
            settings,
            lambda reason: MathVerdict(MathStatus.ERROR, None, reason),
        )

    def verify_code(
        self, items, *, backend="local", limits=None, all_tests=False, comparison="strict"
    ):
        options = {
            "backend": backend,
            "limits": limits,
            "all_tests": all_tests,
            "comparison": comparison,
        }
        return self._stream(
            "verify_code",
            _check_items(items),
            self.code_chunk,
            options,
            lambda reason: CodeVerdict(CodeStatus.SANDBOX_ERROR, (), 0, reason),
        )

    def close(self) -> None:
        # Each actor closes its sandboxes (docker containers) before it is killed.
        self._actors.close("close")


def make_executor(
    name: str = "local",
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    **ray_options: Any,
) -> Executor:
    """``local`` (``workers`` processes here) or ``ray`` (``workers`` actors on the cluster)."""
    if name == "local":
        return LocalExecutor(workers)
    if name == "ray":
        return RayExecutor(ray_address, workers=workers, **ray_options)
    raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
