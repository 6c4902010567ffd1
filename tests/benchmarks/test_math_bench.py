"""`restem bench math` in a small form: it runs end to end, writes the report, and scores right.

No timing assertions: the machine is shared. The accuracy figures are checked on a tiny labelled
set whose verdicts are known for restem and for the is_equiv baseline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from restem.benchmarks import math_bench
from restem.benchmarks.peers import is_equiv
from restem.cli import main

# (response, gold, label); restem judges all six right. is_equiv misses 2/4 = 1/2 (a false
# negative) and, taking only the last box, accepts the hedge "3 or 5" (a false positive).
TINY = [
    (r"so $\boxed{2/4}$", r"\frac{1}{2}", True),
    (r"\boxed{9999}", "10000", False),
    (r"It is $\boxed{3}$ or maybe $\boxed{5}$.", "5", False),
    (r"The answer is $\boxed{x = 5}$.", "5", True),
    (r"$\boxed{\dfrac{1}{2}}$", r"\frac12", True),
    (r"\boxed{(1,2)}", "(2,1)", False),
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path) -> Path:
    return _write(
        tmp_path / "tiny.jsonl", [{"response": r, "gold": g, "label": lab} for r, g, lab in TINY]
    )


# Math-Verify's own time limits call signal.alarm(0), which would disarm pytest-timeout's signal
# method: guard this test with a watchdog thread instead.
@pytest.mark.timeout(300, method="thread")
def test_bench_math_smoke(tiny, tmp_path, capsys):
    out = tmp_path / "res" / "math.json"
    argv = ["bench", "math", "--data", str(tiny), "--output", str(out)]
    argv += ["--sizes", "8,12", "--workers", "1,2", "--n-workers", "2", "--repeat", "1"]
    assert main(argv) == 0
    report = json.loads(out.read_text())

    assert report["benchmark"] == "math"
    assert {"machine", "data", "versions", "results", "ratios", "scaling", "targets"} <= set(report)
    assert report["data"] == {
        "path_name": "tiny.jsonl",
        "rows": 6,
        "labeled": 6,
        "labeled_correct": 3,
    }
    ran = set(report["results"])
    assert ran | set(report["skipped"]) == {"restem", "math-verify", "is_equiv"}
    assert {"restem", "is_equiv"} <= ran

    for row in report["results"].values():
        assert row["labeled"] == 6
        assert row["agree"] == row["true_positives"] + row["true_negatives"]
        assert row["agree"] + row["false_positives"] + row["false_negatives"] == 6
        assert row["disagreements_across_runs"] == 0
        for key in ("one_worker", "n_workers", "one_at_a_time"):
            assert row[key]["answers_per_s"] > 0
        assert row["n_workers"]["workers"] == 2
        assert 0 <= row["latency_ms"]["p50"] <= row["latency_ms"]["p99"] <= row["latency_ms"]["max"]

    restem, baseline = report["results"]["restem"], report["results"]["is_equiv"]
    assert (restem["accuracy"], restem["false_positives"], restem["false_negatives"]) == (1.0, 0, 0)
    assert (baseline["agree"], baseline["false_positives"], baseline["false_negatives"]) == (
        4,
        1,
        1,
    )
    assert set(report["ratios"]) == ran - {"restem"}
    assert report["targets"]["zero_false_positives"] is True
    assert report["targets"]["highest_accuracy"] is True

    grid = {(s["contender"], s["batch_size"], s["workers"]) for s in report["scaling"]}
    assert grid == {(c, n, w) for c in ran for n in (8, 12) for w in (1, 2)}

    if math_bench.plot_available() is None:
        assert out.with_suffix(".png").stat().st_size > 0
    table = capsys.readouterr().out
    assert "| restem | 6/6 | 0 | 0 |" in table


def test_score_counts():
    judgments = [True, True, False, None, False, True]
    labels = [True, False, True, True, False, None]
    assert math_bench.score(judgments, labels) == {
        "labeled": 5,
        "agree": 2,
        "accuracy": 0.4,
        "false_positives": 1,
        "false_negatives": 2,
        "true_positives": 1,
        "true_negatives": 1,
        "abstained": 1,
    }


def test_missing_data_names_the_path_and_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESTEM_DATA_DIR", str(tmp_path))
    assert main(["bench", "math", "--output", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "math" / "labeled_outputs_800.jsonl") in err
    assert "RESTEM_DATA_DIR" in err

    monkeypatch.delenv("RESTEM_DATA_DIR")
    assert main(["bench", "math"]) == 2
    assert "RESTEM_DATA_DIR" in capsys.readouterr().err

    missing = tmp_path / "nope.jsonl"
    assert main(["bench", "math", "--data", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_bad_line_is_reported_with_its_number(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"response": "1", "gold": "1"}\n{"response": 1}\n', encoding="utf-8")
    assert main(["bench", "math", "--data", str(data), "--no-plot"]) == 2
    assert f"{data}:2" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        (r"so \boxed{\frac{1}{2}}", "0.5", True),  # 0.5 -> \frac{1}{2}
        (r"\boxed{\dfrac12}", r"\frac{1}{2}", True),
        (r"\boxed{3/4}", r"\frac34", True),
        (r"\boxed{\sqrt2}", r"\sqrt{2}", True),
        (r"\boxed{90^\circ}", "90", True),
        (r"\boxed{5\text{ cm}}", "5", True),
        (r"\boxed{\left( 1, 2 \right)}", "(1,2)", True),
        (r"\boxed{.5}", "0.5", True),
        (r"\boxed{2x}", "x2", False),
        (r"\boxed{4", "4", False),  # the box never closes
        ("no box at all: 4", "4", False),
        (r"\fbox{7}", "7", True),
    ],
)
def test_is_equiv_baseline(response, gold, expected):
    assert is_equiv.judge(response, gold) is expected


@pytest.mark.realdata
def test_bench_math_on_real_rows(data_dir, tmp_path):
    out = tmp_path / "math.json"
    argv = ["bench", "math", "--limit", "40", "--no-scaling", "--repeat", "1", "--no-plot"]
    assert main([*argv, "--output", str(out), "--contenders", "restem,is_equiv"]) == 0
    report = json.loads(out.read_text())
    assert report["data"]["rows"] == 40
    assert report["results"]["restem"]["agree"] == 40
