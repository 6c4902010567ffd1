"""Problem files in every supported format (JSONL, parquet, a `datasets` folder), chat prompts,
the validation split, and the config checks of the new options."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from restem.harness.config import DataConfig, LoraConfig, parse_config
from restem.harness.tasks import load_problems, render_prompt, split_validation

from restem.errors import ConfigError, ProblemError
from tests.harness.conftest import CHAT_SYSTEM, build_chat_tokenizer, write_jsonl

ROWS = [
    {"id": "a", "problem": "add 1 and 2", "answer": "3", "solution": "so \\boxed{3}"},
    {"id": "b", "problem": "add 2 and 2", "answer": "4"},
    {"id": "c", "problem": "add 5 and 0", "solution": "it is \\boxed{5}"},  # answer from the box
]


def _write(kind: str, folder: Path, rows: list[dict], name: str = "problems") -> Path:
    """``rows`` written as a JSONL file, a parquet file or a save_to_disk folder."""
    if kind == "jsonl":
        return write_jsonl(folder / f"{name}.jsonl", rows)
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / f"{name}.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
        return path
    from datasets import Dataset

    path = folder / name
    Dataset.from_list(rows).save_to_disk(str(path))
    return path


FORMATS = ["jsonl", "parquet", "datasets"]


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_gives_the_same_problems_parquet_datasets(tmp_path, kind):
    data = DataConfig(train_path="x", eval_path="y", prompt_template="Q: {problem}\nA:")
    problems = load_problems(_write(kind, tmp_path, ROWS), data)
    assert [(p.id, p.prompt, p.gold, p.solution) for p in problems] == [
        ("a", "Q: add 1 and 2\nA:", "3", "so \\boxed{3}"),
        ("b", "Q: add 2 and 2\nA:", "4", None),
        ("c", "Q: add 5 and 0\nA:", "5", "it is \\boxed{5}"),
    ]
    assert len(load_problems(_write(kind, tmp_path, ROWS, "again"), data, limit=2)) == 2


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([{"id": "a", "question": "add 1 and 2", "answer": "3"}], "problem"),  # renamed column
        ([{"id": "a", "problem": "add 1 and 2", "solution": "no box"}], "answer"),  # no answer
    ],
)
def test_missing_field_errors_name_the_file_and_field_parquet_datasets(tmp_path, kind, rows, field):
    path = _write(kind, tmp_path, ROWS[:1] + rows)
    data = DataConfig(train_path="x", eval_path="y")
    with pytest.raises(ProblemError) as caught:
        load_problems(path, data)
    message = str(caught.value)
    assert str(path) in message and f"'{field}'" in message and "row 2" in message


def test_field_mapping_and_nested_fields_verl_parquet(tmp_path):
    """verl's layout: the answer inside reward_model, the prompt as chat messages."""
    rows = [
        {
            "prompt": [{"role": "user", "content": "add 1 and 2"}],
            "reward_model": {"style": "rule", "ground_truth": "3"},
            "extra_info": {"index": 0},
        }
    ]
    path = _write("parquet", tmp_path, rows)
    tokenizer = build_chat_tokenizer(tmp_path / "tok")
    data = DataConfig(
        train_path="x",
        eval_path="y",
        problem_field="prompt",
        answer_field="reward_model.ground_truth",
        prompt_format="chat",
        system_prompt=CHAT_SYSTEM,
    )
    (problem,) = load_problems(path, data, tokenizer=tokenizer)
    assert problem.gold == "3"
    assert problem.prompt == f"<|system|>{CHAT_SYSTEM}<eos><|user|>add 1 and 2<eos><|assistant|>"
    # the same messages need the chat format: plain cannot render them
    with pytest.raises(ProblemError, match=r"row 1: field 'prompt'.*prompt_format: chat"):
        load_problems(path, dataclasses.replace(data, prompt_format="plain"))


