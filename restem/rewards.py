"""restem's verifiers in the shapes RL trainers call, so a GRPO / PPO run needs no glue.

- **TRL** (``GRPOTrainer(reward_funcs=[...])``): :class:`MathReward` and :class:`CodeReward` are
  callables ``(prompts, completions, **columns) -> list[float | None]``; ``None`` where the gold is
  unusable (TRL ignores it). ``AsyncMathReward`` / ``AsyncCodeReward`` are the ``async`` forms.
  ``math_reward`` and ``code_reward`` are ready-made instances (gold column ``answer``, tests
  column ``tests``).
- **verl** (``custom_reward_function.path`` / ``.name``): :func:`compute_score`.
- **OpenRLHF** (``--remote_rm_url file.py``): :func:`reward_func`, used by
  ``examples/openrlhf_reward_func.py``.

Everything goes through restem's batch API (``verify_math_batch``, ``verify_code_batch``), whose
time limits live at a process boundary: these functions are safe in trainer threads, asyncio
loops and Ray workers. A completion is judged as text; code completions are run in restem's
sandbox (docker when an engine answers, else local; ``RESTEM_SANDBOX`` overrides), never here.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import re
import textwrap
import threading
from collections.abc import Sequence
from typing import Any

from restem.verifiers.settings import MathSettings

__all__ = [
    "AsyncCodeReward",
    "AsyncMathReward",
    "CodeReward",
    "MathReward",
    "code_reward",
    "completion_text",
    "compute_score",
    "extract_program",
    "judge_label",
    "math_reward",
    "parse_tests",
    "reward_func",
    "split_response",
]


# ---------------------------------------------------------------- inputs


def completion_text(completion: Any) -> str:
    """The text of one completion: a string as is; a chat message list (TRL's conversational
    format) gives its last assistant message (content parts of type text joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if isinstance(completion, list | tuple):
        messages = [m for m in completion if isinstance(m, dict)]
        chosen = [m for m in messages if m.get("role") == "assistant"] or messages
        if not chosen:
            return ""
        content = chosen[-1].get("content", "")
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            return "".join(
                part.get("text", "") if isinstance(part, dict) else str(part) for part in content
            )
        return content if isinstance(content, str) else ""
    return "" if completion is None else str(completion)


_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_program(text: str) -> str:
    """The program in a code completion: the last fenced block marked python (or unmarked),
    else the last fenced block, else the whole text."""
    blocks = _FENCE.findall(text)
    if blocks:
        python = [body for lang, body in blocks if lang.lower() in ("", "python", "python3", "py")]
        text = (python or [body for _, body in blocks])[-1]
    # A response cut from "prompt + response" often starts with the separator's space.
    return textwrap.dedent(text).strip("\n")


def parse_tests(tests: Any) -> dict | None:
    """A code problem from a tests value: a problem object (APPS ``input_output``, HumanEval
    ``test`` + ``entry_point``, MBPP ``test_list``), bare ``{"inputs", "outputs"[, "fn_name"]}``,
    or either as JSON text. None when it is none of these. Paths are never opened: a label comes
    from data, and data must not name files on the verifying host."""
    if isinstance(tests, str):
        try:
            tests = json.loads(tests)
        except (ValueError, RecursionError):
            return None
    if not isinstance(tests, dict):
        return None
    if "inputs" in tests and "outputs" in tests and "input_output" not in tests:
        io = {k: tests[k] for k in ("inputs", "outputs", "fn_name") if k in tests}
        rest = {k: v for k, v in tests.items() if k not in io}
        return {**rest, "input_output": io}
    return tests


def _gold_text(gold: Any) -> str | None:
    if isinstance(gold, bool) or gold is None:
        return None
    if isinstance(gold, int | float):
        return str(gold)
    return gold if isinstance(gold, str) else None


# ---------------------------------------------------------------- shared verification


class _Shared:
    """One process-wide local executor: its sandbox pool opens on first code reward and stays
    open (a docker pool costs seconds to start); closed at exit."""

    lock = threading.Lock()
    executor: Any = None

    @classmethod
    def get(cls, workers: int | None = None):
        with cls.lock:
            if cls.executor is None:
                from restem.verifiers.executor import LocalExecutor

                cls.executor = LocalExecutor(workers)
                atexit.register(cls.close)
            return cls.executor

    @classmethod
    def close(cls) -> None:
        with cls.lock:
            executor, cls.executor = cls.executor, None
        if executor is not None:
            executor.close()


def _math_verdicts(pairs: list[tuple[str, str]], settings: MathSettings, workers: int | None):
    from restem.verifiers import verify_math_batch

    return verify_math_batch(pairs, settings=settings, workers=workers)


def _code_verdicts(items: list[tuple[dict, str]], backend, limits, workers, comparison):
    from restem.verifiers.code.verify import CodeLimits

    limits = limits or CodeLimits()
    executor = _Shared.get(workers)
    with _Shared.lock:  # the executor opens a sandbox per (backend, limits) once
        executor.sandbox(backend, limits)
    return list(executor.verify_code(items, backend=backend, limits=limits, comparison=comparison))


def _math_rewards(texts, golds, settings, workers) -> tuple[list[float | None], list]:
    rewards: list[float | None] = [None] * len(texts)
    verdicts: list = [None] * len(texts)
    todo = [(i, t, g) for i, (t, g) in enumerate(zip(texts, golds)) if g is not None]
    found = _math_verdicts([(t, g) for _, t, g in todo], settings, workers)
    for (i, _, _), verdict in zip(todo, found):
        rewards[i], verdicts[i] = verdict.reward, verdict
    return rewards, verdicts


def _code_rewards(
    programs, problems, backend, limits, workers, comparison, partial
) -> tuple[list[float | None], list]:
    rewards: list[float | None] = [None] * len(programs)
    verdicts: list = [None] * len(programs)
    todo = [(i, p, q) for i, (p, q) in enumerate(zip(programs, problems)) if q is not None]
    found = _code_verdicts([(q, p) for _, p, q in todo], backend, limits, workers, comparison)
    for (i, _, _), verdict in zip(todo, found):
        reward = verdict.reward
        if partial and reward is not None:
            reward = verdict.pass_fraction
        rewards[i], verdicts[i] = reward, verdict
    return rewards, verdicts


def _column(columns: dict, name: str, n: int) -> list:
    if name not in columns:
        present = sorted(k for k in columns if k not in _TRAINER_KEYS)
        raise KeyError(
            f"restem reward: the dataset has no column {name!r} (columns: {', '.join(present)}); "
            f"pass its name, e.g. MathReward(gold_column=...)"
        )
    values = list(columns[name])
    if len(values) != n:
        raise ValueError(f"column {name!r} has {len(values)} values for {n} completions")
    return values


# Keyword arguments TRL adds beside the dataset's columns.
_TRAINER_KEYS = {"trainer_state", "log_extra", "log_metric", "environments", "completion_ids"}


# ---------------------------------------------------------------- TRL


class MathReward:
    """TRL reward: 1.0 when the completion's answer equals the row's gold, 0.0 otherwise, None
    when the gold is unusable (missing, not text, malformed).

    >>> reward = MathReward(gold_column="solution")
    >>> reward(prompts=["1+1?"], completions=["so \\\\boxed{2}"], solution=["2"])
    [1.0]
    """

    def __init__(
        self,
        gold_column: str = "answer",
        *,
        settings: MathSettings | None = None,
        workers: int | None = None,
        name: str = "restem_math",
    ):
        self.gold_column = gold_column
        self.settings = settings or MathSettings()
        self.workers = workers
        self.__name__ = name  # TRL logs rewards/<__name__>/mean

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns
    ) -> list[float | None]:
        texts = [completion_text(c) for c in completions]
        golds = [_gold_text(g) for g in _column(columns, self.gold_column, len(texts))]
        return _math_rewards(texts, golds, self.settings, self.workers)[0]


