"""Shared fixtures. Real data lives outside the repo: RESTEM_DATA_DIR (CI sets ../shared/data)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

# Property tests explore fresh random inputs on every local run; CI replays a fixed set
# (RESTEM_HYPOTHESIS=ci, set by .ci/run), so a landing never depends on a lucky draw. A failure
# found locally becomes a table case.
try:
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
    _hypothesis_settings.load_profile(os.environ.get("RESTEM_HYPOTHESIS", "default"))
except ImportError:  # the dev extra is not installed; the property tests import it themselves
    pass


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_on_lines(tmp_path: Path, argv: list[str], lines: list[str]) -> list[dict]:
    """The rows `restem <argv>` writes for ``lines`` given as its input file; it must exit 0."""
    from restem.cli import main

    src = write_lines(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    assert main([*argv, "--input", str(src), "--output", str(out)]) == 0
    return read_rows(out)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data folder, or a skip that says how to provide it.

    When RESTEM_DATA_DIR is set but wrong the tests fail instead: CI sets it, and a silently
    skipped real-data test would hide a broken set-up.
    """
    value = os.environ.get("RESTEM_DATA_DIR")
    if not value:
        pytest.skip("real data not available: set RESTEM_DATA_DIR to the shared data folder")
    path = Path(value)
    if not (path / "SOURCES.md").exists():
        pytest.fail(f"RESTEM_DATA_DIR={value} does not look like the shared data folder")
    return path


def _ray_processes(temp_dir: Path) -> list[str]:
    """The processes of the Ray instance whose temp dir is ``temp_dir`` (not other instances)."""
    found = subprocess.run(["pgrep", "-af", str(temp_dir)], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "pgrep" not in line]


@pytest.fixture(scope="module")
def ray_instance():
    """A real Ray instance of the module's own with the machine's 2 CPUs: address "local" and a
    private temp dir, so an instance another process started here is neither joined nor
    disturbed. Afterwards no process of it may be left."""
    ray = pytest.importorskip(
        "ray", reason="the ray extra is not installed: pip install -e '.[ray]'"
    )
    from restem.verifiers.executor import connect_ray

    # Short (Ray's socket paths must fit in 107 bytes) and unique on a shared /tmp.
    temp_dir = Path(tempfile.mkdtemp(prefix="restem_ray_", dir="/tmp"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=str(temp_dir))
    connect_ray(None)  # what restem calls: a no-op once connected
    assert ray.cluster_resources().get("CPU") == 2
    yield ray
    ray.shutdown()
    deadline = time.monotonic() + 20
    while _ray_processes(temp_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _ray_processes(temp_dir), "Ray processes left after ray.shutdown()"
    shutil.rmtree(temp_dir, ignore_errors=True)  # its logs and sockets
