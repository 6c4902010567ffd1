"""Build the sandbox image, offline by default, and skip the build when the image is current.

Offline: `build-base.sh` (next to this file) makes a minimal Debian root file system with python3 by
debootstrap (from the machine's Debian mirror, no container registry) and imports it as
`restem-base:<suite>`; the Dockerfile then adds the runner. `from_registry=True` builds the same
Dockerfile on `python:3.11-slim` instead. Current means: the image carries a label with the
hash of every build input (Dockerfile, runner, fork server, supervisor, judge packages, base
script, base name).

Judge packages (`judge-packages.txt`, pinned): the host's pip installs their wheels for the
image's Python and platform into a folder (cached between builds), which the Dockerfile copies
in; no container registry and no network inside the build.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import engine

__all__ = [
    "IMAGE",
    "IMAGE_PYTHON",
    "REGISTRY_BASE",
    "build_image",
    "image_current",
    "inputs_hash",
    "judge_packages",
]

IMAGE = "restem-sandbox:latest"
REGISTRY_BASE = "python:3.11-slim"
INPUTS_LABEL = "org.restem.inputs"
BASE_LABEL = "org.restem.base-inputs"
PACKAGES_LABEL = "org.restem.judge-packages"
# The interpreter of both bases (Debian bookworm's python3, python:3.11-slim): wheels are chosen
# for it, and for the glibc of bookworm (2.36) and older manylinux tags.
IMAGE_PYTHON = "3.11"
_GLIBC_TAGS = ("2014", "_2_17", "_2_24", "_2_27", "_2_28", "_2_31", "_2_34", "_2_36")
# Kept beside the modules, not in a sub-folder: package data must sit in a package to be installed.
_HERE = Path(__file__).parent
_CONTEXT = {
    "Dockerfile": _HERE / "Dockerfile",
    "runner.py": _HERE.parent / "runner.py",
    "forkserver.py": _HERE.parent / "forkserver.py",
    "supervise.py": _HERE.parent / "supervise.py",
    "judge-packages.txt": _HERE / "judge-packages.txt",
}
_BASE_SCRIPT = _HERE / "build-base.sh"


def judge_packages() -> list[str]:
    """The pinned requirements of judge-packages.txt, e.g. ["numpy==2.4.6", ...]."""
    lines = _CONTEXT["judge-packages.txt"].read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def _judge_site(log: Callable[[str], None]) -> Path:
    """The judge packages installed for the image's Python, in a cache folder (built once)."""
    machine = platform.machine()
    key = _digest(
        [_CONTEXT["judge-packages.txt"].read_bytes(), IMAGE_PYTHON.encode(), machine.encode()]
    )
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "restem"
    site = cache / f"judge-site-{key}"
    if site.is_dir():
        return site
    log(f"installing the judge packages for Python {IMAGE_PYTHON} ({', '.join(judge_packages())})")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="judge-site-", dir=cache))
    platforms = [f"--platform=manylinux{tag}_{machine}" for tag in _GLIBC_TAGS]
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--only-binary=:all:"]
    cmd += [*platforms, f"--python-version={IMAGE_PYTHON}", "--implementation=cp"]
    cmd += [f"--abi=cp{IMAGE_PYTHON.replace('.', '')}", "--target", str(tmp), *judge_packages()]
    try:
        subprocess.run(cmd, check=True)
        shutil.rmtree(tmp / "bin", ignore_errors=True)  # console scripts: nothing runs them
        tmp.rename(site)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return site


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
            shutil.copytree(_judge_site(log), Path(ctx, "judge-site"))
            c.images.build(
                path=ctx,
                tag=tag,
                buildargs={"BASE": base},
                labels={INPUTS_LABEL: wanted, PACKAGES_LABEL: " ".join(judge_packages())},
                rm=True,
                forcerm=True,
                pull=from_registry,
            )
        log(f"built {tag} (inputs {wanted})")
        return True
    finally:
        c.close()
