"""Tasks: how problems are loaded and prompted, and which verifier judges a completion.

The loop talks to verifiers only through ``Task.verify`` / ``Task.iter_verify`` (batch calls),
which run on the task's executor (``restem.verifiers.executor``): this machine's process and sandbox pools,
or verifier actors on a Ray cluster. Either gives the same verdicts, in input order.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from restem.harness.config import DataConfig, RayConfig, VerifyConfig
from restem.harness.data import MISSING, get_field, read_rows
from restem.verifiers.executor import Executor, LocalExecutor

from restem.errors import ConfigError, ProblemError

__all__ = [
    "Judgement",
    "Task",
    "TaskProblem",
    "answer_text",
    "load_problems",
    "make_task",
    "make_verify_executor",
    "render_prompt",
    "split_validation",
]


@dataclass(frozen=True)
class TaskProblem:
    """A problem as the loop uses it (the code verifier's own is verifiers.code.problems.Problem,
    which ``gold`` holds for code)."""

    id: str
    prompt: str  # exactly what the model is given
    gold: object  # math: the reference answer (text); code: the code verifier's parsed Problem
    solution: str | None = None  # a human-written worked solution, when the data has one


@dataclass(frozen=True)
class Judgement:
    correct: bool
    status: str
    reason: str


def _last_boxed(text: str) -> str | None:
    from restem.verifiers.math.extract import find_boxed

    boxes, truncated = find_boxed(text)
    return None if truncated or not boxes else boxes[-1]


def _is_messages(value) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def render_prompt(data: DataConfig, problem, tokenizer=None) -> str:
    """What the model is given for ``problem`` (the problem field's value).

    plain: ``prompt_template`` with the problem in it. chat: the tokenizer's chat template over
    [system_prompt] + the user message (``prompt_template`` with the problem), the assistant turn
    opened. A problem that already is a list of chat messages (verl's ``prompt`` column) is used
    as the conversation in chat format.
    """
    if data.prompt_format == "plain":
        if not isinstance(problem, str):
            raise ProblemError(
                f"expected text, got {type(problem).__name__} (a list of chat messages needs "
                "data.prompt_format: chat)"
            )
        return data.prompt_template.format(problem=problem)
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            "data.prompt_format is chat, but the tokenizer has no chat template "
            "(use an instruct / chat model's tokenizer, or prompt_format: plain)"
        )
    if _is_messages(problem):
        messages = [{"role": m["role"], "content": m["content"]} for m in problem]
    elif isinstance(problem, str):
        messages = [{"role": "user", "content": data.prompt_template.format(problem=problem)}]
    else:
        raise ProblemError(f"expected text or chat messages, got {type(problem).__name__}")
    if data.system_prompt is not None and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": data.system_prompt})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def answer_text(data: DataConfig, solution: str) -> str:
    """A human-written solution as training text after the prompt: a space after a plain
    ``...Solution:`` prompt; as is after an opened assistant turn."""
    return solution.strip() if data.prompt_format == "chat" else " " + solution.strip()


def load_problems(
    path: str | Path, data: DataConfig, limit: int | None = None, *, tokenizer=None
) -> list[TaskProblem]:
    """Problems from a JSONL / parquet / datasets file (see ``restem.harness.data``).

    Math rows: the problem, its answer (or a solution with a final box). Code rows: the problem;
    the whole row goes to the code verifier. ``tokenizer`` renders chat prompts.
    """
    path = Path(path)
    problems = []
    for index, row in enumerate(read_rows(path)):
        where = f"{path}: row {index + 1}"
        problem = get_field(row, data.problem_field)
        if problem is MISSING or problem is None:  # parquet / datasets: an absent column is None
            raise ProblemError(
                f"{where}: missing field {data.problem_field!r} (data.problem_field; the row "
                f"has {', '.join(sorted(map(str, row))) or 'no fields'})"
            )
        pid = str(row.get("id", row.get("unique_id", row.get("task_id", index))))
        solution = get_field(row, data.solution_field)
        solution = solution if isinstance(solution, str) else None
        if data.task == "math":
            gold = get_field(row, data.answer_field)
            if (gold is MISSING or gold is None) and solution is not None:
                gold = _last_boxed(solution)
            if gold is MISSING or gold is None:
                raise ProblemError(
                    f"{where}: missing field {data.answer_field!r} (data.answer_field) and no "
                    f"\\boxed answer in {data.solution_field!r}"
                )
        else:
            # Parsed once here, not once per sample: the code verifier's Problem (tests, mode).
            from restem.verifiers.code.problems import as_problem

            try:
                # (a column parquet / datasets rows lack is None in them: treat it as absent)
                fields = {k: v for k, v in row.items() if v is not None}
                fields.pop(data.solution_field, None)
                gold = as_problem(fields)
            except ProblemError as exc:
                raise ProblemError(f"{where}: {exc}") from None
        try:
            prompt = render_prompt(data, problem, tokenizer)
        except ProblemError as exc:
            raise ProblemError(f"{where}: field {data.problem_field!r}: {exc}") from None
        problems.append(TaskProblem(pid, prompt, gold, solution))
        if limit is not None and len(problems) >= limit:
            break
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ProblemError(f"{path}: problem ids are not unique")
    return problems


def split_validation(
    problems: list[TaskProblem], fraction: float, seed: int, limit: int | None = None
) -> tuple[list[TaskProblem], list[TaskProblem]]:
    """(training, validation): a seeded ``fraction`` of the problems set aside (at least one,
    at most ``limit``), the rest kept in their order."""
    import random

    count = max(1, round(len(problems) * fraction))
    if limit is not None:
        count = min(count, limit)
    if count >= len(problems):
        raise ProblemError(
            f"{len(problems)} training problems are too few to set {count} aside for validation "
            "(give data.valid_path, or lower data.valid_fraction)"
        )
    chosen = set(random.Random(f"valid:{seed}").sample(range(len(problems)), count))
    train = [p for i, p in enumerate(problems) if i not in chosen]
    valid = [p for i, p in enumerate(problems) if i in chosen]
    return train, valid


_CODE_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)


class Task:
    """A task: verify completions of its problems in batches, on ``executor``.

    Without an executor the task makes a local one (``verify.workers`` processes) and closes it
    in ``close``; an executor passed in belongs to the caller, who closes it.
    """

    name = "task"

    def __init__(self, verify: VerifyConfig, executor: Executor | None = None):
        self.verify_config = verify
        self._owns_executor = executor is None
        self.executor = LocalExecutor(verify.workers) if executor is None else executor

    def iter_verify(self, items: Iterable[tuple[TaskProblem, str]]) -> Iterator[Judgement]:
        """Judgements in input order, each as soon as it (and those before it) is known."""
        raise NotImplementedError

    def verify(self, items: Iterable[tuple[TaskProblem, str]]) -> list[Judgement]:
        return list(self.iter_verify(items))

    def close(self) -> None:
        if self._owns_executor:
            self.executor.close()

    @staticmethod
    def _judgements(verdicts) -> Iterator[Judgement]:
        try:
            for v in verdicts:
                yield Judgement(v.correct, v.status.value, v.reason)
        finally:
            close = getattr(verdicts, "close", None)
            if close is not None:
                close()  # a caller that stops early cancels the work still in flight


class MathTask(Task):
    name = "math"

    def iter_verify(self, items: Iterable[tuple[TaskProblem, str]]) -> Iterator[Judgement]:
        from restem.verifiers import MathSettings

        settings = MathSettings(timeout_s=self.verify_config.timeout_s)
        verdicts = self.executor.verify_math(
            ((completion, str(problem.gold)) for problem, completion in items), settings=settings
        )
        return self._judgements(verdicts)


class CodeTask(Task):
    name = "code"

    @staticmethod
    def program_of(completion: str) -> str:
        """The program in a completion: the last fenced code block, else the whole text."""
        blocks = _CODE_BLOCK.findall(completion)
        # A completion usually starts after "Solution:" with a space: dedent, or Python sees an
        # unexpected indent.
        return textwrap.dedent(blocks[-1] if blocks else completion).strip("\n")

    def iter_verify(self, items: Iterable[tuple[TaskProblem, str]]) -> Iterator[Judgement]:
        verdicts = self.executor.verify_code(
            ((problem.gold, self.program_of(completion)) for problem, completion in items),
            backend=self.verify_config.backend,
        )
        return self._judgements(verdicts)


def make_verify_executor(verify: VerifyConfig, ray: RayConfig) -> Executor:
    """``verify.executor``: local (``verify.workers`` processes / sandboxes here) or ray (verifier
    actors on the cluster at ``ray.address``, each with as many pool processes as CPUs it
    reserves)."""
    if verify.executor == "ray":
        from restem.verifiers.executor import RayExecutor

        return RayExecutor(
            ray.address,
            workers=ray.verify_workers,
            cpus_per_worker=ray.verify_cpus,
            pool_workers=max(1, int(ray.verify_cpus)),
        )
    return LocalExecutor(verify.workers)


def make_task(data: DataConfig, verify: VerifyConfig, executor: Executor | None = None) -> Task:
    return (MathTask if data.task == "math" else CodeTask)(verify, executor)
