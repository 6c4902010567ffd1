"""One Ray actor supervisor, shared by the verifier executor and the E-step generator.

It starts ``workers`` actors of one class (SPREAD: one per node before two on any node, so a lost
node costs little), sends them calls in order with a bounded number in flight, and yields each
call's result in submission order. When an actor dies (its process killed, its node lost) the
calls it held go to another ready actor and a replacement is started, within a restart budget:
an actor position that dies ``max_attempts`` times in a row without ever getting ready raises.
A call lost ``max_attempts`` times is handed to ``on_lost``, which returns a stand-in result (the
executor's error verdicts) or raises (the generator). An actor position that cannot start within
``start_timeout_s`` is dropped while others run, and raises when none does.

Every actor class must have a ``where()`` method returning a dict (node, host, pid, and an
``error`` string when the actor could not set itself up, which is raised here).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from restem.errors import ExecutorError, RestemError

__all__ = ["ActorSupervisor", "Supervision", "SupervisorStats", "lost_errors"]


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


@dataclass(frozen=True)
class Supervision:
    """How hard a supervisor tries before it gives up.

    max_attempts     tries per call, and deaths in a row per actor position
    start_timeout_s  how long an actor may take to be scheduled and set itself up
    """

    max_attempts: int = 3
    start_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not self.start_timeout_s > 0:
            raise ValueError(f"start_timeout_s must be positive, got {self.start_timeout_s}")


@dataclass
class SupervisorStats:
    """What happened in a supervisor's lifetime (for logs, tests and benchmarks)."""

    chunks: int = 0  # calls submitted (first attempts)
    retried_chunks: int = 0
    lost_workers: int = 0
    failed_chunks: int = 0  # lost max_attempts times; handed to on_lost
    started_workers: int = 0


@dataclass
class _Slot:
    """One actor position; its actor is replaced when it dies."""

    number: int
    actor: Any = None
    ready_ref: Any = None  # the pending `where` call of an actor still starting
    ready: bool = False
    started: float = 0.0
    load: int = 0
    generation: int = 0
    failures: int = 0  # deaths since it last got ready
    info: dict = field(default_factory=dict)


@dataclass
class _Call:
    index: int
    args: tuple
    attempts: int = 0
    slot: _Slot | None = None
    generation: int = 0
    errors: list[str] = field(default_factory=list)


