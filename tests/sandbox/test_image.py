"""`restem sandbox build-image`: builds offline and is skipped when current."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from restem.sandbox.docker.image import (
    IMAGE,
    INPUTS_LABEL,
    image_current,
    inputs_hash,
    offline_base,
)

pytestmark = pytest.mark.docker


def test_image_is_current_and_labelled(docker_client, docker_box):
    image = docker_client.images.get(IMAGE)
    assert image.labels[INPUTS_LABEL] == inputs_hash(offline_base("bookworm"))
    assert image_current()


def test_build_image_skips_when_current(docker_client, docker_box):
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "restem", "sandbox", "build-image"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "is current" in out.stderr
    assert time.monotonic() - start < 10


def test_registry_path_is_a_different_build():
    assert inputs_hash("python:3.11-slim") != inputs_hash(offline_base("bookworm"))


def test_a_changed_package_set_changes_the_image_inputs(tmp_path, monkeypatch):
    from restem.sandbox.docker import image

    base = offline_base("bookworm")
    before = inputs_hash(base)
    changed = tmp_path / "judge-packages.txt"
    changed.write_text(
        image._CONTEXT["judge-packages.txt"].read_text() + "more-itertools==10.5.0\n"
    )
    monkeypatch.setitem(image._CONTEXT, "judge-packages.txt", changed)
    assert inputs_hash(base) != before
    assert image.judge_packages()[-1] == "more-itertools==10.5.0"
