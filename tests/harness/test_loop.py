"""The ReST-EM loop end to end on a tiny real model: one full iteration, and resume after a kill
in each stage (a real SIGKILL of a real `restem train` process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from restem.harness.config import parse_config
from restem.harness.loop import RunError, run

from tests.harness.conftest import tiny_config

pytestmark = pytest.mark.slow


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _check_complete_run(run_dir: Path, problems: int = 8, k: int = 4) -> None:
    it = run_dir / "iter_1"
    generations = _jsonl(it / "generations.jsonl")
    verdicts = _jsonl(it / "verdicts.jsonl")
    keys = Counter((r["problem_id"], r["sample"]) for r in generations)
    assert len(keys) == problems * k and max(keys.values()) == 1, "missing or duplicated samples"
    vkeys = Counter((r["problem_id"], r["sample"]) for r in verdicts)
    assert set(vkeys) == set(keys) and max(vkeys.values()) == 1, "missing or duplicated verdicts"
    assert (it / "model" / "config.json").exists()
    assert json.loads((it / "eval.json").read_text())["pass@1"] >= 0
    models = [r["model"] for r in _jsonl(run_dir / "metrics.jsonl")]
    assert models == ["base", "iter_1", "sft-human"]
    assert (run_dir / "reward.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_full_iteration_math(tiny_assets, tmp_path, capsys):
    cfg = parse_config(tiny_config(tiny_assets, tmp_path))
    summary = run(cfg)
    run_dir = tmp_path / "t"
    _check_complete_run(run_dir)

    verdicts = {
        (r["problem_id"], r["sample"]): r for r in _jsonl(run_dir / "iter_1" / "verdicts.jsonl")
    }
    kept = _jsonl(run_dir / "iter_1" / "kept.jsonl")
    assert kept, "the tiny model answers \\boxed{1}: some samples must be kept"
    assert all(verdicts[(r["problem_id"], r["sample"])]["correct"] for r in kept)
    assert "p7" not in {r["problem_id"] for r in kept}  # its gold is 2
    per_problem = Counter(r["problem_id"] for r in kept)
    assert max(per_problem.values()) <= 2  # filter.max_per_problem
    distinct = {(r["problem_id"], r["completion"].strip()) for r in kept}
    assert len(distinct) == len(kept)  # exact duplicates dropped

    rows = summary["rows"]
    assert rows[-1]["model"] == "sft-human" and rows[-1]["steps"] == rows[1]["steps"]
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert parse_config(saved) == cfg  # the resolved config round-trips
    table = capsys.readouterr().out
    assert "held-out pass@1" in table and "sft-human" in table

    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(run_dir / "iter_1" / "model"))

    with pytest.raises(RunError, match="--resume"):
        run(cfg)  # a second start must not overwrite the finished run


def test_one_full_iteration_code_in_the_sandbox(tiny_code_assets, tmp_path):
    raw = tiny_config(tiny_code_assets, tmp_path, name="code")
    raw["data"] = {
        "task": "code",
        "train_path": tiny_code_assets["train"],
        "eval_path": tiny_code_assets["eval"],
        "valid_path": tiny_code_assets["valid"],
        "prompt_template": raw["data"]["prompt_template"],
    }
    raw["verify"] = {"workers": 2, "backend": "local", "timeout_s": 10.0}
    raw["sample"].update(temperature=0.3, max_new_tokens=24)  # " print(input())" must fit
    raw["baseline"] = False
    summary = run(parse_config(raw))
    it = tmp_path / "code" / "iter_1"
    verdicts = _jsonl(it / "verdicts.jsonl")
    assert len(verdicts) == 6 * 4
    statuses = Counter(v["status"] for v in verdicts)
    assert statuses["passed"] > 0, statuses  # print(input()) really ran in the sandbox
    kept_problems = {r["problem_id"] for r in _jsonl(it / "kept.jsonl")}
    assert kept_problems and "c5-2" not in kept_problems  # wants the input twice
    assert [r["model"] for r in summary["rows"]] == ["base", "iter_1"]
    assert (it / "model" / "config.json").exists()


def _restem(*args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RESTEM_FAULT"}
    if fault:
        env["RESTEM_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "restem.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("fault", ["sample:2", "verify:3", "train:1"])
def test_resume_after_a_kill_in_each_stage(tiny_assets, tmp_path, fault):
    config_path = tmp_path / "run.yaml"
    config_path.write_text(yaml.safe_dump(tiny_config(tiny_assets, tmp_path, max_steps=6)))
    run_dir = tmp_path / "t"

    killed = _restem("train", "--config", str(config_path), fault=fault)
    assert killed.returncode == -9, killed.stderr[-2000:]
    it = run_dir / "iter_1"
    stage = fault.split(":")[0]
    if stage == "sample":
        assert len(_jsonl(it / "generations.jsonl")) == 2 * 2 * 4  # two chunks of 2 problems x 4
        assert not (it / "verdicts.jsonl").exists()
    if stage == "verify":
        assert len(_jsonl(it / "verdicts.jsonl")) == 3 * 4  # three chunks of 4
    if stage == "train":
        assert list((it / "model.trainer").glob("checkpoint-*")), "killed after a checkpoint"
        assert not (it / "model").exists()
    generated_before = (it / "generations.jsonl").read_text()

    resumed = _restem("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _check_complete_run(run_dir)
    if stage != "sample":  # finished generation is never redone
        assert (it / "generations.jsonl").read_text() == generated_before
    if stage == "train":
        assert "[restem] M-step: resuming from checkpoint-" in resumed.stderr


def test_resume_of_a_folder_that_is_not_a_run(tmp_path):
    result = _restem("train", "--resume", str(tmp_path))
    assert result.returncode == 2
    assert "not a restem run directory" in result.stderr


@pytest.mark.realdata
def test_math_data_config_smoke(tiny_assets, tmp_path, data_dir):
    """The README's MATH recipe, on the tiny model for one short iteration (a real model would
    only change model.path): problems load from the real files, samples are verified."""
    raw = tiny_config(tiny_assets, tmp_path, name="math")
    raw["data"] = {
        "task": "math",
        "train_path": str(data_dir / "math" / "math_train.jsonl"),
        "eval_path": str(data_dir / "math" / "math500.jsonl"),
        "answer_field": "answer_last_boxed",
        "max_train_problems": 8,
        "valid_fraction": 0.5,  # 4 to train on, 4 to validate
        "max_eval_problems": 4,
        "prompt_template": "Problem: {problem}\nSolution:",
    }
    raw["baseline"] = False
    summary = run(parse_config(raw))
    it = tmp_path / "math" / "iter_1"
    verdicts = _jsonl(it / "verdicts.jsonl")
    assert len(verdicts) == 4 * 4
    assert all(v["status"] in ("correct", "incorrect", "no_answer") for v in verdicts)
    assert summary["rows"][0]["problems"] == 4  # held-out problems from MATH-500


def test_resumed_e_step_writes_byte_identical_generations(tiny_assets, tmp_path):
    """Killed mid-E-step (after its second chunk, then the last chunk cut as a torn write would
    leave it) and resumed: the same generations, byte for byte, as an uninterrupted run."""
    raw = tiny_config(tiny_assets, tmp_path, name="whole")
    raw["baseline"] = False
    whole_config = tmp_path / "whole.yaml"
    whole_config.write_text(yaml.safe_dump(raw))
    killed_config = tmp_path / "killed.yaml"
    killed_config.write_text(yaml.safe_dump({**raw, "name": "killed"}))

    killed = _restem("train", "--config", str(killed_config), fault="sample:2")
    assert killed.returncode == -9, killed.stderr[-2000:]
    generations = tmp_path / "killed" / "iter_1" / "generations.jsonl"
    lines = generations.read_text().splitlines(keepends=True)
    assert len(lines) == 2 * 2 * 4  # two chunks of 2 problems x 4 samples
    generations.write_text("".join(lines[:-3]))  # the second chunk only partly on disk
    times_before = json.loads((generations.parent / "times.json").read_text())["sample_s"]

    resumed = _restem("train", "--resume", str(tmp_path / "killed"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    whole = _restem("train", "--config", str(whole_config))
    assert whole.returncode == 0, whole.stderr[-3000:]

    expected = (tmp_path / "whole" / "iter_1" / "generations.jsonl").read_bytes()
    assert generations.read_bytes() == expected
    assert len(expected.splitlines()) == 8 * 4
    # the E-step's time is the sum over both attempts
    stats = json.loads((generations.parent / "stats.json").read_text())
    assert stats["sample_s"] > times_before
