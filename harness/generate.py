"""Generation backends behind one call: ``generate(prompts, n=..., temperature=...)``.

``transformers`` (CPU or GPU, batched, left-padded) is the default; ``vllm`` is used when installed
and asked for, so the same config scales up to GPU nodes. ``RayGenerator`` fans either out over
Ray actors, one model each (``sample.executor: ray``).
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from restem.errors import GenerationError

__all__ = [
    "GenerationError",
    "Generator",
    "RayGenerator",
    "TransformersGenerator",
    "VLLMGenerator",
    "make_generator",
    "resolve_device",
]


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _cut_at_stops(text: str, stops: tuple[str, ...]) -> str:
    cut = len(text)
    for stop in stops:
        index = text.find(stop)
        if index != -1:
            cut = min(cut, index)
    return text[:cut]


@dataclass
class Generator:
    batch_size: int
    max_new_tokens: int
    stop: tuple[str, ...] = ()
    workers: ClassVar[int] = 1  # models generating at once; the loop hands each a full batch

    def generate(
        self,
        prompts: list[str],
        *,
        n: int = 1,
        temperature: float | None = None,  # None: greedy
        top_k: int = 0,
        top_p: float = 1.0,
        seed: int = 0,
    ) -> list[list[str]]:
        """``n`` completions per prompt (prompt text excluded), in prompt order."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the generator holds (a no-op unless it holds remote workers)."""


class TransformersGenerator(Generator):
    def __init__(self, model, tokenizer, *, batch_size: int, max_new_tokens: int, stop=()):
        super().__init__(batch_size, max_new_tokens, tuple(stop))
        self.model = model
        self.tokenizer = tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        tokenizer.truncation_side = "left"  # keep the end of a long prompt, where the model goes on
        self._warned = False

    def _prompt_room(self) -> int | None:
        """How many prompt tokens fit beside max_new_tokens in the model's context, if bounded."""
        config = self.model.config
        context = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        if not context:
            return None
        room = context - self.max_new_tokens
        if room < 1:
            raise ValueError(
                f"sample.max_new_tokens ({self.max_new_tokens}) leaves no room for the prompt "
                f"in the model's context of {context} tokens"
            )
        return room

    def generate(self, prompts, *, n=1, temperature=None, top_k=0, top_p=1.0, seed=0):
        import torch

        expanded = [p for p in prompts for _ in range(n)]
        outputs: list[str] = []
        device = next(self.model.parameters()).device
        self.model.eval()
        room = self._prompt_room()
        for start in range(0, len(expanded), self.batch_size):
            chunk = expanded[start : start + self.batch_size]
            encoded = self.tokenizer(
                chunk,
                return_tensors="pt",
                padding=True,
                truncation=room is not None,
                max_length=room,
            ).to(device)
            if room is not None and not self._warned and encoded["input_ids"].shape[1] >= room:
                self._warned = True
                print(
                    f"[restem] warning: prompts longer than the model's context allows with "
                    f"max_new_tokens={self.max_new_tokens} are cut to their last {room} tokens",
                    file=sys.stderr,
                )
            kwargs = {
                "max_new_tokens": self.max_new_tokens,
                "pad_token_id": self.tokenizer.pad_token_id,
            }
            if temperature is None:
                kwargs["do_sample"] = False
            else:
                kwargs.update(do_sample=True, temperature=temperature, top_k=top_k, top_p=top_p)
            torch.manual_seed(seed * 1_000_003 + start)
            with torch.no_grad():
                tokens = self.model.generate(**encoded, **kwargs)
            new_tokens = tokens[:, encoded["input_ids"].shape[1] :]
            texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            outputs.extend(_cut_at_stops(t, self.stop) for t in texts)
        return [outputs[i * n : (i + 1) * n] for i in range(len(prompts))]


