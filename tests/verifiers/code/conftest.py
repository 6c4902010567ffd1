"""One local sandbox for the module's tests (starting one probes namespaces: ~0.1 s); `backend`:
the local one and a docker pool (skipped without an engine, failed under RESTEM_REQUIRE_DOCKER=1)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def box():
    from restem.sandbox import get_sandbox

    sandbox = get_sandbox("local", workers=2)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module", params=["local", "docker"])
def backend(request, box):
    if request.param == "local":
        yield box
        return
    from restem.sandbox import docker_available
    from restem.verifiers.code import CodeLimits, open_sandbox

    if not docker_available():
        if os.environ.get("RESTEM_REQUIRE_DOCKER") == "1":
            pytest.fail("RESTEM_REQUIRE_DOCKER=1 but no Docker engine answers")
        pytest.skip("no Docker engine answers")
    with open_sandbox("docker", 2, CodeLimits()) as sandbox:
        yield sandbox
