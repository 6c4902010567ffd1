"""Generation backends behind one call: ``generate(prompts, n=..., temperature=...)``.

``transformers`` (CPU or GPU, batched, left-padded) is the default; ``vllm`` is used when installed
and asked for, so the same config scales up to GPU nodes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

__all__ = [
    "Generator",
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
            raise RuntimeError(
                "sample.backend is vllm, but vllm is not installed (pip install vllm, on a GPU machine)"
            ) from None
    return TransformersGenerator(
        model,
        tokenizer,
        batch_size=sample_config.batch_size,
        max_new_tokens=sample_config.max_new_tokens,
        stop=sample_config.stop,
    )
