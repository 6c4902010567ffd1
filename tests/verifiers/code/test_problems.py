"""Loaders on small problems written here: APPS folder and rows, MapCoder rows, HumanEval, MBPP."""

from __future__ import annotations

import gzip
import json
import re

import pytest
from restem.verifiers.code import (
    Mode,
    ProblemError,
    apps_problem,
    as_problem,
    load_apps_folder,
    load_apps_mapcoder,
    load_apps_solutions,
    load_humaneval,
    load_mbpp,
)


def _apps_folder(tmp_path, io: dict, starter: str | None = None):
    folder = tmp_path / "0042"
    folder.mkdir()
    (folder / "input_output.json").write_text(json.dumps(io))
    (folder / "question.txt").write_text("Add two numbers.")
    (folder / "solutions.json").write_text(json.dumps(["print(1)", "print(2)"]))
    (folder / "metadata.json").write_text('{"difficulty": "interview"}')
    if starter is not None:
        (folder / "starter_code.py").write_text(starter)
    return folder


def test_apps_folder_stdio(tmp_path):
    folder = _apps_folder(tmp_path, {"inputs": ["1 2\n", ["3 4", "5"]], "outputs": ["3\n", "7\n"]})
    problem = load_apps_folder(folder)
    assert problem.mode is Mode.STDIO and problem.id == "0042"
    assert problem.question == "Add two numbers."
    assert [t.input for t in problem.tests] == ["1 2\n", "3 4\n5\n"]  # a list of lines is joined
    assert load_apps_solutions(folder) == ["print(1)", "print(2)"]
    assert as_problem(str(folder)) == problem


def test_apps_folder_call_based_with_solution_class(tmp_path):
    starter = "class Solution:\n    def add(self, a: int, b: int) -> int:\n        "
    io = {"fn_name": "add", "inputs": [[1, 2]], "outputs": [3]}
    problem = load_apps_folder(_apps_folder(tmp_path, io, starter))
    assert problem.mode is Mode.CALL and problem.fn_name == "add"
    assert problem.uses_solution_class
    assert problem.tests[0].input == [1, 2] and problem.tests[0].expected == 3


def test_apps_row_with_input_output_as_json_text():
    row = {
        "input_output": json.dumps({"fn_name": "f", "inputs": [["a"]], "outputs": [["b"]]}),
        "starter_code": "def f(s):\n\t",
        "problem_id": 7,
    }
    problem = as_problem(row)
    assert (problem.mode, problem.fn_name, problem.id) == (Mode.CALL, "f", "7")
    assert not problem.uses_solution_class


def test_fn_name_beside_input_output_is_used():
    problem = as_problem({"input_output": {"inputs": [[1]], "outputs": [1]}, "fn_name": "g"})
    assert problem.mode is Mode.CALL and problem.fn_name == "g"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"input_output": "{not json"}, "not valid JSON"),
        ({"input_output": {"inputs": ["1"]}}, "lists 'inputs' and 'outputs'"),
        ({"input_output": {"inputs": ["1"], "outputs": []}}, "1 inputs but 0 outputs"),
        ({"input_output": {"inputs": [], "outputs": []}}, "has no tests"),
        ({"input_output": {"inputs": [1], "outputs": ["1"]}}, "must be text"),
        ({"input_output": {"fn_name": "1x", "inputs": [[1]], "outputs": [1]}}, "identifier"),
        ({"input_output": {"fn_name": "f", "inputs": [1], "outputs": [1]}}, "argument list"),
        ({"test_list": []}, "test_list"),
        ({"test_list": ["assert 1 == 1"]}, "calls no function"),
        ({"test": "x", "entry_point": "not valid"}, "identifier"),
        ({"question": "?"}, "needs input_output"),
        (42, "not int"),
    ],
)
def test_bad_problems_raise_problem_error_naming_the_fault(bad, message):
    with pytest.raises(ProblemError, match=re.escape(message)):
        as_problem(bad)


def test_a_folder_without_input_output_is_not_a_problem(tmp_path):
    with pytest.raises(ProblemError, match=r"no input_output\.json"):
        load_apps_folder(tmp_path)


def test_mapcoder_rows_stdio_and_lossy_call_format(tmp_path):
    rows = [
        {
            "id": "10",
            "starter_code": "",
            "test_list": [{"input": "1 2\n", "output": ["3\n"]}],
        },
        {
            "id": "11",
            "starter_code": "\ndef f(xs, n, s):\n\t",
            "test_list": [{"input": "[1, 2]\n3\nabc", "output": [[1, 2, 3]]}],
        },
        {"id": "10", "starter_code": "", "test_list": [{"input": "x", "output": ["y"]}]},
    ]
    path = tmp_path / "mapcoder.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stdio, call = load_apps_mapcoder(path)  # the repeated id is read once
    assert stdio.mode is Mode.STDIO and stdio.tests[0].expected == "3\n"
    assert call.mode is Mode.CALL and call.fn_name == "f"
    assert call.tests[0].input == [[1, 2], 3, "abc"]  # JSON, else literal, else text
    _, as_stdio = load_apps_mapcoder(path, calls_as_stdio=True)
    assert as_stdio.mode is Mode.STDIO
    assert as_stdio.tests[0].input == "[1, 2]\n3\nabc"
    assert as_stdio.tests[0].expected == "[1, 2, 3]"


def test_humaneval_gzipped_jsonl(tmp_path):
    row = {
        "task_id": "HumanEval/0",
        "prompt": "def inc(x):\n",
        "canonical_solution": "    return x + 1\n",
        "test": "def check(candidate):\n    assert candidate(1) == 2\n",
        "entry_point": "inc",
    }
    path = tmp_path / "he.jsonl.gz"
    with gzip.open(path, "wt") as stream:
        stream.write(json.dumps(row) + "\n")
    (problem,) = load_humaneval(path)
    assert problem.mode is Mode.ASSERT and problem.fn_name == "inc"
    assert problem.prompt == "def inc(x):\n" and problem.id == "HumanEval/0"
    assert problem.tests[0].input.endswith("check(inc)\n")


def test_mbpp_rows_entry_point_setup_and_challenge_tests(tmp_path):
    row = {
        "task_id": 5,
        "text": "Add.",
        "code": "def add(a, b): return a + b",
        "test_list": ["assert add(1, 2) == 3", "assert set([add(0, 0)]) == {0}"],
        "test_setup_code": "import math",
        "challenge_test_list": ["assert add(-1, 1) == 0"],
    }
    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps(row) + "\n")
    (problem,) = load_mbpp(path)
    assert (problem.fn_name, problem.setup_code, len(problem.tests)) == ("add", "import math", 2)
    (with_challenge,) = load_mbpp(path, challenge=True)
    assert len(with_challenge.tests) == 3
    # A tested function that shadows a builtin is still the entry point (MBPP task 126).
    assert as_problem({"test_list": ["assert sum(10, 15) == 6"]}).fn_name == "sum"


def test_apps_problem_keeps_huge_expected_integers_exact():
    problem = apps_problem('{"fn_name": "f", "inputs": [[1]], "outputs": [' + "7" * 5000 + "]}")
    assert problem.tests[0].expected.text == "7" * 5000
