"""Run configuration: frozen dataclasses, loadable from YAML; unknown keys and wrong types are errors.

Defaults follow the ReST-EM paper (k=32 samples, temperature 0.7, top-k 40, at most 10 kept
solutions per problem, fine-tune the base model each iteration).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from restem.errors import ConfigError

__all__ = [
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "FilterConfig",
    "LoraConfig",
    "ModelConfig",
    "RayConfig",
    "RunConfig",
    "SampleConfig",
    "TrainConfig",
    "VerifyConfig",
    "config_to_dict",
    "load_config",
    "parse_config",
    "section_from_dict",
]


@dataclass(frozen=True)
class ModelConfig:
    path: str  # a local folder or a hub id, for from_pretrained (the base model)
    tokenizer: str | None = None  # defaults to `path`
    # float32 | bfloat16 | float16 | auto (bfloat16 on a GPU that supports it, else float32)
    dtype: str = "float32"
    device: str = "auto"  # auto | cpu | cuda | cuda:N


@dataclass(frozen=True)
class DataConfig:
    task: str = "math"  # math | code
    # Problem files: JSONL, parquet, or a Hugging Face `datasets` folder (save_to_disk).
    train_path: str = ""  # problems the E-step samples on
    eval_path: str = ""  # held-out (test) problems: reported every iteration, never used to choose
    # Validation problems choose early stopping and the best iterate. Without valid_path, a seeded
    # valid_fraction of the training problems is set aside (and not trained on).
    valid_path: str | None = None
    valid_fraction: float = 0.1
    human_path: str | None = None  # worked solutions for the SFT-on-human-data baseline
    max_train_problems: int | None = None
    max_eval_problems: int | None = None
    max_valid_problems: int | None = None
    # plain: the prompt is prompt_template. chat: prompt_template is the user message, rendered
    # with the tokenizer's chat template (after system_prompt, when given) and the assistant turn
    # opened; the E-step continues it and the M-step trains on it, loss on the answer only.
    prompt_format: str = "plain"
    prompt_template: str = "Problem: {problem}\nSolution:"
    system_prompt: str | None = None
    problem_field: str = "problem"
    answer_field: str = "answer"
    solution_field: str = "solution"


@dataclass(frozen=True)
class SampleConfig:
    backend: str = "transformers"  # transformers | vllm
    executor: str = "local"  # local | ray (fan the E-step out over Ray workers; see `ray`)
    k: int = 32  # samples per problem in the E-step
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 1.0
    max_new_tokens: int = 512
    batch_size: int = 32  # sequences per generate() call
    stop: tuple[str, ...] = ()  # extra stop strings; the EOS token always stops


@dataclass(frozen=True)
class VerifyConfig:
    executor: str = "local"  # local (process pool) | ray (verifier actors; see `ray`)
    workers: int = 2  # local executor: pool processes
    timeout_s: float = 5.0
    backend: str = "local"  # code task: docker | local
    chunk: int = 256  # samples verified (and journaled) per call


@dataclass(frozen=True)
class FilterConfig:
    max_per_problem: int = 10  # so easy problems don't dominate the kept set
    dedup: bool = True  # drop exact duplicate solutions of the same problem


@dataclass(frozen=True)
class LoraConfig:
    """LoRA adapters (peft) for the M-step; merged into the weights when it ends, so the next
    E-step loads an ordinary checkpoint."""

    rank: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    # Module names to adapt; empty: peft's default for the architecture (attention projections);
    # ["all-linear"]: every linear layer but the output head.
    target_modules: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"train.lora.rank: must be at least 1, got {self.rank}")
        if not self.alpha > 0:
            raise ConfigError(f"train.lora.alpha: must be positive, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"train.lora.dropout: must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class TrainConfig:
    continue_from_previous: bool = False  # paper: always fine-tune the base model
    epochs: float = 2.0
    max_steps: int | None = None  # overrides epochs when set
    batch_size: int = 8
    grad_accum: int = 1
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_length: int = 1024
    save_steps: int = 200  # trainer checkpoints, for resuming a killed M-step
    seed: int = 0
    # inprocess: the Trainer runs in the loop's process. torchrun / accelerate: the M-step is a
    # standard `torchrun` / `accelerate launch` job with `processes` processes on this node.
    launcher: str = "inprocess"
    processes: int = 1
    lora: LoraConfig | None = None  # None: full fine-tuning
    gradient_checkpointing: bool = False  # recompute activations: less memory, ~30% slower


@dataclass(frozen=True)
class RayConfig:
    """Where the Ray executors run (used when sample.executor or verify.executor is ray)."""

    # None: start a Ray instance on this machine (shut down after the run); "auto": the cluster
    # this node joined; "host:port" / "ray://host:10001": that cluster. For a multi-node run,
    # runs_dir must be on storage every node mounts at the same path (docs/scale-out.md).
    address: str | None = None
    verify_workers: int | None = None  # verifier actors; default: the cluster's CPUs / verify_cpus
    verify_cpus: float = 1.0  # CPUs each verifier actor reserves (and pool processes it runs)
    sample_workers: int | None = None  # generator actors; default: one per GPU, else one
    sample_gpus: float | None = None  # GPUs per generator actor; default: 1 with GPUs, else 0


@dataclass(frozen=True)
class EvalConfig:
    pass_k: int = 4  # pass@k from this many samples per held-out problem (0 = greedy only)
    temperature: float = 0.7
    patience: int = 1  # stop after this many iterations without held-out improvement


@dataclass(frozen=True)
class RunConfig:
    name: str
    model: ModelConfig
    data: DataConfig = field(default_factory=DataConfig)
    iterations: int = 3
    runs_dir: str = "runs"
    seed: int = 0
    baseline: bool = True  # also train SFT-on-human-data with the same step count
    sample: SampleConfig = field(default_factory=SampleConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    filter: FilterConfig = field(default_factory=FilterConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    ray: RayConfig = field(default_factory=RayConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def __post_init__(self) -> None:
        _check(self)


_CHOICES = {
    ("data", "task"): ("math", "code"),
    ("sample", "backend"): ("transformers", "vllm"),
    ("verify", "backend"): ("docker", "local"),
    ("verify", "executor"): ("local", "ray"),
    ("sample", "executor"): ("local", "ray"),
    ("train", "launcher"): ("inprocess", "torchrun", "accelerate"),
    ("model", "dtype"): ("float32", "bfloat16", "float16", "auto"),
    ("data", "prompt_format"): ("plain", "chat"),
}


def _check(cfg: RunConfig) -> None:
    if not cfg.name or "/" in cfg.name or cfg.name.startswith("."):
        raise ConfigError(f"name: must be a plain folder name, got {cfg.name!r}")
    for (section, key), allowed in _CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in allowed:
            raise ConfigError(
                f"{section}.{key}: must be one of {', '.join(allowed)}, got {value!r}"
            )
    positive = {
        "iterations": cfg.iterations,
        "sample.k": cfg.sample.k,
        "sample.max_new_tokens": cfg.sample.max_new_tokens,
        "sample.batch_size": cfg.sample.batch_size,
        "verify.workers": cfg.verify.workers,
        "verify.chunk": cfg.verify.chunk,
        "filter.max_per_problem": cfg.filter.max_per_problem,
        "train.batch_size": cfg.train.batch_size,
        "train.grad_accum": cfg.train.grad_accum,
        "train.max_length": cfg.train.max_length,
        "eval.patience": cfg.eval.patience,
        "train.processes": cfg.train.processes,
    }
    for key in ("verify_workers", "sample_workers"):
        value = getattr(cfg.ray, key)
        if value is not None and value < 1:
            raise ConfigError(f"ray.{key}: must be at least 1, got {value}")
    if not cfg.ray.verify_cpus > 0:
        raise ConfigError(f"ray.verify_cpus: must be positive, got {cfg.ray.verify_cpus}")
    if cfg.ray.sample_gpus is not None and cfg.ray.sample_gpus < 0:
        raise ConfigError(f"ray.sample_gpus: must be 0 or more, got {cfg.ray.sample_gpus}")
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key}: must be at least 1, got {value}")
    if not cfg.sample.temperature > 0:
        raise ConfigError(f"sample.temperature: must be positive, got {cfg.sample.temperature}")
    if not cfg.verify.timeout_s > 0:
        raise ConfigError(f"verify.timeout_s: must be positive, got {cfg.verify.timeout_s}")
    if not cfg.train.learning_rate > 0:
        raise ConfigError(f"train.learning_rate: must be positive, got {cfg.train.learning_rate}")
    if cfg.eval.pass_k < 0:
        raise ConfigError(f"eval.pass_k: must be 0 or more, got {cfg.eval.pass_k}")
    if not cfg.data.train_path or not cfg.data.eval_path:
        raise ConfigError("data.train_path and data.eval_path are required")
    if not cfg.data.valid_path and not 0 < cfg.data.valid_fraction < 1:
        raise ConfigError(
            "data.valid_fraction: must be between 0 and 1 (exclusive) when data.valid_path is "
            f"not set, got {cfg.data.valid_fraction}"
        )
    for key in ("max_train_problems", "max_eval_problems", "max_valid_problems"):
        value = getattr(cfg.data, key)
        if value is not None and value < 1:
            raise ConfigError(f"data.{key}: must be at least 1, got {value}")
    if "{problem}" not in cfg.data.prompt_template:
        raise ConfigError("data.prompt_template: must contain {problem}")


# ---------------------------------------------------------------- dict / YAML conversion


def _convert(value, annotation, where: str):
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if dataclasses.is_dataclass(annotation):
        return _from_dict(annotation, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        (item_type, _ellipsis) = typing.get_args(annotation)
        return tuple(_convert(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported type {annotation!r}")  # pragma: no cover


def _from_dict(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        prefix = f"{where}." if where else ""
        known = ", ".join(sorted(fields))
        raise ConfigError(f"unknown key {prefix}{unknown[0]} (known keys here: {known})")
    kwargs = {}
    for name, f in fields.items():
        key = f"{where}.{name}" if where else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {key}")
    return cls(**kwargs)


def parse_config(data: dict, **overrides) -> RunConfig:
    """A RunConfig from a plain dict (as YAML gives), with top-level overrides."""
    merged = {**(data or {}), **{k: v for k, v in overrides.items() if v is not None}}
    return _from_dict(RunConfig, merged, "")


def load_config(path: str | Path, **overrides) -> RunConfig:
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return parse_config(data, **overrides)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_to_dict(cfg) -> dict:
    """Plain dicts and lists (as YAML and JSON take them), nested sections included."""

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return plain(dataclasses.asdict(cfg))


def section_from_dict(cls, data: dict, where: str):
    """A config section (e.g. TrainConfig) from a plain dict, with the loader's checks."""
    return _from_dict(cls, data, where)
