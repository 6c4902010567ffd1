"""`restem bench executor` in a small form: the local and the Ray executors, end to end on a
Ray instance the benchmark starts, over tiny data the test writes itself.

Every contender must judge every item as the labels say (the tiny math set, one right and one
wrong HumanEval program, trivial programs one in four wrong) and agree with the others on every
verdict. No timing assertions.
"""

from __future__ import annotations

import json

import pytest
from restem.benchmarks import executor_bench
from restem.benchmarks.report import plot_available

from restem.cli import main
from tests.benchmarks.test_code_bench import _data as write_code_data
from tests.benchmarks.test_math_bench import TINY

CONTENDERS = {"local-1", "local-2", "ray-1", "ray-2"}


@pytest.mark.slow
def test_bench_executor_smoke_local_and_ray(tmp_path, capsys):
    pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'restem[ray]'")
    math_data = tmp_path / "tiny.jsonl"
    math_data.write_text(
        "".join(json.dumps({"response": r, "gold": g, "label": lab}) + "\n" for r, g, lab in TINY)
    )
    code_dir = write_code_data(tmp_path / "data")
    out = tmp_path / "res" / "executor.json"
    argv = ["bench", "executor", "--data", str(math_data), "--data-dir", str(code_dir)]
    argv += ["--math-pairs", "48", "--humaneval", "2", "--trivial", "8", "--math-chunk", "8"]
    assert main([*argv, "--output", str(out)]) == 0
    report = json.loads(out.read_text())

    assert report["benchmark"] == "executor"
    assert report["skipped"] == {}
    assert [w["name"] for w in report["workloads"]] == ["math", "humaneval", "trivial"]
    assert {r["contender"] for r in report["rows"]} == CONTENDERS
    assert report["ray"]["init_s"] >= 0 and report["ray"]["nodes"] >= 1
    # (items, right, agreeing with the labels, labeled) per workload
    expected = {"math": (48, 24, 48, 48), "humaneval": (2, 1, 1, 2), "trivial": (8, 6, 8, 8)}
    for row in report["rows"]:
        assert row["start_s"] >= 0 and row["warm_up_s"] > 0
        if row["executor"] == "ray":
            assert len(row["actors"]) == row["workers"]
            assert row["ray_stats"]["lost_workers"] == 0
        for name, result in row["workloads"].items():
            got = (result["items"], result["correct"], result["agree"], result["labeled"])
            assert got == expected[name], (row["contender"], name)
            assert result["mismatches"] == 0, (row["contender"], name)
            assert result["items_per_s"] > 0 and result["first_verdict_ms"] >= 0
            assert result["vs_local_same_workers"] > 0
            if row["executor"] == "local":
                assert result["vs_local_same_workers"] == 1.0

    if plot_available() is None:
        assert out.with_suffix(".png").stat().st_size > 0
    table = capsys.readouterr().out
    assert "| math (pairs) | ray, 2 actors | 48 |" in table
    assert "ray.init" in table


def test_compare_counts_mismatches_against_the_first_contender():
    def row(executor, workers, keys, per_s):
        result = {"keys": keys, "items_per_s": per_s}
        return {"executor": executor, "workers": workers, "workloads": {"math": result}}

    rows = [
        row("local", 1, [("correct", "1"), ("incorrect", "2")], 100.0),
        row("local", 2, [("correct", "1"), ("incorrect", "2")], 150.0),
        row("ray", 1, [("correct", "1"), ("error", None)], 50.0),
        row("ray", 3, [("incorrect", "1"), ("error", None)], 10.0),
    ]
    executor_bench._compare(rows)
    got = [
        (r["workloads"]["math"]["mismatches"], r["workloads"]["math"]["vs_local_same_workers"])
        for r in rows
    ]
    assert got == [(0, 1.0), (0, 1.0), (1, 0.5), (2, None)]
    assert all("keys" not in r["workloads"]["math"] for r in rows)


def test_missing_math_data_and_bad_executor_are_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESTEM_DATA_DIR", str(tmp_path))
    assert main(["bench", "executor", "--output", str(tmp_path / "e.json")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "math" / "labeled_outputs_800.jsonl") in err and "RESTEM_DATA_DIR" in err

    assert main(["bench", "executor", "--executors", "local,dask"]) == 2
    assert "unknown executor 'dask'" in capsys.readouterr().err

    argv = ["bench", "executor", "--math-pairs", "0", "--humaneval", "0", "--trivial", "0"]
    assert main(argv) == 2
    assert "nothing to run" in capsys.readouterr().err
