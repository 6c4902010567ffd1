"""A tiny real model and problem set, built by the tests (no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROMPT = "{problem}\nSolution:"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _teach(
    base_path: str,
    out_dir: Path,
    tokenizer,
    pairs,
    *,
    steps: int,
    batch_size: int = 8,
    max_length: int = 64,
) -> None:
    """Fine-tune ``base_path`` on the (prompt, completion) ``pairs`` into ``out_dir``."""
    from restem.harness.config import TrainConfig
    from restem.harness.train import FinetuneSettings, finetune

    train = TrainConfig(
        batch_size=batch_size, learning_rate=1e-2, max_length=max_length, save_steps=1000
    )
    settings = FinetuneSettings(base_path=base_path, out_dir=out_dir, train=train, max_steps=steps)
    finetune(settings, tokenizer, pairs)


@pytest.fixture(scope="session")
def tiny_assets(tmp_path_factory) -> dict:
    """A 1-layer GPT-2 taught for a few steps to answer \\boxed{1}: most problems' gold is 1
    (so samples are correct), one problem's gold is 2 (so the filter has something to drop)."""
    from restem.harness.demo import build_tiny_model, build_tokenizer

    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = build_tokenizer(folder / "tokenizer")
    model = build_tiny_model(tokenizer, seed=0, n_positions=64, n_embd=32, n_layer=1, n_head=2)
    model.save_pretrained(str(folder / "init"))
    tokenizer.save_pretrained(str(folder / "init"))
    train = [{"id": f"p{i}", "problem": f"add {i} and 0", "answer": "1"} for i in range(7)]
    train.append({"id": "p7", "problem": "add 7 and 0", "answer": "2"})
    human = [
        {"id": f"h{i}", "problem": f"add {i} and 1", "answer": "1", "solution": "so \\boxed{1}"}
        for i in range(4)
    ]
    held_out = [{"id": f"e{i}", "problem": f"add {i} and 5", "answer": "1"} for i in range(4)]
    valid = [{"id": f"v{i}", "problem": f"add {i} and 3", "answer": "1"} for i in range(3)]
    pairs = [(PROMPT.format(problem=r["problem"]), " so \\boxed{1}") for r in train + human]
    _teach(str(folder / "init"), folder / "base", tokenizer, pairs, steps=40)
    return {
        "base": str(folder / "base"),
        "train": str(write_jsonl(folder / "train.jsonl", train)),
        "eval": str(write_jsonl(folder / "eval.jsonl", held_out)),
        "human": str(write_jsonl(folder / "human.jsonl", human)),
        "valid": str(write_jsonl(folder / "valid.jsonl", valid)),
    }


def tiny_config(assets: dict, runs_dir: Path, name: str = "t", **train) -> dict:
    """A plain-dict config (as YAML gives) for one quick iteration on the tiny assets."""
    return {
        "name": name,
        "runs_dir": str(runs_dir),
        "iterations": 1,
        "model": {"path": assets["base"], "device": "cpu"},
        "data": {
            "task": "math",
            "train_path": assets["train"],
            "eval_path": assets["eval"],
            "human_path": assets.get("human"),
            "valid_path": assets.get("valid"),
            "prompt_template": PROMPT,
        },
        "sample": {"k": 4, "temperature": 1.0, "max_new_tokens": 12, "batch_size": 8},
        "verify": {"workers": 1, "chunk": 4},
        "filter": {"max_per_problem": 2},
        "train": {
            "max_steps": 6,
            "batch_size": 4,
            "learning_rate": 1e-3,
            "max_length": 64,
            "save_steps": 2,
            **train,
        },
        "eval": {"pass_k": 2, "temperature": 1.0},
    }


@pytest.fixture(scope="session")
def tiny_code_assets(tmp_path_factory, tiny_assets) -> dict:
    """The tiny model taught to answer `print(input())`: right for the echo problems, wrong for
    the one that asks for the input twice."""
    from restem.harness.train import load_tokenizer

    folder = tmp_path_factory.mktemp("tiny-code")
    tokenizer = load_tokenizer(tiny_assets["base"])

    def echo(i: int, times: int = 1) -> dict:
        return {
            "id": f"c{i}-{times}",
            "problem": f"echo {i}",
            "input_output": {"inputs": [f"{i}\n"], "outputs": [f"{i}\n" * times]},
        }

    train = [echo(i) for i in range(5)] + [echo(5, times=2)]
    held_out = [echo(i) for i in range(6, 9)]
    valid = [echo(i) for i in range(9, 11)]
    pairs = [(PROMPT.format(problem=r["problem"]), " print(input())") for r in train]
    _teach(tiny_assets["base"], folder / "base", tokenizer, pairs, steps=150, batch_size=6)
    return {
        "base": str(folder / "base"),
        "train": str(write_jsonl(folder / "train.jsonl", train)),
        "eval": str(write_jsonl(folder / "eval.jsonl", held_out)),
        "valid": str(write_jsonl(folder / "valid.jsonl", valid)),
    }


# A chat template in the style of instruct models: role markers as special tokens, each turn
# closed by the end-of-sequence token, the assistant turn opened by the generation prompt.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CHAT_ROLES = ["<|system|>", "<|user|>", "<|assistant|>"]


def build_chat_tokenizer(path: Path):
    """The demo's character tokenizer plus role tokens and a chat template."""
    from restem.harness.demo import build_tokenizer

    tokenizer = build_tokenizer(path)
    tokenizer.add_special_tokens({"additional_special_tokens": CHAT_ROLES})
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(path))
    return tokenizer


@pytest.fixture(scope="session")
def tiny_chat_assets(tmp_path_factory, tiny_assets) -> dict:
    """A 1-layer GPT-2 with a chat tokenizer, taught to answer `so \\boxed{1}` in the assistant
    turn of chat-formatted prompts; the tiny problems also as parquet files."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from restem.harness.config import DataConfig
    from restem.harness.demo import build_tiny_model
    from restem.harness.tasks import load_problems

    folder = tmp_path_factory.mktemp("tiny-chat")
    tokenizer = build_chat_tokenizer(folder / "tokenizer")
    model = build_tiny_model(tokenizer, seed=0, n_positions=96, n_embd=32, n_layer=1, n_head=2)
    model.save_pretrained(str(folder / "init"))
    tokenizer.save_pretrained(str(folder / "init"))
    paths = {}
    for name in ("train", "eval", "valid", "human"):
        rows = [json.loads(line) for line in Path(tiny_assets[name]).read_text().splitlines()]
        paths[name] = str(folder / f"{name}.parquet")
        pq.write_table(pa.Table.from_pylist(rows), paths[name])
    data = DataConfig(
        train_path=paths["train"],
        eval_path=paths["eval"],
        prompt_format="chat",
        prompt_template="{problem}",
        system_prompt=CHAT_SYSTEM,
    )
    problems = []
    for name in ("train", "human"):
        problems += load_problems(paths[name], data, tokenizer=tokenizer)
    pairs = [(p.prompt, "so \\boxed{1}") for p in problems]
    _teach(str(folder / "init"), folder / "base", tokenizer, pairs, steps=40, max_length=96)
    return {"base": str(folder / "base"), **paths}


CHAT_SYSTEM = "answer in a box"
