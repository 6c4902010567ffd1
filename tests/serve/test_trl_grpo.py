"""TRL's real GRPOTrainer trains a tiny model built here, with restem's math reward."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("trl", reason="the trainers extra is not installed: pip install '.[trainers]'")
torch = pytest.importorskip("torch", reason="the harness extra is not installed")

from restem.rewards import MathReward  # noqa: E402

PROMPT = "add {i} and 0\nSolution:"


def tiny_model(folder):
    """A 1-layer GPT-2 taught for a few steps to end with \\boxed{1} (no download)."""
    from restem.harness.demo import build_tiny_model, build_tokenizer

    tokenizer = build_tokenizer(folder / "tokenizer")
    model = build_tiny_model(tokenizer, seed=0, n_positions=64, n_embd=32, n_layer=1, n_head=2)
    texts = [PROMPT.format(i=i) + " so \\boxed{1}" + tokenizer.eos_token for i in range(8)]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(str(folder / "model"))
    tokenizer.save_pretrained(str(folder / "model"))
    return str(folder / "model"), tokenizer


class Recording(MathReward):
    """restem's reward, keeping what it returned per call (to find it in TRL's logs)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[list[float | None]] = []
        self.seen_columns: set[str] = set()

    def __call__(self, prompts=None, completions=(), **columns):
        rewards = super().__call__(prompts, completions, **columns)
        self.calls.append(rewards)
        self.seen_columns |= set(columns)
        return rewards


@pytest.mark.slow
def test_trl_grpo_trainer_runs_with_restem_math_reward(tmp_path):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model_path, tokenizer = tiny_model(tmp_path)
    # Gold 1 for most rows (the model's answer), 2 for some (a wrong answer), and an unusable
    # gold in one row, which TRL must ignore rather than count as 0.
    golds = ["1", "1", "2", "1", "", "1", "2", "1"]
    dataset = Dataset.from_dict(
        {"prompt": [PROMPT.format(i=i) for i in range(8)], "solution_text": golds}
    )
    reward = Recording(gold_column="solution_text")
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=12,
        max_steps=2,
        logging_steps=1,
        learning_rate=1e-4,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model_path,
        reward_funcs=[reward],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()

    assert trainer.state.global_step >= 2
    logged = [
        entry["rewards/restem_math/mean"]
        for entry in trainer.state.log_history
        if "rewards/restem_math/mean" in entry
    ]
    assert len(logged) >= 2, trainer.state.log_history
    assert len(reward.calls) >= 2
    assert "solution_text" in reward.seen_columns
    returned = [r for call in reward.calls for r in call]
    assert any(r == 1.0 for r in returned), returned  # the taught answer is judged correct
    # Each logged mean is the mean of what restem returned in that step (None left out).
    for value, call in zip(logged, reward.calls):
        usable = [r for r in call if r is not None]
        if not usable:
            assert math.isnan(value)
            continue
        assert math.isclose(value, sum(usable) / len(usable), abs_tol=1e-6), (value, call)
    assert None in returned  # the unusable gold came back as None, which TRL skips
