"""Tasks: how problems are loaded and prompted, and which verifier judges a completion.

The loop talks to verifiers only through ``Task.verify`` / ``Task.iter_verify`` (batch calls),
which run on the task's executor (``restem.verifiers.executor``): this machine's process and sandbox pools,
or verifier actors on a Ray cluster. Either gives the same verdicts, in input order.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from restem.harness.config import DataConfig, RayConfig, VerifyConfig
from restem.verifiers.executor import Executor, LocalExecutor

__all__ = [
    "Judgement",
    "Problem",
    "Task",
    "load_problems",
    "make_task",
    "make_verify_executor",
]


@dataclass(frozen=True)
class Problem:
    id: str
    prompt: str  # exactly what the model is given
    gold: object  # math: the reference answer; code: the problem (tests) for the code verifier
    solution: str | None = None  # a human-written worked solution, when the data has one


@dataclass(frozen=True)
class Judgement:
    correct: bool
    status: str
    reason: str


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FileNotFoundError(
            f"cannot read problems file {path}: {exc.strerror or exc}"
        ) from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: line {number}: invalid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}: line {number}: expected a JSON object")
        rows.append(row)
    return rows


def _last_boxed(text: str) -> str | None:
    from restem.verifiers.math.extract import find_boxed

    boxes, truncated = find_boxed(text)
    return None if truncated or not boxes else boxes[-1]


def load_problems(path: str | Path, data: DataConfig, limit: int | None = None) -> list[Problem]:
    """Problems from JSONL. Math rows: problem, answer (or a solution with a final box)."""
    path = Path(path)
    problems = []
    for index, row in enumerate(_read_jsonl(path)):
        where = f"{path}: row {index + 1}"
        if data.problem_field not in row:
            raise ValueError(f"{where}: missing field {data.problem_field!r}")
        pid = str(row.get("id", row.get("unique_id", row.get("task_id", index))))
        solution = row.get(data.solution_field)
        if data.task == "math":
            gold = row.get(data.answer_field)
            if gold is None and isinstance(solution, str):
                gold = _last_boxed(solution)
            if gold is None:
                raise ValueError(f"{where}: no {data.answer_field!r} and no boxed answer")
        else:
            gold = {k: v for k, v in row.items() if k not in (data.solution_field,)}
        prompt = data.prompt_template.format(problem=row[data.problem_field])
        problems.append(Problem(pid, prompt, gold, solution if isinstance(solution, str) else None))
        if limit is not None and len(problems) >= limit:
            break
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: problem ids are not unique")
    return problems


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

    def iter_verify(self, items: Iterable[tuple[Problem, str]]) -> Iterator[Judgement]:
        """Judgements in input order, each as soon as it (and those before it) is known."""
        raise NotImplementedError

    def verify(self, items: Iterable[tuple[Problem, str]]) -> list[Judgement]:
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

    def iter_verify(self, items: Iterable[tuple[Problem, str]]) -> Iterator[Judgement]:
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

    def iter_verify(self, items: Iterable[tuple[Problem, str]]) -> Iterator[Judgement]:
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
