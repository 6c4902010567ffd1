"""The trainers' own calling conventions, against restem: TRL reward callables, verl's
compute_score, OpenRLHF's reward_func file and HTTP shape, and the sandbox-fusion client."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
from pathlib import Path

import pytest

from restem.rewards import (
    AsyncCodeReward,
    AsyncMathReward,
    CodeReward,
    MathReward,
    compute_score,
    extract_program,
    parse_tests,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ADD = {"input_output": {"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]}}
GOOD = "print(sum(map(int, input().split())))"


def load_file(path: Path, name: str):
    """Import a file by path, as OpenRLHF (--remote_rm_url x.py) and verl
    (custom_reward_function.path) do."""
    spec = importlib.util.spec_from_file_location(f"custom_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


# ---------------------------------------------------------------- TRL callables

# (completion as TRL passes it, gold, expected reward)
TRL_MATH = [
    ("so \\boxed{\\frac{2}{4}}", "0.5", 1.0),
    ([{"role": "assistant", "content": "it is \\boxed{3}"}], "3", 1.0),  # conversational
    ([{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{3}"}]}], "3", 1.0),
    ([{"role": "user", "content": "\\boxed{3}"}, {"role": "assistant", "content": "4"}], "3", 0.0),
    ("so \\boxed{0.33}", "\\frac13", 0.0),  # near miss
    ("\\boxed{3} or \\boxed{5}", "3", 0.0),  # hedge
    ("\\boxed{7}", 7, 1.0),  # numeric gold column
    ("\\boxed{7}", "", None),  # unusable gold: TRL ignores None
    ("\\boxed{7}", None, None),
    ("\\boxed{7}", ["7"], None),
]


def test_trl_math_reward_rows():
    reward = MathReward(gold_column="solution")
    completions = [c for c, _, _ in TRL_MATH]
    golds = [g for _, g, _ in TRL_MATH]
    got = reward(prompts=["p"] * len(golds), completions=completions, solution=golds)
    assert got == [r for _, _, r in TRL_MATH]
    assert reward.__name__ == "restem_math"


def test_trl_reward_accepts_trainer_keywords_and_names_a_missing_column():
    reward = MathReward()
    extra = {"trainer_state": object(), "log_extra": print, "log_metric": print}
    got = reward(
        prompts=["p"], completions=["\\boxed{1}"], completion_ids=[[1]], answer=["1"], **extra
    )
    assert got == [1.0]
    with pytest.raises(KeyError, match=r"no column 'answer'.*solution"):
        reward(prompts=["p"], completions=["\\boxed{1}"], solution=["1"], **extra)


def test_trl_async_rewards_match_sync():
    async def both():
        math_rewards = await AsyncMathReward()(
            prompts=["p", "p"], completions=["\\boxed{2}", "\\boxed{3}"], answer=["2", "2"]
        )
        code_rewards = await AsyncCodeReward(backend="local")(
            prompts=["p", "p"], completions=[GOOD, "print(3)"], tests=[ADD, ADD]
        )
        return math_rewards, code_rewards

    assert asyncio.run(both()) == ([1.0, 0.0], [1.0, 0.0])
    assert inspect.iscoroutinefunction(AsyncMathReward.__call__)


# (completion, tests value, expected reward)
TRL_CODE = [
    (f"Here:\n```python\n{GOOD}\n```\nDone.", ADD, 1.0),
    (f"```\n{GOOD}\n```", json.dumps(ADD), 1.0),  # tests as JSON text
    (f"```python\nprint(3)\n```\n```python\n{GOOD}\n```", ADD, 1.0),  # the last block counts
    (GOOD, {"inputs": ["1 2\n"], "outputs": ["3\n"]}, 1.0),  # bare inputs / outputs
    ("```python\nprint(3)\n```", ADD, 0.0),  # passes one test of two
    ([{"role": "assistant", "content": f"```python\n{GOOD}\n```"}], ADD, 1.0),
    (GOOD, "not json", None),
    (GOOD, "/etc/passwd", None),  # never read as a path
    (GOOD, None, None),
]


def test_trl_code_reward_rows():
    reward = CodeReward(backend="local")
    got = reward(
        prompts=["p"] * len(TRL_CODE),
        completions=[c for c, _, _ in TRL_CODE],
        tests=[t for _, t, _ in TRL_CODE],
    )
    assert got == [r for _, _, r in TRL_CODE]
    partial = CodeReward(backend="local", partial=True)
    assert partial(prompts=["p"], completions=["print(3)"], tests=[ADD]) == [0.5]


def test_extract_program_and_parse_tests():
    assert extract_program("```py\nx = 1\n```") == "x = 1"
    assert extract_program("```cpp\nint x;\n```") == "int x;"  # no python block: the last block
    assert extract_program("  print(1)") == "print(1)"  # the space after an OpenRLHF prompt
    assert extract_program("```python\nprint(1)") == "print(1)"  # an unclosed fence
    assert parse_tests('{"test_list": ["assert f(1) == 1"]}') == {"test_list": ["assert f(1) == 1"]}
    assert parse_tests("[1, 2]") is None


# ---------------------------------------------------------------- verl

# verl's documented custom reward signature (custom_reward_function.path / .name).
VERL_PARAMS = ["data_source", "solution_str", "ground_truth", "extra_info"]


def test_verl_compute_score_signature_and_file():
    compute = load_file(EXAMPLES / "verl_reward.py", "compute_score")
    assert compute is compute_score
    params = list(inspect.signature(compute).parameters)
    assert params[:4] == VERL_PARAMS
    assert inspect.signature(compute).parameters["extra_info"].default is None


# (data_source, solution_str, ground_truth, score, status)
VERL_CASES = [
    ("lighteval/MATH", "so $\\boxed{\\dfrac{6}{8}}$", "\\frac{3}{4}", 1.0, "correct"),
    ("lighteval/MATH", "so $\\boxed{0.75}$", "\\frac{3}{4}", 1.0, "correct"),
    ("lighteval/MATH", "so $\\boxed{0.7}$", "\\frac{3}{4}", 0.0, "incorrect"),
    ("lighteval/MATH", "so $\\boxed{1}$", "", 0.0, "invalid_gold"),
    ("gsm8k", "#### 12 so \\boxed{12}", 12, 1.0, "correct"),
    ("codecontests", f"```python\n{GOOD}\n```", json.dumps(ADD), 1.0, "passed"),
    ("codecontests", "print(3)", ADD, 0.0, "wrong_answer"),
    ("codecontests", GOOD, {"input_output": "bad"}, 0.0, "invalid_problem"),
]


@pytest.mark.parametrize(("source", "solution", "truth", "score", "status"), VERL_CASES)
def test_verl_compute_score_as_verl_calls_it(source, solution, truth, score, status):
    # verl's reward managers call by keyword, with reward_kwargs merged in.
    out = compute_score(
        data_source=source,
        solution_str=solution,
        ground_truth=truth,
        extra_info={"index": 0},
        backend="local",
    )
    assert out["score"] == score and out["status"] == status and out["reason"]
    bare = compute_score(source, solution, truth, None, return_dict=False, backend="local")
    assert bare == score and isinstance(bare, float)


def test_verl_own_loader_calls_restem_compute_score():
    """verl's own get_custom_reward_fn, when verl is importable (it is not in `make setup`: it
    pins transformers below 5.11 and pulls tensordict, wandb and hydra)."""
    reward = pytest.importorskip("verl.trainer.ppo.reward", reason="verl is not installed")
    from omegaconf import OmegaConf

    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": str(EXAMPLES / "verl_reward.py"),
                    "name": "compute_score",
                    "reward_kwargs": {"return_dict": False},
                }
            }
        }
    )
    fn = reward.get_custom_reward_fn(config)
    assert fn("lighteval/MATH", "\\boxed{2}", "2", None) == 1.0


# ---------------------------------------------------------------- OpenRLHF


def test_openrlhf_reward_func_file():
    torch = pytest.importorskip("torch")
    reward_func = load_file(EXAMPLES / "openrlhf_reward_func.py", "reward_func")
    prompts = ["Problem: 1+1?\nSolution:", "Problem: 2+2?\nSolution:", "Write a+b.\n"]
    responses = [" so \\boxed{2}", " so \\boxed{5}", f"```python\n{GOOD}\n```"]
    labels = ["2", "4", json.dumps(ADD)]
    out = reward_func([p + r for p, r in zip(prompts, responses)], prompts, labels)
    assert isinstance(out["rewards"], torch.Tensor)
    assert out["rewards"].tolist() == [1.0, 0.0, 1.0]
    assert out["scores"].tolist() == [1.0, 0.0, 1.0]
    assert set(out["extra_logs"]) == {"restem_accuracy", "restem_unusable"}


def test_openrlhf_judges_the_response_not_the_prompt():
    reward_func = load_file(EXAMPLES / "openrlhf_reward_func.py", "reward_func")
    # The prompt holds a worked example ending in \boxed{4}; the response has no answer.
    prompt = "Example: 2+2 = \\boxed{4}.\nNow: 3+1?\n"
    out = reward_func([prompt + "I do not know."], [prompt], ["4"])
    assert out["rewards"].tolist() == [0.0]


def test_openrlhf_http_get_reward(server):
    """OpenRLHF's remote reward client posts exactly {"query", "prompts", "labels"}."""
    prompts = ["Q: 1/2+1/4?\nA:", "Q: 3*3?\nA:", "Write a+b.\n", "Q: ?\nA:"]
    responses = [" \\boxed{\\frac{3}{4}}", " \\boxed{6}", f"```python\n{GOOD}\n```", " \\boxed{1}"]
    payload = {
        "query": [p + r for p, r in zip(prompts, responses)],
        "prompts": prompts,
        "labels": ["0.75", "9", json.dumps(ADD), ""],
    }
    with server.client() as client:
        r = client.post("/get_reward", json=payload)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rewards"] == [1.0, 0.0, 1.0, 0.0]
    assert body["scores"] == body["rewards"]
    assert body["extra_logs"]["restem_unusable"] == [0.0, 0.0, 0.0, 1.0]
    assert body["statuses"] == ["correct", "incorrect", "passed", "invalid_gold"]


