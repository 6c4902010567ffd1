"""Shared fixtures. Real data lives outside the repo: RESTEM_DATA_DIR (CI sets ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
