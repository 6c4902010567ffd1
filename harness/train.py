"""M-step: supervised fine-tuning on (prompt, solution) pairs, loss on the solution tokens only.

Uses the transformers Trainer; its periodic checkpoints let a killed M-step resume mid-way. The
finished model is written to a temporary folder and renamed into place, so a checkpoint folder
that exists is always complete.

Memory: ``train.lora`` trains peft LoRA adapters instead of every weight (merged into the model
when the M-step ends, so the next E-step loads an ordinary checkpoint);
``train.gradient_checkpointing`` recomputes activations in the backward pass; ``model.dtype``
bfloat16 (or auto, on a GPU that supports it) loads the weights in bf16 and trains under bf16
autocast. Estimates per model size: docs/harness.md.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from restem.harness.config import ConfigError, TrainConfig, section_from_dict

__all__ = [
    "FinetuneResult",
    "FinetuneSettings",
    "finetune",
    "load_model",
    "load_tokenizer",
    "resolve_dtype",
    "run_finetune",
    "tokenize_pairs",
]

IGNORE = -100  # label value the loss skips


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto``: bfloat16 on a CUDA device that supports it, else float32; others as given."""
    if dtype != "auto":
        return dtype
    import torch

    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bfloat16"
    return "float32"


def load_model(path: str, dtype: str = "float32", device: str = "cpu"):
    import torch
    from transformers import AutoModelForCausalLM

    dtype = resolve_dtype(dtype, device)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    return model.to(device)


@dataclass(frozen=True)
class FinetuneSettings:
    """One fine-tune: start from ``base_path``, write the model to ``out_dir``."""

    base_path: str  # a local folder or a hub id
    out_dir: Path
    train: TrainConfig = field(default_factory=TrainConfig)
    dtype: str = "float32"  # model.dtype (auto resolved on the training device)
    device: str = "cpu"
    max_steps: int | None = None  # overrides train.max_steps / epochs
    end_with_eos: bool = True  # False: the text continues (no end-of-sequence after it)

    def __post_init__(self) -> None:
        object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps: must be at least 1, got {self.max_steps}")

    def to_dict(self) -> dict:
        return {**asdict(self), "out_dir": str(self.out_dir)}

    @classmethod
    def from_dict(cls, data: dict) -> FinetuneSettings:
        return cls(**{**data, "train": section_from_dict(TrainConfig, data["train"], "train")})


def tokenize_pairs(
    tokenizer, pairs: list[tuple[str, str]], max_length: int, *, end_with_eos: bool = True
) -> list[dict]:
    """input_ids = prompt + solution + EOS; labels mask the prompt (and padding) out of the loss."""
    examples = []
    eos = [tokenizer.eos_token_id] if end_with_eos else []
    for prompt, solution in pairs:
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        solution_ids = tokenizer(solution, add_special_tokens=False)["input_ids"]
        ids = (prompt_ids + solution_ids + eos)[:max_length]
        labels = ([IGNORE] * len(prompt_ids) + solution_ids + eos)[:max_length]
        if all(label == IGNORE for label in labels):
            continue  # the prompt alone fills max_length: nothing to learn from
        examples.append({"input_ids": ids, "labels": labels})
    return examples


def _checkpointing_args(enabled: bool) -> dict:
    """Gradient (activation) checkpointing, under the argument name this transformers knows."""
    from transformers import TrainingArguments

    if not enabled:
        return {}
    fields = TrainingArguments.__dataclass_fields__
    name = (
        "activation_checkpointing"
        if "activation_checkpointing" in fields
        else "gradient_checkpointing"
    )
    return {name: True, f"{name}_kwargs": {"use_reentrant": False}}


def _with_lora(model, config: TrainConfig):
    from peft import LoraConfig, TaskType, get_peft_model

    lora = config.lora
    targets = list(lora.target_modules) or None  # None: peft's default for the architecture
    if targets == ["all-linear"]:
        targets = "all-linear"
    try:
        peft_config = LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=targets,
        )
        model = get_peft_model(model, peft_config)
    except ValueError as exc:  # unknown architecture or module names
        raise ConfigError(f"train.lora: {exc}") from None
    if config.gradient_checkpointing:
        model.enable_input_require_grads()  # frozen embeddings: let gradients reach the adapters
    return model


class _Collator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict]) -> dict:
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        ids = [b["input_ids"] + [self.pad_id] * (width - len(b["input_ids"])) for b in batch]
        labels = [b["labels"] + [IGNORE] * (width - len(b["labels"])) for b in batch]
        mask = [[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch]
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": torch.tensor(mask),
        }


