"""The harness on a real Ray instance (2 CPUs, started here): the E-step fanned out over generator
actors, verification on verifier actors, a loop run with both, and a generator actor killed
mid-generate. No mocks: real actors, real models, real SIGKILLs."""

from __future__ import annotations

import itertools
import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from restem.harness.config import SampleConfig, VerifyConfig, parse_config  # noqa: E402
from restem.harness.generate import (  # noqa: E402
    GenerationError,
    RayGenerator,
    TransformersGenerator,
    shard_bounds,
    shard_seed,
)
from restem.harness.tasks import TaskProblem, make_task  # noqa: E402

from tests.harness.conftest import tiny_config  # noqa: E402

PROMPTS = [f"add {i} and {i + 1}\nSolution:" for i in range(6)]


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> str:
    """A randomly initialised 1-layer GPT-2 (no training: built in a moment)."""
    from restem.harness.demo import build_tiny_model, build_tokenizer

    folder = tmp_path_factory.mktemp("random-model")
    tokenizer = build_tokenizer(folder)
    model = build_tiny_model(
        tokenizer,
        seed=0,
        n_positions=64,
        n_embd=32,
        n_layer=1,
        n_head=2,
        initializer_range=0.5,  # wild enough that different prompts get different completions
    )
    model.save_pretrained(str(folder))
    return str(folder)


def _sample_config(**overrides) -> SampleConfig:
    # batch_size 1: no padding, so greedy decoding cannot differ with batch composition.
    return SampleConfig(**{"max_new_tokens": 16, "batch_size": 1, **overrides})


@pytest.fixture(scope="module")
def ray_generator(ray_instance, random_model):
    from restem.harness.train import load_tokenizer

    generator = RayGenerator(
        random_model, load_tokenizer(random_model), _sample_config(), workers=2
    )
    yield generator
    generator.close()


def _local_generator(model_path: str, **overrides) -> TransformersGenerator:
    from restem.harness.train import load_model, load_tokenizer

    sample = _sample_config(**overrides)
    return TransformersGenerator(
        load_model(model_path),
        load_tokenizer(model_path),
        batch_size=sample.batch_size,
        max_new_tokens=sample.max_new_tokens,
    )


def test_shards_are_contiguous_and_seeds_stable():
    for total, parts in [(6, 2), (7, 3), (2, 5), (1, 1), (10, 4)]:
        bounds = shard_bounds(total, parts)
        assert bounds[0][0] == 0 and bounds[-1][1] == total
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))  # contiguous, no overlap
        sizes = [end - start for start, end in bounds]
        assert len(bounds) == min(total, parts) and max(sizes) - min(sizes) <= 1
    assert shard_seed(7, 0) == 7  # one worker samples what a local generator would
    assert shard_seed(7, 3) == shard_seed(7, 3) != shard_seed(7, 4)
    assert shard_seed(7, 3) != shard_seed(8, 3)


@pytest.mark.slow
def test_ray_generator_matches_the_local_generator(ray_generator, random_model):
    assert [w["slot"] for w in ray_generator.worker_info()] == [0, 1]
    assert len({w["pid"] for w in ray_generator.worker_info()}) == 2  # two actor processes
    local = _local_generator(random_model)

    greedy = ray_generator.generate(PROMPTS, n=1, temperature=None)
    assert greedy == local.generate(PROMPTS, n=1, temperature=None)  # and in prompt order
    assert len({c[0] for c in greedy}) > 1  # the prompts really give different completions

    kwargs = {"n": 3, "temperature": 1.0, "top_k": 40}
    sampled = ray_generator.generate(PROMPTS, seed=5, **kwargs)
    assert [len(c) for c in sampled] == [3] * len(PROMPTS)
    assert all(len(text) > 0 for c in sampled for text in c)
    assert ray_generator.generate(PROMPTS, seed=5, **kwargs) == sampled  # reproducible
    assert ray_generator.generate(PROMPTS, seed=6, **kwargs) != sampled
    # The first shard (prompts 0-2, on worker 0) keeps the call's seed: a local generator draws
    # the same samples for it.
    assert local.generate(PROMPTS[:3], seed=5, **kwargs) == sampled[:3]
    assert ray_generator.generate([], n=2) == []


