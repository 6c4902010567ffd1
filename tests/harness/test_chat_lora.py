"""Chat models and LoRA on tiny real models: the M-step with peft adapters merged into the saved
weights, and one full ReST-EM iteration with chat prompts + LoRA + parquet data together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from restem.harness.config import parse_config
from restem.harness.loop import _prepare, run, train_stage

from tests.harness.conftest import CHAT_SYSTEM, PROMPT, tiny_config

pytestmark = pytest.mark.slow

PAIRS = [(PROMPT.format(problem=f"add {i} and 1"), " so \\boxed{2}") for i in range(8)]


def _weights(path) -> dict:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "gradient_checkpointing"])
def test_lora_peft_m_step_merges_the_adapter(tiny_assets, tmp_path, checkpointing):
    raw = tiny_config(
        tiny_assets,
        tmp_path / "runs",
        learning_rate=1e-2,
        lora={"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["c_attn"]},
        gradient_checkpointing=checkpointing,
    )
    ctx = _prepare(parse_config(raw), resume=False)
    out = ctx.run_dir / "model"
    assert train_stage(ctx, tiny_assets["base"], PAIRS, out) == 6

    # An ordinary checkpoint: the adapter is merged, no peft files are left to load.
    assert (out / "config.json").exists() and not (out / "adapter_config.json").exists()
    assert not out.with_name("model.trainer").exists()
    assert json.loads((out / "config.json").read_text())["use_cache"] is True
    trained, base = _weights(out), _weights(tiny_assets["base"])
    assert trained.keys() == base.keys()
    changed = {k for k in trained if (trained[k] - base[k]).abs().max().item() > 1e-6}
    # Only the adapted attention projection moved; everything LoRA did not target is untouched.
    assert changed == {"transformer.h.0.attn.c_attn.weight"}, changed


def test_lora_bad_target_module_is_a_config_error(tiny_assets, tmp_path):
    from restem.errors import ConfigError

    raw = tiny_config(tiny_assets, tmp_path / "runs", lora={"target_modules": ["q_proj"]})
    ctx = _prepare(parse_config(raw), resume=False)
    with pytest.raises(ConfigError, match=r"train\.lora: .*q_proj"):
        train_stage(ctx, tiny_assets["base"], PAIRS, ctx.run_dir / "model")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_full_iteration_chat_lora_parquet_valid(tiny_chat_assets, tmp_path, capsys):
    raw = tiny_config(
        tiny_chat_assets,
        tmp_path,
        name="chat",
        max_length=96,
        lora={"rank": 4, "alpha": 8, "dropout": 0.0},  # peft's default targets for GPT-2
        gradient_checkpointing=True,
    )
    raw["data"].update(prompt_format="chat", prompt_template="{problem}", system_prompt=CHAT_SYSTEM)
    assert all(raw["data"][k].endswith(".parquet") for k in ("train_path", "eval_path"))
    summary = run(parse_config(raw))
    run_dir = tmp_path / "chat"
    it = run_dir / "iter_1"

    # The E-step continued chat prompts: the model answers in the assistant turn.
    generations = _jsonl(it / "generations.jsonl")
    assert len(generations) == 8 * 4
    kept = _jsonl(it / "kept.jsonl")
    assert kept, "the tiny chat model answers \\boxed{1}: some samples must be kept"
    assert all("<|" not in r["completion"] for r in kept)  # special tokens are not in the text
    assert (it / "model" / "config.json").exists()
    assert not (it / "model" / "adapter_config.json").exists()

    rows = summary["rows"]
    assert [r["model"] for r in rows] == ["base", "iter_1", "sft-human"]
    for r in rows:
        assert 0 <= r["valid_pass@1"] <= 1 and 0 <= r["pass@1"] <= 1
        assert r["valid_problems"] == 3 and r["problems"] == 4
    # The best iterate is the first with the highest validation score, whatever held-out says.
    loop_rows = [r for r in rows if r["iteration"] is not None]
    top = max(r["valid_pass@1"] for r in loop_rows)
    assert summary["best"]["iteration"] == next(
        r["iteration"] for r in loop_rows if r["valid_pass@1"] == top
    )
    out = capsys.readouterr().out
    assert "valid pass@1" in out and "held-out pass@1" in out
    assert "best iterate, chosen on validation" in out
