"""One local sandbox for the module's tests (starting one probes namespaces: ~0.1 s)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def box():
    from restem.sandbox import get_sandbox

    sandbox = get_sandbox("local", workers=2)
    yield sandbox
    sandbox.close()