def test_datasets_dict_folders_one_split_or_a_clear_error(tmp_path):
    from datasets import Dataset, DatasetDict

    one = tmp_path / "one"
    DatasetDict({"train": Dataset.from_list(ROWS)}).save_to_disk(str(one))
    data = DataConfig(train_path="x", eval_path="y")
    assert [p.id for p in load_problems(one, data)] == ["a", "b", "c"]
    two = tmp_path / "two"
    DatasetDict({"train": Dataset.from_list(ROWS), "test": Dataset.from_list(ROWS)}).save_to_disk(
        str(two)
    )
    with pytest.raises(ProblemError, match=r"holds the splits test, train: point at one"):
        load_problems(two, data)
    assert [p.id for p in load_problems(two / "test", data)] == ["a", "b", "c"]
    plain_folder = tmp_path / "not-a-dataset"
    plain_folder.mkdir()
    with pytest.raises(ProblemError, match="not a Hugging Face dataset"):
        load_problems(plain_folder, data)
    with pytest.raises(ProblemError, match="does not exist"):
        load_problems(tmp_path / "missing.parquet", data)
    broken = tmp_path / "broken.parquet"
    broken.write_text("not parquet")
    with pytest.raises(ProblemError, match=r"cannot read parquet file .*broken\.parquet"):
        load_problems(broken, data)


def test_code_rows_are_parsed_once_at_load_and_bad_ones_named_parquet(tmp_path):
    from restem.verifiers.code.problems import Problem as CodeProblem

    rows = [
        {"id": "c1", "problem": "echo", "input_output": {"inputs": ["1\n"], "outputs": ["1\n"]}},
        {"id": "c2", "problem": "echo", "tests": "none"},  # no tests in any known form
    ]
    data = DataConfig(task="code", train_path="x", eval_path="y")
    (good,) = load_problems(_write("parquet", tmp_path, rows[:1]), data)
    assert isinstance(good.gold, CodeProblem) and good.gold.tests[0].expected == "1\n"
    path = _write("parquet", tmp_path, rows, "bad")
    with pytest.raises(ProblemError, match=r"bad\.parquet: row 2: a problem object needs"):
        load_problems(path, data)


# ---------------------------------------------------------------- chat prompts


def test_chat_prompt_uses_the_template_and_the_system_prompt(tmp_path):
    tokenizer = build_chat_tokenizer(tmp_path / "tok")
    chat = DataConfig(
        train_path="x", eval_path="y", prompt_format="chat", prompt_template="{problem}"
    )
    assert render_prompt(chat, "add 1 and 2", tokenizer) == "<|user|>add 1 and 2<eos><|assistant|>"
    with_system = DataConfig(
        train_path="x", eval_path="y", prompt_format="chat", system_prompt="be brief"
    )
    assert render_prompt(with_system, "add 1 and 2", tokenizer) == (
        "<|system|>be brief<eos><|user|>Problem: add 1 and 2\nSolution:<eos><|assistant|>"
    )
    # near misses: plain ignores the template; a tokenizer without one is a config error
    plain = DataConfig(train_path="x", eval_path="y", prompt_template="{problem}")
    assert render_prompt(plain, "add 1 and 2", tokenizer) == "add 1 and 2"
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        render_prompt(chat, "add 1 and 2", tokenizer)


def test_chat_training_text_puts_the_loss_on_the_answer_only(tmp_path):
    from restem.harness.train import IGNORE, tokenize_pairs

    tokenizer = build_chat_tokenizer(tmp_path / "tok")
    data = DataConfig(train_path="x", eval_path="y", prompt_format="chat", system_prompt="s")
    prompt = render_prompt(data, "add 1 and 2", tokenizer)
    (example,) = tokenize_pairs(tokenizer, [(prompt, "so \\boxed{3}")], max_length=96)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer("so \\boxed{3}", add_special_tokens=False)["input_ids"]
    assert example["input_ids"] == prompt_ids + answer_ids + [tokenizer.eos_token_id]
    assert example["labels"] == [IGNORE] * len(prompt_ids) + answer_ids + [tokenizer.eos_token_id]
    # the role markers are single special tokens, never spelled out character by character
    for role in ("<|system|>", "<|user|>", "<|assistant|>"):
        assert tokenizer.convert_tokens_to_ids(role) in prompt_ids


# ---------------------------------------------------------------- validation split


