"""`restem bench serve` end to end at a tiny size: every check it makes must hold."""

from __future__ import annotations

import argparse
import json

import pytest
from restem.benchmarks import serve_bench


@pytest.mark.slow
def test_serve_bench_runs_and_all_checks_hold(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    serve_bench.add_arguments(parser)
    out = tmp_path / "serve.json"
    args = parser.parse_args(
        [
            "--clients",
            "2",
            "--requests",
            "6",
            "--code-requests",
            "2",
            "--batch",
            "3",
            "--backend",
            "local",
            "--workers",
            "2",
            "--output",
            str(out),
        ]
    )
    assert serve_bench.main(args) == 0, capsys.readouterr().out
    report = json.loads(out.read_text())
    assert set(report["load"]) == {"math http", "code http", "math in-process", "code in-process"}
    assert report["load"]["math http"]["rows"] == 18
    assert all(case["ok"] for case in report["bad_input"])
    assert report["shutdown"]["answered_200"] == report["shutdown"]["requests"]
    assert report["leaks"] == {"processes": [], "containers": [], "temp_entries": []}
    assert "| math http |" in capsys.readouterr().out


def test_serve_bench_rejects_bad_sizes(capsys):
    parser = argparse.ArgumentParser()
    serve_bench.add_arguments(parser)
    assert serve_bench.main(parser.parse_args(["--clients", "0"])) == 2
    assert "--clients must be at least 1" in capsys.readouterr().err
