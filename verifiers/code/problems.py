"""Problems with tests, from APPS (folder and row formats), HumanEval and MBPP, as one `Problem`.

Three modes:

``stdio``   the program reads a test's input on stdin; its stdout is compared with the expected
            text (APPS standard-input problems).
``call``    the program defines ``fn_name`` (a function, or a method of ``class Solution`` when the
            starter code is LeetCode-style); each test calls it with an argument list and compares
            the returned value (APPS call-based problems).
``assert``  each test is Python code with asserts about the program's functions (HumanEval's
            ``check(candidate)``, MBPP's ``test_list``). For HumanEval the program to verify is
            ``problem.prompt + completion``.

Loaders raise `ProblemError` (a ValueError) with a message naming what is wrong; `verify_code`
turns that into an ``invalid_problem`` verdict instead.
"""

from __future__ import annotations

import ast
import builtins
import gzip
import json
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from restem.verifiers.code.values import loads

from restem.errors import ProblemError

__all__ = [
    "Mode",
    "Problem",
    "ProblemError",
    "TestCase",
    "apps_problem",
    "as_problem",
    "humaneval_problem",
    "load_apps_folder",
    "load_apps_mapcoder",
    "load_apps_solutions",
    "load_humaneval",
    "load_mbpp",
    "mbpp_problem",
]


class Mode(StrEnum):
    STDIO = "stdio"
    CALL = "call"
    ASSERT = "assert"


@dataclass(frozen=True)
class TestCase:
    """stdio: `input` is stdin text, `expected` stdout text. call: `input` is the argument list,
    `expected` the returned value as decoded JSON (APPS often wraps it in a one-element list; both
    forms are accepted). assert: `input` is the test code, `expected` is unused."""

    __test__ = False  # a name pytest would otherwise try to collect

    input: Any
    expected: Any = None


@dataclass(frozen=True)
class Problem:
    mode: Mode
    tests: tuple[TestCase, ...]
    fn_name: str | None = None  # call: the function or method; assert: the entry point
    starter_code: str = ""
    setup_code: str = ""  # assert: run before each test, in the tests' namespace (MBPP)
    prompt: str = ""  # HumanEval: the program is prompt + completion
    id: str = ""
    question: str = ""

    def __post_init__(self) -> None:
        if not self.tests:
            raise ProblemError(f"problem {self.id or '?'} has no tests")
        if self.mode is not Mode.STDIO and not self.fn_name:
            raise ProblemError(f"problem {self.id or '?'}: {self.mode} mode needs fn_name")

    @property
    def uses_solution_class(self) -> bool:
        return "class Solution" in self.starter_code


def _text(value: Any, what: str) -> str:
    """APPS stores some stdio inputs/outputs as lists of lines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return "\n".join(value) + "\n"
    raise ProblemError(f"{what} must be text or a list of lines, got {type(value).__name__}")


def apps_problem(
    input_output: dict | str, starter_code: str = "", *, id: str = "", question: str = ""
) -> Problem:
    """An APPS problem from its `input_output` (a dict or the JSON text of one)."""
    if isinstance(input_output, str):
        try:
            input_output = loads(input_output)
        except (ValueError, RecursionError) as exc:
            raise ProblemError(f"input_output is not valid JSON: {exc}") from exc
    if not isinstance(input_output, dict):
        raise ProblemError("input_output must be an object with inputs and outputs")
    inputs, outputs = input_output.get("inputs"), input_output.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise ProblemError("input_output needs lists 'inputs' and 'outputs'")
    if len(inputs) != len(outputs):
        raise ProblemError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    starter_code = starter_code or ""
    if not isinstance(starter_code, str):
        raise ProblemError("starter_code must be text")
    fn_name = input_output.get("fn_name")
    if fn_name is not None:
        if not isinstance(fn_name, str) or not fn_name.isidentifier():
            raise ProblemError(f"fn_name must be an identifier, got {fn_name!r}")
        for i, args in enumerate(inputs):
            if not isinstance(args, list):
                raise ProblemError(f"call-based test {i}: inputs must be an argument list")
        tests = tuple(TestCase(args, out) for args, out in zip(inputs, outputs))
        return Problem(Mode.CALL, tests, fn_name, starter_code, id=id, question=question)
    tests = tuple(
        TestCase(_text(i, f"test {n} input"), _text(o, f"test {n} output"))
        for n, (i, o) in enumerate(zip(inputs, outputs))
    )
    return Problem(Mode.STDIO, tests, None, starter_code, id=id, question=question)


def load_apps_folder(path: str | Path) -> Problem:
    """An APPS problem in the original layout: input_output.json, starter_code.py (optional),
    question.txt (optional). The folder name is the id."""
    folder = Path(path)
    io_file = folder / "input_output.json"
    if not io_file.is_file():
        raise ProblemError(f"{folder}: no input_output.json (not an APPS problem folder)")
    starter = folder / "starter_code.py"
    question = folder / "question.txt"
    return apps_problem(
        io_file.read_text(encoding="utf-8"),
        starter.read_text(encoding="utf-8") if starter.is_file() else "",
        id=folder.name,
        question=question.read_text(encoding="utf-8") if question.is_file() else "",
    )


def load_apps_solutions(path: str | Path) -> list[str]:
    """The reference solutions of an APPS problem folder (solutions.json), possibly none."""
    file = Path(path) / "solutions.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else []


_DEF = re.compile(r"^\s*def\s+([A-Za-z_]\w*)\s*\(", re.MULTILINE)


def _starter_fn_name(starter_code: str) -> str | None:
    names = [n for n in _DEF.findall(starter_code) if n != "__init__"]
    return names[0] if names else None


def _lossy_argument(line: str) -> Any:
    # MapCoder joined the arguments with newlines and stringified them: "123" and 123 look alike,
    # so a line reads as JSON, else a Python literal, else as the text itself.
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(line)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return line


def load_apps_mapcoder(path: str | Path, *, calls_as_stdio: bool = False) -> list[Problem]:
    """APPS problems in MapCoder's format (`test_list` of {'input', 'output'}), one per id.

    Its call-based tests are lossy (see `_lossy_argument`): prefer `input_output.json` where you
    have it. With `calls_as_stdio`, call-based problems become standard-input ones the way
    MapCoder's own harness judged them: the newline-joined arguments on stdin, `str(output[0])`
    expected on stdout (its model solutions are written for that).
    """
    problems: dict[str, Problem] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        pid = str(row["id"])
        if pid in problems:
            continue
        tests = row["test_list"]
        if isinstance(tests, str):
            tests = ast.literal_eval(tests)
        starter = row.get("starter_code") or ""
        fn_name = _starter_fn_name(starter) if starter.strip() else None
        if fn_name and calls_as_stdio:
            cases = tuple(TestCase(t["input"], str(t["output"][0])) for t in tests)
            problem = Problem(Mode.STDIO, cases, None, starter, id=pid)
        elif fn_name:
            cases = tuple(
                TestCase([_lossy_argument(a) for a in t["input"].split("\n")], t["output"])
                for t in tests
            )
            problem = Problem(Mode.CALL, cases, fn_name, starter, id=pid)
        else:
            cases = tuple(
                TestCase(
                    t["input"], t["output"][0] if isinstance(t["output"], list) else t["output"]
                )
                for t in tests
            )
            problem = Problem(Mode.STDIO, cases, None, starter, id=pid)
        problems[pid] = problem
    return list(problems.values())


def humaneval_problem(row: dict) -> Problem:
    """A HumanEval row: `prompt`, `test` (defines check(candidate)), `entry_point`."""
    try:
        entry, test, prompt = row["entry_point"], row["test"], row.get("prompt", "")
    except KeyError as exc:
        raise ProblemError(f"HumanEval row lacks {exc.args[0]!r}") from exc
    if not (isinstance(entry, str) and entry.isidentifier() and isinstance(test, str)):
        raise ProblemError("HumanEval entry_point must be an identifier and test text")
    code = f"{test}\n\ncheck({entry})\n"
    return Problem(
        Mode.ASSERT, (TestCase(code),), entry, prompt=prompt or "", id=str(row.get("task_id", ""))
    )


def load_humaneval(path: str | Path) -> list[Problem]:
    """HumanEval's jsonl (gzipped or not), in file order."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as stream:
        return [humaneval_problem(json.loads(line)) for line in stream if line.strip()]


