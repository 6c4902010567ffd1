"""`restem verify math`: JSONL contract, bad input, exit statuses, summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from restem.cli import main
from tests.conftest import read_rows, run_on_lines, write_lines

ROWS = [
    {"id": 1, "response": r"so \boxed{\frac{1}{2}}", "gold": "0.5"},
    {"id": 2, "response": r"\boxed{2\sqrt{2}}", "gold": r"\sqrt{8}"},
    {"id": 3, "response": r"\boxed{9999}", "gold": "10000"},
    {"id": 4, "response": r"\boxed{5", "gold": "5"},
    {"id": 5, "response": "7", "gold": r"\frac{1}{"},
]
STATUSES = ["correct", "correct", "incorrect", "no_answer", "invalid_gold"]


def test_rows_pass_through_in_order_with_verdict_fields(tmp_path, capsys):
    src = write_lines(tmp_path / "in.jsonl", [json.dumps(r) for r in ROWS])
    out = tmp_path / "sub" / "out.jsonl"
    assert (
        main(["verify", "math", "--input", str(src), "--output", str(out), "--workers", "2"]) == 0
    )
    rows = read_rows(out)
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["status"] for r in rows] == STATUSES
    assert [r["correct"] for r in rows] == [True, True, False, False, False]
    assert rows[0]["extracted"] == r"\frac{1}{2}" and rows[0]["reason"]
    assert rows[0]["response"] == ROWS[0]["response"]  # input fields untouched
    summary = capsys.readouterr().err
    assert "5 answers" in summary and "accuracy 0.5000 (2/4)" in summary
    assert "invalid_gold 1" in summary and "/s" in summary


def test_bad_lines_are_named_and_the_rest_is_processed(tmp_path, capsys):
    lines = [
        json.dumps(ROWS[0]),
        "{not json",
        json.dumps({"response": "1"}),
        "[1, 2]",
        "",
        json.dumps({"response": ["a"], "gold": "1"}),
        "[" * 100_000,  # json.loads recurses: this must be a bad line, not a crash
        json.dumps(ROWS[2]),
    ]
    rows = run_on_lines(tmp_path, ["verify", "math"], lines)
    assert [r["id"] for r in rows] == [1, 3]
    err = capsys.readouterr().err
    assert "line 2: invalid JSON" in err
    assert "line 3: missing field 'gold'" in err
    assert "line 4: expected a JSON object" in err
    assert "line 6: field 'response' must be text" in err
    assert "line 7: invalid JSON (nested too deeply)" in err
    assert "5 bad input line(s) skipped" in err


def test_custom_field_names_and_numeric_gold(tmp_path):
    src = write_lines(tmp_path / "in.jsonl", [json.dumps({"out": r"\boxed{42}", "answer": 42})])
    out = tmp_path / "out.jsonl"
    argv = ["verify", "math", "--input", str(src), "--output", str(out)]
    assert main([*argv, "--response-field", "out", "--gold-field", "answer"]) == 0
    assert read_rows(out)[0]["status"] == "correct"


@pytest.mark.parametrize(
    "extra",
    [["--workers", "0"], ["--timeout", "0"], ["--timeout", "abc"], ["--bogus"]],
)
def test_usage_errors_exit_2(tmp_path, extra, capsys):
    src = write_lines(tmp_path / "in.jsonl", [json.dumps(ROWS[0])])
    with pytest.raises(SystemExit) as exc:
        main(["verify", "math", "--input", str(src), "--output", str(tmp_path / "o"), *extra])
    assert exc.value.code == 2
    assert capsys.readouterr().err


@pytest.mark.parametrize("kind", ["math", "code"])
def test_ray_address_without_the_ray_executor_is_a_usage_error(tmp_path, kind, capsys):
    # Forgetting --executor ray must not silently verify on this machine instead.
    src = write_lines(tmp_path / "in.jsonl", [json.dumps(ROWS[0])])
    out = tmp_path / "o"
    code = main(
        ["verify", kind, "--input", str(src), "--output", str(out), "--ray-address", "auto"]
    )
    assert code == 2
    assert "--ray-address needs --executor ray" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit) as exc:
        main(["verify", kind, "--executor", "sparkle", "--input", str(src), "--output", "-"])
    assert exc.value.code == 2


@pytest.mark.parametrize("kind", ["math", "code"])
def test_unwritable_output_is_a_clear_error(tmp_path, kind, capsys):
    src = write_lines(tmp_path / "in.jsonl", [json.dumps(ROWS[0])])
    blocker = write_lines(tmp_path / "a-file", ["x"])  # a file where a folder would have to be
    code = main(["verify", kind, "--input", str(src), "--output", str(blocker / "out.jsonl")])
    assert code == 2
    assert f"restem verify {kind}: cannot write" in capsys.readouterr().err


def test_missing_input_file_is_a_clear_error(tmp_path, capsys):
    code = main(["verify", "math", "--input", str(tmp_path / "nope.jsonl"), "--output", "-"])
    assert code == 2
    assert "cannot read" in capsys.readouterr().err


def test_console_script_reads_stdin_and_writes_stdout():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "restem.cli",
            "verify",
            "math",
            "--input",
            "-",
            "--output",
            "-",
        ],
        input="".join(json.dumps(r) + "\n" for r in ROWS),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(line)["status"] for line in proc.stdout.splitlines()] == STATUSES
    assert "restem verify math: 5 answers" in proc.stderr


def test_shipped_example_file_verifies(tmp_path):
    example = Path(__file__).resolve().parents[2] / "examples" / "math_answers.jsonl"
    out = tmp_path / "out.jsonl"
    assert main(["verify", "math", "--input", str(example), "--output", str(out)]) == 0
    rows = read_rows(out)
    # Every row names its expected outcome in its id: near misses and hedges are rejected.
    for row in rows:
        expect_correct = not row["id"].startswith(
            ("near-miss", "hedge", "truncated", "no-answer", "bad-gold")
        )
        assert row["correct"] is expect_correct, row