class AsyncMathReward(MathReward):
    """`MathReward` as a coroutine (TRL runs async rewards concurrently); the work runs in a
    thread, its time limits in worker processes."""

    async def __call__(self, prompts=None, completions=(), **columns) -> list[float | None]:
        return await asyncio.to_thread(MathReward.__call__, self, prompts, completions, **columns)


class CodeReward:
    """TRL reward for code: the program in each completion (its last python code block, else the
    whole text) is run against the row's tests in restem's sandbox. 1.0 when every test passes
    (with ``partial=True``: the fraction that passed), 0.0 otherwise, None when the tests are
    unusable. ``tests_column`` holds a problem object or its JSON text (see `parse_tests`)."""

    def __init__(
        self,
        tests_column: str = "tests",
        *,
        backend: str | None = None,
        limits: Any = None,
        workers: int | None = None,
        comparison: str = "strict",
        partial: bool = False,
        name: str = "restem_code",
    ):
        self.tests_column = tests_column
        self.backend = backend
        self.limits = limits
        self.workers = workers
        self.comparison = comparison
        self.partial = partial
        self.__name__ = name

    def __call__(
        self, prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **columns
    ) -> list[float | None]:
        programs = [extract_program(completion_text(c)) for c in completions]
        problems = [parse_tests(t) for t in _column(columns, self.tests_column, len(programs))]
        return _code_rewards(
            programs,
            problems,
            self.backend,
            self.limits,
            self.workers,
            self.comparison,
            self.partial,
        )[0]


class AsyncCodeReward(CodeReward):
    """`CodeReward` as a coroutine."""

    async def __call__(self, prompts=None, completions=(), **columns) -> list[float | None]:
        return await asyncio.to_thread(CodeReward.__call__, self, prompts, completions, **columns)


math_reward = MathReward()
code_reward = CodeReward()


# ---------------------------------------------------------------- verl