_BUILTIN_NAMES = frozenset(dir(builtins))


def _called_names(code: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise ProblemError(f"test is not valid Python: {exc}") from exc
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    return [c.func.id for c in calls]


def mbpp_problem(row: dict, *, challenge: bool = False) -> Problem:
    """An MBPP row: `test_list` (one assert per test), optional `test_setup_code`; with
    `challenge`, its `challenge_test_list` is added."""
    tests = list(row.get("test_list") or [])
    if challenge:
        tests += row.get("challenge_test_list") or []
    if not tests or not all(isinstance(t, str) for t in tests):
        raise ProblemError("MBPP row needs test_list, a list of assert statements")
    setup = row.get("test_setup_code") or ""
    # The entry point: the first function the first test calls that is not a builtin, else the
    # first it calls at all (task 126 tests a function named `sum`).
    called = _called_names(tests[0])
    names = [n for n in called if n not in _BUILTIN_NAMES] or called
    if not names:
        raise ProblemError("MBPP test calls no function of the program")
    return Problem(
        Mode.ASSERT,
        tuple(TestCase(t) for t in tests),
        names[0],
        setup_code=setup,
        id=str(row.get("task_id", "")),
        question=str(row.get("text", "")),
    )


def load_mbpp(path: str | Path, *, challenge: bool = False) -> list[Problem]:
    with open(path, encoding="utf-8") as stream:
        return [mbpp_problem(json.loads(line), challenge=challenge) for line in stream if line]


def as_problem(obj: Problem | dict | str | Path) -> Problem:
    """A Problem from a Problem, a row object, or an APPS folder path.

    Row objects: APPS (`input_output` as an object or JSON text, optional `starter_code`, and
    `fn_name` inside `input_output` or beside it), HumanEval (`test` + `entry_point`), MBPP
    (`test_list`).
    """
    if isinstance(obj, Problem):
        return obj
    if isinstance(obj, str | Path):
        return load_apps_folder(obj)
    if not isinstance(obj, dict):
        raise ProblemError(
            f"a problem must be an object or a folder path, not {type(obj).__name__}"
        )
    if "input_output" in obj:
        io = obj["input_output"]
        if isinstance(io, str):
            try:
                io = loads(io)
            except (ValueError, RecursionError) as exc:
                raise ProblemError(f"input_output is not valid JSON: {exc}") from exc
        if isinstance(io, dict) and obj.get("fn_name") and "fn_name" not in io:
            io = {**io, "fn_name": obj["fn_name"]}
        return apps_problem(
            io, obj.get("starter_code") or "", id=str(obj.get("id", obj.get("problem_id", "")))
        )
    if "test" in obj and "entry_point" in obj:
        return humaneval_problem(obj)
    if "test_list" in obj:
        return mbpp_problem(obj)
    raise ProblemError(
        "a problem object needs input_output (APPS), test + entry_point, or test_list"
    )