class ActorSupervisor:
    """``workers`` Ray actors of ``actor_class(*args)``, kept alive, running calls in order.

    The actor class names itself: ``role`` (what an actor is, for messages: "verifier worker")
    and ``error`` (the RestemError subclass raised when the work cannot go on). ``resources``
    are each actor's Ray resources (num_cpus, num_gpus); ``supervision`` the restart budget.
    """

    def __init__(
        self,
        actor_class: type,
        args: tuple,
        workers: int,
        supervision: Supervision,
        **resources: float,
    ):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        import ray
        import ray.exceptions

        self._ray = ray
        self._lost = lost_errors()
        self._task_error = ray.exceptions.RayTaskError
        self.name: str = getattr(actor_class, "role", actor_class.__name__)
        self.error: type[RestemError] = getattr(actor_class, "error", ExecutorError)
        self.max_attempts = supervision.max_attempts
        self.start_timeout_s = supervision.start_timeout_s
        self.stats = SupervisorStats()
        self._args = args
        options = {"num_cpus": 0.0, "num_gpus": 0.0, **resources}
        self._actor_class = ray.remote(max_restarts=0, **options)(actor_class)
        self._slots = [_Slot(number) for number in range(workers)]
        for slot in self._slots:
            self._start(slot)

    # ------------------------------------------------------------ actors

    def _start(self, slot: _Slot) -> None:
        slot.actor = self._actor_class.options(scheduling_strategy="SPREAD").remote(*self._args)
        slot.ready_ref = slot.actor.where.remote()
        slot.ready, slot.load, slot.info, slot.started = False, 0, {}, time.monotonic()
        slot.generation += 1
        self.stats.started_workers += 1

    def _kill(self, slot: _Slot) -> None:
        try:
            self._ray.kill(slot.actor, no_restart=True)
        except Exception:  # it is gone already
            pass

    def _replace(self, slot: _Slot, generation: int, why: str) -> None:
        if slot.generation != generation or slot not in self._slots:
            return  # already replaced (or dropped) after an earlier failure of the same actor
        self.stats.lost_workers += 1
        slot.failures += 1
        if slot.failures > self.max_attempts:
            raise self.error(
                f"{self.name} {slot.number} died {slot.failures} times in a row ({why}); "
                "see the Ray logs of its node (out of memory?)"
            )
        self._log(f"{self.name} {slot.number} lost ({why}); starting a replacement")
        self._kill(slot)
        self._start(slot)

    def _settle(self, slot: _Slot) -> None:
        """Record a started actor's whereabouts; raise if it could not set itself up."""
        try:
            info = self._ray.get(slot.ready_ref)
        except self._lost as exc:
            self._replace(slot, slot.generation, type(exc).__name__)
            return
        if info.get("error"):
            raise self.error(f"{self.name} {slot.number}: {info['error']}")
        slot.info, slot.ready, slot.failures = info, True, 0

    def _poll_starting(self, timeout: float) -> None:
        """Settle the actors that finished starting; drop one that cannot start in time while
        others run (its calls were never sent to it: only ready actors get calls)."""
        starting = {s.ready_ref: s for s in self._slots if not s.ready}
        if not starting:
            return
        done, _ = self._ray.wait(list(starting), num_returns=len(starting), timeout=timeout)
        for ref in done:
            self._settle(starting[ref])
        now = time.monotonic()
        for slot in [s for s in self._slots if not s.ready and s.ready_ref not in done]:
            if now - slot.started <= self.start_timeout_s:
                continue
            running = [s for s in self._slots if s.ready]
            if not running:
                raise self.error(
                    f"no {self.name} started within {self.start_timeout_s:.0f} s "
                    f"(free cluster resources: {self._ray.available_resources()})"
                )
            self._log(
                f"{self.name} {slot.number} could not start again; going on with {len(running)}"
            )
            self._slots.remove(slot)
            self._kill(slot)

    def wait_ready(self, timeout: float | None = None, *, require_all: bool = False) -> list[dict]:
        """Wait (up to ``timeout``, default start_timeout_s) until every actor has started; return
        where each ready one runs (slot, node id, host, pid). ``require_all``: raise if one
        has not started by then."""
        deadline = time.monotonic() + (self.start_timeout_s if timeout is None else timeout)
        while not all(s.ready for s in self._slots):
            left = deadline - time.monotonic()
            if left <= 0:
                if require_all:
                    late = [s.number for s in self._slots if not s.ready]
                    raise self.error(
                        f"{self.name}(s) {late} did not start within {self.start_timeout_s:.0f} s; "
                        f"free cluster resources: {self._ray.available_resources()}"
                    )
                break
            self._poll_starting(timeout=min(left, 2.0))
        return [
            {"slot": s.number, **{k: v for k, v in s.info.items() if k != "error"}}
            for s in self._slots
            if s.ready
        ]

    def _pick(self) -> _Slot:
        """The ready actor with the fewest calls in flight, waiting for one if none is."""
        self._poll_starting(timeout=0)
        while True:
            ready = [s for s in self._slots if s.ready]
            if ready:
                return min(ready, key=lambda s: s.load)
            self._poll_starting(timeout=2.0)

    # ------------------------------------------------------------ calls

    def _submit(self, call: _Call, method: str, inflight: dict) -> None:
        slot = self._pick()
        ref = getattr(slot.actor, method).remote(*call.args)
        call.slot, call.generation = slot, slot.generation
        slot.load += 1
        inflight[ref] = call

    def run(
        self,
        method: str,
        calls: Iterable[tuple],
        *,
        window: int | None = None,
        on_lost: Callable[[tuple, str], Any],
    ) -> Iterator[Any]:
        """``actor.method(*args)`` for each ``args`` of ``calls``, at most ``window`` in flight
        (default: two per actor); results yielded in the order of ``calls``, each exactly once."""
        iterator = iter(calls)
        window = window or 2 * len(self._slots)
        inflight: dict = {}
        finished: dict[int, Any] = {}
        next_index = yield_index = 0
        exhausted = False
        try:
            while True:
                while not exhausted and next_index - yield_index < window:
                    args = next(iterator, None)
                    if args is None:
                        exhausted = True
                        break
                    self.stats.chunks += 1
                    self._submit(_Call(next_index, args), method, inflight)
                    next_index += 1
                while yield_index in finished:
                    yield finished.pop(yield_index)
                    yield_index += 1
                if exhausted and yield_index == next_index:
                    return
                if not inflight:
                    continue
                done, _ = self._ray.wait(list(inflight), num_returns=1, timeout=2.0)
                for ref in done:
                    call = inflight.pop(ref)
                    call.slot.load -= 1
                    try:
                        finished[call.index] = self._ray.get(ref)
                    except self._lost as exc:
                        self._retry(call, exc, method, inflight, finished, on_lost)
                    except self._task_error as exc:
                        cause = getattr(exc, "cause", None) or exc
                        raise self.error(
                            f"{self.name} {call.slot.number} failed: {cause}"
                        ) from None
                # A replacement that cannot be scheduled must not hang us.
                self._poll_starting(timeout=0)
        finally:
            for ref in inflight:
                try:
                    self._ray.cancel(ref)
                except Exception:  # best effort; the actor finishes it unseen
                    pass

    def _retry(self, call: _Call, exc, method: str, inflight, finished, on_lost) -> None:
        call.errors.append(f"{type(exc).__name__} on {call.slot.info.get('host', '?')}")
        call.attempts += 1
        self._replace(call.slot, call.generation, type(exc).__name__)
        if call.attempts >= self.max_attempts:
            self.stats.failed_chunks += 1
            reason = f"{self.name} lost {call.attempts} times ({'; '.join(call.errors)})"
            finished[call.index] = on_lost(call.args, reason)
            return
        self.stats.retried_chunks += 1
        self._submit(call, method, inflight)

    def close(self, close_method: str | None = None, timeout: float = 30.0) -> None:
        """Kill the actors (what they hold, GPU memory included, goes with their processes),
        first letting each ready one run ``close_method`` (to close its sandboxes) if given."""
        slots, self._slots = self._slots, []
        if close_method:
            closing = [getattr(s.actor, close_method).remote() for s in slots if s.ready]
            if closing:
                self._ray.wait(closing, num_returns=len(closing), timeout=timeout)
        for slot in slots:
            self._kill(slot)

    def _log(self, message: str) -> None:
        print(f"[restem] ray: {message}", file=sys.stderr, flush=True)