@pytest.mark.slow
def test_killed_generator_actor_mid_generate(ray_generator):
    kwargs = {"n": 16, "temperature": 1.0, "top_k": 40, "seed": 11}
    prompts = PROMPTS[:4]
    tick = time.monotonic()
    expected = ray_generator.generate(prompts, **kwargs)  # uninterrupted: the reference
    shard_s = time.monotonic() - tick
    stats = ray_generator.stats
    lost, retried = stats.lost_workers, stats.retried_chunks
    victim = ray_generator.worker_info()[1]

    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(out=ray_generator.generate(prompts, **kwargs))
    )
    thread.start()
    time.sleep(shard_s / 4)  # well inside the shards (both run at once)
    os.kill(victim["pid"], signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive(), "generate() hung after its worker was killed"

    assert stats.lost_workers == lost + 1 and stats.retried_chunks == retried + 1
    assert result["out"] == expected  # every completion once, in order, from the same seeds
    assert [len(c) for c in result["out"]] == [16] * 4
    replacement = ray_generator.worker_info()[1]
    assert replacement["pid"] != victim["pid"]


@pytest.mark.slow
def test_unreadable_checkpoint_is_a_clear_error(ray_instance, random_model, tmp_path):
    from restem.harness.train import load_tokenizer

    tokenizer = load_tokenizer(random_model)
    # What a node without the run directory sees: an absolute path that is not there.
    missing = tmp_path / "not-on-this-node" / "iter_1" / "model"
    with pytest.raises(GenerationError, match=r"(?s)cannot load the model .*model.*shared storage"):
        RayGenerator(str(missing), tokenizer, _sample_config(), workers=1)
    with pytest.raises(GenerationError, match="vllm, which needs GPU workers"):
        RayGenerator(random_model, None, _sample_config(backend="vllm"), workers=1)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _actors() -> Counter:
    from ray._private import state  # the public state API needs the dashboard

    return Counter((a["ActorClassName"], a["State"]) for a in state.actors().values())


@pytest.mark.slow
def test_loop_with_ray_executors_matches_local_verification(ray_instance, tiny_assets, tmp_path):
    from restem.harness.loop import run

    before = _actors()
    raw = tiny_config(tiny_assets, tmp_path, name="ray")
    raw["baseline"] = False
    raw["sample"]["executor"] = "ray"
    raw["verify"].update(executor="ray", chunk=5)
    raw["ray"] = {"sample_workers": 2, "verify_workers": 2}
    cfg = parse_config(raw)
    summary = run(cfg)
    assert [r["model"] for r in summary["rows"]] == ["base", "iter_1"]
    assert ray.is_initialized()  # a Ray instance the run did not start is left running

    it = tmp_path / "ray" / "iter_1"
    generations = _jsonl(it / "generations.jsonl")
    journal = _jsonl(it / "verdicts.jsonl")
    keys = Counter((r["problem_id"], r["sample"]) for r in generations)
    assert len(keys) == 8 * 4 and max(keys.values()) == 1, "missing or duplicated samples"
    assert Counter((r["problem_id"], r["sample"]) for r in journal) == keys
    assert any(v["correct"] for v in journal) and not all(v["correct"] for v in journal)

    # Every actor the run started (2 generators for each of 3 stages, 2 verifiers) is gone.
    gone = Counter({("GeneratorWorker", "DEAD"): 6, ("VerifierWorker", "DEAD"): 2})
    deadline = time.monotonic() + 20  # ray.kill is asynchronous
    while (started := _actors() - before) != gone and time.monotonic() < deadline:
        time.sleep(0.5)
    assert started == gone

    # The same samples through a local executor: the same verdicts as the Ray-made journal.
    problems = {
        r["id"]: TaskProblem(r["id"], "", r["answer"]) for r in _jsonl(Path(tiny_assets["train"]))
    }
    items = [(problems[r["problem_id"]], r["completion"]) for r in generations]
    task = make_task(cfg.data, VerifyConfig(workers=1))
    try:
        local = task.verify(items)
    finally:
        task.close()
    by_key = {(r["problem_id"], r["sample"]): r for r in journal}
    journaled = [by_key[(r["problem_id"], r["sample"])] for r in generations]
    assert [(j.status, j.correct) for j in local] == [
        (r["status"], r["correct"]) for r in journaled
    ]
