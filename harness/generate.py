"""Generation backends behind one call: ``generate(prompts, n=..., temperature=...)``.

``transformers`` (CPU or GPU, batched, left-padded) is the default; ``vllm`` is used when installed
and asked for, so the same config scales up to GPU nodes. The vLLM engine runs in a child
process that exits when the stage closes its generator (``ChildProcessGenerator``).
``RayGenerator`` fans either out over Ray actors, one model each (``sample.executor: ray``).
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from restem.errors import GenerationError
from restem.supervisor import ActorSupervisor, Supervision

__all__ = [
    "ChildProcessGenerator",
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
            # A chat-rendered prompt already starts with the BOS token: don't add a second one.
            bos = self.tokenizer.bos_token
            encoded = self.tokenizer(
                chunk,
                add_special_tokens=not (bos and all(p.startswith(bos) for p in chunk)),
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


class ChildProcessGenerator(Generator):
    """A generation engine in a child process that exits when the generator is closed.

    ``factory(*args)`` runs in the child (a fresh ``spawn`` interpreter) and returns an object
    with ``generate(prompts, **kwargs) -> list[list[str]]``. Whatever the engine holds (GPU
    memory, its own worker processes, a distributed group) goes when the child exits, so the
    next M-step or engine on the same GPU starts clean. Errors in the child are raised here as
    GenerationError; so is the child's death.
    """

    def __init__(
        self,
        factory,
        args: tuple,
        *,
        batch_size: int,
        max_new_tokens: int,
        stop=(),
        start_timeout_s: float = 1800.0,
        name: str = "engine",
    ):
        super().__init__(batch_size, max_new_tokens, tuple(stop))
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no CUDA state inherited from us
        self.name = name
        self._conn, child_end = context.Pipe()
        # Not a daemon: engines such as vLLM start processes of their own.
        self._process = context.Process(
            target=_engine_child, args=(child_end, factory, args), name=f"restem-{name}"
        )
        self._process.start()
        child_end.close()
        try:
            self._receive(start_timeout_s)  # ("ready", None) once the engine is up
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _receive(self, timeout_s: float | None = None):
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while not self._conn.poll(1.0):
                if not self._process.is_alive():
                    raise EOFError
                if deadline is not None and time.monotonic() > deadline:
                    raise GenerationError(
                        f"the {self.name} process did not start in {timeout_s:.0f} s"
                    )
            kind, value = self._conn.recv()
        except (EOFError, OSError):  # its end of the pipe closed: it died
            self._process.join(5)
            raise GenerationError(
                f"the {self.name} process is gone (status {self._process.exitcode}) before "
                "answering; out of memory?"
            ) from None
        if kind == "error":
            raise GenerationError(f"{self.name}: {value}")
        return value

    def generate(self, prompts, *, n=1, temperature=None, top_k=0, top_p=1.0, seed=0):
        if self._process is None:
            raise GenerationError(f"the {self.name} generator is closed")
        kwargs = {"n": n, "temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
        try:
            self._conn.send(("generate", list(prompts), kwargs))
        except (OSError, ValueError):
            self._process.join(5)
            raise GenerationError(
                f"the {self.name} process is gone (status {self._process.exitcode})"
            ) from None
        return self._receive()

    def close(self, timeout_s: float = 60.0) -> None:
        """Ask the child to exit; stop it if it does not within ``timeout_s``."""
        process, self._process = getattr(self, "_process", None), None
        if process is None:
            return
        try:
            self._conn.send(("close", None, None))
        except (OSError, ValueError):  # the child is gone already
            pass
        process.join(timeout_s)
        if process.is_alive():
            process.terminate()
            process.join(10)
        if process.is_alive():
            process.kill()
            process.join()
        self._conn.close()


def _engine_child(conn, factory, args) -> None:
    """The child's loop: build the engine, answer generate calls until told to close."""
    try:
        engine = factory(*args)
    except BaseException as exc:
        conn.send(("error", f"cannot start: {type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            kind, prompts, kwargs = conn.recv()
        except EOFError:  # the parent died
            return
        if kind == "close":
            return
        try:
            conn.send(("ok", engine.generate(prompts, **kwargs)))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class _VLLMEngine:
    """The vLLM engine, in the child process of a VLLMGenerator."""

    def __init__(self, model_path: str, dtype: str, max_new_tokens: int, stop: tuple[str, ...]):
        from vllm import LLM

        self.llm = LLM(model=model_path, dtype=dtype)
        self.max_new_tokens = max_new_tokens
        self.stop = stop

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


class VLLMGenerator(ChildProcessGenerator):
    """vLLM (GPU), loaded from a checkpoint folder, in a child process that exits when the stage
    closes the generator: vLLM does not reliably return its GPU memory and distributed state
    within a process, so the next M-step or engine would find the GPU still taken.

    Not run on the machines this was built on (no GPU, vllm not installed): untested here. The
    child-process mechanism itself is tested with a transformers engine.
    """

    def __init__(
        self, model_path: str, *, batch_size: int, max_new_tokens: int, stop=(), dtype="auto"
    ):
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise ImportError("vllm")
        super().__init__(
            _VLLMEngine,
            (model_path, dtype, max_new_tokens, tuple(stop)),
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            stop=stop,
            name="vLLM engine",
        )


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

    role = "generator worker"
    error = GenerationError

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
    max_attempts  tries per shard (a shard whose actor dies goes to another actor), and deaths
                 in a row per actor position
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
        supervision = Supervision(max_attempts, start_timeout_s)  # checked before Ray starts
        from restem.verifiers.executor import connect_ray

        connect_ray(address)
        import ray

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
        # Actors reserve no CPUs: the E-step and verification alternate, and verifier actors hold
        # the CPUs for the whole run.
        args = (self.model_path, tokenizer_ref, sample_config, options)
        self._actors = ActorSupervisor(GeneratorWorker, args, workers, supervision, num_gpus=gpus)
        self.stats = self._actors.stats
        try:
            self._actors.wait_ready(require_all=True)
        except BaseException:
            self.close()
            raise

    def worker_info(self) -> list[dict]:
        """Where each actor runs (slot, node id, host, pid), once it has started."""
        return self._actors.wait_ready()

    def generate(self, prompts, *, n=1, temperature=None, top_k=0, top_p=1.0, seed=0):
        prompts = list(prompts)
        if not prompts:
            return []
        kwargs = {"n": n, "temperature": temperature, "top_k": top_k, "top_p": top_p}
        bounds = shard_bounds(len(prompts), self.workers)
        calls = [(prompts[a:b], dict(kwargs, seed=shard_seed(seed, a))) for a, b in bounds]

        def lost(args: tuple, reason: str):
            start, end = next(b for b, call in zip(bounds, calls) if call is args)
            raise GenerationError(f"prompts {start}..{end - 1}: {reason}")

        completions: list[list[str]] = []
        runs = self._actors.run("generate", calls, window=len(calls), on_lost=lost)
        for (start, end), shard in zip(bounds, runs):
            if len(shard) != end - start or any(len(c) != n for c in shard):
                raise GenerationError(
                    f"a generator worker returned {len(shard)} results for prompts "
                    f"{start}..{end - 1}"
                )
            completions.extend(shard)
        return completions

    def close(self) -> None:
        """Kill the actors (what they hold, GPU memory included, goes with their processes)."""
        actors = getattr(self, "_actors", None)
        if actors is not None:
            actors.close()
