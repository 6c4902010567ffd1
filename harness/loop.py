"""The ReST-EM loop, top to bottom.

    0. set up: run directory, config, tokenizer, problems (training, validation, held-out)
    1. evaluate the base model (iteration 0)
    for t in 1..T:
        2. E-step: sample k solutions per training problem from the current model
        3. verify every sample (in parallel, hard time limits; a timeout is a rejected sample)
        4. filter: keep the correct ones, drop exact duplicates, at most N per problem
        5. M-step: fine-tune the *base* model on the kept samples
        6. evaluate: validation pass@1 chooses early stopping and the best iterate; the held-out
           (test) scores are reported every iteration and never used to choose
    7. baseline: fine-tune the base model on human-written solutions for as many steps
    8. summary table and plot

Every stage appends to or atomically writes files in the run directory (see harness.rundir), and
skips work those files show as done, so ``--resume`` after a kill redoes nothing finished. The
E-step works in fixed chunks of the full problem list, each with its own seed, and redoes an
incomplete chunk whole: a resumed run writes the same samples as an uninterrupted one.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from restem.harness.config import RunConfig, config_to_dict, parse_config
from restem.harness.generate import GenerationError, make_generator, resolve_device
from restem.harness.rundir import (
    SampleRow,
    VerdictRow,
    append_jsonl,
    fault_point,
    read_json,
    read_jsonl,
    write_json_atomic,
    write_jsonl_atomic,
)
from restem.harness.tasks import (
    Task,
    TaskProblem,
    answer_text,
    load_problems,
    make_task,
    make_verify_executor,
    split_validation,
)
from restem.harness.train import FinetuneSettings
from restem.verifiers.executor import Executor, ExecutorError, connect_ray

from restem.errors import RunError

__all__ = ["RunError", "load_run_config", "run"]


def _log(message: str) -> None:
    print(f"[restem] {message}", file=sys.stderr, flush=True)


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="", leave=False, file=sys.stderr, dynamic_ncols=True)


def load_run_config(run_dir: Path) -> RunConfig:
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise RunError(f"{run_dir} is not a restem run directory (no config.yaml)")
    return parse_config(yaml.safe_load(path.read_text(encoding="utf-8")))


@dataclass
class _Context:
    cfg: RunConfig
    run_dir: Path
    task: Task
    tokenizer: object
    device: str
    train: list[TaskProblem]
    held_out: list[TaskProblem]  # the test set: reported, never used to choose
    valid: list[TaskProblem]  # chooses early stopping and the best iterate
    executor: Executor  # the task verifies on it; made once per run, closed at its end


# ---------------------------------------------------------------- stages


def _generator_for(ctx: _Context, model_path: str):
    """The E-step's generator for ``model_path``; the caller closes it (Ray workers hold a model
    each)."""
    cfg = ctx.cfg
    if cfg.sample.executor == "ray":
        from restem.harness.generate import RayGenerator

        return RayGenerator(
            model_path,
            ctx.tokenizer,
            cfg.sample,
            dtype=cfg.model.dtype,
            address=cfg.ray.address,
            workers=cfg.ray.sample_workers,
            gpus=cfg.ray.sample_gpus,
        )
    from restem.harness.train import load_model

    model = None
    if ctx.cfg.sample.backend == "transformers":
        model = load_model(model_path, ctx.cfg.model.dtype, ctx.device)
    return make_generator(ctx.cfg.sample.backend, model, ctx.tokenizer, model_path, ctx.cfg.sample)


class _StageTimes:
    """Seconds spent per stage of an iteration, saved as they accrue (``times.json``), so the
    times of a resumed run add up across its attempts (less the part of a chunk a kill cut)."""

    def __init__(self, path: Path):
        self.path = path
        self.times: dict[str, float] = read_json(path) or {}

    def add(self, key: str, seconds: float) -> None:
        self.times[key] = round(self.times.get(key, 0.0) + seconds, 2)
        write_json_atomic(self.path, self.times)


def sample_stage(
    ctx: _Context, model_path: str, path: Path, seed: int, times: _StageTimes | None = None
) -> list[SampleRow]:
    """2. E-step: k samples per problem, appended one fixed chunk at a time.

    Chunk boundaries are fixed over the full problem list (``<path>.plan.json`` keeps the chunk
    size) and chunk c is sampled with seed ``seed + its first problem's index``. On resume the
    complete chunks are kept, the rows of an incomplete one are dropped, and sampling goes on from
    it: the file ends up byte-identical to an uninterrupted run's.
    """
    k = ctx.cfg.sample.k
    tick = time.monotonic()
    rows = read_jsonl(path)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["problem_id"]] = counts.get(row["problem_id"], 0) + 1
    if any(counts.get(p.id, 0) < k for p in ctx.train):
        generator = _generator_for(ctx, model_path)
        bar = None
        try:
            plan_path = path.with_name(path.name + ".plan.json")
            plan = read_json(plan_path)
            if plan is None:
                # A batch per worker and call (Ray: every actor busy); journaled after each call.
                plan = {"chunk": max(1, ctx.cfg.sample.batch_size // k) * generator.workers}
                write_json_atomic(plan_path, plan)
            size = plan["chunk"]
            first = 0  # the first chunk not complete in the journal
            while first < len(ctx.train) and all(
                counts.get(p.id, 0) >= k for p in ctx.train[first : first + size]
            ):
                first += size
            done_ids = {p.id for p in ctx.train[:first]}
            prefix = [r for r in rows if r["problem_id"] in done_ids]
            if len(prefix) != len(rows):
                write_jsonl_atomic(path, prefix)  # the part of a chunk a kill cut short
            rows = prefix
            bar = _progress((len(ctx.train) - first) * k, "E-step: sampling")
            for start in range(first, len(ctx.train), size):
                chunk = ctx.train[start : start + size]
                completions = generator.generate(
                    [p.prompt for p in chunk],
                    n=k,
                    temperature=ctx.cfg.sample.temperature,
                    top_k=ctx.cfg.sample.top_k,
                    top_p=ctx.cfg.sample.top_p,
                    seed=seed + start,
                )
                new = [
                    SampleRow(problem.id, i, text).to_row()
                    for problem, texts in zip(chunk, completions)
                    for i, text in enumerate(texts)
                ]
                append_jsonl(path, new)
                if times is not None:
                    now = time.monotonic()
                    times.add("sample_s", now - tick)
                    tick = now
                fault_point("sample")
                rows += new
                bar.update(len(chunk) * k)
        finally:
            generator.close()
            if bar is not None:
                bar.close()
    if times is not None:
        times.add("sample_s", time.monotonic() - tick)
    known = {p.id for p in ctx.train}
    return [SampleRow.from_row(r) for r in rows if r["problem_id"] in known and r["sample"] < k]


def verify_stage(
    ctx: _Context, samples: list[SampleRow], path: Path, times: _StageTimes | None = None
) -> list[VerdictRow]:
    """3. Verify each sample once; verdicts are appended per chunk as they are produced.

    One stream over everything still to verify, so the executor keeps all its workers busy
    (across chunk boundaries too); the journal is still written ``verify.chunk`` at a time.
    """
    tick = time.monotonic()
    done = {(v.problem_id, v.sample): v for v in map(VerdictRow.from_row, read_jsonl(path))}
    todo = [s for s in samples if (s.problem_id, s.sample) not in done]
    problems = {p.id: p for p in ctx.train}
    if todo:
        chunk_size = ctx.cfg.verify.chunk
        bar = _progress(len(todo), "verifying")
        judgements = ctx.task.iter_verify((problems[s.problem_id], s.completion) for s in todo)
        try:
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start : start + chunk_size]
                new = [
                    VerdictRow(s.problem_id, s.sample, j.correct, str(j.status), j.reason)
                    for s, j in zip(chunk, itertools.islice(judgements, len(chunk)), strict=True)
                ]
                append_jsonl(path, [v.to_row() for v in new])
                if times is not None:
                    now = time.monotonic()
                    times.add("verify_s", now - tick)
                    tick = now
                fault_point("verify")
                done.update({(v.problem_id, v.sample): v for v in new})
                bar.update(len(chunk))
        finally:
            getattr(judgements, "close", lambda: None)()  # cancels work still in flight
            bar.close()
    if times is not None:
        times.add("verify_s", time.monotonic() - tick)
    return [done[(s.problem_id, s.sample)] for s in samples]


def filter_stage(
    cfg: RunConfig, samples: list[SampleRow], verdicts: list[VerdictRow], seed: int
) -> list[SampleRow]:
    """4. Keep correct samples; drop exact duplicates; at most N per problem (seeded choice)."""
    by_problem: dict[str, list[SampleRow]] = {}
    for sample, verdict in zip(samples, verdicts, strict=True):
        if verdict.correct:
            by_problem.setdefault(sample.problem_id, []).append(sample)
    rng = random.Random(seed)
    kept = []
    for problem_id in sorted(by_problem):
        candidates = sorted(by_problem[problem_id], key=lambda s: s.sample)
        if cfg.filter.dedup:
            unique: dict[str, SampleRow] = {}
            for s in candidates:
                unique.setdefault(s.completion.strip(), s)
            candidates = list(unique.values())
        if len(candidates) > cfg.filter.max_per_problem:
            candidates = sorted(
                rng.sample(candidates, cfg.filter.max_per_problem), key=lambda s: s.sample
            )
        kept += candidates
    return kept


def train_stage(ctx: _Context, start_path: str, pairs, out_dir: Path, max_steps=None) -> int:
    """5. M-step (skipped when its checkpoint is complete).

    In this process, or with ``train.launcher`` torchrun / accelerate as a distributed job (see
    harness.finetune_job) whose spec, pairs and log are in ``<out_dir>.job/``.
    """
    steps_file = out_dir.parent / (out_dir.name + ".steps.json")
    if (out_dir / "config.json").exists() and steps_file.exists():
        return int(read_json(steps_file)["steps"])
    train = ctx.cfg.train
    settings = FinetuneSettings(
        base_path=start_path,
        out_dir=out_dir,
        train=train,
        dtype=ctx.cfg.model.dtype,
        device=ctx.device,
        max_steps=max_steps,
    )
    if train.launcher == "inprocess":
        from restem.harness.train import finetune

        steps = finetune(settings, ctx.tokenizer, pairs)
    else:
        from restem.harness import finetune_job as job

        steps = job.finished_steps(out_dir)  # a job that finished (maybe run by hand, multi-node)
        if steps is None:
            spec = job.write_job(job.job_dir_for(out_dir), settings, ctx.tokenizer, pairs)
            command = job.job_command(train.launcher, train.processes, spec)
            _log(f"M-step: {train.launcher} job, {train.processes} process(es): {spec}")
            try:
                job.run_job(command, spec.parent / "job.log")
            except job.JobError as exc:
                raise RunError(
                    f"{exc}\nonce the cause is fixed, `restem train --resume {ctx.run_dir}` "
                    "continues (the M-step from its last checkpoint)"
                ) from None
            steps = job.finished_steps(out_dir)
            if steps is None:
                raise RunError(f"the M-step job exited cleanly but wrote no model to {out_dir}")
    write_json_atomic(steps_file, {"steps": steps})
    return steps


def evaluate_stage(ctx: _Context, model_path: str, path: Path, seed: int) -> dict:
    """6. Validation pass@1 (greedy; it chooses), held-out pass@1 (greedy) and pass@k (sampled;
    reported only). Cached in ``path``."""
    cached = read_json(path)
    if cached is not None and "valid_pass@1" in cached:  # (runs from before validation redo it)
        return cached
    start = time.monotonic()
    held_out = [p.prompt for p in ctx.held_out]
    k = ctx.cfg.eval.pass_k
    generator = _generator_for(ctx, model_path)
    try:
        greedy = [c[0] for c in generator.generate(held_out + [p.prompt for p in ctx.valid], n=1)]
        sampled = None
        if k > 0:
            sampled = generator.generate(
                held_out,
                n=k,
                temperature=ctx.cfg.eval.temperature,
                top_k=ctx.cfg.sample.top_k,
                seed=seed,
            )
    finally:
        generator.close()  # before verifying: Ray workers hold a model each
    judged = ctx.task.verify(list(zip(ctx.held_out + ctx.valid, greedy)))
    test, valid = judged[: len(held_out)], judged[len(held_out) :]
    result = {
        "valid_pass@1": sum(j.correct for j in valid) / max(1, len(valid)),
        "pass@1": sum(j.correct for j in test) / max(1, len(test)),
    }
    if sampled is not None:
        flat = [(p, c) for p, cs in zip(ctx.held_out, sampled) for c in cs]
        verdicts = ctx.task.verify(flat)
        solved = [
            any(v.correct for v in verdicts[i * k : (i + 1) * k]) for i in range(len(held_out))
        ]
        result[f"pass@{k}"] = sum(solved) / max(1, len(solved))
    result["eval_s"] = round(time.monotonic() - start, 2)
    result["problems"] = len(held_out)
    result["valid_problems"] = len(ctx.valid)
    write_json_atomic(path, result)
    return result


# ---------------------------------------------------------------- the loop


def _prepare(cfg: RunConfig, resume: bool) -> _Context:
    import yaml
    from restem.harness.train import load_tokenizer

    run_dir = cfg.run_dir
    config_path = run_dir / "config.yaml"
    if config_path.exists() and not resume:
        raise RunError(
            f"{run_dir} already holds a run: continue it with `restem train --resume {run_dir}`, "
            "or choose another name"
        )
    # Load every input before the run directory is made: a run that cannot start leaves nothing.
    try:
        tokenizer = load_tokenizer(cfg.model.tokenizer or cfg.model.path)
    except OSError as exc:
        raise RunError(f"cannot load the tokenizer of {cfg.model.path}: {exc}") from None
    data = cfg.data
    train = load_problems(data.train_path, data, data.max_train_problems, tokenizer=tokenizer)
    held_out = load_problems(data.eval_path, data, data.max_eval_problems, tokenizer=tokenizer)
    if not train or not held_out:
        raise RunError("no training or held-out problems: check data.train_path and data.eval_path")
    if data.valid_path:
        valid = load_problems(data.valid_path, data, data.max_valid_problems, tokenizer=tokenizer)
        if not valid:
            raise RunError(f"no validation problems in data.valid_path {data.valid_path}")
    else:
        train, valid = split_validation(
            train, data.valid_fraction, cfg.seed, data.max_valid_problems
        )
    try:
        if "ray" in (cfg.sample.executor, cfg.verify.executor):
            connect_ray(cfg.ray.address)  # a wrong address fails here, not in the first stage
        executor = make_verify_executor(cfg.verify, cfg.ray)
    except ExecutorError as exc:
        raise RunError(f"{exc} (see the ray: section of the config)") from None
    try:
        task = make_task(cfg.data, cfg.verify, executor)
        run_dir.mkdir(parents=True, exist_ok=True)
        if not config_path.exists():
            config_path.write_text(
                yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8"
            )
    except BaseException:
        executor.close()
        raise
    return _Context(
        cfg,
        run_dir,
        task,
        tokenizer,
        resolve_device(cfg.model.device),
        train,
        held_out,
        valid,
        executor,
    )


def _human_pairs(ctx: _Context) -> list[tuple[str, str]]:
    cfg = ctx.cfg
    human = cfg.data.human_path
    problems = load_problems(human, cfg.data, tokenizer=ctx.tokenizer) if human else ctx.train
    return [(p.prompt, answer_text(cfg.data, p.solution)) for p in problems if p.solution]


def _ray_connected() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def run(cfg: RunConfig, *, resume: bool = False) -> dict:
    """Run (or continue) ReST-EM; returns the summary (also in metrics.jsonl and reward.png).

    The verify executor lives as long as the run; a Ray instance the run started is shut down at
    its end (a cluster joined before the call is left connected). Both also on errors and ^C.
    """
    ray_before = _ray_connected()
    try:
        # 0. Set up.
        ctx = _prepare(cfg, resume)
        try:
            return _run(ctx)
        finally:
            ctx.executor.close()
    except (ExecutorError, GenerationError) as exc:
        raise RunError(
            f"{exc}\nonce the cause is fixed, `restem train --resume {cfg.run_dir}` continues"
        ) from None
    finally:
        if not ray_before and _ray_connected():
            sys.modules["ray"].shutdown()


def _run(ctx: _Context) -> dict:
    cfg = ctx.cfg
    run_dir = ctx.run_dir
    _log(
        f"run {run_dir}: {len(ctx.train)} training, {len(ctx.valid)} validation and "
        f"{len(ctx.held_out)} held-out problems, device {ctx.device}"
    )
    base = cfg.model.path

    # 1. Evaluate the base model.
    rows = [
        {
            "iteration": 0,
            "model": "base",
            **evaluate_stage(ctx, base, run_dir / "base_eval.json", cfg.seed),
        }
    ]
    _log(
        f"base model: validation pass@1 {rows[0]['valid_pass@1']:.3f}, "
        f"held-out pass@1 {rows[0]['pass@1']:.3f}"
    )
    # The best iterate is chosen on validation only; its held-out score is what it reports.
    best = {
        "iteration": 0,
        "valid_pass@1": rows[0]["valid_pass@1"],
        "pass@1": rows[0]["pass@1"],
        "model_path": base,
        "steps": 0,
    }
    current, stale, last_steps = base, 0, 0

    for t in range(1, cfg.iterations + 1):
        it = run_dir / f"iter_{t}"
        it.mkdir(exist_ok=True)
        times = _StageTimes(it / "times.json")
        seed = cfg.seed * 10_000 + t * 100

        # 2. E-step: sample from the current model.
        samples = sample_stage(ctx, current, it / "generations.jsonl", seed, times)

        # 3. Verify every sample.
        verdicts = verify_stage(ctx, samples, it / "verdicts.jsonl", times)

        # 4. Filter.
        kept = filter_stage(cfg, samples, verdicts, seed)
        write_jsonl_atomic(it / "kept.jsonl", [s.to_row() for s in kept])
        solved = {v.problem_id for v in verdicts if v.correct}
        _log(
            f"iteration {t}: {len(samples)} samples, {sum(v.correct for v in verdicts)} correct, "
            f"{len(kept)} kept from {len(solved)} problems"
        )
        if not kept:
            _log(f"iteration {t}: no sample was correct; stopping")
            break

        # 5. M-step: fine-tune the base model (or the previous iterate, if configured).
        tick = time.monotonic()
        prompts = {p.id: p.prompt for p in ctx.train}
        start = current if cfg.train.continue_from_previous else base
        steps = train_stage(
            ctx, start, [(prompts[s.problem_id], s.completion) for s in kept], it / "model"
        )
        times.add("train_s", time.monotonic() - tick)
        last_steps = steps

        # 6. Evaluate: validation chooses, held-out is reported.
        metrics = evaluate_stage(ctx, str(it / "model"), it / "eval.json", seed + 1)
        stats = dict(
            times.times,
            samples=len(samples),
            correct=sum(v.correct for v in verdicts),
            timeouts=sum(v.status == "timeout" for v in verdicts),
            kept=len(kept),
            problems_solved=len(solved),
            kept_per_problem=round(len(kept) / max(1, len(solved)), 2),
            steps=steps,
        )
        write_json_atomic(it / "stats.json", stats)
        rows.append({"iteration": t, "model": f"iter_{t}", **stats, **metrics})
        _log(
            f"iteration {t}: validation pass@1 {metrics['valid_pass@1']:.3f}, "
            f"held-out pass@1 {metrics['pass@1']:.3f}"
        )
        current = str(it / "model")
        if metrics["valid_pass@1"] > best["valid_pass@1"]:
            best = {
                "iteration": t,
                "valid_pass@1": metrics["valid_pass@1"],
                "pass@1": metrics["pass@1"],
                "model_path": current,
                "steps": steps,
            }
            stale = 0
        else:
            stale += 1
            if stale >= cfg.eval.patience:
                _log(f"validation pass@1 stopped improving; stopping after iteration {t}")
                break

    # 7. Baseline: SFT on human-written solutions, as many steps as the best iteration's M-step
    #    (the last one's, when no iteration beat the base model).
    baseline_steps = best["steps"] or last_steps
    if cfg.baseline and baseline_steps:
        pairs = _human_pairs(ctx)
        if pairs:
            out = run_dir / "baseline" / "model"
            out.parent.mkdir(exist_ok=True)
            steps = train_stage(ctx, base, pairs, out, max_steps=baseline_steps)
            metrics = evaluate_stage(
                ctx, str(out), run_dir / "baseline" / "eval.json", cfg.seed + 7
            )
            rows.append({"iteration": None, "model": "sft-human", "steps": steps, **metrics})
        else:
            _log("no human-written solutions in the data: baseline skipped")

    # 8. Summary.
    write_jsonl_atomic(run_dir / "metrics.jsonl", rows)
    summary = {"rows": rows, "best": best, "run_dir": str(run_dir)}
    write_json_atomic(run_dir / "summary.json", summary)
    _plot(rows, run_dir / "reward.png", cfg.eval.pass_k)
    print(format_table(rows, cfg.eval.pass_k))
    chosen = "base" if best["iteration"] == 0 else f"iter_{best['iteration']}"
    print(
        f"best iterate, chosen on validation: {chosen} (validation pass@1 "
        f"{best['valid_pass@1']:.3f}, held-out pass@1 {best['pass@1']:.3f})"
    )
    return summary


def format_table(rows: list[dict], pass_k: int) -> str:
    head = ["model", "samples", "kept", "kept/problem", "steps", "valid pass@1", "held-out pass@1"]
    if pass_k:
        head.append(f"pass@{pass_k}")
    head.append("time (s)")
    lines = []
    for r in rows:
        seconds = sum(r.get(k, 0) or 0 for k in ("sample_s", "verify_s", "train_s", "eval_s"))
        cells = [
            r["model"],
            str(r.get("samples", "-")),
            str(r.get("kept", "-")),
            str(r.get("kept_per_problem", "-")),
            str(r.get("steps", "-")),
            f"{r['valid_pass@1']:.3f}" if "valid_pass@1" in r else "-",
            f"{r['pass@1']:.3f}",
        ]
        if pass_k:
            cells.append(f"{r.get(f'pass@{pass_k}', float('nan')):.3f}")
        cells.append(f"{seconds:.0f}")
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:>{w}}}" for w in widths)
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*c) for c in lines]
    return "\n".join(out)


def _plot(rows: list[dict], path: Path, pass_k: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loop_rows = [r for r in rows if r["iteration"] is not None]
    xs = [r["iteration"] for r in loop_rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [r["pass@1"] for r in loop_rows], marker="o", label="ReST-EM pass@1 (greedy)")
    ax.plot(
        xs,
        [r.get("valid_pass@1") for r in loop_rows],
        marker="^",
        linestyle="-.",
        alpha=0.7,
        label="ReST-EM validation pass@1",
    )
    if pass_k:
        key = f"pass@{pass_k}"
        ax.plot(
            xs, [r.get(key) for r in loop_rows], marker="s", linestyle=":", label=f"ReST-EM {key}"
        )
    for r in rows:
        if r["model"] == "sft-human":
            ax.axhline(r["pass@1"], color="grey", linestyle="--", label="SFT on human data, pass@1")
    ax.set_xlabel("iteration (0 = base model)")
    ax.set_ylabel("held-out reward")
    ax.set_xticks(xs)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