@dataclass(frozen=True)
class FinetuneResult:
    steps: int  # optimizer steps taken in all (including those before a resume)
    world_size: int  # processes that trained (1 in-process)
    is_main: bool  # whether this process wrote the model
    log_history: list[dict]  # the Trainer's logs: loss, learning rate, ... per logging step


def finetune(settings: FinetuneSettings, tokenizer, pairs: list[tuple[str, str]]) -> int:
    """Fine-tune as ``settings`` say on ``pairs`` (prompt, answer); return the step count."""
    return run_finetune(settings, tokenizer, pairs).steps


def _complete_checkpoints(work_dir: Path) -> list[Path]:
    """The Trainer's checkpoints, oldest first, without one a kill cut short (the trainer state is
    written after the weights, optimizer and RNG states)."""
    found = [p for p in work_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()]
    return sorted(found, key=lambda p: int(p.name.split("-")[-1]))


def run_finetune(
    settings: FinetuneSettings, tokenizer, pairs: list[tuple[str, str]]
) -> FinetuneResult:
    """:func:`finetune`, with what the Trainer did; the body of every rank of a distributed job."""
    from restem.harness.rundir import fault_point
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class FaultAfterSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if os.environ.get("RESTEM_FAULT") and args.world_size > 1:
                import torch.distributed as dist

                dist.barrier()  # every rank's part of the checkpoint is written before the kill
            fault_point("train")

    config, device = settings.train, settings.device
    dtype = resolve_dtype(settings.dtype, device)
    out_dir = settings.out_dir
    work_dir = out_dir.parent / (out_dir.name + ".trainer")
    model = load_model(settings.base_path, dtype, device)
    if config.gradient_checkpointing:
        model.config.use_cache = False  # the cache is useless in training and clashes with it
    if config.lora is not None:
        model = _with_lora(model, config)
    context = getattr(model.config, "max_position_embeddings", None) or getattr(
        model.config, "n_positions", None
    )
    max_length = min(config.max_length, context) if context else config.max_length
    examples = tokenize_pairs(tokenizer, pairs, max_length, end_with_eos=settings.end_with_eos)
    if not examples:
        raise ValueError("nothing to train on: no kept samples")
    steps = settings.max_steps if settings.max_steps is not None else config.max_steps
    args = TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=steps if steps is not None else -1,
        warmup_steps=config.warmup_ratio,  # a float below 1 is a ratio in transformers 5
        weight_decay=config.weight_decay,
        lr_scheduler_type="cosine",
        logging_steps=max(1, (steps or 100) // 10),
        save_steps=config.save_steps,
        save_total_limit=1,
        report_to=[],
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=device == "cpu",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
        # bf16 autocast where the weights are bf16 (a GPU); fp16 weights train as they are
        bf16=dtype == "bfloat16" and device.startswith("cuda"),
        **_checkpointing_args(config.gradient_checkpointing),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=examples,
        data_collator=_Collator(tokenizer.pad_token_id),
        callbacks=[FaultAfterSave()],
    )
    checkpoints = _complete_checkpoints(work_dir)
    if checkpoints and trainer.is_world_process_zero():
        print(f"[restem] M-step: resuming from {checkpoints[-1].name}", file=sys.stderr, flush=True)
    result = trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if checkpoints else None)

    # The finished model goes to a temporary folder, renamed into place when complete. Every rank
    # calls save_model (sharded setups gather there); only the main process writes.
    main = args.should_save
    partial = out_dir.parent / (out_dir.name + ".partial")
    model.config.use_cache = True  # the saved model generates with its cache
    if main:
        shutil.rmtree(partial, ignore_errors=True)
    if config.lora is None:
        trainer.save_model(str(partial))
    elif main:
        # The adapter is merged into the weights: the next E-step (transformers, vLLM, Ray
        # workers) loads an ordinary checkpoint, and the next M-step starts from it unchanged.
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        merged.save_pretrained(str(partial))
    if main:
        tokenizer.save_pretrained(str(partial))
        shutil.rmtree(out_dir, ignore_errors=True)
        partial.rename(out_dir)
        shutil.rmtree(work_dir, ignore_errors=True)
    return FinetuneResult(
        steps=int(result.global_step),
        world_size=args.world_size,
        is_main=main,
        log_history=list(trainer.state.log_history),
    )
