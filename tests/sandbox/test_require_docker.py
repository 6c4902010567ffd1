"""Without an engine, docker tests skip, except under RESTEM_REQUIRE_DOCKER=1, where they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests/sandbox/test_image.py::test_image_is_current_and_labelled"


@pytest.mark.parametrize("required", ["0", "1"])
def test_skip_without_engine_fails_only_when_required(required, tmp_path):
    env = dict(os.environ, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    env["RESTEM_REQUIRE_DOCKER"] = required
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TARGET],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if required == "1":
        assert out.returncode == 1, out.stdout[-2000:]
        assert "1 error" in out.stdout or "1 failed" in out.stdout, out.stdout[-2000:]
    else:
        assert out.returncode == 0, out.stdout[-2000:]
        assert "1 skipped" in out.stdout, out.stdout[-2000:]
