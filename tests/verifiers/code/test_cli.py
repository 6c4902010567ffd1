"""`restem verify code`: JSONL contract, bad rows named by line, exit statuses, summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from restem.cli import main
from tests.conftest import read_rows, run_on_lines, write_lines

ADD_IO = {"inputs": ["1 2\n", "2 2\n"], "outputs": ["3\n", "4\n"]}
ROWS = [
    {
        "id": 1,
        "problem": {"input_output": json.dumps(ADD_IO)},
        "solution": "print(sum(map(int, input().split())))",
    },
    {"id": 2, "problem": {"input_output": ADD_IO}, "solution": "print(3)"},
    {
        "id": 3,
        "problem": {
            "input_output": {"fn_name": "f", "inputs": [[1]], "outputs": [1]},
            "starter_code": "def f(x):\n",
        },
        "solution": "def f(x):\n    return x",
    },
    {"id": 4, "problem": {"input_output": ADD_IO}, "solution": "print(1 +"},
]


def _argv(src: Path, out: Path, *extra: str) -> list[str]:
    return [
        "verify",
        "code",
        "--input",
        str(src),
        "--output",
        str(out),
        "--backend",
        "local",
        *extra,
    ]


def test_rows_pass_through_in_order_with_verdict_fields(tmp_path, capsys):
    src = write_lines(tmp_path / "in.jsonl", [json.dumps(r) for r in ROWS])
    out = tmp_path / "sub" / "out.jsonl"
    assert main(_argv(src, out, "--workers", "2", "--quiet")) == 0
    rows = read_rows(out)
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    assert [r["status"] for r in rows] == ["passed", "wrong_answer", "passed", "compile_error"]
    assert [r["correct"] for r in rows] == [True, False, True, False]
    assert rows[1]["pass_fraction"] == 0.5 and len(rows[1]["tests"]) == 2  # stopped at test 1
    assert rows[1]["tests"][1] == {
        "index": 1,
        "status": "wrong_answer",
        "wall_s": rows[1]["tests"][1]["wall_s"],
        "reason": "line 1, token 1: expected '4', got '3'",
    }
    assert rows[0]["solution"] == ROWS[0]["solution"]  # input fields untouched
    summary = capsys.readouterr().err
    assert "4 programs" in summary and "local sandbox" in summary and "passed 2/4" in summary


def test_all_tests_flag_runs_every_test(tmp_path):
    rows = [{**ROWS[1], "solution": "print(0)"}]
    src = write_lines(tmp_path / "in.jsonl", [json.dumps(r) for r in rows])
    out = tmp_path / "out.jsonl"
    assert main(_argv(src, out, "--all-tests")) == 0
    assert len(read_rows(out)[0]["tests"]) == 2


def test_apps_compat_flag_accepts_what_apps_accepts(tmp_path):
    row = {
        "problem": {"input_output": {"inputs": [""], "outputs": ["1 2\n"]}},
        "solution": "print(2, 1)",
    }
    src = write_lines(tmp_path / "in.jsonl", [json.dumps(row)])
    out = tmp_path / "out.jsonl"
    assert main(_argv(src, out)) == 0
    assert read_rows(out)[0]["status"] == "wrong_answer"
    assert main(_argv(src, out, "--compare", "apps_compat")) == 0
    assert read_rows(out)[0]["status"] == "passed"


def test_an_apps_folder_path_is_a_problem(tmp_path):
    folder = tmp_path / "0007"
    folder.mkdir()
    (folder / "input_output.json").write_text(json.dumps(ADD_IO))
    row = {"problem": str(folder), "solution": "print(sum(map(int, input().split())))"}
    src = write_lines(tmp_path / "in.jsonl", [json.dumps(row)])
    out = tmp_path / "out.jsonl"
    assert main(_argv(src, out)) == 0
    assert read_rows(out)[0]["correct"] is True


def test_bad_lines_are_named_and_the_rest_is_processed(tmp_path, capsys):
    lines = [
        json.dumps(ROWS[0]),
        "{not json",
        json.dumps({"problem": ROWS[0]["problem"]}),
        "[1, 2]",
        "",
        json.dumps({"problem": ROWS[0]["problem"], "solution": ["print(1)"]}),
        json.dumps({"problem": {"input_output": {"inputs": []}}, "solution": "pass"}),
        json.dumps({"problem": str(tmp_path / "missing"), "solution": "pass"}),
        json.dumps(ROWS[1]),
    ]
    rows = run_on_lines(tmp_path, ["verify", "code", "--backend", "local"], lines)
    assert [r["id"] for r in rows] == [1, 2]
    err = capsys.readouterr().err
    assert "line 2: invalid JSON" in err
    assert "line 3: missing field 'solution'" in err
    assert "line 4: expected a JSON object" in err
    assert "line 6: field 'solution' must be text" in err
    assert "line 7: bad problem: input_output needs lists" in err
    assert "line 8: bad problem:" in err and "no input_output.json" in err
    assert "6 bad input line(s) skipped" in err


@pytest.mark.parametrize(
    "extra",
    [["--backend", "nonsense"], ["--timeout", "0"], ["--workers", "0"], ["--compare", "loose"]],
)
def test_usage_errors_exit_2(tmp_path, extra):
    src = write_lines(tmp_path / "in.jsonl", [json.dumps(ROWS[0])])
    with pytest.raises(SystemExit) as exc:
        main(["verify", "code", "--input", str(src), "--output", "-", *extra])
    assert exc.value.code == 2


def test_unreadable_input_exits_2(tmp_path, capsys):
    assert main(_argv(tmp_path / "nope.jsonl", tmp_path / "out.jsonl")) == 2
    assert "cannot read" in capsys.readouterr().err
