"""restem as OpenRLHF's reward: `--remote_rm_url examples/openrlhf_reward_func.py --label_key answer`.

OpenRLHF imports this file and calls `reward_func(queries, prompts, labels)`: each query is the
prompt plus the model's response, each label the row's gold answer (or, for code, its tests as a
JSON object). restem judges the response part and returns rewards, scores and extra logs.
"""

from restem.rewards import reward_func

__all__ = ["reward_func"]