class VLLMGenerator(Generator):
    """vLLM engine (GPU). Loaded from a checkpoint folder, so each iteration makes a new engine."""

    def __init__(
        self, model_path: str, *, batch_size: int, max_new_tokens: int, stop=(), dtype="auto"
    ):
        super().__init__(batch_size, max_new_tokens, tuple(stop))
        from vllm import LLM

        self.llm = LLM(model=model_path, dtype=dtype)

    def generate(self, prompts, *, n=1, temperature=None, top_k=0, top_p=1.0, seed=0):
        from vllm import SamplingParams

        params = SamplingParams(
            n=n,
            temperature=0.0 if temperature is None else temperature,
            top_k=top_k if top_k > 0 else -1,
            top_p=top_p,
            max_tokens=self.max_new_tokens,
            stop=list(self.stop) or None,
            seed=seed,
        )
        results = self.llm.generate(prompts, params, use_tqdm=False)
        return [[o.text for o in r.outputs] for r in results]


def make_generator(backend: str, model, tokenizer, model_path: str, sample_config) -> Generator:
    if backend == "vllm":
        try:
            return VLLMGenerator(
                model_path,
                batch_size=sample_config.batch_size,
                max_new_tokens=sample_config.max_new_tokens,
                stop=sample_config.stop,
            )
        except ImportError:
            raise GenerationError(
                "sample.backend is vllm, but vllm is not installed (pip install vllm, on a GPU machine)"
            ) from None
    return TransformersGenerator(
        model,
        tokenizer,
        batch_size=sample_config.batch_size,
        max_new_tokens=sample_config.max_new_tokens,
        stop=sample_config.stop,
    )


# ---------------------------------------------------------------- Ray: the E-step fanned out


