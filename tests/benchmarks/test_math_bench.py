"""`restem bench math` in a small form: it runs end to end, writes the report, and scores right.

No timing assertions: the machine is shared. The accuracy figures are checked on tiny labelled
sets whose verdicts are known for restem and for the is_equiv baseline; the fuzz part runs a few
seeded pairs and must come back well-formed with no exception.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from restem.benchmarks import math_bench, math_fuzz
from restem.benchmarks.peers import is_equiv, math_verify_peer
from restem.benchmarks.report import plot_available

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


# Math-Verify's suite format: gold, response, expected (1/0). restem judges all four right.
TINY_SUITE = [
    ("$1/3$", r"$\frac13 $", 1),
    ("$x > 5$", "Therefore $x < 5$ is the solution.", 0),
    ("$[0,9)$", "$[0,1)$", 0),
    ("$10/9$", r"The answer is $\boxed{\frac{10}{9}}$.", 1),
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def tiny(tmp_path) -> Path:
    return _write(
        tmp_path / "tiny.jsonl", [{"response": r, "gold": g, "label": lab} for r, g, lab in TINY]
    )


@pytest.fixture
def tiny_suite(tmp_path) -> Path:
    return _write(
        tmp_path / "suite.jsonl",
        [
            {"id": f"t{i}", "gold": g, "response": r, "expected": e}
            for i, (g, r, e) in enumerate(TINY_SUITE)
        ],
    )


RESULT_KEYS = {
    "how",
    "version",
    "labeled",
    "agree",
    "accuracy",
    "false_positives",
    "false_negatives",
    "one_worker",
    "n_workers",
    "one_at_a_time",
    "latency_ms",
    "disagreements_across_runs",
}


def _check_results(results: dict, rows: int) -> None:
    for row in results.values():
        assert set(row) >= RESULT_KEYS
        assert row["labeled"] == rows
        assert row["agree"] == row["true_positives"] + row["true_negatives"]
        assert row["agree"] + row["false_positives"] + row["false_negatives"] == rows
        assert row["disagreements_across_runs"] == 0
        for key in ("one_worker", "n_workers", "one_at_a_time"):
            assert row[key]["answers_per_s"] > 0
        assert row["n_workers"]["workers"] == 2
        assert 0 <= row["latency_ms"]["p50"] <= row["latency_ms"]["p99"] <= row["latency_ms"]["max"]


def _check_fuzz(fuzz: dict, pairs: int) -> None:
    assert fuzz["pairs"] == pairs
    assert fuzz["exceptions"] == 0, fuzz["exception_examples"]
    assert sum(fuzz["statuses"].values()) == pairs
    assert sum(sum(v.values()) for v in fuzz["statuses_by_kind"].values()) == pairs
    assert sum(h["pairs"] for h in fuzz["latency_histogram"]) == pairs
    assert fuzz["timeouts"] == fuzz["statuses"].get("timeout", 0)
    assert 0 <= fuzz["late_verdicts"] <= pairs
    lat = fuzz["latency_ms"]
    assert 0 <= lat["p50"] <= lat["p99"] <= lat["max"]
    assert fuzz["time_limit_s"] == 3.0  # the default settings


# Math-Verify's own time limits call signal.alarm(0), which would disarm pytest-timeout's signal
# method: guard this test with a watchdog thread instead.
@pytest.mark.timeout(300, method="thread")
def test_bench_math_smoke(tiny, tiny_suite, tmp_path, capsys):
    out = tmp_path / "res" / "math.json"
    argv = ["bench", "math", "--data", str(tiny), "--suite", str(tiny_suite)]
    # Few fuzz pairs, of a seed whose first pairs are not towers: `make test` stays fast.
    argv += ["--output", str(out), "--fuzz-pairs", "6", "--fuzz-seed", "7", "--min-time", "0"]
    argv += ["--sizes", "8,12", "--workers", "1,2", "--n-workers", "2", "--repeat", "1"]
    assert main(argv) == 0
    report = json.loads(out.read_text())

    assert report["benchmark"] == "math"
    assert report["parts"] == ["labeled", "suite", "fuzz"]
    assert {"machine", "versions", "datasets", "scaling", "fuzz", "targets"} <= set(report)
    labeled, suite = report["datasets"]["labeled"], report["datasets"]["suite"]
    assert labeled["data"] == {
        "path_name": "tiny.jsonl",
        "rows": 6,
        "labeled": 6,
        "labeled_correct": 3,
    }
    assert suite["data"] == {
        "path_name": "suite.jsonl",
        "rows": 4,
        "labeled": 4,
        "labeled_correct": 2,
    }
    ran = set(labeled["results"])
    assert ran | set(report["skipped"]) == {"restem", "math-verify", "is_equiv"}
    assert {"restem", "is_equiv"} <= ran
    assert set(suite["results"]) == ran
    _check_results(labeled["results"], 6)
    _check_results(suite["results"], 4)

    restem, baseline = labeled["results"]["restem"], labeled["results"]["is_equiv"]
    assert (restem["accuracy"], restem["false_positives"], restem["false_negatives"]) == (1.0, 0, 0)
    assert (baseline["agree"], baseline["false_positives"], baseline["false_negatives"]) == (
        4,
        1,
        1,
    )
    assert suite["results"]["restem"]["agree"] == 4
    for body in (labeled, suite):
        assert set(body["ratios"]) == ran - {"restem"}
    assert report["targets"]["labeled"]["zero_false_positives"] is True
    assert report["targets"]["labeled"]["all_agree"] is True
    assert report["targets"]["suite"]["agree_at_least_4_of_4"] is True
    if "math-verify" in ran:
        assert "at_least_15x_math_verify_one_worker" in report["targets"]["suite"]

    # The scaling grid runs on the labelled data only.
    grid = {(s["contender"], s["batch_size"], s["workers"]) for s in report["scaling"]}
    assert grid == {(c, n, w) for c in ran for n in (8, 12) for w in (1, 2)}

    _check_fuzz(report["fuzz"], 6)
    assert set(report["targets"]["fuzz"]) == {
        "zero_exceptions",
        "zero_late_verdicts",
        "timeouts_at_most_0.5%",
    }

    if plot_available() is None:
        assert out.with_suffix(".png").stat().st_size > 0
    table = capsys.readouterr().out
    assert "| restem | 6/6 | 0 | 0 |" in table
    assert "| restem | 4/4 | 0 | 0 |" in table
    assert "Fuzz: 6 seeded" in table


@pytest.mark.timeout(300, method="thread")
def test_bench_math_fuzz_alone_needs_no_data(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("RESTEM_DATA_DIR", raising=False)
    out = tmp_path / "math.json"
    argv = ["bench", "math", "--only", "fuzz", "--fuzz-pairs", "6", "--fuzz-seed", "6"]
    assert main([*argv, "--output", str(out), "--no-plot"]) == 0
    report = json.loads(out.read_text())
    assert report["parts"] == ["fuzz"]
    assert report["datasets"] == {} and report["scaling"] == []
    assert report["fuzz"]["seed"] == 6
    _check_fuzz(report["fuzz"], 6)


def test_only_rejects_unknown_parts(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "math", "--only", "labeled,fuzzz"])
    assert exc.value.code == 2
    assert "labeled, suite, fuzz" in capsys.readouterr().err


def test_fuzz_pairs_are_seeded_and_cover_every_kind():
    first = list(math_fuzz.fuzz_pairs(300, seed=7))
    assert first == list(math_fuzz.fuzz_pairs(300, seed=7))
    assert first != list(math_fuzz.fuzz_pairs(300, seed=8))
    assert {kind for kind, _, _ in first} == set(math_fuzz.KINDS)
    assert all(isinstance(r, str) and isinstance(g, str) for _, r, g in first)
    towers = [r + g for kind, r, g in first if kind == "tower"]
    assert any("^" in t for t in towers)


def test_latency_histogram_buckets():
    hist = math_fuzz.latency_histogram([0.0005, 0.002, 2.5, 3.5, 60.0])
    counts = {h["bucket"]: h["pairs"] for h in hist}
    assert counts["<= 1 ms"] == 1 and counts["<= 10 ms"] == 1
    assert counts["<= 3 s"] == 1 and counts["<= 4 s"] == 1 and counts["> 5 s"] == 1
    assert sum(counts.values()) == 5


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

    monkeypatch.setenv("RESTEM_DATA_DIR", str(tmp_path))
    assert main(["bench", "math", "--only", "suite", "--output", str(tmp_path / "m.json")]) == 2
    assert str(tmp_path / "math" / "math_verify_suite.jsonl") in capsys.readouterr().err


@pytest.mark.parametrize(
    ("label", "expected"), [(True, True), (False, False), (1, True), (0, False)]
)
def test_labels_are_booleans_or_one_and_zero(tmp_path, label, expected):
    data = _write(tmp_path / "d.jsonl", [{"response": "1", "gold": "1", "expected": label}])
    assert math_bench.load_rows(data)[0].label is expected


@pytest.mark.parametrize("label", [2, -1, "yes", 0.5])
def test_other_labels_are_rejected_with_the_line(tmp_path, label):
    data = _write(tmp_path / "d.jsonl", [{"response": "1", "gold": "1", "expected": label}])
    with pytest.raises(math_bench.DataError, match=f"{data}:1"):
        math_bench.load_rows(data)


def test_bad_line_is_reported_with_its_number(tmp_path, capsys):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"response": "1", "gold": "1"}\n{"response": 1}\n', encoding="utf-8")
    argv = ["bench", "math", "--only", "labeled", "--data", str(data), "--no-plot"]
    assert main(argv) == 2
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
        # A gold given as text is reduced first: its last box, else the inside of $...$.
        (r"\boxed{1/3}", "$1/3$", True),
        (r"\boxed{3}", r"So the answer is \[\boxed{3}\]", True),
        (r"\boxed{3}", r"$x$ is \boxed{4}", False),
        (r"\boxed{3}", "$3$ or $4$", False),
    ],
)
def test_is_equiv_baseline(response, gold, expected):
    assert is_equiv.judge(response, gold) is expected


@pytest.mark.parametrize(
    ("gold", "parsed_as"),
    [
        # No LaTeX delimiter and no box: put in $...$, as Math-Verify's README writes golds.
        ("-5", "$-5$"),
        (r"\frac12", r"$\frac12$"),
        (r"\$42", r"$\$42$"),  # an escaped dollar is a dollar sign, not a delimiter
        (r"\text{4:30 p.m.}", r"$\text{4:30 p.m.}$"),
        # Delimited or boxed golds are parsed as given.
        ("$9$", "$9$"),
        (r"\(x+1\)", r"\(x+1\)"),
        (r"So the answer is \[\boxed{3}\]", r"So the answer is \[\boxed{3}\]"),
        (r"x \in \boxed{[0,7)}", r"x \in \boxed{[0,7)}"),
    ],
)
def test_math_verify_gold_is_delimited_once(gold, parsed_as):
    assert math_verify_peer._gold_text(gold) == parsed_as


@pytest.mark.realdata
@pytest.mark.timeout(300, method="thread")
def test_bench_math_on_real_rows(data_dir, tmp_path):
    out = tmp_path / "math.json"
    argv = ["bench", "math", "--only", "labeled,suite", "--limit", "40", "--no-scaling"]
    argv += ["--repeat", "1", "--min-time", "0", "--no-plot", "--contenders", "restem,is_equiv"]
    assert main([*argv, "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    labeled, suite = report["datasets"]["labeled"], report["datasets"]["suite"]
    assert labeled["data"]["rows"] == suite["data"]["rows"] == 40
    assert labeled["results"]["restem"]["agree"] == 40
    _check_results(suite["results"], 40)
