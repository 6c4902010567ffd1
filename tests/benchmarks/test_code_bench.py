"""`restem bench code` in a small form, on a tiny data folder the test writes itself.

Each workload holds one right and one wrong program, so every contender must report exactly the
right ones passed. No timing assertions.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from restem.cli import main

REQUIRE_DOCKER = os.environ.get("RESTEM_REQUIRE_DOCKER") == "1"

HUMANEVAL = [
    {
        "task_id": "T/0",
        "prompt": "def add(a, b):\n    '''a + b'''\n",
        "canonical_solution": "    return a + b\n",
        "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0\n",
        "entry_point": "add",
    },
    {
        "task_id": "T/1",
        "prompt": "def neg(a):\n    '''-a'''\n",
        "canonical_solution": "    return a\n",  # wrong
        "test": "def check(candidate):\n    assert candidate(2) == -2\n",
        "entry_point": "neg",
    },
]
STDIO = {"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]}
STDIO_SOLUTIONS = ["a, b = map(int, input().split())\nprint(a + b)\n", "print(3)\n"]
CALL = {"fn_name": "double", "inputs": [[2], [5]], "outputs": [[4], [10]]}
CALL_SOLUTIONS = ["def double(x):\n    return 2 * x\n", "def double(x):\n    return x + 2\n"]
MAPCODER = {
    "id": 7,
    "name": "7",
    "description": "reverse a line",
    "difficulty": "competition",
    "sample_io": [],
    "starter_code": "",
    "test_list": [{"input": "abc\n", "output": ["cba\n"]}, {"input": "xy\n", "output": ["yx\n"]}],
}
MBPP = [
    {"task_id": 1, "text": "square", "code": "def sq(x):\n    return x * x\n",
     "test_list": ["assert sq(2) == 4", "assert sq(3) == 9"], "test_setup_code": ""},
]  # fmt: skip
REFERENCE = [
    {"id": 7, "path": "7/solutions/0.py", "commit": "x", "text": "print(input()[::-1])\n"},
    {"id": 7, "path": "7/solutions/1.py", "commit": "x", "text": "print(input())\n"},
]


def _data(root: Path) -> Path:
    code = root / "code"
    code.mkdir(parents=True)
    with gzip.open(code / "humaneval.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in HUMANEVAL)
    for name, io, solutions in (("0001", STDIO, STDIO_SOLUTIONS), ("0002", CALL, CALL_SOLUTIONS)):
        folder = code / "apps_original_layout" / name
        folder.mkdir(parents=True)
        (folder / "input_output.json").write_text(json.dumps(io))
        (folder / "solutions.json").write_text(json.dumps(solutions))
    (code / "apps_mapcoder150.jsonl").write_text(json.dumps(MAPCODER) + "\n")
    (code / "mbpp.jsonl").write_text("".join(json.dumps(r) + "\n" for r in MBPP))
    (code / "apps_reference_solutions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in REFERENCE)
    )
    return code


def _run(tmp_path: Path, contenders: str, synthetic: int, many: str = "", repeat: int = 1) -> dict:
    out = tmp_path / "res" / "code.json"
    argv = ["bench", "code", "--data-dir", str(_data(tmp_path)), "--output", str(out)]
    argv += ["--repeat", str(repeat)]
    argv += ["--contenders", contenders, "--workers", "1,2", "--synthetic", str(synthetic)]
    argv += ["--synthetic-docker-run", "2", "--docker-run-programs", "3"]
    if many:
        argv += ["--many-contenders", many, "--many-programs", "3", "--many-tests", "6"]
    else:
        argv += ["--many-programs", "0"]
    assert main(argv) == 0
    return json.loads(out.read_text())


def _check_rows(report: dict, names: set[str]) -> None:
    rows = report["tests"]["rows"]
    assert {(r["contender"], r["workers"]) for r in rows} == {(n, w) for n in names for w in (1, 2)}
    for row in rows:
        assert row["programs_per_s"] > 0 and row["tests_per_s"] > 0
        if row["subset"]:
            continue
        assert (row["programs"], row["tests"]) == (8, 14)
        # the wrong stdio and call solutions each pass one of their two tests
        assert (row["passed_programs"], row["passed_tests"]) == (4, 9)
        assert row["by_workload"] == {
            "humaneval": {"tests": 2, "passed_tests": 1, "programs": 2, "passed_programs": 1},
            "apps-folders": {"tests": 8, "passed_tests": 6, "programs": 4, "passed_programs": 2},
            "apps-reference": {"tests": 4, "passed_tests": 2, "programs": 2, "passed_programs": 1},
        }


def test_bench_code_smoke_local_and_unsandboxed(tmp_path, capsys):
    report = _run(tmp_path, "local,unsandboxed", synthetic=0)
    assert report["benchmark"] == "code"
    assert {"machine", "versions", "limits", "tests", "synthetic"} <= set(report)
    assert report["tests"]["skipped"] == {}
    _check_rows(report, {"local", "unsandboxed"})
    assert set(report["tests"]["ratios"]["1"]) == {"local / unsandboxed"}
    # Both interpreters timed on the same work: the ratios carry their difference.
    found = report["interpreters"]
    assert found["host"]["probe_ms"] > 0 and found["sandbox"]["probe_ms"] > 0, found
    assert found["sandbox_speedup"] == pytest.approx(
        found["host"]["probe_ms"] / found["sandbox"]["probe_ms"], abs=0.01
    )
    out = capsys.readouterr().out
    assert "| local |" in out and "Interpreters, one pure-Python probe" in out


def test_repeated_runs_are_interleaved_and_the_median_is_kept(tmp_path):
    report = _run(tmp_path, "local,unsandboxed", synthetic=0, repeat=3)
    _check_rows(report, {"local", "unsandboxed"})
    for row in report["tests"]["rows"]:
        assert len(row["runs_s"]) == 3
        assert row["seconds"] == sorted(row["runs_s"])[1]


def test_repeat_below_one_is_refused(tmp_path, capsys):
    argv = ["bench", "code", "--data-dir", str(_data(tmp_path)), "--repeat", "0"]
    assert main([*argv, "--output", str(tmp_path / "c.json")]) == 2
    assert "--repeat" in capsys.readouterr().err


@pytest.mark.docker
def test_bench_code_smoke_docker(tmp_path):
    from restem.sandbox import docker_available

    if not docker_available():
        if REQUIRE_DOCKER:
            pytest.fail("RESTEM_REQUIRE_DOCKER=1 but no Docker engine answers")
        pytest.skip("no Docker engine answers")
    report = _run(tmp_path, "docker-pool,docker-run", synthetic=4)
    _check_rows(report, {"docker-pool", "docker-run"})
    assert report["tests"]["ratios"]["2"]["docker-pool / docker-run"] is not None
    synthetic = {(r["contender"], r["workers"]) for r in report["synthetic"]["rows"]}
    assert synthetic == {
        (n, w) for n in ("bare", "local", "docker_pool", "docker_run") for w in (1, 2)
    }
    for row in report["synthetic"]["rows"]:
        assert row["correct"] == row["programs"]


def test_bench_code_many_test_workload_is_generated_and_judged_by_each_path(tmp_path, capsys):
    report = _run(tmp_path, "unsandboxed", synthetic=0, many="local,local-per-test,unsandboxed")
    many = report["many_tests"]
    # two HumanEval references (one of them wrong: its outputs are still the expected ones) and
    # one MBPP reference, each on 6 inputs: its own test inputs, then type-preserving mutants
    assert sorted(many["programs"]) == ["humaneval/T/0", "humaneval/T/1", "mbpp/1"]
    rows = many["rows"]
    assert {(r["contender"], r["workers"]) for r in rows} == {
        (n, w) for n in ("local", "local-per-test", "unsandboxed") for w in (1, 2)
    }
    for row in rows:
        assert (row["programs"], row["tests"], row["passed_tests"]) == (3, 18, 18), row
    assert many["ratios"]["1"]["local / local-per-test"] is not None
    assert set(many["scaling"]) == {"local", "local-per-test", "unsandboxed"}
    assert "Many-test workload" in capsys.readouterr().out


def test_mutations_keep_types_and_stay_near():
    import random

    from restem.benchmarks.code_bench import _candidate_inputs, _mutate

    rng = random.Random(0)
    seeds = [[3, "abc", [1, 2, 3], 2.5, True, {"k": 1}, (1, "x")]]
    for args in _candidate_inputs(seeds, 50, rng)[1:]:
        assert [type(a) for a in args] == [int, str, list, float, bool, dict, list]  # JSON: tuple
        assert abs(args[0]) <= 10 and set(args[1]) <= set("abc") and len(args[1]) <= 11
    assert _mutate(None, rng) is None
    assert len({str(a) for a in _candidate_inputs(seeds, 50, rng)}) == 50  # distinct


def test_missing_code_data_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESTEM_DATA_DIR", str(tmp_path))
    assert main(["bench", "code", "--output", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "code") in err and "RESTEM_DATA_DIR" in err