def test_valid_split_is_seeded_disjoint_and_keeps_order(tmp_path):
    data = DataConfig(train_path="x", eval_path="y")
    rows = [{"id": f"p{i}", "problem": f"add {i} and 0", "answer": str(i)} for i in range(50)]
    problems = load_problems(write_jsonl(tmp_path / "p.jsonl", rows), data)
    train, valid = split_validation(problems, 0.1, seed=3)
    assert len(valid) == 5 and len(train) == 45
    assert {p.id for p in train}.isdisjoint({p.id for p in valid})
    assert [p.id for p in train] == [p.id for p in problems if p not in valid]  # order kept
    assert split_validation(problems, 0.1, seed=3) == (train, valid)  # seeded
    assert split_validation(problems, 0.1, seed=4)[1] != valid  # another seed, another split
    assert len(split_validation(problems, 0.5, seed=3, limit=7)[1]) == 7
    with pytest.raises(ProblemError, match="too few"):
        split_validation(problems[:1], 0.1, seed=0)


BASE = {"name": "r", "model": {"path": "m"}, "data": {"train_path": "a", "eval_path": "b"}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data": {"train_path": "a", "eval_path": "b", "valid_fraction": 0}}, "valid_fraction"),
        ({"data": {"train_path": "a", "eval_path": "b", "valid_fraction": 1.0}}, "valid_fraction"),
        (
            {"data": {"train_path": "a", "eval_path": "b", "prompt_format": "llama"}},
            "prompt_format",
        ),
        ({"data": {"train_path": "a", "eval_path": "b", "prompt_template": "Q:"}}, "{problem}"),
        ({"train": {"lora": {"rank": 0}}}, "train.lora.rank: must be at least 1"),
        ({"train": {"lora": {"alpha": -1}}}, "train.lora.alpha: must be positive"),
        ({"train": {"lora": {"rnak": 8}}}, "unknown key train.lora.rnak"),
        ({"train": {"gradient_checkpointing": "on"}}, "expected true or false"),
        ({"model": {"path": "m", "dtype": "bf16"}}, "model.dtype: must be one of"),
    ],
)
def test_valid_chat_lora_config_errors_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("{", r"\{")):
        parse_config({**BASE, **change})


def test_chat_lora_valid_config_round_trips():
    from restem.harness.config import config_to_dict

    raw = {
        **BASE,
        "data": {
            "train_path": "a",
            "eval_path": "b",
            "valid_path": "v",
            "prompt_format": "chat",
            "system_prompt": "s",
        },
        "model": {"path": "m", "dtype": "auto"},
        "train": {"lora": {"rank": 8, "target_modules": ["q_proj", "v_proj"]}},
    }
    cfg = parse_config(raw)
    assert cfg.train.lora == LoraConfig(rank=8, target_modules=("q_proj", "v_proj"))
    assert parse_config(json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    import yaml

    assert parse_config(yaml.safe_load(yaml.safe_dump(config_to_dict(cfg)))) == cfg


@pytest.mark.realdata
def test_readme_chat_lora_recipe_parses_and_its_math_data_loads(tmp_path, data_dir):
    """The README's chat + LoRA recipe: a valid config whose MATH files load as chat prompts
    (with a tiny chat tokenizer standing in for the model's), split into train and validation."""
    import re

    import yaml
    from restem.harness.config import parse_config

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(name: math-qwen-chat\n.*?)```", readme, re.DOTALL)
    assert block, "the chat recipe is in the README"
    raw = yaml.safe_load(block.group(1))
    for key in ("train_path", "eval_path"):
        raw["data"][key] = raw["data"][key].replace("../shared/data", str(data_dir))
    cfg = parse_config(raw)
    assert cfg.data.prompt_format == "chat" and cfg.train.lora.target_modules == ("all-linear",)
    assert cfg.data.system_prompt.endswith("within \\boxed{}.")

    tokenizer = build_chat_tokenizer(tmp_path / "tok")
    train = load_problems(cfg.data.train_path, cfg.data, tokenizer=tokenizer)
    held_out = load_problems(cfg.data.eval_path, cfg.data, tokenizer=tokenizer)
    assert len(train) == 7500 and len(held_out) == 500
    assert train[0].prompt.startswith(f"<|system|>{cfg.data.system_prompt}<eos><|user|>")
    assert train[0].prompt.endswith("<eos><|assistant|>")
    train, valid = split_validation(train, cfg.data.valid_fraction, cfg.seed, 200)
    assert len(valid) == 200 and len(train) == 7300