def compute_score(
    data_source: Any,
    solution_str: str,
    ground_truth: Any,
    extra_info: dict | None = None,
    *,
    return_dict: bool = True,
    backend: str | None = None,
    **kwargs: Any,
) -> dict | float:
    """verl's ``compute_score``: the ground truth is a math answer (text or number) or a code
    problem (an object with tests, or its JSON text). Returns ``{"score", "status", "reason"}``
    (verl logs the extra keys), or the bare float with ``return_dict=False`` (set it in
    ``custom_reward_function.reward_kwargs``). verl wants a number for every sample, so an
    unusable ground truth scores 0.0 with status ``invalid_gold`` / ``invalid_problem``."""
    verdict = judge_label(completion_text(solution_str), ground_truth, backend=backend)
    score = verdict.reward or 0.0
    if not return_dict:
        return float(score)
    return {"score": float(score), "status": verdict.status.value, "reason": verdict.reason}


def judge_label(response: str, label: Any, *, backend: str | None = None, settings=None):
    """One verdict for a response and a label: a code problem when the label is (the JSON text
    of) an object with tests, else a math gold answer."""
    from restem.verifiers.verdict import MathStatus, MathVerdict

    problem = parse_tests(label) if isinstance(label, dict | str) else None
    if problem is not None and _looks_like_code(problem):
        return _code_verdicts(
            [(problem, extract_program(response))], backend, None, None, "strict"
        )[0]
    gold = _gold_text(label)
    if gold is None:
        return MathVerdict(
            MathStatus.INVALID_GOLD, reason=f"the label is {type(label).__name__}, not an answer"
        )
    return _math_verdicts([(response, gold)], settings or MathSettings(), None)[0]


# ---------------------------------------------------------------- OpenRLHF


def split_response(query: str, prompt: str) -> str:
    """The response part of an OpenRLHF query (prompt + response). When the query does not start
    with the prompt (a chat template rewrote it), the whole query is judged: restem reads the
    last answer, which is the response's."""
    if prompt and query.startswith(prompt):
        return query[len(prompt) :]
    return query


def reward_func(queries: Sequence[str], prompts: Sequence[str], labels: Sequence[Any], **kwargs):
    """OpenRLHF's ``reward_func`` for ``--remote_rm_url file.py`` (with ``--label_key``): labels
    are gold answers, or code problems as JSON. Returns ``{"rewards", "scores", "extra_logs"}``
    as torch tensors (lists when torch is absent); an unusable label scores 0.0 and is counted
    in ``extra_logs["restem_unusable"]``."""
    result = judge_many(queries, prompts, labels)
    try:
        import torch
    except ImportError:
        return result
    return {
        "rewards": torch.tensor(result["rewards"], dtype=torch.float32),
        "scores": torch.tensor(result["scores"], dtype=torch.float32),
        "extra_logs": {
            k: torch.tensor(v, dtype=torch.float32) for k, v in result["extra_logs"].items()
        },
    }


def judge_many(
    queries: Sequence[str],
    prompts: Sequence[str],
    labels: Sequence[Any],
    *,
    settings: MathSettings | None = None,
    backend: str | None = None,
    executor: Any = None,
    code_limits: Any = None,
) -> dict:
    """The OpenRLHF result as plain lists: math rows in one batch, code rows in another."""
    if not (len(queries) == len(prompts) == len(labels)):
        raise ValueError(
            f"queries, prompts and labels differ in length: "
            f"{len(queries)}, {len(prompts)}, {len(labels)}"
        )
    settings = settings or MathSettings()
    responses = [split_response(q, p) for q, p in zip(queries, prompts)]
    statuses: list[str] = [""] * len(responses)
    rewards: list[float | None] = [None] * len(responses)
    math_rows, code_rows = [], []
    for i, label in enumerate(labels):
        problem = parse_tests(label) if isinstance(label, dict | str) else None
        if problem is not None and _looks_like_code(problem):
            code_rows.append((i, problem))
        else:
            math_rows.append((i, _gold_text(label)))
    usable_math = [(i, g) for i, g in math_rows if g is not None]
    for i, g in math_rows:
        if g is None:
            statuses[i] = "invalid_gold"
    pairs = [(responses[i], g) for i, g in usable_math]
    if executor is not None:
        found = list(executor.verify_math(pairs, settings=settings))
    else:
        found = _math_verdicts(pairs, settings, None)
    for (i, _), verdict in zip(usable_math, found):
        rewards[i], statuses[i] = verdict.reward, verdict.status.value
    if code_rows:
        items = [(problem, extract_program(responses[i])) for i, problem in code_rows]
        if executor is not None:
            verdicts = list(executor.verify_code(items, backend=backend, limits=code_limits))
        else:
            verdicts = _code_verdicts(items, backend, code_limits, None, "strict")
        for (i, _), verdict in zip(code_rows, verdicts):
            rewards[i], statuses[i] = verdict.reward, verdict.status.value
    scores = [r or 0.0 for r in rewards]
    usable = [r for r in rewards if r is not None]
    return {
        "rewards": scores,
        "scores": scores,
        "extra_logs": {
            "restem_accuracy": [sum(usable) / len(usable) if usable else 0.0] * len(scores),
            "restem_unusable": [1.0 if r is None else 0.0 for r in rewards],
        },
        "statuses": statuses,
    }


def _looks_like_code(problem: dict) -> bool:
    return any(k in problem for k in ("input_output", "test", "test_list"))