# ---------------------------------------------------------------- SandboxFusion


def test_verl_sandbox_fusion_client_run_code(open_server):
    sf = pytest.importorskip("sandbox_fusion", reason="the trainers extra is not installed")
    from sandbox_fusion import RunCodeRequest, RunStatus, run_code

    ok = run_code(
        RunCodeRequest(code="print(input()[::-1])", language="python", stdin="abc"),
        endpoint=open_server.url,
        max_attempts=1,
    )
    assert ok.status == RunStatus.Success
    assert ok.run_result.stdout == "cba\n" and ok.run_result.return_code == 0
    assert ok.run_result.status.value == "Finished"

    failed = run_code(
        RunCodeRequest(code="import sys\nprint('x')\nsys.exit(3)", language="python"),
        endpoint=open_server.url,
        max_attempts=1,
    )
    assert failed.status == RunStatus.Failed and failed.run_result.return_code == 3
    assert failed.run_result.stdout == "x\n"

    slow = run_code(
        RunCodeRequest(code="while True: pass", language="python", run_timeout=1),
        endpoint=open_server.url,
        max_attempts=1,
    )
    assert slow.status == RunStatus.Failed
    assert slow.run_result.status.value == "TimeLimitExceeded"
    mapping = sf.SummaryMapping(RunTimeout="timeout")
    assert sf.summary_run_code_result(slow, mapping) == "timeout"

    with pytest.raises(Exception, match="runs python only"):
        run_code(
            RunCodeRequest(code="int main(){}", language="cpp"),
            endpoint=open_server.url,
            max_attempts=1,
        )


def test_verl_sandbox_fusion_request_shape(open_server):
    """The body verl's sandbox client (call_sandbox_api) posts, memory_limit_MB included."""
    import httpx

    body = {
        "code": "x = bytearray(600 * 1024 * 1024)\nprint('allocated')",
        "stdin": "",
        "language": "python",
        "run_timeout": 5,
        "compile_timeout": 10,
        "memory_limit_MB": 128,
        "files": {},
        "fetch_files": [],
    }
    r = httpx.post(f"{open_server.url}/run_code", json=body, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "Failed"
    assert "allocated" not in r.json()["run_result"]["stdout"]
