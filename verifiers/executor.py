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
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restem.verifiers.settings import MathSettings
from restem.verifiers.verdict import CodeStatus, CodeVerdict, MathStatus, MathVerdict

from restem.errors import ExecutorError

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


def lost_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors that mean the worker or its node went away (not a bug in the task)."""
    import ray.exceptions as rex

    names = (
        "RayActorError",  # includes ActorDiedError, ActorUnavailableError
        "WorkerCrashedError",
        "NodeDiedError",
        "ObjectLostError",  # includes OwnerDiedError
        "ActorUnschedulableError",
    )
    return tuple(getattr(rex, name) for name in names if hasattr(rex, name))


class VerifierWorker:
    """The Ray actor's body: verifies chunks on its node with its own pools."""

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


@dataclass
class _Slot:
    """One worker position; its actor is replaced when it dies."""

    number: int
    actor: Any = None
    ready_ref: Any = None  # the pending `where` call of an actor still starting
    ready: bool = False
    load: int = 0
    generation: int = 0
    info: dict = field(default_factory=dict)


@dataclass
class _Job:
    index: int
    items: list
    attempts: int = 0
    slot: _Slot | None = None
    generation: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class RayStats:
    """What happened in this executor's lifetime (for logs, tests and benchmarks)."""

    chunks: int = 0
    retried_chunks: int = 0
    lost_workers: int = 0
    failed_chunks: int = 0  # lost max_attempts times; their verdicts say so
    started_workers: int = 0


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
            ("max_attempts", max_attempts),
        ):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not cpus_per_worker > 0:
            raise ValueError(f"cpus_per_worker must be positive, got {cpus_per_worker}")
        connect_ray(address)
        import ray

        self._ray = ray
        self._lost = lost_errors()
        if workers is None:
            cpus = ray.cluster_resources().get("CPU", 1.0)
            workers = max(1, int(cpus // cpus_per_worker))
        self.workers = workers
        self.pool_workers = pool_workers
        self.math_chunk = math_chunk
        self.code_chunk = code_chunk
        self.max_attempts = max_attempts
        self.start_timeout_s = start_timeout_s
        self.stats = RayStats()
        self._actor_class = ray.remote(num_cpus=cpus_per_worker, max_restarts=0)(VerifierWorker)
        self._slots = [_Slot(number) for number in range(workers)]
        for slot in self._slots:
            self._start(slot)

    # ------------------------------------------------------------ workers

    def _start(self, slot: _Slot) -> None:
        # SPREAD: one actor per node before two on any node, so a lost node costs little.
        slot.actor = self._actor_class.options(scheduling_strategy="SPREAD").remote(
            self.pool_workers
        )
        slot.ready_ref = slot.actor.where.remote()
        slot.ready, slot.load = False, 0
        slot.generation += 1
        self.stats.started_workers += 1

    def _replace(self, slot: _Slot, generation: int, why: str) -> None:
        if slot.generation != generation:
            return  # already replaced after an earlier failure of the same actor
        self.stats.lost_workers += 1
        print(
            f"[restem] ray executor: worker {slot.number} lost ({why}); starting a replacement",
            file=sys.stderr,
        )
        try:
            self._ray.kill(slot.actor, no_restart=True)
        except Exception:  # it is gone already; nothing to clean up
            pass
        self._start(slot)

    def _poll_starting(self, timeout: float) -> None:
        starting = {s.ready_ref: s for s in self._slots if not s.ready}
        if not starting:
            return
        done, _ = self._ray.wait(list(starting), num_returns=1, timeout=timeout)
        for ref in done:
            slot = starting[ref]
            try:
                slot.info = self._ray.get(ref)
                slot.ready = True
            except self._lost as exc:
                self._replace(slot, slot.generation, type(exc).__name__)

    def _pick(self) -> _Slot:
        self._poll_starting(timeout=0)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            ready = [s for s in self._slots if s.ready]
            if ready:
                return min(ready, key=lambda s: s.load)
            left = deadline - time.monotonic()
            if left <= 0:
                raise ExecutorError(
                    f"no Ray verifier worker started within {self.start_timeout_s:.0f} s "
                    f"(cluster resources: {self._ray.available_resources()})"
                )
            self._poll_starting(timeout=min(left, 5.0))

    def wait_ready(self, timeout: float | None = None) -> list[dict]:
        """Wait (up to ``timeout``, default start_timeout_s) until every actor has started;
        return where each ready one runs: slot, node id, host, pid."""
        deadline = time.monotonic() + (self.start_timeout_s if timeout is None else timeout)
        while not all(s.ready for s in self._slots):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._poll_starting(timeout=min(left, 5.0))
        return [dict(s.info, slot=s.number) for s in self._slots if s.ready]

    # ------------------------------------------------------------ streaming

    def _submit(self, job: _Job, method: str, args: tuple, inflight: dict) -> None:
        slot = self._pick()
        ref = getattr(slot.actor, method).remote(job.items, *args)
        job.slot, job.generation = slot, slot.generation
        slot.load += 1
        inflight[ref] = job

    def _stream(self, method: str, items: Iterable, chunk: int, args: tuple, lost) -> Iterator:
        iterator = iter(items)
        window = 2 * self.workers  # chunks submitted but not yet yielded
        inflight: dict = {}
        finished: dict[int, list] = {}
        next_index = yield_index = 0
        exhausted = False
        try:
            while True:
                while not exhausted and next_index - yield_index < window:
                    block = list(itertools.islice(iterator, chunk))
                    if not block:
                        exhausted = True
                        break
                    self.stats.chunks += 1
                    self._submit(_Job(next_index, block), method, args, inflight)
                    next_index += 1
                while yield_index in finished:
                    yield from finished.pop(yield_index)
                    yield_index += 1
                if exhausted and yield_index == next_index:
                    return
                if not inflight:
                    continue
                done, _ = self._ray.wait(list(inflight), num_returns=1)
                for ref in done:
                    job = inflight.pop(ref)
                    job.slot.load -= 1
                    try:
                        finished[job.index] = self._ray.get(ref)
                    except self._lost as exc:
                        self._retry(job, exc, method, args, inflight, finished, lost)
        finally:
            for ref in inflight:
                try:
                    self._ray.cancel(ref)
                except Exception:  # best effort; the actor finishes it unseen
                    pass

    def _retry(self, job, exc, method, args, inflight, finished, lost) -> None:
        why = f"{type(exc).__name__} on {job.slot.info.get('host', '?')}"
        job.errors.append(why)
        job.attempts += 1
        self._replace(job.slot, job.generation, type(exc).__name__)
        if job.attempts >= self.max_attempts:
            self.stats.failed_chunks += 1
            reason = f"verifier worker lost {job.attempts} times ({'; '.join(job.errors)})"
            finished[job.index] = [lost(reason) for _ in job.items]
            return
        self.stats.retried_chunks += 1
        self._submit(job, method, args, inflight)

    # ------------------------------------------------------------ the API

    def verify_math(self, pairs, *, settings=_MATH_DEFAULT):
        return self._stream(
            "verify_math",
            _check_pairs(pairs),
            self.math_chunk,
            (settings,),
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
            (options,),
            lambda reason: CodeVerdict(CodeStatus.SANDBOX_ERROR, (), 0, reason),
        )

    def close(self) -> None:
        slots, self._slots = self._slots, []
        # Let each actor close its sandboxes (docker containers) before it is killed.
        closing = [s.actor.close.remote() for s in slots if s.ready]
        if closing:
            self._ray.wait(closing, num_returns=len(closing), timeout=30)
        for slot in slots:
            try:
                self._ray.kill(slot.actor, no_restart=True)
            except Exception:  # already gone
                pass


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
