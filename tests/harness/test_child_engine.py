"""The E-step engine in a child process (how the vLLM generator runs): the same completions as
in this process, the child gone after close, and its failures raised as GenerationError. vLLM
itself cannot run here (no GPU); a transformers engine stands in as the child's engine."""

from __future__ import annotations

import os
import signal

import pytest
from restem.harness.generate import ChildProcessGenerator, TransformersGenerator

from restem.errors import GenerationError
from tests.harness.conftest import PROMPT

pytestmark = pytest.mark.slow

PROMPTS = [PROMPT.format(problem=f"add {i} and 0") for i in range(3)]


def _tiny_engine(model_path: str) -> TransformersGenerator:
    from restem.harness.train import load_model, load_tokenizer

    return TransformersGenerator(
        load_model(model_path), load_tokenizer(model_path), batch_size=4, max_new_tokens=10
    )


def _failing_engine() -> None:
    raise RuntimeError("no GPU here")


def test_child_engine_matches_in_process_and_exits_on_close(tiny_assets):
    child = ChildProcessGenerator(
        _tiny_engine, (tiny_assets["base"],), batch_size=4, max_new_tokens=10, name="test engine"
    )
    local = _tiny_engine(tiny_assets["base"])
    try:
        assert child.generate(PROMPTS, n=1) == local.generate(PROMPTS, n=1)
        sampled = dict(n=3, temperature=1.0, top_k=40, seed=5)
        assert child.generate(PROMPTS, **sampled) == local.generate(PROMPTS, **sampled)
        process = child._process
    finally:
        child.close()
    assert not process.is_alive() and process.exitcode == 0  # it exited by itself
    with pytest.raises(GenerationError, match="closed"):
        child.generate(PROMPTS)
    child.close()  # twice is harmless


def test_child_engine_failures_are_generation_errors(tiny_assets):
    with pytest.raises(GenerationError, match="cannot start: RuntimeError: no GPU here"):
        ChildProcessGenerator(_failing_engine, (), batch_size=1, max_new_tokens=1)

    child = ChildProcessGenerator(
        _tiny_engine, (tiny_assets["base"],), batch_size=4, max_new_tokens=10
    )
    try:
        os.kill(child.pid, signal.SIGKILL)  # as the OOM killer would
        with pytest.raises(GenerationError, match=r"gone \(status -9\)"):
            child.generate(PROMPTS)
    finally:
        child.close()
