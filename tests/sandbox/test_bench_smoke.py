"""A small form of benchmarks/sandbox_bench.py: it runs end to end (no timing assertions)."""

from __future__ import annotations

import json

import pytest
from restem.benchmarks import sandbox_bench

pytestmark = pytest.mark.docker


def test_sandbox_bench_smoke(docker_client, tmp_path):
    out = tmp_path / "restem.sandbox.json"
    assert sandbox_bench.main(["--n", "4", "--workers", "2", "--output", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"bare", "local", "docker_pool", "docker_run"}
    for row in report["results"].values():
        assert row["correct"] == row["programs"] == 4
        assert row["programs_per_s"] > 0
    assert set(report["ratios"]) == {
        "pool_speedup_over_docker_run",
        "pool_slowdown_vs_bare",
        "local_slowdown_vs_bare",
    }
