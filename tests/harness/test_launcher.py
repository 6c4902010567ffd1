"""The M-step as a distributed job (train.launcher torchrun / accelerate) on a tiny real model:
real launchers, real worker processes (gloo DDP on CPU), real checkpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from restem.harness.config import parse_config
from restem.harness.finetune_job import job_command, job_dir_for, read_result
from restem.harness.loop import RunError, _prepare, train_stage

from tests.harness.conftest import PROMPT, tiny_config

# The tiny base model answers \boxed{1}; it is taught \boxed{2} here, so the loss has room to fall.
PAIRS = [(PROMPT.format(problem=f"add {i} and 1"), " so \\boxed{2}") for i in range(8)]


def _context(assets: dict, tmp_path: Path, **train):
    raw = tiny_config(assets, tmp_path / "runs", learning_rate=1e-2, **train)
    return _prepare(parse_config(raw), resume=False)


def _weights(path) -> dict:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(path))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _check_trained(out: Path, base: str, *, processes: int) -> dict:
    """The checkpoint is complete and loadable, it differs from the base model, the loss fell."""
    from restem.harness.train import load_tokenizer

    assert (out / "config.json").exists()
    assert not out.with_name("model.partial").exists()
    assert not out.with_name("model.trainer").exists(), "trainer checkpoints left behind"
    assert json.loads(out.with_name("model.steps.json").read_text()) == {"steps": 6}

    result = read_result(job_dir_for(out) / "spec.json")
    assert result["steps"] == 6
    assert result["world_size"] == processes
    losses = [row["loss"] for row in result["log_history"] if "loss" in row]
    assert len(losses) == 6  # logged every step
    assert losses[-1] < losses[0] - 0.1, f"the loss did not fall: {losses}"

    trained, start = _weights(out), _weights(base)
    assert trained.keys() == start.keys()
    changed = max((trained[k] - start[k]).abs().max().item() for k in trained)
    assert changed > 1e-3, "the weights did not change"

    tokenizer = load_tokenizer(str(out))
    assert (
        tokenizer("so \\boxed{2}")["input_ids"]
        == load_tokenizer(base)("so \\boxed{2}")["input_ids"]
    )
    return trained


# ---------------------------------------------------------------- commands (fast)


def test_job_commands(tmp_path):
    spec = tmp_path / "model.job" / "spec.json"
    tail = ["-m", "restem.harness.finetune_job", "--spec", str(spec)]
    assert job_command("torchrun", 8, spec) == [
        sys.executable,
        *("-m", "torch.distributed.run", "--standalone", "--nnodes", "1"),
        *("--nproc-per-node", "8"),
        *tail,
    ]
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1"]
    accelerate += ["--num_processes", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    assert job_command("accelerate", 1, spec) == [*accelerate, *tail]
    accelerate[accelerate.index("--num_processes") + 1] = "4"
    assert job_command("accelerate", 4, spec) == [
        *accelerate,
        *("--multi_gpu", "--main_process_port", "0"),
        *tail,
    ]
    with pytest.raises(ValueError, match="launcher"):
        job_command("inprocess", 1, spec)
    assert job_dir_for(tmp_path / "iter_1" / "model") == tmp_path / "iter_1" / "model.job"


# ---------------------------------------------------------------- real jobs (slow)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_processes_on_cpu(tiny_assets, tmp_path, launcher):
    ctx = _context(tiny_assets, tmp_path, launcher=launcher, processes=2)
    out = ctx.run_dir / "iter_1" / "model"
    out.parent.mkdir()
    assert train_stage(ctx, tiny_assets["base"], PAIRS, out) == 6
    _check_trained(out, tiny_assets["base"], processes=2)

    job = job_dir_for(out)
    spec = json.loads((job / "spec.json").read_text())
    settings = spec["settings"]
    assert settings["train"]["processes"] == 2 and settings["out_dir"] == str(out.absolute())
    assert len((job / "pairs.jsonl").read_text().splitlines()) == len(PAIRS)
    log = (job / "job.log").read_text()
    assert log.startswith(f"$ {sys.executable} -m ")
    assert "[restem] exit status 0" in log

    # A finished M-step is not run again; nor is one whose job finished (run by the loop, or by
    # hand on several nodes) when the loop was stopped before it recorded the step count.
    size = (job / "job.log").stat().st_size
    assert train_stage(ctx, tiny_assets["base"], PAIRS, out) == 6
    out.with_name("model.steps.json").unlink()
    assert train_stage(ctx, tiny_assets["base"], PAIRS, out) == 6
    assert json.loads(out.with_name("model.steps.json").read_text()) == {"steps": 6}
    assert (job / "job.log").stat().st_size == size


@pytest.mark.slow
def test_one_process_is_the_inprocess_fine_tune(tiny_assets, tmp_path):
    from restem.harness.train import FinetuneSettings, finetune

    ctx = _context(tiny_assets, tmp_path, launcher="torchrun", processes=1)
    out = ctx.run_dir / "model"
    assert train_stage(ctx, tiny_assets["base"], PAIRS, out) == 6
    trained = _check_trained(out, tiny_assets["base"], processes=1)

    # Same seed, same data, one process: the same weights as the Trainer in this process.
    finetune(
        FinetuneSettings(tiny_assets["base"], tmp_path / "inprocess", ctx.cfg.train),
        ctx.tokenizer,
        PAIRS,
    )
    reference = _weights(tmp_path / "inprocess")
    for name, value in reference.items():
        assert (trained[name] - value).abs().max().item() < 1e-4, name


@pytest.mark.slow
def test_a_killed_job_resumes_from_its_checkpoint(tiny_assets, tmp_path, monkeypatch):
    ctx = _context(tiny_assets, tmp_path, launcher="torchrun", processes=2)
    out = ctx.run_dir / "model"
    monkeypatch.setenv("RESTEM_FAULT", "train:1")  # every rank SIGKILLs itself after checkpoint-2
    with pytest.raises(RunError, match=r"(?s)exit status [1-9]\): Signal 9 \(SIGKILL\).*--resume"):
        train_stage(ctx, tiny_assets["base"], PAIRS, out)
    assert not out.exists()
    checkpoints = sorted(p.name for p in out.with_name("model.trainer").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-2"]

    monkeypatch.delenv("RESTEM_FAULT")
    assert train_stage(ctx, tiny_assets["base"], PAIRS, out) == 6
    _check_trained(out, tiny_assets["base"], processes=2)
    log = (job_dir_for(out) / "job.log").read_text()
    assert log.count("$ ") == 2  # both attempts are in the log
    assert "M-step: resuming from checkpoint-2" in log.split("[restem] exit status")[1]


@pytest.mark.slow
def test_a_failing_job_is_a_clear_error(tiny_assets, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a bad path must not become a hub download
    ctx = _context(tiny_assets, tmp_path, launcher="torchrun", processes=2)
    bad = tmp_path / "not-a-model"
    bad.mkdir()
    out = ctx.run_dir / "model"
    with pytest.raises(RunError) as caught:
        train_stage(ctx, str(bad), PAIRS, out)
    message = str(caught.value)
    first = message.splitlines()[0]
    assert first.startswith("the M-step job failed (exit status 1): ")
    assert "Error: " in first and str(bad) in first, "the first line names the cause"
    assert "-m torch.distributed.run --standalone --nnodes 1 --nproc-per-node 2" in message
    log = job_dir_for(out) / "job.log"
    assert f"log: {log}" in message and log.exists()
    assert not out.exists() and not out.with_name("model.steps.json").exists()


def test_job_spec_round_trips_lora_settings(tiny_assets, tmp_path):
    """The spec a distributed M-step reads back gives the very settings the loop wrote, LoRA and
    checkpointing included (nested sections are parsed with the config loader's checks)."""
    from restem.harness.config import LoraConfig, TrainConfig
    from restem.harness.finetune_job import write_job
    from restem.harness.train import FinetuneSettings, load_tokenizer

    settings = FinetuneSettings(
        base_path=tiny_assets["base"],
        out_dir=tmp_path / "iter_1" / "model",
        train=TrainConfig(
            lora=LoraConfig(rank=4, target_modules=("c_attn",)), gradient_checkpointing=True
        ),
        dtype="auto",
        max_steps=3,
    )
    spec_path = write_job(tmp_path / "job", settings, load_tokenizer(tiny_assets["base"]), PAIRS)
    spec = json.loads(spec_path.read_text())
    assert FinetuneSettings.from_dict(spec["settings"]) == settings
    spec["settings"]["train"]["lora"]["rank"] = 0
    with pytest.raises(ValueError, match=r"train\.lora\.rank"):
        FinetuneSettings.from_dict(spec["settings"])


def test_auto_dtype_is_float32_without_a_bf16_gpu():
    from restem.harness.train import resolve_dtype

    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"  # an explicit choice is kept
    assert resolve_dtype("float16", "cuda") == "float16"