def shard_seed(seed: int, start: int) -> int:
    """The seed of the shard that starts at prompt ``start`` of a call made with ``seed``.

    A pure function of the two, so a rerun (or a retried shard) draws the same samples; the first
    shard keeps ``seed`` itself, so one worker samples exactly what a local generator would.
    """
    if start == 0:
        return seed
    digest = hashlib.blake2b(f"{seed}:{start}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def shard_bounds(total: int, parts: int) -> list[tuple[int, int]]:
    """``total`` items in at most ``parts`` contiguous, non-empty (start, end) shards whose sizes
    differ by at most one."""
    parts = max(1, min(parts, total))
    size, extra = divmod(total, parts)
    bounds, start = [], 0
    for index in range(parts):
        end = start + size + (index < extra)
        bounds.append((start, end))
        start = end
    return [(a, b) for a, b in bounds if b > a]


_SHARED_STORAGE = (
    "every Ray node must read the model at the same path: for a multi-node run, runs_dir (and a "
    "local model.path) must be on shared storage that all nodes mount at the same path (NFS, a "
    "cluster filesystem)"
)


class GeneratorWorker:
    """The Ray actor's body: one model, loaded on the actor's node, generating shards.

    A model that cannot be loaded does not kill the actor: the error is kept and reported by
    ``where`` (and by ``generate``), so the driver can say what went wrong instead of retrying.
    """

    def __init__(self, model_path: str, tokenizer, sample_config, options: dict):
        self.error: str | None = None
        self.generator: Generator | None = None
        try:
            self.generator = self._load(model_path, tokenizer, sample_config, options)
        except Exception as exc:  # reported to the driver, which raises it
            self.error = self._explain(model_path, sample_config.backend, exc)

    @staticmethod
    def _load(model_path, tokenizer, sample_config, options) -> Generator:
        if os.path.isabs(model_path) and not os.path.exists(model_path):
            raise FileNotFoundError(f"{model_path} does not exist on this node")
        device = options["device"]
        if device == "cpu" and options.get("threads"):
            import torch

            torch.set_num_threads(int(options["threads"]))
        if sample_config.backend == "vllm":
            try:
                import vllm  # noqa: F401 - the error below is clearer than vllm's own
            except ImportError:
                raise GenerationError(
                    "sample.backend is vllm, but vllm is not installed on this node "
                    "(pip install vllm on every GPU node)"
                ) from None
            return make_generator("vllm", None, None, model_path, sample_config)
        from restem.harness.train import load_model

        model = load_model(model_path, options["dtype"], device)
        return make_generator("transformers", model, tokenizer, model_path, sample_config)

    @staticmethod
    def _explain(model_path: str, backend: str, exc: Exception) -> str:
        text = f"{type(exc).__name__}: {exc}".strip()
        if isinstance(exc, OSError) or "does not appear to have" in text:
            text += f"\n({_SHARED_STORAGE})"
        return f"cannot load the model {model_path} ({backend}) on {socket.gethostname()}: {text}"

    def where(self) -> dict:
        import ray

        return {
            "node": ray.get_runtime_context().get_node_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "error": self.error,
        }

    def generate(self, prompts: list[str], kwargs: dict) -> list[list[str]]:
        if self.generator is None:
            raise GenerationError(self.error or "the generator worker has no model")
        return self.generator.generate(prompts, **kwargs)


@dataclass
class _Worker:
    """One worker position; its actor is replaced when it dies."""

    number: int
    actor: Any = None
    ready_ref: Any = None  # the pending `where` call of an actor still starting
    ready: bool = False
    started: float = 0.0
    generation: int = 0
    failures: int = 0  # deaths since it last started
    info: dict = field(default_factory=dict)


@dataclass
class _Shard:
    start: int
    prompts: list[str]
    seed: int
    attempts: int = 0
    worker: _Worker | None = None
    generation: int = 0
    kwargs: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class RayGenStats:
    """What happened in this generator's lifetime (for logs and tests)."""

    calls: int = 0
    shards: int = 0
    retried_shards: int = 0
    lost_workers: int = 0
    started_workers: int = 0


class RayGenerator(Generator):
    """The E-step on Ray: ``workers`` actors, each with its own copy of the model.

    model_path   the checkpoint; a path that exists here is made absolute, and every node must
                 read it at that path (shared storage for multi-node runs)
    tokenizer    the loop's tokenizer object, shipped to the actors once (transformers backend;
                 vLLM reads the checkpoint's own, as it does locally)
    workers      actors; default: one per ``gpus`` GPUs of the cluster, else 1
    gpus         GPUs per actor; default: 1 when the cluster has GPUs, else 0 (CPU). Actors
                 reserve no CPUs: the E-step and verification alternate, and verifier actors
                 hold the CPUs for the whole run.
    max_attempts  tries per shard (a shard whose actor dies goes to its replacement)
    start_timeout_s  how long an actor may take to be scheduled and load its model

    ``generate`` splits the prompts into contiguous shards, one per actor, runs them at once and
    returns the completions in prompt order. Shard seeds come from (seed, shard start), see
    ``shard_seed``: the same call with the same number of workers samples the same completions.
    """

    def __init__(
        self,
        model_path: str,
        tokenizer,
        sample_config,
        *,
        dtype: str = "float32",
        address: str | None = None,
        workers: int | None = None,
        gpus: float | None = None,
        max_attempts: int = 3,
        start_timeout_s: float = 900.0,
    ):
        super().__init__(
            sample_config.batch_size, sample_config.max_new_tokens, tuple(sample_config.stop)
        )
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        if gpus is not None and gpus < 0:
            raise ValueError(f"gpus must be 0 or more, got {gpus}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        from restem.verifiers.executor import connect_ray

        connect_ray(address)
        import ray
        import ray.exceptions
        from restem.verifiers.executor import lost_errors

        self._ray = ray
        self._task_error = ray.exceptions.RayTaskError
        self._lost = lost_errors()
        self.stats = RayGenStats()
        self.max_attempts = max_attempts
        self.start_timeout_s = start_timeout_s
        backend = sample_config.backend
        cluster_gpus = float(ray.cluster_resources().get("GPU", 0.0))
        if gpus is None:
            gpus = 1.0 if cluster_gpus >= 1 else 0.0
        if workers is None:
            workers = max(1, int(cluster_gpus // gpus)) if gpus > 0 else 1
        if gpus > 0 and workers * gpus > cluster_gpus:
            raise GenerationError(
                f"{workers} generator worker(s) x {gpus:g} GPU need {workers * gpus:g} GPUs; the "
                f"Ray cluster has {cluster_gpus:g} (see ray.sample_workers, ray.sample_gpus)"
            )
        if backend == "vllm" and gpus == 0:
            raise GenerationError(
                "sample.backend is vllm, which needs GPU workers: the Ray cluster has no GPUs "
                "(or ray.sample_gpus is 0); use sample.backend: transformers on CPUs"
            )
        self.workers = workers
        self.gpus = gpus
        local = Path(model_path)
        self.model_path = str(local.resolve()) if local.exists() else model_path
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        options = {
            "device": "cuda" if gpus > 0 else "cpu",
            "dtype": dtype,
            # CPU actors share the cluster's cores (Ray would give each one thread).
            "threads": max(1, int(cpus // workers)) if gpus == 0 else None,
        }
        # Put once: every actor (and every replacement) reads the same object.
        tokenizer_ref = ray.put(tokenizer if backend == "transformers" else None)
        self._args = (self.model_path, tokenizer_ref, sample_config, options)
        self._actor_class = ray.remote(num_cpus=0, num_gpus=gpus, max_restarts=0)(GeneratorWorker)
        self._slots = [_Worker(number) for number in range(workers)]
        try:
            for slot in self._slots:
                self._start(slot)
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ workers

    def _start(self, slot: _Worker) -> None:
        # SPREAD: one actor per node before two on any node, so a lost node costs little.
        slot.actor = self._actor_class.options(scheduling_strategy="SPREAD").remote(*self._args)
        slot.ready_ref = slot.actor.where.remote()
        slot.ready, slot.info, slot.started = False, {}, time.monotonic()
        slot.generation += 1
        self.stats.started_workers += 1

    def _replace(self, slot: _Worker, generation: int, why: str) -> None:
        if slot.generation != generation:
            return  # already replaced after an earlier failure of the same actor
        self.stats.lost_workers += 1
        slot.failures += 1
        if slot.failures > self.max_attempts:
            raise GenerationError(
                f"generator worker {slot.number} died {slot.failures} times in a row ({why}); "
                "see the Ray logs of its node (out of memory?)"
            )
        print(
            f"[restem] ray generator: worker {slot.number} lost ({why}); starting a replacement",
            file=sys.stderr,
            flush=True,
        )
        self._kill(slot)
        self._start(slot)

    def _kill(self, slot: _Worker) -> None:
        try:
            self._ray.kill(slot.actor, no_restart=True)
        except Exception:  # it is gone already
            pass

    def _settle(self, slot: _Worker) -> None:
        """Record a started actor's whereabouts; raise if it could not load the model."""
        try:
            info = self._ray.get(slot.ready_ref)
        except self._lost as exc:
            # Died while starting: the shards sent to it fail too, and are retried from there.
            self._replace(slot, slot.generation, type(exc).__name__)
            return
        if info.get("error"):
            raise GenerationError(f"generator worker {slot.number}: {info['error']}")
        slot.info, slot.ready, slot.failures = info, True, 0

    def _poll_starting(self, timeout: float, inflight: dict | None = None) -> None:
        """Settle the actors that finished starting; an actor that cannot start in time (no
        node has room for a replacement) is dropped and its shards go to a running one."""
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
            if inflight is None or not running:
                raise GenerationError(
                    f"generator worker {slot.number} did not start within "
                    f"{self.start_timeout_s:.0f} s (to be scheduled and load {self.model_path}); "
                    f"free cluster resources: {self._ray.available_resources()}"
                )
            print(
                f"[restem] ray generator: worker {slot.number} could not start again; "
                f"going on with {len(running)}",
                file=sys.stderr,
                flush=True,
            )
            self._slots.remove(slot)
            self._kill(slot)
            for ref, shard in list(inflight.items()):
                if shard.worker is slot:
                    del inflight[ref]
                    load = {s.number: 0 for s in running}
                    for other in inflight.values():
                        if other.worker.number in load:
                            load[other.worker.number] += 1
                    target = min(running, key=lambda s: load[s.number])
                    self._submit(shard, target, shard.kwargs, inflight)

    def _wait_ready(self) -> None:
        while not all(s.ready for s in self._slots):
            self._poll_starting(timeout=2.0)

    def worker_info(self) -> list[dict]:
        """Where each started actor runs: slot, node id, host, pid."""
        return [
            {"slot": s.number, **{k: v for k, v in s.info.items() if k != "error"}}
            for s in self._slots
            if s.ready
        ]

    # ------------------------------------------------------------ generating

    def _submit(self, shard: _Shard, slot: _Worker, kwargs: dict, inflight: dict) -> None:
        shard.kwargs = kwargs
        ref = slot.actor.generate.remote(shard.prompts, dict(kwargs, seed=shard.seed))
        shard.worker, shard.generation = slot, slot.generation
        inflight[ref] = shard

    def _retry(self, shard: _Shard, exc: BaseException, kwargs: dict, inflight: dict) -> None:
        slot = shard.worker
        shard.errors.append(f"{type(exc).__name__} on {slot.info.get('host', '?')}")
        shard.attempts += 1
        self._replace(slot, shard.generation, type(exc).__name__)
        if shard.attempts >= self.max_attempts:
            raise GenerationError(
                f"prompts {shard.start}..{shard.start + len(shard.prompts) - 1}: generator "
                f"worker lost {shard.attempts} times ({'; '.join(shard.errors)})"
            )
        self.stats.retried_shards += 1
        self._submit(shard, slot, kwargs, inflight)

    def generate(self, prompts, *, n=1, temperature=None, top_k=0, top_p=1.0, seed=0):
        prompts = list(prompts)
        if not prompts:
            return []
        self.stats.calls += 1
        kwargs = {"n": n, "temperature": temperature, "top_k": top_k, "top_p": top_p}
        shards = [
            _Shard(start, prompts[start:end], shard_seed(seed, start))
            for start, end in shard_bounds(len(prompts), len(self._slots))
        ]
        self.stats.shards += len(shards)
        inflight: dict = {}
        results: dict[int, list[list[str]]] = {}
        try:
            for shard, slot in zip(shards, self._slots):
                self._submit(shard, slot, kwargs, inflight)
            while inflight:
                done, _ = self._ray.wait(list(inflight), num_returns=1, timeout=2.0)
                for ref in done:
                    shard = inflight.pop(ref)
                    try:
                        completions = self._ray.get(ref)
                    except self._lost as exc:
                        self._retry(shard, exc, kwargs, inflight)
                        continue
                    except self._task_error as exc:
                        cause = getattr(exc, "cause", None) or exc
                        raise GenerationError(
                            f"generator worker {shard.worker.number} failed: {cause}"
                        ) from None
                    if len(completions) != len(shard.prompts) or any(
                        len(c) != n for c in completions
                    ):
                        raise GenerationError(
                            f"generator worker {shard.worker.number} returned "
                            f"{len(completions)} results for {len(shard.prompts)} prompts"
                        )
                    results[shard.start] = completions
                # A replacement that cannot be scheduled (or load the model) must not hang us.
                self._poll_starting(timeout=0, inflight=inflight)
        finally:
            for ref in inflight:
                try:
                    self._ray.cancel(ref)
                except Exception:  # best effort; close() kills the actors
                    pass
        return [completion for shard in shards for completion in results[shard.start]]

    def close(self) -> None:
        """Kill the actors (what they hold, GPU memory included, goes with their processes)."""
        slots, self._slots = getattr(self, "_slots", []), []
        for slot in slots:
            self._kill(slot)
