"""restem as verl's reward: set in the PPO / GRPO config

    reward.custom_reward_function.path=examples/verl_reward.py
    reward.custom_reward_function.name=compute_score

(older verl releases: custom_reward_function.path / .name)

verl calls `compute_score(data_source, solution_str, ground_truth, extra_info)` per sample; the
ground truth is the gold answer, or a code problem with tests. Returns {"score", "status",
"reason"}; `+reward.custom_reward_function.reward_kwargs.return_dict=false` gives the bare float.
"""

from restem.rewards import compute_score

__all__ = ["compute_score"]
