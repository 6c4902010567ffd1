"""Build the sandbox image, offline by default, and skip the build when the image is current.

Offline: `build-base.sh` (next to this file) makes a minimal Debian root file system with python3 by
debootstrap (from the machine's Debian mirror, no container registry) and imports it as
`restem-base:<suite>`; the Dockerfile then adds the runner. `from_registry=True` builds the same
Dockerfile on `python:3.11-slim` instead. Current means: the image carries a label with the
hash of every build input (Dockerfile, runner, supervisor, base script, base name).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import engine

__all__ = ["IMAGE", "REGISTRY_BASE", "build_image", "image_current", "inputs_hash"]

IMAGE = "restem-sandbox:latest"
REGISTRY_BASE = "python:3.11-slim"
INPUTS_LABEL = "org.restem.inputs"
BASE_LABEL = "org.restem.base-inputs"
# Kept beside the modules, not in a sub-folder: package data must sit in a package to be installed.
_HERE = Path(__file__).parent
_CONTEXT = {
    "Dockerfile": _HERE / "Dockerfile",
    "runner.py": _HERE / "runner.py",
    "supervise.py": _HERE.parent / "supervise.py",
}
_BASE_SCRIPT = _HERE / "build-base.sh"


def offline_base(suite: str) -> str:
    return f"restem-base:{suite}"


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()[:16]


def base_hash(suite: str) -> str:
    return _digest([_BASE_SCRIPT.read_bytes(), suite.encode()])


def inputs_hash(base: str) -> str:
    parts = [p.read_bytes() for p in _CONTEXT.values()] + [base.encode()]
    if base.startswith("restem-base:"):
        parts.append(_BASE_SCRIPT.read_bytes())
    return _digest(parts)


def _label(client, tag: str, key: str) -> str | None:
    import docker.errors

    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    return (image.labels or {}).get(key)


def image_current(tag: str = IMAGE, base: str | None = None) -> bool:
    c = engine.client()
    try:
        return _label(c, tag, INPUTS_LABEL) == inputs_hash(base or offline_base("bookworm"))
    finally:
        c.close()


def build_image(
    *,
    tag: str = IMAGE,
    from_registry: bool = False,
    suite: str = "bookworm",
    force: bool = False,
    log: Callable[[str], None] = print,
) -> bool:
    """Build `tag` unless it is current. Returns True when it built something."""
    c = engine.client(timeout=600)
    try:
        base = REGISTRY_BASE if from_registry else offline_base(suite)
        wanted = inputs_hash(base)
        if not force and _label(c, tag, INPUTS_LABEL) == wanted:
            log(f"{tag} is current (inputs {wanted}); nothing to build")
            return False
        if not from_registry and (force or _label(c, base, BASE_LABEL) != base_hash(suite)):
            log(f"building {base} with debootstrap ({suite}); this takes a minute or two")
            subprocess.run(
                ["bash", str(_BASE_SCRIPT), base, suite, f"{BASE_LABEL}={base_hash(suite)}"],
                check=True,
            )
        log(f"building {tag} on {base}")
        with tempfile.TemporaryDirectory(prefix="restem-image-") as ctx:
            for name, src in _CONTEXT.items():
                shutil.copy(src, Path(ctx, name))
            c.images.build(
                path=ctx,
                tag=tag,
                buildargs={"BASE": base},
                labels={INPUTS_LABEL: wanted},
                rm=True,
                forcerm=True,
                pull=from_registry,
            )
        log(f"built {tag} (inputs {wanted})")
        return True
    finally:
        c.close()
